// Builds the demo pages: web/src/*.ts → web/dist/*.js, browser ES modules bundling the library's src/
// (WGSL inlined as text). Node-only modules stay external: the browser code paths never load them.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildWeb() {
  await build({
    absWorkingDir: root,
    entryPoints: { train: 'web/src/train.ts', adapt: 'web/src/adapt.ts', attack: 'web/src/attack.ts' },
    outdir: 'web/dist',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    loader: { '.wgsl': 'text' },
    external: ['webgpu', 'node:*'],
    sourcemap: true,
    logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildWeb();
