// Builds dist/, ES module bundles with WGSL inlined as text. `webgpu` (Dawn's native addon), ffi-rs and pngjs stay
// external (dependencies of the package).
//  - The package (what `files` in package.json ships): the entries 'metagrad' (dist/index.js),
//    'metagrad/node' (dist/node.js), the command (dist/cli.js) and the CPU backend's worker
//    (dist/cpu-worker.js), bundled together with code splitting, so that the modules they share (the
//    error classes, the learner, the shared device) are one module graph in shared chunks
//    (dist/chunk-*.js): an error thrown through 'metagrad/node' is `instanceof` the class 'metagrad'
//    exports. Plus the type declarations (tsc, tsconfig.build.json) of the two entries.
//  - Not shipped: the demo training run (dist/demo.js, `npm start`) and the benchmark (dist/bench.js,
//    `npm run bench`), self-contained bundles with source maps.
// The build goes to a fresh folder that then replaces dist/, so no stale chunk is shipped and a test
// reading dist/ meanwhile sees the old build or the new one.
// Runs as the package's `prepare` script: on `npm ci` / `npm install` in a checkout, `npm pack`,
// `npm publish`, and when npm installs metagrad from a git URL.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
  external: ['webgpu', 'ffi-rs', 'pngjs'],
  sourcemap: true,
  logLevel: 'warning',
  absWorkingDir: root,
};

/** The entries of the package, bundled together (code splitting). */
export const PACKAGE_ENTRIES = { index: 'src/index.ts', node: 'src/node/index.ts', cli: 'src/cli.ts', 'cpu-worker': 'src/cpu/worker.ts' };

async function loadEsbuild() {
  try {
    return await import('esbuild');
  } catch {
    throw new Error('metagrad build: esbuild is missing (a devDependency). Run `npm ci` (with dev dependencies) in the checkout first.');
  }
}

export async function buildAll() {
  const { build } = await loadEsbuild();
  const staging = path.join(root, `dist.build-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    await build({
      ...common,
      entryPoints: PACKAGE_ENTRIES,
      outdir: staging,
      splitting: true,
      // Chunks sit beside the entries: code that finds files from import.meta.url (the CPU pool's
      // ./cpu-worker.js, the embedded data sets at ../data) may land in a chunk.
      chunkNames: '[name]-[hash]',
      // The package ships no source maps (they hold the whole sources: three times the code).
      sourcemap: false,
    });
    await build({ ...common, entryPoints: { demo: 'src/demo.ts', bench: 'bench/bench.ts' }, outdir: staging });
    // Type declarations of the public API (dist/index.d.ts, dist/node/index.d.ts and what they import).
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--declarationDir', staging], { cwd: root, stdio: 'inherit' });
    writeLibDomEntry(staging);
    const dist = path.join(root, 'dist');
    const old = path.join(root, `dist.old-${process.pid}`);
    if (existsSync(dist)) renameSync(dist, old);
    renameSync(staging, dist);
    rmSync(old, { recursive: true, force: true });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * dist/index-libdom.d.ts: the public declarations for TypeScript ≥ 6, whose lib.dom declares WebGPU
 * itself. dist/index.d.ts references @webgpu/types (TypeScript 5 has no WebGPU in its lib); on 6 and
 * later the two declare the same globals and a strict project without skipLibCheck gets "Duplicate
 * identifier 'GPU…'" by the hundred. package.json picks the entry by TypeScript version (the
 * `types@>=6.0` export condition; `typesVersions` for moduleResolution node10).
 */
function writeLibDomEntry(dir) {
  const entry = path.join(dir, 'index.d.ts');
  const text = readFileSync(entry, 'utf8');
  const reference = /^\/\/\/ <reference types="@webgpu\/types"[^\n]*\n/m;
  if (!reference.test(text)) throw new Error('metagrad build: dist/index.d.ts no longer references @webgpu/types; update writeLibDomEntry');
  writeFileSync(path.join(dir, 'index-libdom.d.ts'), text.replace(reference, '// TypeScript ≥ 6: WebGPU from lib.dom (see scripts/build.mjs).\n'));
}

export { common as esbuildOptions };

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildAll();
}
