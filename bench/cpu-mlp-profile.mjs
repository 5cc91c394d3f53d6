// Times the CPU backend's MLP MAML core (src/cpu/model-task.ts modelAdaptAndMetaGrad) on one thread at the
// Omniglot shape of the benchmark's MLP rows (bench/bench.ts: D = 784, hidden [256, 128, 64, 64], 5-way,
// Ks = Kq = 5, 1 inner step, synthetic sparse-prototype rows with noise) and prints ms per task (wall and
// CPU time of this thread's process: on a shared machine the CPU time is the steadier), plus a checksum
// of the outputs (equal checksums: the same bits). Bundles src/ with esbuild, like test/run.mjs.
// --before REV also bundles src/cpu/model-task.ts as of git revision REV (e.g. 7181d16, the float64
// generic-loop version) and alternates the two implementations rep by rep, so both see the same load.
// Usage: node [--cpu-prof] bench/cpu-mlp-profile.mjs [--tasks 32] [--orders 1,2] [--steps 1] [--reps 5]
//        [--hidden 256,128,64,64] [--context 0] [--adapt all|context] [--perturb 0] [--before REV]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const T = Number(arg('tasks', 32));
const orders = arg('orders', '1,2').split(',').map(Number);
const innerSteps = Number(arg('steps', 1));
const reps = Number(arg('reps', 5));
const hidden = arg('hidden', '256,128,64,64').split(',').filter(Boolean).map(Number);
const context = Number(arg('context', 0));
const adapt = arg('adapt', 'all');
const perturbSteps = Number(arg('perturb', 0));
const before = arg('before', null);
const D = 784, N = 5, Ks = 5, Kq = 5;

const dir = mkdtempSync(path.join(os.tmpdir(), 'metagrad-mlp-profile-'));
await build({
  stdin: {
    contents: `export { modelAdaptAndMetaGrad, modelTaskScratchSizes } from './src/cpu/model-task.ts';
               export { mlpLayout, mlpInit } from './src/models/mlp.ts';
               export { uniform01 } from './src/rng.ts';`,
    resolveDir: root, loader: 'ts',
  },
  bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: path.join(dir, 'profile.mjs'), logLevel: 'warning',
});
const m = await import(pathToFileURL(path.join(dir, 'profile.mjs')).href);
const impls = [{ name: 'current', core: m.modelAdaptAndMetaGrad }];
if (before) {
  // The core was src/cpu/mlp-task.ts (mlpAdaptAndMetaGrad) before issue 20 made it model-generic.
  const show = (file) => { try { return execFileSync('git', ['show', `${before}:src/cpu/${file}`], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }); } catch { return null; } };
  const old = show('model-task.ts') ?? show('mlp-task.ts');
  if (old === null) throw new Error(`--before ${before}: neither src/cpu/model-task.ts nor src/cpu/mlp-task.ts exists at that revision`);
  await build({
    stdin: { contents: old, resolveDir: path.join(root, 'src', 'cpu'), loader: 'ts', sourcefile: `model-task@${before}.ts` },
    bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: path.join(dir, 'before.mjs'), logLevel: 'warning',
  });
  const oldModule = await import(pathToFileURL(path.join(dir, 'before.mjs')).href);
  impls.unshift({ name: `before (${before})`, core: oldModule.modelAdaptAndMetaGrad ?? oldModule.mlpAdaptAndMetaGrad });
}
rmSync(dir, { recursive: true, force: true });

const layout = m.mlpLayout(D, hidden, N, context);
const V = layout.vector;
const theta = m.mlpInit(layout, 5);
// Rows as bench/bench.ts makeMlpBatch: a sparse binary prototype per (task, class), 20% ink, plus noise.
function rows(shots, stream, label) {
  const x = new Float32Array(T * shots * D);
  const y = new Float32Array(T * shots);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < shots; k++) {
      const r = t * shots + k;
      y[r] = label(k, t);
      const proto = (t * N + y[r]) * D;
      for (let d = 0; d < D; d++) {
        const ink = m.uniform01(42, 11, proto + d) < 0.2 ? 1 : 0;
        x[r * D + d] = ink * (0.75 + 0.25 * m.uniform01(42, stream, r * D + d)) + 0.1 * m.uniform01(42, stream + 1, r * D + d);
      }
    }
  }
  return { x, y };
}
const support = rows(Ks, 12, (k, t) => (k + t) % N);
const query = rows(Kq, 14, (k, t) => (2 * k + t) % N);

function checksum(a) {
  let s = 0, h = 0;
  const bits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < a.length; i++) { s += a[i]; h = (Math.imul(h, 31) + bits[i]) >>> 0; }
  return `${s.toExponential(6)}/${h.toString(16)}`;
}

console.log(`node ${process.version}; D=${D} hidden=[${hidden}] N=${N} C=${context} adapt=${adapt} Ks=${Ks} Kq=${Kq} n=${innerSteps} T=${T} perturb=${perturbSteps}; one thread; ${reps} reps`);
const median = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const order of orders) {
  const sizes = m.modelTaskScratchSizes({ tasks: T, layout });
  const p = {
    tasks: T, supportRows: Ks, queryRows: Kq, dim: D, innerSteps, order, wantMetaGrad: true, innerLr: 0.05, outSet: 0,
    layout, adapt, thetaPerTask: false, perturb: perturbSteps ? { steps: perturbSteps, lr: 0.05, radius: 0.01 } : null,
  };
  const runs = impls.map((impl) => ({
    ...impl, wall: [], cpu: [], first: 0,
    out: { adapted: new Float32Array(sizes.adapted), metaGrad: new Float32Array(sizes.metaGrad), taskStats: new Float32Array(sizes.taskStats) },
  }));
  for (let i = 0; i < reps + 1; i++) {
    for (const run of runs) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      run.core(run.out, support, query, theta, p);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (i === 0) run.first = wall;
      else { run.wall.push(wall); run.cpu.push((c.user + c.system) / 1000); }
    }
  }
  for (const run of runs) {
    console.log(`order ${order} ${run.name}: ${(median(run.cpu) / T).toFixed(2)} ms/task CPU, ${(median(run.wall) / T).toFixed(2)} wall (medians of ${reps}; ` +
      `min wall ${(Math.min(...run.wall) / T).toFixed(2)}, first call ${(run.first / T).toFixed(2)}); ` +
      `checksums metaGrad ${checksum(run.out.metaGrad)} adapted ${checksum(run.out.adapted)} stats ${checksum(run.out.taskStats)}`);
  }
}
