// npm run bench: times one MAML meta-iteration (`step`) per backend, verify first, time second.
// Peer in the same run: the vectorised numpy step of bench/peers/maml_numpy.py, when python3 + numpy
// are present. Each metagrad backend's θ after one step is compared with the peer's before timing.
// Prints a markdown table and writes bench/results/<host>-<date>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLearner, type Learner } from '../src/learner.js';
import { getSharedDevice } from '../src/learner.js';
import { uniform01 } from '../src/rng.js';
import type { BackendChoice, Batch } from '../src/types.js';

interface Config { tasks: number; supportShots: number; queryShots: number; dim: number; innerSteps: number }
const CONFIGS: Config[] = [
  { tasks: 1024, supportShots: 10, queryShots: 10, dim: 784, innerSteps: 1 },
  { tasks: 64, supportShots: 10, queryShots: 10, dim: 50, innerSteps: 1 },
];
const ORDERS = [1, 2] as const;
const INNER_LR = 0.01;
const OUTER_LR = 0.001;
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

function numpyPeer(py: string, c: Config, order: 1 | 2, batch: Batch, theta: Float32Array) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'metagrad-bench-'));
  const parts = [theta, batch.supportX, batch.supportY, batch.queryX, batch.queryY];
  writeFileSync(path.join(dir, 'batch.bin'), Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...c, order, innerLr: INNER_LR, outerLr: OUTER_LR, seconds: SECONDS }));
  const r = spawnSync(py, [path.join('bench', 'peers', 'maml_numpy.py'), path.join(dir, 'batch.bin'), path.join(dir, 'meta.json'), path.join(dir, 'theta.bin')], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(os.cpus().length) } });
  if (r.status !== 0) throw new Error(`numpy peer failed: ${r.stderr}`);
  const figures = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const bytes = readFileSync(path.join(dir, 'theta.bin'));  // may be a view into Node's shared pool
  const thetaAfter = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { figures, thetaAfter };
}

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
  console.log(`\nmetagrad bench — ${os.cpus()[0]?.model} ×${os.cpus().length}, node ${process.version}, adapter: ${adapter}`);
  console.log('step(batch): one call = upload + validation + one meta-iteration, waited for; ' +
    `resident: step(batch, { iterations: ${ITERATIONS_PER_SUBMIT} }) per iteration (one upload, one submit)\n`);
  console.log('| T | Ks | Kq | D | order | backend | step(batch) tasks/s | resident tasks/s | numpy tasks/s | resident / numpy | max abs Δθ vs numpy |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of CONFIGS) {
    const batch = makeBatch(c, 42);
    const theta0 = new Float32Array(c.dim).map((_, i) => 0.01 * (uniform01(7, 9, i) - 0.5));
    for (const order of ORDERS) {
      const peer = py ? numpyPeer(py, c, order, batch, theta0) : null;
      for (const backend of backends) {
        const learner: Learner = await createLearner({ backend, dim: c.dim, innerLr: INNER_LR, outerLr: OUTER_LR, innerSteps: c.innerSteps, order, optimizer: 'sgd' });
        // Verify first: one step from the same θ as the peer.
        learner.setParams(theta0);
        await learner.step(batch);
        const after = await learner.getParams();
        const diff = peer ? maxAbsDiff(after, peer.thetaAfter) : NaN;
        const single = await timeIt(async () => { await learner.step(batch); await learner.sync(); });
        const resident = await timeIt(async () => { await learner.step(batch, { iterations: ITERATIONS_PER_SUBMIT }); await learner.sync(); });
        const stepRate = c.tasks / single.median;
        const residentRate = (c.tasks * ITERATIONS_PER_SUBMIT) / resident.median;
        const numpyRate = peer?.figures.tasks_per_s as number | undefined;
        rows.push({ ...c, order, backend, adapter: learner.backend.adapter, stepTasksPerS: stepRate, residentTasksPerS: residentRate, step: single, resident, numpyTasksPerS: numpyRate ?? null, numpy: peer?.figures ?? null, maxAbsDiffVsNumpy: peer ? diff : null });
        const f = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 0 });
        console.log(`| ${c.tasks} | ${c.supportShots} | ${c.queryShots} | ${c.dim} | ${order} | ${backend} | ${f(stepRate)} | ${f(residentRate)} | ${numpyRate ? f(numpyRate) : '—'} | ${numpyRate ? (residentRate / numpyRate).toFixed(2) + '×' : '—'} | ${peer ? diff.toExponential(1) : '—'} |`);
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
