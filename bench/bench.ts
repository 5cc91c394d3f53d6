// npm run bench: how fast is metagrad, against what. For every configuration × algorithm × backend it
// verifies first (θ after one step against the peers' θ), then times:
//   step(batch)  one learner.step(batch) call, waited for: validation + upload + one meta-iteration;
//   resident     step(batch, { iterations: 10 }) per iteration: one upload and one submit for ten;
//   GPU time     the resident submit's compute pass from timestamp queries, when the adapter has them.
// Figures are medians over repeats after a warm-up, with min and max in the JSON. Peers run in the same
// process tree and verify first too (bench/peers/peers.py): numpy vectorised over tasks, PyTorch
// batched (bmm + autograd), and the per-task PyTorch loop of learn2learn-style code; each is skipped with
// a printed reason when python3 / numpy / torch are missing.
// Env: BENCH_SECONDS (time per measurement, default 1), BENCH_ONLY (substring of "config algorithm"),
// BENCH_BACKENDS (e.g. "cpu"), BENCH_PEERS=0 (no peers). Writes bench/results/<host>-<time>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLearner, getSharedDevice, type Learner } from '../src/learner.js';
import { MetagradError } from '../src/errors.js';
import { uniform01 } from '../src/rng.js';
import type { BackendChoice, Batch, LearnerOptions } from '../src/types.js';

interface Config { tasks: number; supportShots: number; queryShots: number; dim: number; innerSteps: number }
const CONFIGS: Config[] = [
  { tasks: 64, supportShots: 10, queryShots: 10, dim: 50, innerSteps: 1 },
  { tasks: 1024, supportShots: 10, queryShots: 10, dim: 784, innerSteps: 1 },
  { tasks: 1024, supportShots: 10, queryShots: 10, dim: 784, innerSteps: 5 },
  { tasks: 8192, supportShots: 5, queryShots: 15, dim: 784, innerSteps: 1 },
];
const INNER_LR = 0.01;
const OUTER_LR = 0.001;
const ADML = { epsilon: 0.05, innerLrAdv: 0.02, outerLrAdv: 0.0005 };
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const ITERATIONS_PER_SUBMIT = 10;

/** An algorithm row; `peer` names the peers' algorithm when they implement it. */
interface Variant { name: string; options: Partial<LearnerOptions>; peer: { algorithm: 'maml' | 'adml'; order: 1 | 2 } | null }
const VARIANTS: Variant[] = [
  { name: 'maml o1', options: { algorithm: 'maml', order: 1 }, peer: { algorithm: 'maml', order: 1 } },
  { name: 'maml o2', options: { algorithm: 'maml', order: 2 }, peer: { algorithm: 'maml', order: 2 } },
  { name: 'adml o1', options: { algorithm: 'adml', order: 1, ...ADML }, peer: { algorithm: 'adml', order: 1 } },
  { name: 'ga-maml o1', options: { algorithm: 'ga-maml', order: 1 }, peer: null },
  { name: 'caml o2 C=4', options: { algorithm: 'caml', order: 2, contextDim: 4 }, peer: null },
  { name: 'amp', options: { algorithm: 'amp', lr: 0.1, epsilon: 0.5, perturbSteps: 1 }, peer: null },
];
const PEER_IMPLS = [['numpy', 'numpy'], ['torch', 'torch batched'], ['loop', 'torch per-task loop']] as const;

const configName = (c: Config) => `T=${c.tasks} Ks=${c.supportShots} Kq=${c.queryShots} D=${c.dim} n=${c.innerSteps}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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

/** θ0 shared by metagrad and the peers (AMP: one row per model). */
const makeTheta = (n: number) => new Float32Array(n).map((_, i) => 0.01 * (uniform01(7, 9, i) - 0.5));

/** Repeats `once` (which ends with the work finished) for ~SECONDS after a warm-up. */
async function timeIt(once: () => Promise<number | void>): Promise<{ median: number; min: number; max: number; repeats: number; gpuMedianMs: number | null }> {
  await once();
  const times: number[] = [];
  const gpu: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  while (times.length < 3 || (performance.now() < end && times.length < 100)) {
    const t0 = performance.now();
    const g = await once();
    times.push((performance.now() - t0) / 1000);
    if (typeof g === 'number') gpu.push(g);
  }
  return { median: median(times), min: Math.min(...times), max: Math.max(...times), repeats: times.length, gpuMedianMs: gpu.length ? median(gpu) : null };
}

function findPython(): { py: string; torch: boolean } | null {
  let numpyOnly: string | null = null;
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0) return { py, torch: true };
    if (!numpyOnly && spawnSync(py, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0) numpyOnly = py;
  }
  return numpyOnly ? { py: numpyOnly, torch: false } : null;
}

interface PeerResult { name: string; impl: string; variant: string; tasksPerS?: number; medianS?: number; minS?: number; maxS?: number; device?: string; version?: string; theta?: Float32Array; skipped?: string }

/** Runs every peer job of one configuration in one python process (the batch is written once). */
function runPeers(py: string, c: Config, batch: Batch, theta0: Float32Array): PeerResult[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'metagrad-bench-'));
  const batchFile = path.join(dir, 'batch.bin');
  const fd = openSync(batchFile, 'w');
  for (const p of [theta0, batch.supportX, batch.supportY, batch.queryX, batch.queryY]) writeSync(fd, new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  closeSync(fd);
  const jobs = VARIANTS.filter((v) => v.peer && (!process.env.BENCH_ONLY || `${configName(c)} ${v.name}`.includes(process.env.BENCH_ONLY)))
    .flatMap((v) => PEER_IMPLS.map(([impl]) => ({ name: `${v.name.replace(/\W+/g, '_')}__${impl}`, variant: v.name, impl, ...v.peer! })));
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...c, innerLr: INNER_LR, outerLr: OUTER_LR, ...ADML, seconds: SECONDS, jobs }));
  const r = spawnSync(py, [path.join('bench', 'peers', 'peers.py'), batchFile, path.join(dir, 'meta.json'), dir], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const results: PeerResult[] = [];
  for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
    const j = JSON.parse(line);
    const job = jobs.find((x) => x.name === j.name)!;
    const res: PeerResult = { name: j.name, impl: job.impl, variant: job.variant };
    if (j.skipped) res.skipped = j.skipped;
    else {
      Object.assign(res, { tasksPerS: j.tasks_per_s, medianS: j.median_s, minS: j.min_s, maxS: j.max_s, device: j.device, version: j.version });
      const bytes = readFileSync(path.join(dir, `${j.name}.bin`));
      res.theta = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    }
    results.push(res);
  }
  if (r.status !== 0) console.log(`peers failed for ${configName(c)}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  rmSync(dir, { recursive: true, force: true });
  return results;
}

/** Copy bandwidth of the device (GB/s, read + write), the roofline ceiling: copies of a 64 MiB buffer. */
async function deviceBandwidth(backend: BackendChoice): Promise<number> {
  const bytes = 64 * 2 ** 20;
  if (backend === 'cpu') {
    const a = new Float32Array(bytes / 4).fill(1);
    const b = new Float32Array(bytes / 4);
    const t = await timeIt(async () => { b.set(a); });
    return (2 * bytes) / t.median / 1e9;
  }
  const { device } = await getSharedDevice();
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const [a, b] = [device.createBuffer({ size: bytes, usage }), device.createBuffer({ size: bytes, usage })];
  const t = await timeIt(async () => {
    const e = device.createCommandEncoder();
    for (let i = 0; i < 4; i++) e.copyBufferToBuffer(a, 0, b, 0, bytes);
    device.queue.submit([e.finish()]);
    await device.queue.onSubmittedWorkDone();
  });
  a.destroy();
  b.destroy();
  return (4 * 2 * bytes) / t.median / 1e9;
}

/** The least traffic a meta-iteration needs: every row and label of the batch read once (float32). */
const minimalBytes = (c: Config) => c.tasks * (c.supportShots + c.queryShots) * (c.dim + 1) * 4;

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const fmt = (x: number | undefined | null, digits = 0) => (x === undefined || x === null || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

async function main() {
  const wanted = (process.env.BENCH_BACKENDS ?? 'webgpu,cpu').split(',') as BackendChoice[];
  const backends: BackendChoice[] = [];
  let adapter = 'none';
  let hasTimestamps = false;
  if (wanted.includes('webgpu')) {
    try {
      const acq = await getSharedDevice();
      backends.push('webgpu');
      adapter = acq.description;
      hasTimestamps = acq.hasTimestamps;
    } catch (e) {
      console.log(`webgpu: skipped (${(e as Error).message.split('\n')[0]})`);
    }
  }
  if (wanted.includes('cpu')) backends.push('cpu');
  const python = process.env.BENCH_PEERS === '0' ? null : findPython();
  if (process.env.BENCH_PEERS === '0') console.log('peers: off (BENCH_PEERS=0)');
  else if (!python) console.log('peers: skipped (no python3 with numpy; Debian: apt-get install python3-numpy python3-torch)');
  else if (!python.torch) console.log(`peers: numpy only (${python.py} has no torch; Debian: apt-get install python3-torch)`);

  const bandwidth: Record<string, number> = {};
  for (const b of backends) bandwidth[b] = await deviceBandwidth(b);
  console.log(`\nmetagrad bench — ${os.cpus()[0]?.model} ×${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
  console.log(`webgpu adapter: ${adapter}; timestamp queries: ${hasTimestamps ? 'yes' : 'no (wall time only)'}`);
  console.log(`copy bandwidth (roofline ceiling): ${backends.map((b) => `${b} ${fmt(bandwidth[b], 1)} GB/s`).join(', ')}`);
  console.log(`step(batch) = one call with validation + upload; resident = ${ITERATIONS_PER_SUBMIT} iterations per submit on resident data; ` +
    'GB/s = batch bytes read once per iteration ÷ resident time; vs best peer = resident ÷ fastest peer in this run\n');
  console.log('| config | algorithm | impl | step(batch) tasks/s | resident tasks/s | GPU-time tasks/s | GB/s (% of copy bw) | vs best peer | max abs Δθ |');
  console.log('|---|---|---|---|---|---|---|---|---|');

  const rows: Record<string, unknown>[] = [];
  const only = process.env.BENCH_ONLY;
  for (const c of CONFIGS) {
    const variants = VARIANTS.filter((v) => !only || `${configName(c)} ${v.name}`.includes(only));
    if (variants.length === 0) continue;
    const batch = makeBatch(c, 42);
    const peers = python ? runPeers(python.py, c, batch, makeTheta(c.dim)) : [];
    for (const v of variants) {
      const mine = peers.filter((p) => p.variant === v.name);
      const reference = mine.find((p) => p.impl === 'numpy' && p.theta)?.theta ?? mine.find((p) => p.theta)?.theta;
      const fastest = Math.max(...mine.map((p) => p.tasksPerS ?? 0));
      for (const p of mine) {
        const diff = p.theta && reference ? maxAbsDiff(p.theta, reference) : NaN;
        const label = PEER_IMPLS.find(([i]) => i === p.impl)![1] + (p.device && p.device !== 'cpu' ? ` (${p.device})` : '');
        if (p.skipped) console.log(`| ${configName(c)} | ${v.name} | ${label} | skipped: ${p.skipped} | | | | | |`);
        else console.log(`| ${configName(c)} | ${v.name} | ${label} | ${fmt(p.tasksPerS)} | | | | ${fmt(p.tasksPerS! / fastest, 2)}× | ${p.impl === 'numpy' ? 'reference' : diff.toExponential(1)} |`);
        rows.push({ config: c, algorithm: v.name, impl: p.impl, device: p.device, version: p.version, tasksPerS: p.tasksPerS ?? null, medianS: p.medianS, minS: p.minS, maxS: p.maxS, skipped: p.skipped, maxAbsDiffVsNumpy: Number.isFinite(diff) ? diff : null });
      }
      const options = { dim: c.dim, innerLr: INNER_LR, outerLr: OUTER_LR, innerSteps: c.innerSteps, ...v.options } as LearnerOptions;
      if (v.options.algorithm === 'amp') { delete options.innerLr; delete options.outerLr; delete options.innerSteps; options.models = c.tasks; }
      for (const backend of backends) {
        let learner: Learner | null = null;
        try {
          learner = await createLearner({ ...options, backend });
          if (v.peer) learner.setParams(makeTheta(c.dim));
          await learner.step(batch);
          const diff = reference && v.peer ? maxAbsDiff(await learner.getParams(), reference) : NaN;
          const single = await timeIt(async () => { await learner!.step(batch); await learner!.sync(); });
          const resident = await timeIt(async () => { await learner!.step(batch, { iterations: ITERATIONS_PER_SUBMIT }); await learner!.sync(); return (await learner!.gpuTime()) ?? undefined; });
          const stepRate = c.tasks / single.median;
          const residentRate = (c.tasks * ITERATIONS_PER_SUBMIT) / resident.median;
          const gpuRate = resident.gpuMedianMs ? (c.tasks * ITERATIONS_PER_SUBMIT) / (resident.gpuMedianMs / 1000) : null;
          const gbs = (minimalBytes(c) * ITERATIONS_PER_SUBMIT) / (resident.gpuMedianMs ? resident.gpuMedianMs / 1000 : resident.median) / 1e9;
          const roofline = gbs / bandwidth[backend];
          console.log(`| ${configName(c)} | ${v.name} | metagrad ${backend} | ${fmt(stepRate)} | ${fmt(residentRate)} | ${fmt(gpuRate)} | ${fmt(gbs, 2)} (${fmt(100 * roofline, 1)}%) | ${fastest > 0 ? fmt(residentRate / fastest, 2) + '×' : '—'} | ${Number.isFinite(diff) ? diff.toExponential(1) : '—'} |`);
          rows.push({ config: c, algorithm: v.name, impl: `metagrad-${backend}`, adapter: learner.backend.adapter, stepTasksPerS: stepRate, residentTasksPerS: residentRate, gpuTimeTasksPerS: gpuRate, step: single, resident, achievedGBs: gbs, rooflineFraction: roofline, vsBestPeer: fastest > 0 ? residentRate / fastest : null, maxAbsDiffVsNumpy: Number.isFinite(diff) ? diff : null });
        } catch (e) {
          if (!(e instanceof MetagradError)) throw e;
          const reason = e.message.split('\n')[0];
          console.log(`| ${configName(c)} | ${v.name} | metagrad ${backend} | skipped: ${e.name}: ${reason} | | | | | |`);
          rows.push({ config: c, algorithm: v.name, impl: `metagrad-${backend}`, skipped: `${e.name}: ${reason}` });
        } finally {
          learner?.destroy();
        }
      }
    }
  }
  const dir = path.join('bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${os.hostname().replace(/[^\w.-]/g, '_')}-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.json`);
  writeFileSync(file, JSON.stringify({
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, platform: `${os.platform()} ${os.release()}` },
    versions: { node: process.version, metagrad: JSON.parse(readFileSync('package.json', 'utf8')).version },
    adapter, hasTimestamps, copyBandwidthGBs: bandwidth, seconds: SECONDS, iterationsPerSubmit: ITERATIONS_PER_SUBMIT,
    innerLr: INNER_LR, outerLr: OUTER_LR, adml: ADML, configs: CONFIGS, rows,
  }, null, 2));
  console.log(`\nwrote ${file}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
