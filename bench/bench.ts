// npm run bench: how fast is metagrad, against what. For every configuration × algorithm × backend it
// verifies first (θ after one step against the peers' θ), then times:
//   step(batch)  one learner.step(batch) call, waited for: validation + upload + one meta-iteration;
//   resident     step(batch, { iterations: 10 }) per iteration: one upload and one submit for ten;
//   GPU time     the resident submit's compute pass from timestamp queries, when the adapter has them.
// Figures are medians over repeats after a warm-up, with min and max in the JSON. Peers run in the same
// process tree and verify first too (bench/peers/peers.py): numpy vectorised over tasks, PyTorch
// batched (bmm + autograd), and the per-task PyTorch loop of learn2learn-style code; each is skipped with
// a printed reason when python3 / numpy / torch are missing.
// MLP rows (configs named "mlp …"): MAML on the MLP with an N-way softmax head at Omniglot shapes; their
// reference is metagrad's CPU backend (θ after one step), against which the WebGPU backend and the two
// PyTorch peers (bench/peers/mlp_peers.py: batched over tasks, per-task loop) verify before being timed.
// Layer-list rows (bench/nets.ts): "conv4 …" (MAML on MAML's Omniglot Conv-4) and "sinusoid …" (MAML on
// the 1-40-40-1 sinusoid regressor), against the PyTorch peers of bench/peers/net_peers.py (batched over
// tasks: grouped convolutions, batched matmuls; and the per-task loop).
// Env: BENCH_SECONDS (time per measurement, default 1), BENCH_ONLY (substring of "config algorithm",
// e.g. "mlp"), BENCH_BACKENDS (e.g. "cpu"), BENCH_PEERS=0 (no peers), BENCH_ROW_CAP (MLP rows: seconds a
// measurement may take, default 30), BENCH_TORCH_DEVICE (MLP peers: cpu (default), cuda or auto).
// Writes bench/results/<host>-<time>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLearner, getSharedDevice, type Learner } from '../src/learner.js';
import { MetagradError } from '../src/errors.js';
import { uniform01 } from '../src/rng.js';
import { pickOptions } from '../src/algorithms/index.js';
import { mlpInit, mlpLayout, type MlpLayout } from '../src/models/mlp.js';
import type { BackendChoice, Batch, LearnerOptions } from '../src/types.js';
import { netRows } from './nets.js';
import { SECONDS, findPython, fmt, fmtRate, median, relChangeError, timeIt, writeFloats, type Timing } from './common.js';

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
const ITERATIONS_PER_SUBMIT = 10;

/** An algorithm row; `peer` names the peers' algorithm when they implement it. */
interface Variant { name: string; options: Partial<LearnerOptions>; peer: { algorithm: 'maml' | 'adml' | 'meta-sgd' | 'reptile'; order: 1 | 2 } | null }
const VARIANTS: Variant[] = [
  { name: 'maml o1', options: { algorithm: 'maml', order: 1 }, peer: { algorithm: 'maml', order: 1 } },
  { name: 'maml o2', options: { algorithm: 'maml', order: 2 }, peer: { algorithm: 'maml', order: 2 } },
  { name: 'adml o1', options: { algorithm: 'adml', order: 1, ...ADML }, peer: { algorithm: 'adml', order: 1 } },
  { name: 'ga-maml o1', options: { algorithm: 'ga-maml', order: 1 }, peer: null },
  { name: 'caml o2 C=4', options: { algorithm: 'caml', order: 2, contextDim: 4 }, peer: null },
  { name: 'amp', options: { algorithm: 'amp', lr: 0.1, epsilon: 0.5, perturbSteps: 1 }, peer: null },
  // Meta-SGD's θ after one step is compared as [θ | α]; its and Reptile's peers are numpy and torch batched.
  { name: 'meta-sgd o1', options: { algorithm: 'meta-sgd', order: 1 }, peer: { algorithm: 'meta-sgd', order: 1 } },
  { name: 'reptile n=5', options: { algorithm: 'reptile', innerSteps: 5 }, peer: { algorithm: 'reptile', order: 1 } },
];
const PEER_IMPLS = [['numpy', 'numpy'], ['torch', 'torch batched'], ['loop', 'torch per-task loop']] as const;

const configName = (c: Config) => `T=${c.tasks} Ks=${c.supportShots} Kq=${c.queryShots} D=${c.dim} n=${c.innerSteps}`;

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




interface PeerResult { name: string; impl: string; variant: string; tasksPerS?: number; medianS?: number; minS?: number; maxS?: number; device?: string; version?: string; theta?: Float32Array; skipped?: string }

/** A row's own inner steps and rates where they differ from the configuration's (Reptile's n, β). */
function peerShape(v: Variant, c: Config): { innerSteps: number } | Record<string, never> {
  return v.options.innerSteps !== undefined && v.options.innerSteps !== c.innerSteps ? { innerSteps: v.options.innerSteps } : {};
}

/** Runs every peer job of one configuration in one python process (the batch is written once). */
function runPeers(py: string, c: Config, batch: Batch, theta0: Float32Array): PeerResult[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'metagrad-bench-'));
  const batchFile = path.join(dir, 'batch.bin');
  const fd = openSync(batchFile, 'w');
  for (const p of [theta0, batch.supportX, batch.supportY, batch.queryX, batch.queryY]) writeSync(fd, new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  closeSync(fd);
  const jobs = VARIANTS.filter((v) => v.peer && (!process.env.BENCH_ONLY || `${configName(c)} ${v.name}`.includes(process.env.BENCH_ONLY)))
    .flatMap((v) => PEER_IMPLS.filter(([impl]) => impl !== 'loop' || v.peer!.algorithm === 'maml' || v.peer!.algorithm === 'adml')
      .map(([impl]) => ({ name: `${v.name.replace(/\W+/g, '_')}__${impl}`, variant: v.name, impl, ...v.peer!, ...peerShape(v, c) })));
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

/** Rates: whole numbers, two significant digits below 10. */
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

// ---------------------------------------------------------------- MLP rows

interface MlpConfig extends Config { hidden: number[]; classes: number }
/** Omniglot shapes: 5-way 1-shot (5 support + 5 query rows per task), 28×28 inputs, MAML's FC body. */
const MLP_CONFIGS: MlpConfig[] = [32, 1024].map((tasks) => ({ tasks, supportShots: 5, queryShots: 5, dim: 784, innerSteps: 1, hidden: [256, 128, 64, 64], classes: 5 }));
/** α and β of the MLP rows: large enough that θ's change after one step (max ≈ 4e-3 here) stands far above
 * the float32 rounding of θ (≈ 1e-8, the verification's resolution), small enough that the timing's
 * repeated steps on one batch stay finite. */
const MLP_INNER_LR = 0.05;
const MLP_OUTER_LR = 0.05;
/** Verification of every MLP row against metagrad's CPU backend (float64 inside, θ rounded to float32):
 * max|Δθ − Δθ_ref| ≤ MLP_TOLERANCE · max|Δθ_ref|, Δθ = θ after one step − θ0. Float32 rounding alone
 * gives ~5e-6 here, but a ReLU pre-activation within float32 rounding of 0 (|z| ~ 1e-7 happens among the
 * ~2.6M of T=1024) can take the other side of the kink in float32 and move its row's gradient
 * discontinuously: with this data, every float32 implementation (torch batched, loop, WebGPU) lands
 * 2.2e-4 (order 1) and 1.0e-4 (order 2) from the reference at T=1024, where torch in float64 lands 3e-6.
 * Wrong mathematics (order 1 for order 2) is ~0.6 off. */
const MLP_TOLERANCE = 1e-3;
const MLP_INIT_SEED = 5;
const MLP_DATA_SEED = 42;
/** Seconds a measurement of an MLP row may take (T=1024 order 2 on llvmpipe is slow). */
const ROW_CAP = Number(process.env.BENCH_ROW_CAP ?? 30);
/** A metagrad MLP row is skipped when its step, predicted from the same row at a smaller T (seconds per
 * task × T), would take over ROW_SKIP_FACTOR × ROW_CAP (the verifying step and one timed step are run). */
const ROW_SKIP_FACTOR = 5;
const TORCH_DEVICE = process.env.BENCH_TORCH_DEVICE ?? 'cpu';
/** MAML's orders, and the other meta-learners with a batched PyTorch peer of the same algorithm (Meta-SGD's
 * rows verify [θ | α] after one step; ANIL's body features are one shared pass in both). */
const MLP_VARIANTS = [
  { name: 'maml o1', algorithm: 'maml', order: 1 },
  { name: 'maml o2', algorithm: 'maml', order: 2 },
  { name: 'meta-sgd o1', algorithm: 'meta-sgd', order: 1 },
  { name: 'anil o1', algorithm: 'anil', order: 1 },
  { name: 'anil o2', algorithm: 'anil', order: 2 },
  { name: 'reptile', algorithm: 'reptile', order: 1 },
] as const;
type MlpVariant = (typeof MLP_VARIANTS)[number];
const MLP_PEER_IMPLS = [['torch', 'torch batched'], ['loop', 'torch loop']] as const;

const mlpConfigName = (c: MlpConfig) => `mlp T=${c.tasks} Ks=${c.supportShots} Kq=${c.queryShots} D=${c.dim} n=${c.innerSteps} h=${c.hidden.join(',')} N=${c.classes}`;

/** Synthetic Omniglot-like N-way tasks from the seed: per task and class a sparse binary prototype (20%
 * ink); a row is prototype · (0.75 + 0.25u) + 0.1u' (values in [0, 1]); support row k has class
 * (k + t) mod N, query row k class (2k + t) mod N (each class once per set when shots = N). */
type MlpBatch = Batch & { supportY: Float32Array; queryY: Float32Array };
function makeMlpBatch(c: MlpConfig, seed: number): MlpBatch {
  const { tasks: T, dim: D, classes: N } = c;
  const rows = (shots: number, stream: number, label: (k: number, t: number) => number): [Float32Array, Float32Array] => {
    const x = new Float32Array(T * shots * D);
    const y = new Float32Array(T * shots);
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < shots; k++) {
        const r = t * shots + k;
        y[r] = label(k, t);
        const proto = (t * N + y[r]) * D;
        for (let d = 0; d < D; d++) {
          const ink = uniform01(seed, 11, proto + d) < 0.2 ? 1 : 0;
          x[r * D + d] = ink * (0.75 + 0.25 * uniform01(seed, stream, r * D + d)) + 0.1 * uniform01(seed, stream + 1, r * D + d);
        }
      }
    }
    return [x, y];
  };
  const [supportX, supportY] = rows(c.supportShots, 12, (k, t) => (k + t) % N);
  const [queryX, queryY] = rows(c.queryShots, 14, (k, t) => (2 * k + t) % N);
  return { tasks: T, supportShots: c.supportShots, queryShots: c.queryShots, supportX, supportY, queryX, queryY };
}

/** Nominal FLOPs of one task's meta-iteration (2 per multiply-add, weight matmuls only, M = Σ h_{l−1}·h_l):
 * forward 2M + backward 4M per support row and inner step and per query row; order 2 adds the
 * Hessian-vector product's R-forward (4M) and R-backward (8M) per support row and step. */
function mlpFlopsPerTask(layout: MlpLayout, c: MlpConfig, order: 1 | 2): number {
  const m = layout.layers.reduce((a, l) => a + l.inputs * l.outputs, 0);
  return 2 * m * (3 * c.supportShots * c.innerSteps + 3 * c.queryShots + (order === 2 ? 6 * c.supportShots * c.innerSteps : 0));
}


interface MlpPeerResult extends PeerResult { repeats?: number; capped?: boolean; threads?: number; firstS?: number; failed?: string; verify?: { relErr: number; maxAbsDiff: number; ok: boolean; against: string } }

/** The MLP peers of one configuration in one python process; each verifies against refs (metagrad CPU's
 * θ after one step, per variant) before it is timed. */
function runMlpPeers(py: string, c: MlpConfig, variants: readonly MlpVariant[], batch: MlpBatch, theta0: Float32Array, refs: Map<string, Float32Array>): MlpPeerResult[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'metagrad-bench-mlp-'));
  const batchFile = path.join(dir, 'batch.bin');
  const write = writeFloats;
  write(batchFile, [theta0, batch.supportX, batch.supportY, batch.queryX, batch.queryY]);
  const jobs = variants.flatMap((v) => {
    const key = v.name.replace(/\W+/g, '_');
    const ref = refs.get(v.name);
    if (ref) write(path.join(dir, `expected_${key}.bin`), [ref]);
    // The per-task loop peer is MAML's (learn2learn's way); the other algorithms have the batched one.
    return MLP_PEER_IMPLS.filter(([impl]) => v.algorithm === 'maml' || impl === 'torch')
      .map(([impl]) => ({ name: `${key}__${impl}`, variant: v.name, impl, algorithm: v.algorithm, order: v.order, expected: ref ? `expected_${key}.bin` : null }));
  });
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({
    ...c, innerLr: MLP_INNER_LR, outerLr: MLP_OUTER_LR, seconds: SECONDS, capSeconds: ROW_CAP, tolerance: MLP_TOLERANCE, jobs,
  }));
  const r = spawnSync(py, [path.join('bench', 'peers', 'mlp_peers.py'), batchFile, path.join(dir, 'meta.json'), dir, '--device', TORCH_DEVICE],
    { encoding: 'utf8', maxBuffer: 1 << 26, timeout: jobs.length * (2 * ROW_CAP + 600) * 1000 });
  const results: MlpPeerResult[] = [];
  for (const line of (r.stdout ?? '').split('\n').filter((l) => l.startsWith('{'))) {
    const j = JSON.parse(line);
    const job = jobs.find((x) => x.name === j.name)!;
    const res: MlpPeerResult = { name: j.name, impl: job.impl, variant: job.variant, device: j.device, version: j.version, threads: j.threads };
    if (j.skipped) res.skipped = j.skipped;
    if (j.failed) res.failed = j.failed;
    if (j.verify) res.verify = { relErr: j.verify.rel_err, maxAbsDiff: j.verify.max_abs_diff, ok: j.verify.ok, against: 'metagrad cpu' };
    if (j.tasks_per_s) Object.assign(res, { tasksPerS: j.tasks_per_s, medianS: j.median_s, minS: j.min_s, maxS: j.max_s, repeats: j.repeats, capped: j.capped, firstS: j.first_s });
    if (!j.skipped) {
      try {
        const bytes = readFileSync(path.join(dir, `${j.name}.bin`));
        res.theta = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      } catch { /* no θ written */ }
    }
    results.push(res);
  }
  if (r.status !== 0) console.log(`mlp peers failed for ${mlpConfigName(c)} (${r.error ? r.error.message : `exit ${r.status}`}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  rmSync(dir, { recursive: true, force: true });
  return results;
}

/** One metagrad MLP row after its first step (the caller's, which verified and warmed up): step(batch)
 * timing (≥ 1 repeat), then resident timing unless a warm-up and one submit would pass the cap. */
async function timeMlpLearner(learner: Learner, batch: Batch): Promise<{ single: Timing; resident: Timing | null }> {
  const single = await timeIt(async () => { await learner.step(batch); await learner.sync(); }, ROW_CAP, false);
  let resident: Timing | null = null;
  if (2 * ITERATIONS_PER_SUBMIT * single.median <= ROW_CAP) {
    resident = await timeIt(async () => { await learner.step(batch, { iterations: ITERATIONS_PER_SUBMIT }); await learner.sync(); return (await learner.gpuTime()) ?? undefined; }, ROW_CAP);
  }
  return { single, resident };
}

/** The MLP rows. Per configuration and variant: metagrad cpu's first step from θ0 is the reference (that
 * learner is then timed as the cpu row when the cpu backend is benchmarked); the peers verify against it,
 * then are timed; then every other backend verifies, then is timed. Returns the number of failed rows. */
async function mlpRows(backends: BackendChoice[], python: { py: string; torch: boolean } | null, rows: Record<string, unknown>[]): Promise<number> {
  const only = process.env.BENCH_ONLY;
  const todo = MLP_CONFIGS.map((c) => ({ c, variants: MLP_VARIANTS.filter((v) => !only || `${mlpConfigName(c)} ${v.name}`.includes(only)) })).filter((x) => x.variants.length);
  if (!todo.length) return 0;
  let failures = 0;
  console.log(`\nMLP rows: MAML, Meta-SGD, ANIL and Reptile on an MLP with a softmax head, α = ${MLP_INNER_LR}, β = ${MLP_OUTER_LR} (SGD), θ0 He-normal (seed ${MLP_INIT_SEED}), ` +
    `synthetic ${todo[0].c.classes}-way tasks (seed ${MLP_DATA_SEED}). Reference: metagrad cpu's θ after one step from θ0; every other row verifies against it ` +
    `before it is timed: rel err = max|Δθ − Δθ_cpu| / max|Δθ_cpu| ≤ ${MLP_TOLERANCE} (Δθ = θ1 − θ0). Per-measurement cap BENCH_ROW_CAP = ${ROW_CAP} s: ` +
    `* = fewer than 3 repeats (always ≥ 1 after the verifying step, which is the warm-up); resident "capped" = warm-up + one ` +
    `${ITERATIONS_PER_SUBMIT}-iteration submit would pass the cap; a metagrad row whose step, predicted from the same row at a smaller T, ` +
    `would take over ${ROW_SKIP_FACTOR} × the cap is skipped. ` +
    `GFLOP/s = nominal FLOPs of MAML at the same shape and order (weight matmuls: 6M per row fwd+bwd, +12M per support row for order 2) × the row's rate (resident when measured; ANIL does less work than that). ` +
    `vs best peer = that rate ÷ the fastest verified peer.`);
  console.log('| config | algorithm | impl | step(batch) tasks/s | resident tasks/s | GPU-time tasks/s | GFLOP/s (nominal) | vs best peer | rel err of Δθ vs cpu |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const star = (t: Timing | null | undefined) => (t?.capped ? '*' : '');
  let reported = false;
  /** Seconds per task of each metagrad row ("backend variant") at the last T measured: predicts the next. */
  const secondsPerTask = new Map<string, number>();
  for (const { c, variants } of todo) {
    const name = mlpConfigName(c);
    const layout = mlpLayout(c.dim, c.hidden, c.classes);
    const theta0 = mlpInit(layout, MLP_INIT_SEED).slice(0, layout.params);
    const batch = makeMlpBatch(c, MLP_DATA_SEED);
    const options = (v: MlpVariant, backend: BackendChoice): LearnerOptions => pickOptions(v.algorithm, {
      backend, dim: c.dim, model: { kind: 'mlp', hidden: c.hidden, classes: c.classes },
      innerLr: MLP_INNER_LR, outerLr: MLP_OUTER_LR, innerSteps: c.innerSteps, order: v.order,
    });
    // What one step changes: θ, and Meta-SGD's α after it (α starts at innerLr everywhere).
    const startOf = (v: MlpVariant) => (v.algorithm === 'meta-sgd' ? Float32Array.from([...theta0, ...new Float32Array(theta0.length).fill(MLP_INNER_LR)]) : theta0);
    const stateOf = async (learner: Learner, v: MlpVariant) => (v.algorithm === 'meta-sgd' ? Float32Array.from([...(await learner.getParams()), ...(await learner.getStepSizes())]) : learner.getParams());
    /** A metagrad row's table line and JSON, once the fastest peer is known. */
    const report = (v: MlpVariant, backend: BackendChoice, row: Record<string, unknown>, t: { single: Timing; resident: Timing | null }, verified: string, fastest: number) => {
      secondsPerTask.set(`${backend} ${v.name}`, t.single.median / c.tasks);
      const stepRate = c.tasks / t.single.median;
      const residentRate = t.resident ? (c.tasks * ITERATIONS_PER_SUBMIT) / t.resident.median : null;
      const gpuRate = t.resident?.gpuMedianMs ? (c.tasks * ITERATIONS_PER_SUBMIT) / (t.resident.gpuMedianMs / 1000) : null;
      const headline = residentRate ?? stepRate;
      const gflops = (mlpFlopsPerTask(layout, c, v.order) * (gpuRate ?? headline)) / 1e9;
      console.log(`| ${name} | ${v.name} | metagrad ${backend} | ${fmtRate(stepRate)}${star(t.single)} | ${t.resident ? fmtRate(residentRate!) + star(t.resident) : 'capped'} | ${gpuRate ? fmtRate(gpuRate) : '—'} | ${fmt(gflops, 1)} | ${fastest > 0 ? fmt(headline / fastest, 2) + '×' : '—'} | ${verified} |`);
      Object.assign(row, { stepTasksPerS: stepRate, residentTasksPerS: residentRate, gpuTimeTasksPerS: gpuRate, step: t.single, resident: t.resident, nominalGflops: gflops, vsBestPeer: fastest > 0 ? headline / fastest : null });
    };
    /** A metagrad error: MetagradError = not supported (skipped), anything else a failure. */
    const caught = (e: unknown, v: MlpVariant, backend: BackendChoice, row: Record<string, unknown>) => {
      const err = e as Error;
      const reason = `${err.name}: ${err.message.split('\n')[0]}`;
      if (e instanceof MetagradError) {
        console.log(`| ${name} | ${v.name} | metagrad ${backend} | skipped: ${reason} | | | | | |`);
        row.skipped = reason;
      } else {
        failures++;
        console.log(`| ${name} | ${v.name} | metagrad ${backend} | ERROR: ${reason} | | | | | |`);
        row.error = reason;
      }
    };
    // 1. The reference, metagrad cpu's first step from θ0; that learner is the cpu row's, timed now and
    //    reported after the peers.
    const refs = new Map<string, Float32Array>();
    const cpuRows = new Map<string, { row: Record<string, unknown>; t?: { single: Timing; resident: Timing | null }; error?: unknown }>();
    for (const v of variants) {
      const row: Record<string, unknown> = { model: 'mlp', config: c, algorithm: v.name, impl: 'metagrad-cpu', verify: 'reference' };
      let learner: Learner | null = null;
      try {
        learner = await createLearner(options(v, 'cpu'));
        row.adapter = learner.backend.adapter;
        learner.setParams(theta0);
        const t0 = performance.now();
        await learner.step(batch);
        refs.set(v.name, await stateOf(learner, v));
        row.firstStepS = (performance.now() - t0) / 1000;
        if (backends.includes('cpu')) cpuRows.set(v.name, { row, t: await timeMlpLearner(learner, batch) });
      } catch (e) {
        cpuRows.set(v.name, { row, error: e });
      } finally {
        learner?.destroy();
      }
    }
    // 2. The peers (verify, then time).
    const peers = python ? runMlpPeers(python.py, c, variants, batch, theta0, refs) : [];
    if (!reported && peers.some((p) => p.version)) {
      const p = peers.find((x) => x.version)!;
      console.log(`(mlp peers: ${python!.py}, ${p.version} on ${p.device}; --device ${TORCH_DEVICE})`);
      reported = true;
    }
    for (const v of variants) {
      const ref = refs.get(v.name);
      const flops = mlpFlopsPerTask(layout, c, v.order);
      const mine = peers.filter((p) => p.variant === v.name);
      const batched = mine.find((p) => p.impl === 'torch')?.theta;
      const cpuError = cpuRows.get(v.name)?.error as Error | undefined;
      if (!ref && !backends.includes('cpu')) console.log(`| ${name} | ${v.name} | metagrad cpu (reference) | failed: ${cpuError?.name}: ${cpuError?.message.split('\n')[0]} | | | | | |`);
      // Without a metagrad reference the peers are compared with each other (batched as reference).
      for (const p of mine) {
        if (!ref && p.theta && batched && p.impl !== 'torch') {
          const e = relChangeError(startOf(v), p.theta, batched);
          p.verify = { ...e, ok: e.relErr <= MLP_TOLERANCE, against: 'torch batched' };
        }
      }
      const fastest = Math.max(0, ...mine.filter((p) => !p.failed && p.verify?.ok !== false).map((p) => p.tasksPerS ?? 0));
      for (const p of mine) {
        const label = MLP_PEER_IMPLS.find(([i]) => i === p.impl)![1] + (p.device && !p.device.startsWith('cpu') ? ` (${p.device})` : '');
        const verified = p.verify ? `${p.verify.relErr.toExponential(1)}${p.verify.against === 'metagrad cpu' ? '' : ` (vs ${p.verify.against})`}` : 'unverified';
        if (p.skipped) console.log(`| ${name} | ${v.name} | ${label} | skipped: ${p.skipped} | | | | | |`);
        else if (p.failed || p.verify?.ok === false) {
          failures++;
          console.log(`| ${name} | ${v.name} | ${label} | VERIFY FAILED, not timed${p.failed ? `: ${p.failed}` : ''} | | | | | ${verified} |`);
        } else if (p.tasksPerS) {
          console.log(`| ${name} | ${v.name} | ${label} | ${fmtRate(p.tasksPerS)}${p.capped ? '*' : ''} | | | ${fmt((flops * p.tasksPerS) / 1e9, 1)} | ${fmt(p.tasksPerS / fastest, 2)}× | ${verified} |`);
        }
        const vsBatched = p.theta && batched && p.impl !== 'torch' ? relChangeError(startOf(v), p.theta, batched).relErr : null;
        rows.push({ model: 'mlp', config: c, algorithm: v.name, impl: p.impl, device: p.device, version: p.version, threads: p.threads, tasksPerS: p.tasksPerS ?? null, medianS: p.medianS, minS: p.minS, maxS: p.maxS, repeats: p.repeats, capped: p.capped, firstStepS: p.firstS, skipped: p.skipped, failed: p.failed, verify: p.verify ?? null, relErrVsTorchBatched: vsBatched, nominalGflops: p.tasksPerS ? (flops * p.tasksPerS) / 1e9 : null });
      }
      // 3. metagrad: the other backends verify, then are timed; the cpu row was timed in step 1.
      for (const backend of backends) {
        if (backend === 'cpu') {
          const cpu = cpuRows.get(v.name);
          if (!cpu) continue;
          if (cpu.error !== undefined) caught(cpu.error, v, backend, cpu.row);
          else report(v, backend, cpu.row, cpu.t!, 'reference', fastest);
          if (batched && ref) cpu.row.relErrVsTorchBatched = relChangeError(startOf(v), ref, batched).relErr;
          rows.push(cpu.row);
          continue;
        }
        let learner: Learner | null = null;
        const row: Record<string, unknown> = { model: 'mlp', config: c, algorithm: v.name, impl: `metagrad-${backend}` };
        const predicted = (secondsPerTask.get(`${backend} ${v.name}`) ?? 0) * c.tasks;
        if (predicted > ROW_SKIP_FACTOR * ROW_CAP) {
          row.skipped = `one step predicted to take ${fmt(predicted)} s (from a smaller T) > ${ROW_SKIP_FACTOR} × BENCH_ROW_CAP = ${ROW_SKIP_FACTOR * ROW_CAP} s`;
          console.log(`| ${name} | ${v.name} | metagrad ${backend} | skipped: ${row.skipped} | | | | | |`);
          rows.push(row);
          continue;
        }
        try {
          learner = await createLearner(options(v, backend));
          row.adapter = learner.backend.adapter;
          learner.setParams(theta0);
          const t0 = performance.now();
          await learner.step(batch);
          const theta1 = await stateOf(learner, v);
          row.firstStepS = (performance.now() - t0) / 1000;
          const e = ref ? relChangeError(startOf(v), theta1, ref) : null;
          if (batched) row.relErrVsTorchBatched = relChangeError(startOf(v), theta1, batched).relErr;
          row.verify = e ? { ...e, ok: e.relErr <= MLP_TOLERANCE, against: 'metagrad cpu' } : null;
          const verified = e ? e.relErr.toExponential(1) : 'unverified (no cpu reference)';
          if (e && e.relErr > MLP_TOLERANCE) {
            failures++;
            console.log(`| ${name} | ${v.name} | metagrad ${backend} | VERIFY FAILED, not timed | | | | | ${verified} |`);
            row.failed = `rel err ${e.relErr} > ${MLP_TOLERANCE}`;
          } else {
            report(v, backend, row, await timeMlpLearner(learner, batch), verified, fastest);
          }
        } catch (e) {
          caught(e, v, backend, row);
        } finally {
          learner?.destroy();
        }
        rows.push(row);
      }
    }
  }
  return failures;
}

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
  const rows: Record<string, unknown>[] = [];
  const only = process.env.BENCH_ONLY;
  if (CONFIGS.some((c) => VARIANTS.some((v) => !only || `${configName(c)} ${v.name}`.includes(only)))) {
    console.log('| config | algorithm | impl | step(batch) tasks/s | resident tasks/s | GPU-time tasks/s | GB/s (% of copy bw) | vs best peer | max abs Δθ |');
    console.log('|---|---|---|---|---|---|---|---|---|');
  }
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
          // Meta-SGD: [θ | α] after the step, as its peers write it.
          const after = v.options.algorithm === 'meta-sgd' ? Float32Array.from([...(await learner.getParams()), ...(await learner.getStepSizes())]) : await learner.getParams();
          const diff = reference && v.peer ? maxAbsDiff(after, reference) : NaN;
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
  const failures = (await mlpRows(backends, python, rows)) + (backends.includes('cpu') ? await netRows(backends, python, rows) : 0);
  const dir = path.join('bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${os.hostname().replace(/[^\w.-]/g, '_')}-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.json`);
  writeFileSync(file, JSON.stringify({
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, platform: `${os.platform()} ${os.release()}` },
    versions: { node: process.version, metagrad: JSON.parse(readFileSync('package.json', 'utf8')).version },
    adapter, hasTimestamps, copyBandwidthGBs: bandwidth, seconds: SECONDS, iterationsPerSubmit: ITERATIONS_PER_SUBMIT,
    innerLr: INNER_LR, outerLr: OUTER_LR, adml: ADML, configs: CONFIGS,
    mlp: { configs: MLP_CONFIGS, innerLr: MLP_INNER_LR, outerLr: MLP_OUTER_LR, tolerance: MLP_TOLERANCE, rowCapS: ROW_CAP, torchDevice: TORCH_DEVICE, initSeed: MLP_INIT_SEED, dataSeed: MLP_DATA_SEED },
    rows,
  }, null, 2));
  console.log(`\nwrote ${file}`);
  if (failures) console.log(`${failures} MLP, Conv-4 or sinusoid row(s) failed verification or raised an unexpected error (see above)`);
  return failures;
}

main().then((failures) => process.exit(failures ? 1 : 0), (e) => { console.error(e); process.exit(1); });
