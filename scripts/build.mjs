// Builds dist/: the library (dist/index.js + .d.ts), the demo training run and the benchmark, each an
// ES module bundle with WGSL inlined as text. `webgpu` (Dawn's native addon) stays external.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  loader: { '.wgsl': 'text' },
  // pngjs (CommonJS, needs Node's zlib and stream) is loaded from node_modules, not bundled.
  external: ['webgpu', 'pngjs'],
  sourcemap: true,
  logLevel: 'warning',
  absWorkingDir: root,
};

export async function buildAll() {
  await build({ ...common, entryPoints: { index: 'src/index.ts', node: 'src/node/index.ts', demo: 'src/demo.ts', cli: 'src/cli.ts', bench: 'bench/bench.ts', 'cpu-worker': 'src/cpu/worker.ts' }, outdir: 'dist' });
  // Type declarations for the public API (dist/index.d.ts and its imports).
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}

export { common as esbuildOptions };

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildAll();
}
