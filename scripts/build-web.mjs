// Builds the demo pages: web/src/*.ts → web/dist/*.js, browser ES modules bundling the library's src/
// (WGSL inlined as text). Node-only modules stay external: the browser code paths never load them.
// The embedded data sets the pages load (Fashion-MNIST subset, Omniglot) are copied to web/dist/data/,
// so web/ with its dist/ is the whole site (any static server will do).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildWeb() {
  await build({
    absWorkingDir: root,
    entryPoints: { train: 'web/src/train.ts', adapt: 'web/src/adapt.ts', attack: 'web/src/attack.ts', sinusoid: 'web/src/sinusoid.ts' },
    outdir: 'web/dist',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    loader: { '.wgsl': 'text' },
    external: ['webgpu', 'ffi-rs', 'node:*'],
    sourcemap: true,
    logLevel: 'warning',
  });
  for (const file of DATA) {
    mkdirSync(path.dirname(path.join(root, 'web/dist', file)), { recursive: true });
    copyFileSync(path.join(root, file), path.join(root, 'web/dist', file));
  }
}

/** What the pages fetch, relative to the repository and to web/dist. */
const DATA = [
  'data/fashion-mnist-subset/train-images-idx3-ubyte.gz',
  'data/fashion-mnist-subset/train-labels-idx1-ubyte.gz',
  'data/omniglot/omniglot-28x28.bin.gz',
];

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildWeb();
