// The bench's layer-list rows (issues 20 and 21), two families over one procedure:
//   conv4     MAML on MAML's Omniglot Conv-4 (64 filters, 28 × 28 × 1, 5-way 1-shot, 5 queries per class,
//             α = 0.4, one inner step), T = 16 and 128, orders 1 and 2: tasks per second;
//   sinusoid  MAML on MAML's sinusoid regressor (1-40-40-1, K = 10 support and 10 query points, α = 0.01,
//             one inner step), T = 25, orders 1 and 2: tasks and iterations per second;
//   protonet  prototypical networks on an MLP body and Conv-4's body, 5-way and 20-way 1-shot, T = 16 and
//             128 (MLP): tasks per second.
// Reference: metagrad cpu's θ after one SGD step from θ0; the PyTorch peers (bench/peers/net_peers.py:
// batched over tasks — grouped convolutions, or batched matmuls — and the per-task loop of
// learn2learn's examples) verify against it before they are timed (rel err of Δθ ≤ the family's
// tolerance); the webgpu rows (when benchmarked) verify against the same reference, then time resident
// submits of 10 iterations.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createLearner, type Learner } from '../src/learner.js';
import { modelInit, netModelLayout } from '../src/models/model.js';
import type { ModelSpec } from '../src/models/mlp.js';
import { uniform01 } from '../src/rng.js';
import { sampleTasks } from '../src/cpu/sample-tasks.js';
import type { BackendChoice, Batch } from '../src/types.js';
import { SECONDS, fmt, fmtRate, relChangeError, timeIt, writeFloats, type Timing } from './common.js';

const CAP = Number(process.env.BENCH_ROW_CAP ?? 30);
const TORCH_DEVICE = process.env.BENCH_TORCH_DEVICE ?? 'cpu';
const RESIDENT = 10;

/** What a family of rows is: its configurations, model, data and rates, and how the peers see it. */
interface NetFamily<C extends { tasks: number }> {
  /** BENCH_ONLY matches a config's name, or this word for the whole family. */
  key: string;
  title: string;
  configs: C[];
  name(c: C): string;
  dim: number;
  model(c: C): ModelSpec;
  /** The model as net_peers.py's META.json describes it. */
  peerModel(c: C): Record<string, unknown>;
  batch(c: C): Batch;
  innerLr: number;
  outerLr: number;
  tolerance: number;
  /** The peers' batched implementation, in words. */
  batched: string;
  /** Also report meta-iterations per second (tasks/s ÷ T). */
  perIteration: boolean;
  /** MAML at orders 1 and 2, or a protonet (no inner loop: one row per impl, order shown as —). */
  algorithm: 'maml' | 'protonet';
}

const ordersOf = (f: { algorithm: 'maml' | 'protonet' }): number[] => (f.algorithm === 'maml' ? [1, 2] : [0]);
const orderLabel = (order: number) => (order === 0 ? '—' : String(order));

// ---- conv4 -----------------------------------------------------------------------------------------

const CONV_IMAGE = { h: 28, w: 28, c: 1 };
type ConvConfig = { tasks: number; ways: number; shots: number; queries: number; filters: number };

/** Omniglot-like images from the seed: per task and class a random stroke image (20% ink), each row
 * that image with per-pixel jitter; support row k has class k mod N, query row k class k mod N. */
function convBatch(c: ConvConfig, seed: number): Batch {
  const N = c.ways;
  const D = 784;
  const rows = (perClass: number, stream: number): [Float32Array, Float32Array] => {
    const R = N * perClass;
    const x = new Float32Array(c.tasks * R * D);
    const y = new Float32Array(c.tasks * R);
    for (let t = 0; t < c.tasks; t++) {
      for (let k = 0; k < R; k++) {
        const r = t * R + k;
        y[r] = k % N;
        for (let d = 0; d < D; d++) {
          const ink = uniform01(seed, 21, (t * N + y[r]) * D + d) < 0.2 ? 1 : 0;
          x[r * D + d] = ink * (0.75 + 0.25 * uniform01(seed, stream, r * D + d));
        }
      }
    }
    return [x, y];
  };
  const [supportX, supportY] = rows(c.shots, 22);
  const [queryX, queryY] = rows(c.queries, 23);
  return { tasks: c.tasks, supportShots: N * c.shots, queryShots: N * c.queries, supportX, supportY, queryX, queryY };
}

const CONV4: NetFamily<ConvConfig> = {
  key: 'conv',
  title: "Conv-4 rows: MAML on MAML's Omniglot Conv-4 (4 × [conv 3×3 s2 → per-task norm → ReLU], mean, dense), α = 0.4, one inner step, β = 0.01 (SGD), synthetic Omniglot-like images.",
  configs: [
    { tasks: 16, ways: 5, shots: 1, queries: 5, filters: 64 },
    { tasks: 128, ways: 5, shots: 1, queries: 5, filters: 64 },
  ],
  name: (c) => `conv4 T=${c.tasks} ${c.ways}-way ${c.shots}-shot Kq=${c.ways * c.queries} F=${c.filters}`,
  dim: 784,
  model: (c) => ({ kind: 'conv4', classes: c.ways, filters: c.filters }),
  peerModel: (c) => ({ kind: 'conv4', image: [CONV_IMAGE.h, CONV_IMAGE.w, CONV_IMAGE.c], filters: c.filters, classes: c.ways }),
  batch: (c) => convBatch(c, 42),
  innerLr: 0.4,
  // β large enough that Δθ = −β·g stands well above the float32 rounding of θ itself (~1e-8 at |θ| ≈
  // 0.2): at β = 0.001 that rounding alone made ~1e-3 of the rel err (the meta-gradients agree to ~5e-6).
  outerLr: 0.01,
  // Float32 storage of the adapted parameters and a different summation order on each side; wrong math
  // (order 1 for order 2) is far above this.
  tolerance: 1e-3,
  batched: 'torch batched (grouped conv)',
  perIteration: false,
  algorithm: 'maml',
};

// ---- sinusoid --------------------------------------------------------------------------------------

type SinusoidConfig = { tasks: number; shots: number };

const SINUSOID: NetFamily<SinusoidConfig> = {
  key: 'sinusoid',
  title: "Sinusoid rows: MAML on MAML's sinusoid regressor (1-40-40-1, ReLU, MSE), K = 10 support and 10 query points, α = 0.01, one inner step, β = 0.01 (SGD), tasks from metagrad's sinusoid sampler.",
  configs: [{ tasks: 25, shots: 10 }],
  name: (c) => `sinusoid T=${c.tasks} K=${c.shots} 1-40-40-1`,
  dim: 1,
  model: () => ({ kind: 'mlp', hidden: [40, 40], loss: 'mse' }),
  peerModel: () => ({ kind: 'regressor', hidden: [40, 40] }),
  batch: (c) => sampleTasks({ kind: 'sinusoid', shots: c.shots }, { tasks: c.tasks, supportShots: c.shots, queryShots: c.shots }, 42, 0, 'train'),
  innerLr: 0.01,
  outerLr: 0.01,
  tolerance: 1e-3,
  batched: 'torch batched (bmm)',
  perIteration: true,
  algorithm: 'maml',
};

// ---- protonet --------------------------------------------------------------------------------------

type ProtoConfig = ConvConfig & { body: 'mlp' | 'conv4' };
const PROTO_HIDDEN = [256, 128, 64, 64];

const PROTONET: NetFamily<ProtoConfig> = {
  key: 'protonet',
  title: `Protonet rows: prototypical networks on an MLP body (784-${PROTO_HIDDEN.join('-')}, ReLU) and Conv-4's body (64 filters, per-task norm), N-way 1-shot with 5 queries per class, β = 1 (SGD: Δθ = −g), synthetic Omniglot-like images; the peers' batched form runs every episode through the shared body at once.`,
  configs: [
    { tasks: 16, ways: 5, shots: 1, queries: 5, filters: 64, body: 'mlp' },
    { tasks: 128, ways: 5, shots: 1, queries: 5, filters: 64, body: 'mlp' },
    { tasks: 16, ways: 20, shots: 1, queries: 5, filters: 64, body: 'mlp' },
    { tasks: 16, ways: 5, shots: 1, queries: 5, filters: 64, body: 'conv4' },
    { tasks: 128, ways: 5, shots: 1, queries: 5, filters: 64, body: 'conv4' },
    { tasks: 16, ways: 20, shots: 1, queries: 5, filters: 64, body: 'conv4' },
  ],
  name: (c) => `protonet ${c.body} T=${c.tasks} ${c.ways}-way ${c.shots}-shot Kq=${c.ways * c.queries}`,
  dim: 784,
  model: (c) => (c.body === 'mlp' ? { kind: 'mlp', hidden: PROTO_HIDDEN, classes: c.ways } : { kind: 'conv4', classes: c.ways, filters: c.filters }),
  peerModel: (c) => (c.body === 'mlp'
    ? { kind: 'mlp', dim: 784, hidden: PROTO_HIDDEN, classes: c.ways }
    : { kind: 'conv4', image: [CONV_IMAGE.h, CONV_IMAGE.w, CONV_IMAGE.c], filters: c.filters, classes: c.ways }),
  batch: (c) => convBatch(c, 43),
  innerLr: 0,
  // β = 1 (Δθ = −g): a protonet's gradients through the conv body are ~1e-3, and at β = 0.01 the float32
  // rounding of θ itself (~6e-8) made ~5e-3 of the rel err of Δθ (the peers' float64 selftest agrees).
  outerLr: 1,
  // Δθ = −g itself: the GPU's direct convolution sums a weight gradient over 30 rows × 196 positions
  // sequentially in float32, which leaves ~1e-3 of max|g| on Conv-4's body (llvmpipe: 1.2e-3; the small
  // conv body of test/protonet.test.ts agrees to 1e-3 per element); wrong math is far above 3e-3.
  tolerance: 3e-3,
  batched: 'torch batched (shared body)',
  perIteration: false,
  algorithm: 'protonet',
};

// ---- the procedure ---------------------------------------------------------------------------------

interface PeerRow { name: string; impl: string; order: number; tasksPerS?: number; medianS?: number; repeats?: number; capped?: boolean; failed?: string; skipped?: string; version?: string; device?: string; threads?: number; relErr?: number; ok?: boolean }

function runPeers<C extends { tasks: number }>(f: NetFamily<C>, py: string, c: C, batch: Batch, theta0: Float32Array, refs: Map<number, Float32Array>): PeerRow[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), `metagrad-bench-${f.key}-`));
  const batchFile = path.join(dir, 'batch.bin');
  writeFloats(batchFile, [theta0, batch.supportX, batch.supportY as Float32Array, batch.queryX, batch.queryY as Float32Array]);
  const jobs = ordersOf(f).flatMap((order) => {
    const ref = refs.get(order);
    if (ref) writeFloats(path.join(dir, `expected_o${order}.bin`), [ref]);
    return (['torch', 'loop'] as const).map((impl) => ({ name: `o${order}__${impl}`, impl, order, expected: ref ? `expected_o${order}.bin` : null }));
  });
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({
    model: f.peerModel(c), algorithm: f.algorithm, tasks: c.tasks, supportShots: batch.supportShots, queryShots: batch.queryShots,
    innerLr: f.innerLr, outerLr: f.outerLr, innerSteps: 1, seconds: SECONDS, capSeconds: CAP, tolerance: f.tolerance, jobs,
  }));
  const r = spawnSync(py, [path.join('bench', 'peers', 'net_peers.py'), batchFile, path.join(dir, 'meta.json'), dir, '--device', TORCH_DEVICE],
    { encoding: 'utf8', maxBuffer: 1 << 26, timeout: jobs.length * (4 * CAP + 600) * 1000 });
  const out: PeerRow[] = [];
  for (const line of (r.stdout ?? '').split('\n').filter((l) => l.startsWith('{'))) {
    const j = JSON.parse(line);
    if (j.skipped) return [{ name: 'all', impl: 'torch', order: 0, skipped: j.skipped }];
    const job = jobs.find((x) => x.name === j.name)!;
    out.push({
      name: j.name, impl: job.impl, order: job.order, tasksPerS: j.tasks_per_s, medianS: j.median_s, repeats: j.repeats, capped: j.capped, failed: j.failed,
      version: j.version, device: j.device, threads: j.threads, relErr: j.verify?.rel_err, ok: j.verify?.ok,
    });
  }
  if (r.status !== 0) console.log(`${f.key} peers failed for ${f.name(c)} (${r.error ? r.error.message : `exit ${r.status}`}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** One family's rows; returns the number of rows that failed verification. */
async function familyRows<C extends { tasks: number }>(f: NetFamily<C>, backends: BackendChoice[], python: { py: string; torch: boolean } | null, rows: Record<string, unknown>[]): Promise<number> {
  const only = process.env.BENCH_ONLY;
  const todo = f.configs.filter((c) => !only || f.name(c).includes(only) || only === f.key);
  if (!todo.length) return 0;
  let failures = 0;
  const rate = (c: C, tasksPerS: number) => `${fmtRate(tasksPerS)}${f.perIteration ? ` (${fmtRate(tasksPerS / c.tasks)} it/s)` : ''}`;
  console.log(`\n${f.title} metagrad cpu's θ after one step is the reference; each peer verifies against it (rel err of Δθ ≤ ${f.tolerance}) before it is timed. ` +
    `webgpu rows verify against it the same way, then time ${RESIDENT} iterations per submit (resident; GPU time from timestamp queries when the adapter has them). * = fewer than 3 repeats within the ${CAP} s cap.`);
  console.log(`| config | order | impl | tasks/s${f.perIteration ? ' (it/s)' : ''} | vs best peer | rel err of Δθ vs cpu |`);
  console.log('|---|---|---|---|---|---|');
  for (const c of todo) {
    const layout = netModelLayout(f.model(c), f.dim, 0, f.algorithm === 'protonet')!;
    const theta0 = modelInit(layout, 5).slice(0, layout.params);
    const batch = f.batch(c);
    const optionsAt = (order: number, backend: BackendChoice) => (f.algorithm === 'protonet'
      ? { algorithm: 'protonet' as const, dim: f.dim, model: f.model(c), outerLr: f.outerLr, optimizer: 'sgd' as const, backend }
      : { algorithm: 'maml' as const, dim: f.dim, model: f.model(c), innerLr: f.innerLr, outerLr: f.outerLr, optimizer: 'sgd' as const, backend, order: order as 1 | 2 });
    const refs = new Map<number, Float32Array>();
    const mine = new Map<number, { timing: Timing; adapter: string } | { error: string }>();
    for (const order of ordersOf(f)) {
      let learner: Learner | null = null;
      try {
        learner = await createLearner(optionsAt(order, 'cpu'));
        learner.setParams(theta0);
        await learner.step(batch);
        refs.set(order, await learner.getParams());
        const l = learner;
        mine.set(order, { timing: await timeIt(async () => { await l.step(batch); }, CAP, false), adapter: learner.backend.adapter });
      } catch (e) {
        failures++;
        mine.set(order, { error: (e as Error).message.split('\n')[0] });
      } finally {
        learner?.destroy();
      }
    }
    // metagrad webgpu: verify one step against the CPU's, then time resident submits.
    const gpuRows = new Map<number, { timing?: Timing; relErr?: number; error?: string; gpuMs?: number | null }>();
    if (backends.includes('webgpu')) {
      for (const order of ordersOf(f)) {
        let learner: Learner | null = null;
        try {
          learner = await createLearner(optionsAt(order, 'webgpu'));
          learner.setParams(theta0);
          await learner.step(batch);
          const ref = refs.get(order);
          const e = ref ? relChangeError(theta0, await learner.getParams(), ref) : null;
          if (e && e.relErr > f.tolerance) {
            failures++;
            gpuRows.set(order, { relErr: e.relErr, error: `verify failed: rel err ${e.relErr.toExponential(1)}` });
            continue;
          }
          const l = learner;
          const timing = await timeIt(async () => { await l.step(batch, { iterations: RESIDENT }); await l.sync(); return (await l.gpuTime()) ?? undefined; }, CAP);
          gpuRows.set(order, { timing, relErr: e?.relErr, gpuMs: timing.gpuMedianMs });
        } catch (err) {
          failures++;
          gpuRows.set(order, { error: (err as Error).message.split('\n')[0] });
        } finally {
          learner?.destroy();
        }
      }
    }
    const peers = python?.torch ? runPeers(f, python.py, c, batch, theta0, refs) : [];
    if (python && !python.torch) console.log(`(${f.key} peers: skipped, no torch)`);
    for (const order of ordersOf(f)) {
      const ofOrder = peers.filter((p) => p.order === order);
      for (const p of ofOrder) if (p.failed || p.ok === false) failures++;
      const fastest = Math.max(0, ...ofOrder.filter((p) => !p.failed && p.ok !== false).map((p) => p.tasksPerS ?? 0));
      const m = mine.get(order)!;
      const row: Record<string, unknown> = { model: f.key, config: c, order, impl: 'metagrad-cpu' };
      if ('error' in m) {
        console.log(`| ${f.name(c)} | ${orderLabel(order)} | metagrad cpu | ERROR: ${m.error} | | |`);
        row.error = m.error;
      } else {
        const r = c.tasks / m.timing.median;
        console.log(`| ${f.name(c)} | ${orderLabel(order)} | metagrad cpu | ${rate(c, r)}${m.timing.capped ? '*' : ''} | ${fastest > 0 ? fmt(r / fastest, 2) + '×' : '—'} | reference |`);
        Object.assign(row, { adapter: m.adapter, tasksPerS: r, step: m.timing, vsBestPeer: fastest > 0 ? r / fastest : null });
      }
      rows.push(row);
      const g = gpuRows.get(order);
      if (g) {
        const r = g.timing ? (c.tasks * RESIDENT) / g.timing.median : NaN;
        const gpuRate = g.gpuMs ? (c.tasks * RESIDENT) / (g.gpuMs / 1000) : null;
        console.log(`| ${f.name(c)} | ${orderLabel(order)} | metagrad webgpu (resident${gpuRate ? `; GPU time ${fmtRate(gpuRate)}` : ''}) | ${g.error ? `ERROR: ${g.error}` : `${rate(c, r)}${g.timing!.capped ? '*' : ''}`} | ${fastest > 0 && g.timing ? fmt(r / fastest, 2) + '×' : '—'} | ${g.relErr !== undefined ? g.relErr.toExponential(1) : '—'} |`);
        rows.push({ model: f.key, config: c, order, impl: 'metagrad-webgpu', tasksPerS: g.timing ? r : null, gpuTimeTasksPerS: gpuRate, step: g.timing, relErr: g.relErr, error: g.error });
      }
      for (const p of ofOrder) {
        const label = `${p.impl === 'torch' ? f.batched : 'torch loop'}${p.device && p.device !== 'cpu' ? ` (${p.device})` : ''}`;
        const verified = p.relErr !== undefined ? p.relErr.toExponential(1) : 'unverified';
        if (p.failed || p.ok === false) console.log(`| ${f.name(c)} | ${orderLabel(order)} | ${label} | VERIFY FAILED or error, not timed: ${p.failed ?? ''} | | ${verified} |`);
        else console.log(`| ${f.name(c)} | ${orderLabel(order)} | ${label} | ${rate(c, p.tasksPerS ?? NaN)}${p.capped ? '*' : ''} | ${fmt((p.tasksPerS ?? 0) / fastest, 2)}× | ${verified} |`);
        rows.push({ model: f.key, config: c, order, impl: p.impl, device: p.device, version: p.version, threads: p.threads, tasksPerS: p.tasksPerS ?? null, medianS: p.medianS, relErr: p.relErr, failed: p.failed });
      }
    }
    if (peers[0]?.version) console.log(`(${f.key} peers: ${peers[0].version}, ${peers[0].threads} threads, on ${peers[0].device})`);
  }
  return failures;
}

/** The Conv-4, sinusoid and protonet rows; returns the number of rows that failed verification. */
export async function netRows(backends: BackendChoice[], python: { py: string; torch: boolean } | null, rows: Record<string, unknown>[]): Promise<number> {
  return (await familyRows(CONV4, backends, python, rows)) + (await familyRows(SINUSOID, backends, python, rows)) + (await familyRows(PROTONET, backends, python, rows));
}
