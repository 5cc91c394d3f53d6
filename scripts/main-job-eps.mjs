// The main job's MAML and ADML (src/demo.ts: Conv-4, 16 filters, 300 × 16, order 1, seed 1) scored under
// FGSM at ε = 0.03, 0.05 and 0.1 on the same 600 held-out episodes: the README's figures at the ε the
// job does not print. Usage (after npm run build): node scripts/main-job-eps.mjs   (F=filters IT=iterations)
import { createLearner, sampleTasks } from '../dist/index.js';
import { loadOmniglotEmbedded } from '../dist/node.js';

const F = Number(process.env.F ?? 16);
const IT = Number(process.env.IT ?? 300);
const EPS = 0.05;  // ADML's training ε, as in the job
const source = { kind: 'omniglot', set: loadOmniglotEmbedded(), ways: 5, shots: 1, queries: 5, name: 'embedded Omniglot' };
const test = sampleTasks(source, { tasks: 600, supportShots: 5, queryShots: 25 }, 1, 0, 'test');
const pct = (r) => `${(100 * r.mean).toFixed(1)}% ± ${(100 * r.ci95).toFixed(1)}`;
for (const algorithm of ['maml', 'adml']) {
  const learner = await createLearner({
    algorithm, dim: 784, model: { kind: 'conv4', classes: 5, filters: F }, backend: 'cpu', innerLr: 0.4, order: 1, optimizer: 'adam', outerLr: 0.003, seed: 1,
    ...(algorithm === 'adml' ? { epsilon: EPS, clip: [0, 1] } : {}),
  });
  await learner.train({ source, iterations: IT, tasksPerBatch: 16, evalEvery: 0 });
  const cells = [];
  for (const epsilon of [0.03, 0.05, 0.1]) {
    const r = await learner.evaluate(test, { steps: 3, lr: 0.4, attack: { kind: 'fgsm', epsilon, clip: [0, 1] } });
    if (epsilon === 0.03) cells.push(`clean ${pct(r.accuracyInterval)}`);
    cells.push(`FGSM ${epsilon}: ${pct(r.attacked.accuracyInterval)}`);
  }
  console.log(`${algorithm} (Conv-4 F=${F}, ${IT} × 16): ${cells.join('; ')}`);
  learner.destroy();
}
