// The MLP's MAML core on the GPU (src/schedule/mlp-pass.ts) with ANIL (adapt 'head': only W_L, b_L
// adapt) and Meta-SGD (learned per-parameter step sizes α), run through MlpPass.tasksStep directly on
// tiny tasks, against a float64 implementation written here from the reference model (src/cpu/mlp.ts:
// mlpLossGrad, mlpHvp), itself checked against central differences of the float64 meta-objective; the
// vector kernel's product mode against its twin; and the recorded dispatches of ANIL (the body's forward
// once per pass, each inner step the head alone).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertClose, centralDifferences, maxAbs, packBatch, randomArray, randomNWayBatch, submit, thrown, upload, withGpu } from './helpers.js';
import { createBuffer, readFloats, type BoundDispatch } from '../src/gpu/resources.js';
import type { AcquiredDevice } from '../src/gpu/device.js';
import { mlpHvp, mlpLossGrad, type MlpRows } from '../src/cpu/mlp.js';
import { vectorOp, type VectorSpec } from '../src/cpu/mlp-kernels.js';
import { VectorKernel } from '../src/kernels/mlp-vector.js';
import { mlpLayout, type MlpLayout } from '../src/models/mlp.js';
import { MlpPass, mlpPassScratchFloats, mlpTapeFloats, type MlpTaskStep } from '../src/schedule/mlp-pass.js';
import { dataLayout } from '../src/kernels/layout.js';
import type { CheckedBatch } from '../src/types.js';

const D = 5;
const HIDDEN = [4, 3];
const CLASSES = 3;
const [SUPPORT, QUERY] = [4, 3];
const LR = 0.3;
// GPU (float32) against the float64 oracle: DEVELOPERS.md's kernel bounds, with atol scaled by the
// largest entry (float32 rounding in a sum is relative to its largest terms).
const RTOL = 1e-4;
const ATOL = 2e-5;

// ------------------------------------------------------------------------------ float64 oracle

function taskRows(batch: CheckedBatch, set: 'support' | 'query', t: number): MlpRows {
  const n = set === 'support' ? batch.supportShots : batch.queryShots;
  const [x, y] = set === 'support' ? [batch.supportX, batch.supportY] : [batch.queryX, batch.queryY];
  return { x, xOff: t * n * D, xStride: D, y, yOff: t * n, rows: n };
}

/** [start, end) of the head (W_L, b_L) in the per-task vector. */
function headRange(layout: MlpLayout): [number, number] {
  const head = layout.layers[layout.layers.length - 1];
  return [head.w, head.b + head.outputs];
}

interface OracleResult { adapted: Float64Array; gTheta: Float64Array; gAlpha: Float64Array; loss: number; accuracy: number }

/**
 * One task's pass in float64, straight from the definitions: θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − step(g_s) with
 * step(g) = α·M ⊙ g (ANIL: M the head) or α ⊙ g (Meta-SGD); v = g_q(θ'⁽ⁿ⁾); order 2: g_α += −g_s ⊙ v
 * (Meta-SGD), v ← v − H_s·(dθ'⁽ˢ⁺¹⁾/dθ'⁽ˢ⁾ transposed without the identity: α M v, or α ⊙ v).
 */
function oracle(layout: MlpLayout, theta: Float32Array, stepSize: (k: number) => number, support: MlpRows, query: MlpRows, n: number, order: 1 | 2): OracleResult {
  const V = layout.vector;
  const P = layout.params;
  const p = Float64Array.from(theta.subarray(0, V));
  const points: Float64Array[] = [];
  const grads: Float64Array[] = [];
  for (let s = 0; s < n; s++) {
    points.push(p.slice());
    const g = new Float64Array(V);
    mlpLossGrad(layout, p, 0, support, g);
    grads.push(g);
    for (let k = 0; k < P; k++) p[k] -= stepSize(k) * g[k];
  }
  const v = new Float64Array(V);
  const { loss, accuracy } = mlpLossGrad(layout, p, 0, query, v);
  const gAlpha = new Float64Array(V);
  if (order === 1) {
    for (const g of grads) for (let k = 0; k < P; k++) gAlpha[k] -= g[k] * v[k];
  } else {
    const hv = new Float64Array(V);
    for (let s = n - 1; s >= 0; s--) {
      for (let k = 0; k < P; k++) gAlpha[k] -= grads[s][k] * v[k];
      mlpHvp(layout, points[s], 0, support, v.map((x, k) => (k < P ? stepSize(k) * x : 0)), 0, hv);
      for (let k = 0; k < P; k++) v[k] -= hv[k];
    }
  }
  return { adapted: p, gTheta: v, gAlpha, loss, accuracy };
}

const anilStep = (layout: MlpLayout, lr: number) => {
  const [lo, hi] = headRange(layout);
  return (k: number) => (k >= lo && k < hi ? lr : 0);
};

/** The query loss after n inner steps, as a function of θ (and α for Meta-SGD): the meta-objective. */
function metaObjective(layout: MlpLayout, theta: Float64Array, stepSize: (k: number) => number, support: MlpRows, query: MlpRows, n: number): number {
  const p = theta.slice();
  const g = new Float64Array(layout.vector);
  for (let s = 0; s < n; s++) {
    mlpLossGrad(layout, p, 0, support, g);
    for (let k = 0; k < layout.params; k++) p[k] -= stepSize(k) * g[k];
  }
  return mlpLossGrad(layout, p, 0, query, null).loss;
}

// ------------------------------------------------------------------------------ the GPU pass

interface PassCase {
  layout: MlpLayout;
  batch: CheckedBatch;
  theta: Float32Array;
  /** Meta-SGD's α (V floats), or undefined. */
  alpha?: Float32Array;
  adapt: 'all' | 'head';
  order: 1 | 2;
  n: number;
  wantMetaGrad?: boolean;
  /** The output set (2 sets are allocated when 1). */
  outSet?: 0 | 1;
}

interface PassResult { adapted: Float32Array; metaGrad: Float32Array; stats: Float32Array; labels: string[]; metaGradAll: Float32Array }

/** Fills the output buffers with a sentinel, so that whatever the pass writes (padding included) shows. */
const SENTINEL = 5;

async function runPass(acq: AcquiredDevice, c: PassCase): Promise<PassResult> {
  const { device } = acq;
  const { layout, batch } = c;
  const T = batch.tasks;
  const V = layout.vector;
  const width = c.alpha ? 2 * V : V;
  const sets = (c.outSet ?? 0) + 1;
  const rows = Math.max(batch.supportShots, batch.queryShots);
  const sections = c.order === 2 ? c.n + 1 : 1;
  const off = dataLayout(T, batch.supportShots, batch.queryShots, D);
  const data = upload(acq, 'data', packBatch(batch, D));
  const paramsHost = new Float32Array(2 * V);
  paramsHost.set(c.theta.subarray(0, V));
  if (c.alpha) paramsHost.set(c.alpha, V);
  const params = upload(acq, 'params', paramsHost);
  const filled = (name: string, floats: number, value = SENTINEL) => upload(acq, name, new Float32Array(Math.max(4, floats)).fill(value));
  // The pass's own scratch starts as NaN: a read of anything it did not write first poisons the results
  // (e.g. ANIL's points, whose body is never copied, or the tape of a layer that was not recomputed).
  const buffers = {
    tape: filled('tape', T * mlpTapeFloats(layout, rows, sections), NaN),
    adapted: filled('adapted', sets * T * V),
    metaGrad: filled('metaGrad', sets * T * width),
    points: filled('points', T * c.n * V, NaN),
    scratch: filled('scratch', T * mlpPassScratchFloats(layout, { innerSteps: c.n, order: c.order, stepSizes: !!c.alpha, head: c.adapt === 'head' }), NaN),
  };
  const stats = filled('stats', 2 * sets * T);
  const pass = new MlpPass(device, layout, T, rows, sections, buffers, 'test', { metaGradWidth: width });
  const outSet = c.outSet ?? 0;
  const dispatches: BoundDispatch[] = pass.tasksStep({
    support: { buffer: data, xOff: off.supportX, yOff: off.supportY, rows: batch.supportShots },
    query: { buffer: data, xOff: off.queryX, yOff: off.queryY, rows: batch.queryShots },
    theta: { buffer: params, off: 0, taskStride: 0 },
    stepSizes: c.alpha ? { buffer: params, off: V, taskStride: 0 } : null,
    innerLr: LR, innerSteps: c.n, order: c.order, wantMetaGrad: c.wantMetaGrad ?? true, adapt: c.adapt,
    perturb: null, writeBack: false, outSet, stats: { buffer: stats, base: outSet * T },
  });
  submit(acq, (p) => dispatches.forEach((d) => d.encode(p)));
  // The bind groups' labels name every recorded dispatch (kernel, then the pass's `what`).
  const labels: string[] = [];
  const recorder = {
    setPipeline() {},
    setBindGroup(_i: number, group: GPUBindGroup) { labels.push(group.label.replace(/\.group$/, '')); },
    dispatchWorkgroups() {},
  } as unknown as GPUComputePassEncoder;
  dispatches.forEach((d) => d.encode(recorder));
  const adaptedAll = await readFloats(device, buffers.adapted, sets * T * V);
  const metaGradAll = await readFloats(device, buffers.metaGrad, sets * T * width);
  const statsAll = await readFloats(device, stats, 2 * sets * T);
  for (const b of [data, params, stats, ...Object.values(buffers)]) b.destroy();
  return {
    adapted: adaptedAll.subarray(outSet * T * V),
    metaGrad: metaGradAll.subarray(outSet * T * width),
    stats: statsAll.subarray(2 * outSet * T),
    labels,
    metaGradAll,
  };
}

function makeCase(norm: boolean, tasks: number, seed: number): { layout: MlpLayout; batch: CheckedBatch; theta: Float32Array } {
  const layout = mlpLayout(D, HIDDEN, CLASSES, 0, norm);
  const batch = randomNWayBatch(tasks, SUPPORT, QUERY, D, CLASSES, seed);
  // Random biases too: at b = 0 a row whose units are all off sits on a ReLU kink, where central
  // differences average the two one-sided slopes.
  const theta = new Float32Array(layout.vector);
  theta.set(randomArray(layout.params, seed, 300, -0.6, 0.6));
  return { layout, batch, theta };
}

/** Step sizes α > 0 on every parameter; the padding holds NaN, which must never be read. */
function makeAlpha(layout: MlpLayout, seed: number): Float32Array {
  const alpha = new Float32Array(layout.vector).fill(NaN);
  alpha.set(randomArray(layout.params, seed, 301, 0.05, 0.5));
  return alpha;
}

/** Compares task t's GPU results with the oracle; returns the oracle. */
function checkTask(name: string, c: PassCase, got: PassResult, t: number, ref: OracleResult): void {
  const V = c.layout.vector;
  const P = c.layout.params;
  const width = c.alpha ? 2 * V : V;
  const close = (what: string, g: ArrayLike<number>, e: ArrayLike<number>) => assertClose(`${name} task ${t} ${what}`, g, e, ATOL * Math.max(1, maxAbs(e)), RTOL);
  // The whole vector: the body (θ's for ANIL) and a zero padding included.
  close('θ′', got.adapted.subarray(t * V, (t + 1) * V), ref.adapted);
  close('loss, accuracy', got.stats.subarray(2 * t, 2 * t + 2), [ref.loss, ref.accuracy]);
  if (c.wantMetaGrad === false) return;
  close('g_θ', got.metaGrad.subarray(t * width, t * width + P), ref.gTheta.subarray(0, P));
  if (c.alpha) close('g_α (padding 0)', got.metaGrad.subarray(t * width + V, (t + 1) * width), ref.gAlpha);
}

// ------------------------------------------------------------------------------ ANIL

const ANIL_CASES: Array<{ name: string; norm: boolean; order: 1 | 2; tasks: number; n: number; fd: boolean }> = [
  { name: 'order 1', norm: false, order: 1, tasks: 2, n: 2, fd: false },
  { name: 'order 2', norm: false, order: 2, tasks: 3, n: 2, fd: true },
  { name: 'order 2, task normalisation', norm: true, order: 2, tasks: 2, n: 2, fd: true },
  { name: 'order 1, task normalisation, 1 inner step', norm: true, order: 1, tasks: 2, n: 1, fd: false },
];

ANIL_CASES.forEach((a, i) => {
  test(`ANIL ${a.name}: θ′ (body = θ's), query stats and the meta-gradient equal the float64 oracle${a.fd ? ' and central differences of the meta-objective' : ''}`, () =>
    withGpu(async (acq) => {
      const { layout, batch, theta } = makeCase(a.norm, a.tasks, 40 + i);
      const c: PassCase = { layout, batch, theta, adapt: 'head', order: a.order, n: a.n };
      const got = await runPass(acq, c);
      const step = anilStep(layout, LR);
      const P = layout.params;
      for (let t = 0; t < a.tasks; t++) {
        const support = taskRows(batch, 'support', t);
        const query = taskRows(batch, 'query', t);
        const ref = oracle(layout, theta, step, support, query, a.n, a.order);
        checkTask('ANIL', c, got, t, ref);
        // The body did not move: θ′ equals θ outside the head.
        const [lo] = headRange(layout);
        assertClose(`task ${t} body of θ′`, got.adapted.subarray(t * layout.vector, t * layout.vector + lo), theta.subarray(0, lo), 0, 0);
        if (a.fd) {
          const fd = centralDifferences((x) => metaObjective(layout, x, step, support, query, a.n), Float64Array.from(theta), 1e-5).subarray(0, P);
          // The oracle is the exact derivative: it matches to the differences' own error.
          assertClose(`task ${t} oracle vs central differences`, ref.gTheta.subarray(0, P), fd, 1e-6 * Math.max(1, maxAbs(fd)), 1e-5);
          assertClose(`task ${t} GPU vs central differences`, got.metaGrad.subarray(t * layout.vector, t * layout.vector + P), fd, 1e-4 * Math.max(1, maxAbs(fd)), 1e-3);
        }
      }
    }));
});

test('ANIL evaluation (no meta-gradient, 3 inner steps): θ′ and query stats equal the oracle', () =>
  withGpu(async (acq) => {
    const { layout, batch, theta } = makeCase(false, 2, 47);
    const c: PassCase = { layout, batch, theta, adapt: 'head', order: 2, n: 3, wantMetaGrad: false };
    const got = await runPass(acq, c);
    for (let t = 0; t < 2; t++) {
      checkTask('ANIL eval', c, got, t, oracle(layout, theta, anilStep(layout, LR), taskRows(batch, 'support', t), taskRows(batch, 'query', t), 3, 2));
    }
    assertClose('metaGrad untouched', got.metaGradAll, new Float32Array(got.metaGradAll.length).fill(SENTINEL), 0, 0);
  }));

test('ANIL dispatches: the body\'s forward once per pass (from θ), each inner step the head alone (gemm, softmax, dW_L, db_L); order 2 R-forwards the head only', () =>
  withGpu(async (acq) => {
    const L = HIDDEN.length + 1;
    for (const norm of [false, true]) {
      const { layout, batch, theta } = makeCase(norm, 2, 48);
      const n = 3;
      const { labels } = await runPass(acq, { layout, batch, theta, adapt: 'head', order: 2, n });
      const count = (re: RegExp) => labels.filter((l) => re.test(l)).length;
      // The body: layers 1 … L−1 (and their norms), recorded once, named 'body'.
      assert.is(count(/\.body\.forward\d$/), L - 1, 'body gemms');
      assert.is(count(/\.body\.forward\d\.norm$/), norm ? L - 1 : 0, 'body norms');
      for (let s = 0; s < n; s++) {
        const inner = labels.filter((l) => l.includes(`.inner${s}.`));
        assert.equal(inner.map((l) => l.replace(/^.*\.inner\d+\./, '')), [`forward${L}`, 'softmax', `dW${L}`, `db${L}`], `inner step ${s}`);
        assert.is(count(new RegExp(`\\.hvp${s}\\.Rforward`)), 1, `hvp ${s}: one R-forward gemm`);
        assert.is(count(new RegExp(`\\.hvp${s}\\.Rforward${L}$`)), 1, `hvp ${s}: the head's`);
      }
      // Order 2 keeps steps 1 … n−1's heads; one copy of θ makes the adapted vectors whole.
      assert.is(count(/\.keep\d$/), n - 1, 'points kept');
      assert.is(count(/\.init$/), 1, 'θ copied once');
      // Layer 1 runs twice in all: the body on the support rows, the query pass.
      assert.is(count(/\.forward1$/), 2, 'layer 1: body and query only');
    }
  }));

test('ANIL and Meta-SGD refuse what they do not run: a context, a perturbation, step sizes with another adapt or 1-V slots', () =>
  withGpu(async (acq) => {
    const { device } = acq;
    const rowsFor = (b: GPUBuffer) => ({ buffer: b, xOff: 0, yOff: 0, rows: 2 });
    const tiny = createBuffer(device, 'test.tiny', 64);
    const make = (layout: MlpLayout, width?: number, scratch = true) => new MlpPass(device, layout, 1, 2, 2,
      { tape: tiny, adapted: tiny, metaGrad: createBuffer(device, 'test.mg', 64), points: tiny, scratch: scratch ? tiny : undefined }, 'refuse', { metaGradWidth: width });
    const plain = mlpLayout(D, HIDDEN, CLASSES);
    const base: MlpTaskStep = {
      support: rowsFor(tiny), query: rowsFor(tiny), theta: { buffer: tiny, off: 0, taskStride: 0 }, innerLr: 0.1, innerSteps: 1, order: 1,
      wantMetaGrad: true, adapt: 'head', perturb: null, writeBack: false, outSet: 0, stats: { buffer: tiny, base: 0 },
    };
    const alpha = { buffer: tiny, off: 0, taskStride: 0 };
    const caught = async (what: string, fn: () => unknown, re: RegExp) => assert.match((await thrown(fn)).message, re, what);
    await caught('head with context', () => make(mlpLayout(D, HIDDEN, CLASSES, 2)).tasksStep(base), /context/);
    await caught('head with perturbation', () => make(plain).tasksStep({ ...base, perturb: { steps: 1, radius: 0.1, lr: 0.1 } }), /perturbation/);
    await caught('step sizes with head', () => make(plain, 2 * plain.vector).tasksStep({ ...base, stepSizes: alpha }), /step sizes/);
    await caught('step sizes with context adapt', () => make(plain, 2 * plain.vector).tasksStep({ ...base, adapt: 'context', stepSizes: alpha }), /step sizes/);
    await caught('step sizes in V-wide slots', () => make(plain).tasksStep({ ...base, adapt: 'all', stepSizes: alpha }), /2V/);
    await caught('step sizes without scratch', () => make(plain, 2 * plain.vector, false).tasksStep({ ...base, adapt: 'all', stepSizes: alpha }), /scratch/);
    await caught('odd slot width', () => make(plain, plain.vector + 4), /metaGradWidth/);
    tiny.destroy();
  }));

// ------------------------------------------------------------------------------ Meta-SGD

const SGD_CASES: Array<{ name: string; norm: boolean; order: 1 | 2; tasks: number; n: number; fd: boolean; outSet?: 0 | 1 }> = [
  { name: 'order 1', norm: false, order: 1, tasks: 2, n: 2, fd: false },
  { name: 'order 2, output set 1', norm: false, order: 2, tasks: 3, n: 2, fd: true, outSet: 1 },
  { name: 'order 2, task normalisation', norm: true, order: 2, tasks: 2, n: 2, fd: true },
  { name: 'order 1, task normalisation', norm: true, order: 1, tasks: 2, n: 2, fd: false },
  { name: 'order 2, no inner step (g_α = 0)', norm: false, order: 2, tasks: 2, n: 0, fd: false },
];

SGD_CASES.forEach((a, i) => {
  test(`Meta-SGD ${a.name}: θ′, query stats, g_θ and g_α equal the float64 oracle${a.fd ? ' and central differences of the meta-objective in (θ, α)' : ''}`, () =>
    withGpu(async (acq) => {
      const { layout, batch, theta } = makeCase(a.norm, a.tasks, 60 + i);
      const alpha = makeAlpha(layout, 60 + i);
      const c: PassCase = { layout, batch, theta, alpha, adapt: 'all', order: a.order, n: a.n, outSet: a.outSet };
      const got = await runPass(acq, c);
      const V = layout.vector;
      const P = layout.params;
      const step = (k: number) => alpha[k];
      for (let t = 0; t < a.tasks; t++) {
        const support = taskRows(batch, 'support', t);
        const query = taskRows(batch, 'query', t);
        const ref = oracle(layout, theta, step, support, query, a.n, a.order);
        checkTask('Meta-SGD', c, got, t, ref);
        if (a.fd) {
          const x0 = Float64Array.from(theta);
          const fdTheta = centralDifferences((x) => metaObjective(layout, x, step, support, query, a.n), x0, 1e-5).subarray(0, P);
          const a0 = Float64Array.from(alpha.subarray(0, P));
          const fdAlpha = centralDifferences((al) => metaObjective(layout, x0, (k) => al[k], support, query, a.n), a0, 1e-5);
          const close = (what: string, g: ArrayLike<number>, e: Float64Array, atol: number, rtol: number) => assertClose(`task ${t} ${what}`, g, e, atol * Math.max(1, maxAbs(e)), rtol);
          close('oracle g_θ vs differences', ref.gTheta.subarray(0, P), fdTheta, 1e-6, 1e-5);
          close('oracle g_α vs differences', ref.gAlpha.subarray(0, P), fdAlpha, 1e-6, 1e-5);
          close('GPU g_θ vs differences', got.metaGrad.subarray(t * 2 * V, t * 2 * V + P), fdTheta, 1e-4, 1e-3);
          close('GPU g_α vs differences', got.metaGrad.subarray(t * 2 * V + V, t * 2 * V + V + P), fdAlpha, 1e-4, 1e-3);
        }
      }
      if (a.outSet === 1) assertClose('set 0 untouched', got.metaGradAll.subarray(0, a.tasks * 2 * V), new Float32Array(a.tasks * 2 * V).fill(SENTINEL), 0, 0);
    }));
});

test('Meta-SGD with α = lr·1 adapts and meta-differentiates like the plain pass with innerLr = lr (orders 1 and 2); g_α = −Σ g_s ⊙ v at order 1', () =>
  withGpu(async (acq) => {
    for (const order of [1, 2] as const) {
      const { layout, batch, theta } = makeCase(false, 2, 70 + order);
      const V = layout.vector;
      const P = layout.params;
      const alpha = new Float32Array(V).fill(LR);
      const plain = await runPass(acq, { layout, batch, theta, adapt: 'all', order, n: 2 });
      const sgd = await runPass(acq, { layout, batch, theta, alpha, adapt: 'all', order, n: 2 });
      for (let t = 0; t < 2; t++) {
        const scale = (e: ArrayLike<number>) => ATOL * Math.max(1, maxAbs(e));
        // The parameters (the plain pass leaves the padding unwritten; Meta-SGD zeroes it).
        const plainAdapted = plain.adapted.subarray(t * V, t * V + P);
        assertClose(`order ${order} task ${t} θ′`, sgd.adapted.subarray(t * V, t * V + P), plainAdapted, scale(plainAdapted), RTOL);
        const plainGrad = plain.metaGrad.subarray(t * V, t * V + P);
        assertClose(`order ${order} task ${t} g_θ`, sgd.metaGrad.subarray(t * 2 * V, t * 2 * V + P), plainGrad, scale(plainGrad), RTOL);
        assertClose(`order ${order} task ${t} stats`, sgd.stats.subarray(2 * t, 2 * t + 2), plain.stats.subarray(2 * t, 2 * t + 2), 1e-6, RTOL);
        if (order === 1) {
          // With α = lr everywhere Σ_s g_s = (θ − θ′)/lr: g_α = −(θ − θ′)/lr ⊙ v, from the plain pass alone.
          const expected = Array.from({ length: P }, (_, k) => -((theta[k] - plainAdapted[k]) / LR) * plainGrad[k]);
          assertClose(`task ${t} g_α`, sgd.metaGrad.subarray(t * 2 * V + V, t * 2 * V + V + P), expected, 1e-4 * Math.max(1, maxAbs(expected)), 1e-3);
        }
      }
    }
  }));

// ------------------------------------------------------------------------------ vector kernel

const PRODUCT_CASES: Array<{ name: string; spec: VectorSpec; nan: number[] }> = [
  {
    name: 'θ′ = θ − α ⊙ g (θ and α in one shared buffer), zero outside',
    spec: {
      tasks: 3, length: 60, lo: 0, hi: 53, a: 1, b: -1, x: { buf: 0, off: 0, taskStride: 0 }, y: { buf: 0, off: 60, taskStride: 0 },
      z: { buf: 1, off: 4, taskStride: 60 }, out: { buf: 2, off: 0, taskStride: 60 }, zeroOutside: true,
    },
    nan: [],
  },
  {
    name: 'in place g_α += −g ⊙ v over two workgroups',
    spec: {
      tasks: 2, length: 300, lo: 5, hi: 290, a: 1, b: -1, x: { buf: 1, off: 300, taskStride: 600 }, y: { buf: 2, off: 0, taskStride: 300 },
      z: { buf: 1, off: 0, taskStride: 600 }, out: { buf: 1, off: 300, taskStride: 600 },
    },
    nan: [],
  },
  {
    name: 'a = 0 never reads X (it holds NaN): the direction α ⊙ v',
    spec: {
      tasks: 2, length: 40, lo: 0, hi: 37, a: 0, b: 1, x: { buf: 2, off: 0, taskStride: 40 }, y: { buf: 0, off: 0, taskStride: 0 },
      z: { buf: 1, off: 0, taskStride: 40 }, out: { buf: 1, off: 100, taskStride: 40 },
    },
    nan: [2],
  },
  {
    name: 'b = 0 never reads Y or Z (they hold NaN)',
    spec: {
      tasks: 2, length: 40, lo: 3, hi: 30, a: -2, b: 0, x: { buf: 0, off: 0, taskStride: 40 }, y: { buf: 1, off: 0, taskStride: 0 },
      z: { buf: 2, off: 0, taskStride: 40 }, out: { buf: 0, off: 0, taskStride: 40 },
    },
    nan: [1, 2],
  },
];

/** `a` with 0 where both `a` and `b` hold NaN (untouched NaN-filled operands), for assertClose. */
const withoutNaN = (a: Float32Array, b: Float32Array) => a.map((v, i) => (Number.isNaN(v) && Number.isNaN(b[i]) ? 0 : v));

PRODUCT_CASES.forEach((c, i) => {
  test(`vector op with a product (a·X + b·Y ⊙ Z) matches its twin: ${c.name}`, () =>
    withGpu(async (acq) => {
      const n = 1300;
      const host = [0, 1, 2].map((b) => (c.nan.includes(b) ? new Float32Array(n).fill(NaN) : randomArray(n, 500 + i, b)));
      const gpu = host.map((a, b) => upload(acq, `b${b}`, a));
      const bound = new VectorKernel(acq.device).bind({ b0: gpu[0], b1: gpu[1], b2: gpu[2] }, c.spec, 'test');
      submit(acq, (pass) => bound.encode(pass));
      const got = await Promise.all(gpu.map((b) => readFloats(acq.device, b, n)));
      const twin = { b0: host[0].slice(), b1: host[1].slice(), b2: host[2].slice() };
      vectorOp(twin, c.spec);
      const out = c.spec.out;
      let written = 0;
      for (let t = 0; t < c.spec.tasks; t++) {
        for (let k = c.spec.lo; k < c.spec.hi; k++, written++) {
          assert.ok(Number.isFinite(got[out.buf][out.off + t * out.taskStride + k]), 'no unread operand leaks into out');
          assert.ok(Number.isFinite(twin[`b${out.buf}` as 'b0'][out.off + t * out.taskStride + k]), 'the twin reads no unread operand either');
        }
      }
      assert.ok(written > 0, 'the case writes something');
      [twin.b0, twin.b1, twin.b2].forEach((e, b) => assertClose(`vector b${b}`, withoutNaN(got[b], e), withoutNaN(e, got[b]), 1e-5, 1e-4));
      // The twin itself, against the formula, element by element.
      const { x, y, z } = c.spec;
      const t = c.spec.tasks - 1;
      const k = c.spec.hi - 1;
      const at = (o: { buf: number; off: number; taskStride: number }) => host[o.buf][o.off + t * o.taskStride + k];
      const expected = (c.spec.a !== 0 ? c.spec.a * at(x) : 0) + (c.spec.b !== 0 ? c.spec.b * at(y!) * at(z!) : 0);
      const twinOut = [twin.b0, twin.b1, twin.b2][out.buf][out.off + t * out.taskStride + k];
      assert.ok(Math.abs(twinOut - expected) <= 1e-6 * (1 + Math.abs(expected)), `twin: ${twinOut} vs ${expected}`);
      for (const b of gpu) b.destroy();
    }));
});

test('vector op: the product spec is validated (a bad z operand is a ShapeError)', async () => {
  const err = await thrown(() => vectorOp({ b0: new Float32Array(8), b1: new Float32Array(8), b2: new Float32Array(8) }, {
    tasks: 1, length: 4, lo: 0, hi: 4, a: 1, b: 1, x: { buf: 0, off: 0, taskStride: 0 }, y: { buf: 1, off: 0, taskStride: 0 },
    z: { buf: 3, off: 0, taskStride: 0 }, out: { buf: 2, off: 0, taskStride: 0 },
  }));
  assert.is(err.name, 'ShapeError');
  assert.match(err.message, /operand z/);
});

test.run();
