// Test runner: bundles test/*.test.ts with esbuild (WGSL as text), runs them with uvu in one process,
// and ends with the line "N passed, N failed" that CI reads.
// Usage: node test/run.mjs [word,word…] [--no-build | --build-only]
const { build } = process.argv.includes('--no-build') ? { build: null } : await import('esbuild');
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const { esbuildOptions } = process.argv.includes('--no-build') ? { esbuildOptions: {} } : await import('../scripts/build.mjs');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// METAGRAD_TEST_OUT: another build folder, so that several runs at once do not delete each other's.
const outdir = path.join(root, process.env.METAGRAD_TEST_OUT || '.test-build');
// Filters: test files whose name holds any of the comma-separated words ('' = all). --no-build reuses
// .test-build (prepared elsewhere, e.g. for a GPU machine without esbuild: scripts/gpu-pack.sh).
const noBuild = process.argv.includes('--no-build');
const filters = (process.argv.slice(2).find((a) => !a.startsWith('--')) ?? '').split(',');
const files = readdirSync(path.join(root, 'test')).filter((f) => f.endsWith('.test.ts') && filters.some((w) => f.includes(w))).sort();

if (!noBuild) rmSync(outdir, { recursive: true, force: true });
if (!noBuild) await build({
  ...esbuildOptions,
  entryPoints: files.map((f) => `test/${f}`),
  outdir,
  outExtension: { '.js': '.mjs' },
  external: [...esbuildOptions.external, 'uvu', 'uvu/assert', 'puppeteer-core', 'esbuild', 'wabt'],
});

// The CPU backend's worker threads load cpu-worker.js from beside the bundle that starts them.
if (!noBuild) await build({ ...esbuildOptions, entryPoints: { 'cpu-worker': 'src/cpu/worker.ts' }, outdir });

if (process.argv.includes('--build-only')) process.exit(0);

// Keep what uvu prints, and read its totals from it.
let printed = '';
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  printed += String(chunk);
  return write(chunk, ...rest);
};
const { run } = await import('uvu/run');
await run(files.map((f) => ({ name: f, file: path.join(outdir, f.replace(/\.ts$/, '.mjs')) })));
process.stdout.write = write;

const plain = printed.replace(/\x1b\[[0-9;]*m/g, '');
const count = (label) => Number(/\s+(\d+)/.exec(plain.slice(plain.lastIndexOf(label) + label.length))?.[1] ?? NaN);
const total = count('Total:');
const passed = count('Passed:');
const skipped = count('Skipped:');
const failed = Number.isFinite(total) ? total - passed : 1;
if (!Number.isFinite(total)) console.log('Could not read uvu totals: the run did not finish.');
process.exitCode = failed > 0 || !Number.isFinite(total) ? 1 : process.exitCode ?? 0;
// Skipped tests are said on their own line, so that the last line is exactly "N passed, N failed".
if (skipped) console.log(`${skipped} skipped (their names say why)`);
console.log(`${Number.isFinite(passed) ? passed : 0} passed, ${failed} failed`);
