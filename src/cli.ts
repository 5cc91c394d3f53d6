// Entry of the `metagrad` command (bin/metagrad.js imports the bundle built from this file).
import { main } from './cli/main.js';
import { releaseSharedDevice } from './learner.js';

main(process.argv.slice(2)).then(async (code) => {
  await releaseSharedDevice();
  process.exit(code);
});
