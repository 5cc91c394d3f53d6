// npm run bench: times one meta-iteration (`step`) per algorithm and backend, verify first, time second.
// Peer in the same run: the vectorised numpy step of bench/peers/maml_numpy.py (MAML and ADML), when
// python3 + numpy are present. Each metagrad backend's θ after one step is compared with the peer's
// before timing. BENCH_ONLY=<substring> keeps the rows whose name contains it.
// Prints a markdown table and writes bench/results/<host>-<date>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLearner, type Learner } from '../src/learner.js';
import { getSharedDevice } from '../src/learner.js';
import { uniform01 } from '../src/rng.js';
import type { BackendChoice, Batch, LearnerOptions } from '../src/types.js';

interface Config { tasks: number; supportShots: number; queryShots: number; dim: number; innerSteps: number }
const BIG: Config = { tasks: 1024, supportShots: 10, queryShots: 10, dim: 784, innerSteps: 1 };
const SMALL: Config = { tasks: 64, supportShots: 10, queryShots: 10, dim: 50, innerSteps: 1 };
const INNER_LR = 0.01;
const OUTER_LR = 0.001;

/** One benchmark row per (algorithm variant, config). `peer` names the numpy step that verifies it. */
interface Variant { name: string; options: Partial<LearnerOptions>; peer: 'maml' | 'adml' | null; configs: Config[] }
const ADML = { epsilon: 0.05, innerLrAdv: 0.02, outerLrAdv: 0.0005 };
const VARIANTS: Variant[] = [
  { name: 'maml o1', options: { algorithm: 'maml', order: 1 }, peer: 'maml', configs: [BIG, SMALL] },
  { name: 'maml o2', options: { algorithm: 'maml', order: 2 }, peer: 'maml', configs: [BIG, SMALL] },
  { name: 'adml o1', options: { algorithm: 'adml', order: 1, ...ADML }, peer: 'adml', configs: [BIG] },
  { name: 'adml o2', options: { algorithm: 'adml', order: 2, ...ADML }, peer: 'adml', configs: [BIG] },
  { name: 'ga-maml o1', options: { algorithm: 'ga-maml', order: 1 }, peer: null, configs: [BIG] },
  { name: 'caml o2 C=4', options: { algorithm: 'caml', order: 2, contextDim: 4 }, peer: null, configs: [BIG] },
  { name: 'amp (1024 models)', options: { algorithm: 'amp', models: BIG.tasks, lr: 0.1, epsilon: 0.5, perturbSteps: 1 }, peer: null, configs: [BIG] },
  { name: 'maml o1 + amp inner', options: { algorithm: 'maml', order: 1, innerOptimizer: 'amp' }, peer: null, configs: [BIG] },
];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.5);
const ITERATIONS_PER_SUBMIT = 10;

function makeBatch(c: Config, seed: number): Batch {
  const fill = (n: number, stream: number, labels: boolean) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) { const u = uniform01(seed, stream, i); a[i] = labels ? (u < 0.5 ? 0 : 1) : u; }
    return a;
  };
  const T = c.tasks;
  return {
    tasks: T, supportShots: c.supportShots, queryShots: c.queryShots,
    supportX: fill(T * c.supportShots * c.dim, 1, false), supportY: fill(T * c.supportShots, 2, true),
    queryX: fill(T * c.queryShots * c.dim, 3, false), queryY: fill(T * c.queryShots, 4, true),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Repeats `once` (which must end with the work finished) for ~SECONDS; returns per-call seconds. */
async function timeIt(once: () => Promise<void>): Promise<{ median: number; min: number; max: number; repeats: number }> {
  await once();  // warm-up: pipelines, buffer allocation
  const times: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  while (times.length < 3 || (performance.now() < end && times.length < 200)) {
    const t0 = performance.now();
    await once();
    times.push((performance.now() - t0) / 1000);
  }
  return { median: median(times), min: Math.min(...times), max: Math.max(...times), repeats: times.length };
}

function findPython(): string | null {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import numpy'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

function numpyPeer(py: string, c: Config, v: Variant, batch: Batch, theta: Float32Array) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'metagrad-bench-'));
  const parts = [theta, batch.supportX, batch.supportY, batch.queryX, batch.queryY];
  writeFileSync(path.join(dir, 'batch.bin'), Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...c, algorithm: v.peer, order: v.options.order, innerLr: INNER_LR, outerLr: OUTER_LR, ...ADML, seconds: SECONDS }));
  const r = spawnSync(py, [path.join('bench', 'peers', 'maml_numpy.py'), path.join(dir, 'batch.bin'), path.join(dir, 'meta.json'), path.join(dir, 'theta.bin')], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(os.cpus().length) } });
  if (r.status !== 0) throw new Error(`numpy peer failed: ${r.stderr}`);
  const figures = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const bytes = readFileSync(path.join(dir, 'theta.bin'));  // may be a view into Node's shared pool
  const thetaAfter = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { figures, thetaAfter };
}

/** The θ that both metagrad and the peer start from. */
const makeTheta = (dim: number) => new Float32Array(dim).map((_, i) => 0.01 * (uniform01(7, 9, i) - 0.5));

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

async function main() {
  const backends: BackendChoice[] = ['cpu'];
  let adapter = 'none';
  try {
    const acq = await getSharedDevice();
    backends.unshift('webgpu');
    adapter = acq.description;
  } catch (e) {
    console.log(`webgpu: skipped (${(e as Error).message.split('\n')[0]})`);
  }
  const py = findPython();
  if (!py) console.log('numpy peer: skipped (no python3 with numpy; apt-get install python3-numpy)');

  const rows: Record<string, unknown>[] = [];
  const only = process.env.BENCH_ONLY;
  console.log(`\nmetagrad bench — ${os.cpus()[0]?.model} ×${os.cpus().length}, node ${process.version}, adapter: ${adapter}`);
  console.log('step(batch): one call = upload + validation + one meta-iteration, waited for; ' +
    `resident: step(batch, { iterations: ${ITERATIONS_PER_SUBMIT} }) per iteration (one upload, one submit)\n`);
  console.log('| algorithm | T | Ks | Kq | D | backend | step(batch) tasks/s | resident tasks/s | numpy tasks/s | resident / numpy | max abs Δθ vs numpy |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const v of VARIANTS) {
    if (only && !v.name.includes(only)) continue;
    for (const c of v.configs) {
      const batch = makeBatch(c, 42);
      const options = { dim: c.dim, innerLr: INNER_LR, outerLr: OUTER_LR, innerSteps: c.innerSteps, ...v.options } as LearnerOptions;
      if (v.options.algorithm === 'amp') { delete options.innerLr; delete options.outerLr; delete options.innerSteps; }
      const peer = py && v.peer ? numpyPeer(py, c, v, batch, makeTheta(c.dim)) : null;
      for (const backend of backends) {
        const learner: Learner = await createLearner({ ...options, backend });
        // Verify first: one step from the same θ as the peer.
        if (peer) learner.setParams(makeTheta(c.dim));
        await learner.step(batch);
        const diff = peer ? maxAbsDiff(await learner.getParams(), peer.thetaAfter) : NaN;
        const single = await timeIt(async () => { await learner.step(batch); await learner.sync(); });
        const resident = await timeIt(async () => { await learner.step(batch, { iterations: ITERATIONS_PER_SUBMIT }); await learner.sync(); });
        const stepRate = c.tasks / single.median;
        const residentRate = (c.tasks * ITERATIONS_PER_SUBMIT) / resident.median;
        const numpyRate = peer?.figures.tasks_per_s as number | undefined;
        rows.push({ algorithm: v.name, options: v.options, ...c, backend, adapter: learner.backend.adapter, stepTasksPerS: stepRate, residentTasksPerS: residentRate, step: single, resident, numpyTasksPerS: numpyRate ?? null, numpy: peer?.figures ?? null, maxAbsDiffVsNumpy: peer ? diff : null });
        const f = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 0 });
        console.log(`| ${v.name} | ${c.tasks} | ${c.supportShots} | ${c.queryShots} | ${c.dim} | ${backend} | ${f(stepRate)} | ${f(residentRate)} | ${numpyRate ? f(numpyRate) : '—'} | ${numpyRate ? (residentRate / numpyRate).toFixed(2) + '×' : '—'} | ${peer ? diff.toExponential(1) : '—'} |`);
        learner.destroy();
      }
    }
  }
  const dir = path.join('bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${os.hostname().replace(/[^\w.-]/g, '_')}-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.json`);
  writeFileSync(file, JSON.stringify({
    date: new Date().toISOString(), machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, platform: `${os.platform()} ${os.release()}` },
    node: process.version, adapter, seconds: SECONDS, innerLr: INNER_LR, outerLr: OUTER_LR, rows,
  }, null, 2));
  console.log(`\nwrote ${file}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
