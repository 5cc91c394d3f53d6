// The fast CPU kernels of the MLP (src/cpu/mlp-fast.ts) and the MAML core over them (src/cpu/model-task.ts)
// against the readable float64 reference (src/cpu/mlp.ts):
// - each primitive (loss + gradient, Hessian-vector product, input gradient in both modes) equals the
//   reference's within 1e-12 relative: the same float64 sums in the same order (bit for bit in practice);
// - the MAML core equals an oracle composed of the reference's functions with float64 storage within a
//   float32 tolerance (the engine stores θ', points and outputs as float32): |Δ| ≤ 2e-6 + 1e-4·|x|;
// - with float32 storage that same oracle gives the core's bits exactly;
// on shapes that exercise every blocking remainder (inputs not a multiple of 4, odd row counts, more rows
// than one 5-term pass), ReLU and input zeros, hidden [], a CAML context, AMP, order 2 with 2 steps.
// With per-task normalisation (layout.norm) the primitives are compared bit for bit (up to the sign of an
// exact zero): the fast path does the reference's norm operations in the reference's order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mlpLayout, mlpInit, type MlpLayout } from '../src/models/mlp.js';
import { mlpHvp, mlpInputGrad, mlpLossGrad, type MlpRows } from '../src/cpu/mlp.js';
import { fastHvp, fastInputGrad, fastLossGrad } from '../src/cpu/mlp-fast.js';
import { modelAdaptAndMetaGrad, modelTaskScratchSizes, type ModelTaskOutputs, type ModelTaskParams } from '../src/cpu/model-task.js';
import type { RowSet } from '../src/cpu/maml-task.js';
import { uniform01 } from '../src/rng.js';
import { assertClose, randomArray, randomClassLabels } from './helpers.js';

type Floats = Float32Array | Float64Array;

/** randomArray with a share of its entries set to 0 (ReLU-like and blank-pixel zeros the kernels skip). */
function withZeros(n: number, seed: number, stream: number, lo: number, hi: number, zeroShare = 0): Float32Array {
  const a = randomArray(n, seed, stream, lo, hi);
  for (let i = 0; i < n; i++) if (uniform01(seed, stream + 100, i) < zeroShare) a[i] = 0;
  return a;
}

/** The same sums in the same order: equal to rounding noise at most. */
const sameSums = (name: string, got: ArrayLike<number>, expected: ArrayLike<number>) => assertClose(name, got, expected, 1e-300, 1e-12);

/** The same bits (±0 equal: the forward may add the reference's skipped a·W = ±0 terms); finite. */
function identical(name: string, got: ArrayLike<number>, expected: ArrayLike<number>): void {
  assert.is(got.length, expected.length, `${name}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(got[i])) assert.unreachable(`${name}[${i}] = ${got[i]}`);
    if (got[i] !== expected[i]) assert.unreachable(`${name}[${i}]: fast ${got[i]} vs reference ${expected[i]} (Δ ${got[i] - expected[i]})`);
  }
}

/** Random float32 parameters over the vector (φ too when there is a context), biases included; pad 0. */
function randomParams(layout: MlpLayout, seed: number, scale = 1): Float32Array {
  const p = randomArray(layout.vector, seed, 11, -scale, scale);
  p.fill(0, layout.contextOffset + layout.context);
  return p;
}

interface Shape {
  name: string;
  dim: number;
  hidden: number[];
  classes: number;
  context: number;
  rows: number;
  zeros?: number;
  norm?: boolean;
}

const SHAPES: Shape[] = [
  { name: 'hidden []', dim: 6, hidden: [] as number[], classes: 3, context: 0, rows: 5 },
  { name: 'hidden [9, 7], 13 inputs, 7 rows', dim: 13, hidden: [9, 7], classes: 4, context: 0, rows: 7 },
  { name: 'hidden [5, 4] with a context of 2, 3 rows', dim: 3, hidden: [5, 4], classes: 3, context: 2, rows: 3 },
  { name: 'hidden [16, 8], 40 inputs with 60% zeros, 12 rows', dim: 40, hidden: [16, 8], classes: 5, context: 0, rows: 12, zeros: 0.6 },
  { name: 'hidden [3], N = 2, context 3, 1 row', dim: 2, hidden: [3], classes: 2, context: 3, rows: 1 },
  // Per-task normalisation: rows not a multiple of the blocking, 1 row, a context, 1–3 hidden layers.
  { name: 'norm, hidden [9, 7], 13 inputs, 7 rows', dim: 13, hidden: [9, 7], classes: 4, context: 0, rows: 7, norm: true },
  { name: 'norm, hidden [6], 11 rows', dim: 5, hidden: [6], classes: 3, context: 0, rows: 11, norm: true },
  { name: 'norm, hidden [16, 8, 6], 40 inputs with 60% zeros, 12 rows', dim: 40, hidden: [16, 8, 6], classes: 5, context: 0, rows: 12, zeros: 0.6, norm: true },
  { name: 'norm, hidden [5, 4] with a context of 2, 3 rows', dim: 3, hidden: [5, 4], classes: 3, context: 2, rows: 3, norm: true },
  { name: 'norm, hidden [7, 5, 4] with a context of 3, 9 rows', dim: 6, hidden: [7, 5, 4], classes: 4, context: 3, rows: 9, norm: true },
  { name: 'norm, hidden [3], N = 2, context 3, 1 row', dim: 2, hidden: [3], classes: 2, context: 3, rows: 1, norm: true },
];

for (const [k, s] of SHAPES.entries()) {
  test(`fast loss, gradient, Hessian-vector product and input gradient = the float64 reference: ${s.name}`, () => {
    const layout = mlpLayout(s.dim, s.hidden, s.classes, s.context, s.norm ?? false);
    const same = s.norm ? identical : sameSums;
    const R = s.rows;
    const V = layout.vector;
    const x = withZeros((R + 1) * s.dim, 200 + k, 1, -2, 2, s.zeros ?? 0);
    const y = randomClassLabels(R + 1, s.classes, 200 + k, 2);
    // Offsets on every operand (the second row onwards, a parameter vector at 3, outputs at 2).
    const rows: MlpRows = { x, xOff: s.dim, xStride: s.dim, y, yOff: 1, rows: R };
    const params = new Float32Array(V + 3);
    params.set(randomParams(layout, 200 + k), 3);
    const v = new Float64Array(V + 1);
    v.set(randomParams(layout, 300 + k), 1);

    const got = new Float64Array(V + 2).fill(Number.NaN);
    const expected = new Float64Array(V + 2).fill(Number.NaN);
    const a = fastLossGrad(layout, params, 3, rows, got, 2);
    const b = mlpLossGrad(layout, params, 3, rows, expected, 2);
    same('loss', [a.loss], [b.loss]);
    assert.is(a.accuracy, b.accuracy);
    same('∇L', got.subarray(2), expected.subarray(2));
    assert.equal(fastLossGrad(layout, params, 3, rows, null), a, 'without a gradient');

    got.fill(Number.NaN);
    expected.fill(Number.NaN);
    fastHvp(layout, params, 3, rows, v, 1, got, 2);
    mlpHvp(layout, params, 3, rows, v, 1, expected, 2);
    same('H·v', got.subarray(2), expected.subarray(2));
    // CAML's direction (0 outside φ) through the public fastHvp as well.
    if (s.context > 0) {
      const vPhi = new Float64Array(V + 1);
      vPhi.set(v.subarray(1 + layout.contextOffset, 1 + layout.contextOffset + s.context), 1 + layout.contextOffset);
      got.fill(Number.NaN);
      expected.fill(Number.NaN);
      fastHvp(layout, params, 3, rows, vPhi, 1, got, 2);
      mlpHvp(layout, params, 3, rows, vPhi, 1, expected, 2);
      same('H·(0, v_φ)', got.subarray(2), expected.subarray(2));
    }

    for (const float32 of [false, true]) {
      const gx = new Float64Array(R * s.dim);
      const ex = new Float64Array(R * s.dim);
      fastInputGrad(layout, params, 3, rows, gx, { float32 });
      mlpInputGrad(layout, params, 3, rows, ex, { float32 });
      same(`∇x (float32 ${float32})`, gx, ex);
    }
  });
}

// ---- The MAML core -------------------------------------------------------------------------------

/** The MAML core composed of the reference's functions (the pre-fast src/cpu/model-task.ts algorithm),
 * with per-task vectors stored as `make` makes them: float32 (as the engine) or float64 (the oracle). */
function referenceCore(out: Record<keyof ModelTaskOutputs, Floats>, support: RowSet, query: RowSet, theta: Floats, p: ModelTaskParams, make: (n: number) => Floats): void {
  const { layout, dim: D, supportRows: Ks, queryRows: Kq, innerSteps: n, innerLr: alpha } = p;
  if (layout.kind !== 'mlp') throw new Error('the MLP reference core takes MLP layouts');
  const V = layout.vector;
  const contextEnd = layout.contextOffset + layout.context;
  const [mLo, mHi] = p.adapt === 'all' ? [0, contextEnd] : [layout.contextOffset, contextEnd];
  const secondOrder = p.wantMetaGrad && p.order === 2;
  const points = make(n * V);
  const perturbed = make(V);
  const grad = new Float64Array(V);
  for (let t = 0; t < p.tasks; t++) {
    const slot = p.outSet * p.tasks + t;
    const own = slot * V;
    const s: MlpRows = { x: support.x, xOff: t * Ks * D, xStride: D, y: support.y, yOff: t * Ks, rows: Ks };
    const q: MlpRows = { x: query.x, xOff: t * Kq * D, xStride: D, y: query.y, yOff: t * Kq, rows: Kq };
    const thetaOff = p.thetaPerTask ? t * V : 0;
    out.adapted.set(theta.subarray(thetaOff, thetaOff + V), own);
    if (p.adapt === 'context') out.adapted.fill(0, own + layout.contextOffset, own + contextEnd);
    for (let step = 0; step < n; step++) {
      let point = out.adapted;
      let pointOff = own;
      if (p.perturb) {
        perturbed.set(out.adapted.subarray(own, own + V));
        for (let i = 0; i < p.perturb.steps; i++) {
          mlpLossGrad(layout, perturbed, 0, s, grad);
          for (const [start, stop] of layout.tensors) {
            for (let k = start; k < stop; k++) perturbed[k] += p.perturb.lr * grad[k];
            let sq = 0;
            for (let k = start; k < stop; k++) sq += (perturbed[k] - out.adapted[own + k]) ** 2;
            const norm = Math.sqrt(sq);
            if (norm > p.perturb.radius) for (let k = start; k < stop; k++) perturbed[k] = out.adapted[own + k] + (p.perturb.radius / norm) * (perturbed[k] - out.adapted[own + k]);
          }
        }
        point = perturbed;
        pointOff = 0;
      }
      points.set(point.subarray(pointOff, pointOff + V), step * V);
      mlpLossGrad(layout, point, pointOff, s, grad);
      for (let k = mLo; k < mHi; k++) out.adapted[own + k] -= alpha * grad[k];
    }
    if (p.writeBack) theta.set(out.adapted.subarray(own, own + V), t * V);
    const stats = mlpLossGrad(layout, out.adapted, own, q, p.wantMetaGrad ? grad : null);
    out.taskStats[2 * slot] = stats.loss;
    out.taskStats[2 * slot + 1] = stats.accuracy;
    if (!p.wantMetaGrad) continue;
    if (secondOrder) {
      const direction = new Float64Array(V);
      const hv = new Float64Array(V);
      for (let step = n - 1; step >= 0; step--) {
        direction.fill(0);
        for (let k = mLo; k < mHi; k++) direction[k] = grad[k];
        mlpHvp(layout, points, step * V, s, direction, 0, hv);
        for (let k = 0; k < V; k++) grad[k] -= alpha * hv[k];
      }
    }
    grad.fill(0, layout.params);
    out.metaGrad.set(grad, own);
  }
}

interface CoreCase {
  name: string;
  dim: number;
  hidden: number[];
  classes: number;
  context: number;
  tasks: number;
  Ks: number;
  Kq: number;
  zeros?: number;
  norm?: boolean;
  p: Partial<ModelTaskParams>;
}

const CORE_CASES: CoreCase[] = [
  { name: 'MAML order 2, hidden []', dim: 7, hidden: [], classes: 3, context: 0, tasks: 3, Ks: 5, Kq: 4, p: { order: 2 } },
  { name: 'MAML order 2, 2 inner steps, 13 inputs, 7 support rows', dim: 13, hidden: [9, 6], classes: 4, context: 0, tasks: 3, Ks: 7, Kq: 5, p: { order: 2, innerSteps: 2 } },
  { name: 'MAML order 1, 3 inner steps, sparse inputs', dim: 40, hidden: [16, 8], classes: 5, context: 0, tasks: 3, Ks: 5, Kq: 5, zeros: 0.7, p: { order: 1, innerSteps: 3 } },
  { name: 'MAML order 2 on every entry of a vector with a context (φ adapted too)', dim: 5, hidden: [6], classes: 3, context: 2, tasks: 2, Ks: 6, Kq: 3, p: { order: 2, innerSteps: 2 } },
  { name: 'CAML order 2, 2 inner steps, context 3', dim: 6, hidden: [7, 5], classes: 3, context: 3, tasks: 3, Ks: 5, Kq: 4, p: { order: 2, innerSteps: 2, adapt: 'context' } },
  { name: 'CAML order 1, context 2', dim: 6, hidden: [7], classes: 3, context: 2, tasks: 2, Ks: 4, Kq: 4, p: { order: 1, innerSteps: 2, adapt: 'context' } },
  { name: 'AMP inner optimizer, order 2, 2 inner steps', dim: 9, hidden: [8, 5], classes: 4, context: 0, tasks: 3, Ks: 5, Kq: 5, p: { order: 2, innerSteps: 2, perturb: { steps: 2, lr: 0.5, radius: 0.05 } } },
  { name: 'AMP with CAML, order 2', dim: 6, hidden: [5], classes: 3, context: 2, tasks: 2, Ks: 5, Kq: 4, p: { order: 2, innerSteps: 2, adapt: 'context', perturb: { steps: 1, lr: 0.5, radius: 0.05 } } },
  { name: 'no meta-gradient, 0 inner steps', dim: 5, hidden: [4], classes: 3, context: 0, tasks: 2, Ks: 3, Kq: 3, p: { wantMetaGrad: false, innerSteps: 0 } },
  { name: 'order 2 with 0 inner steps (the query gradient)', dim: 5, hidden: [4], classes: 3, context: 0, tasks: 2, Ks: 3, Kq: 3, p: { order: 2, innerSteps: 0 } },
  { name: 'per-task θ with writeBack, order 2 (θ_t overwritten before the backward)', dim: 5, hidden: [6], classes: 3, context: 0, tasks: 3, Ks: 4, Kq: 4, p: { order: 2, innerSteps: 2, thetaPerTask: true, writeBack: true } },
  { name: 'output set 1 of 2', dim: 4, hidden: [5], classes: 3, context: 0, tasks: 2, Ks: 10, Kq: 11, p: { order: 2, outSet: 1 } },
  // Per-task normalisation (the support tapes kept for the order-2 backward hold n, g, s and κ).
  { name: 'norm, MAML order 2, 2 inner steps, hidden [9, 6], 7 support rows', dim: 13, hidden: [9, 6], classes: 4, context: 0, tasks: 3, Ks: 7, Kq: 5, norm: true, p: { order: 2, innerSteps: 2 } },
  { name: 'norm, MAML order 2, hidden [6, 5, 4], 11 support rows', dim: 7, hidden: [6, 5, 4], classes: 3, context: 0, tasks: 2, Ks: 11, Kq: 6, norm: true, p: { order: 2, innerSteps: 2 } },
  { name: 'norm, MAML order 1, 3 inner steps, sparse inputs, hidden [16]', dim: 40, hidden: [16], classes: 5, context: 0, tasks: 3, Ks: 5, Kq: 5, zeros: 0.7, norm: true, p: { order: 1, innerSteps: 3 } },
  { name: 'norm, MAML order 2 on a vector with a context (φ adapted too), 1 support row', dim: 5, hidden: [6], classes: 3, context: 2, tasks: 2, Ks: 1, Kq: 3, norm: true, p: { order: 2, innerSteps: 2 } },
  { name: 'norm, CAML order 2, 2 inner steps, context 3', dim: 6, hidden: [7, 5], classes: 3, context: 3, tasks: 3, Ks: 5, Kq: 4, norm: true, p: { order: 2, innerSteps: 2, adapt: 'context' } },
  { name: 'norm, CAML order 1, context 2', dim: 6, hidden: [7], classes: 3, context: 2, tasks: 2, Ks: 4, Kq: 4, norm: true, p: { order: 1, innerSteps: 2, adapt: 'context' } },
  { name: 'norm, AMP inner optimizer, order 2', dim: 9, hidden: [8, 5], classes: 4, context: 0, tasks: 3, Ks: 5, Kq: 5, norm: true, p: { order: 2, innerSteps: 2, perturb: { steps: 2, lr: 0.5, radius: 0.05 } } },
  { name: 'norm, AMP with CAML, order 2', dim: 6, hidden: [5], classes: 3, context: 2, tasks: 2, Ks: 5, Kq: 4, norm: true, p: { order: 2, innerSteps: 2, adapt: 'context', perturb: { steps: 1, lr: 0.5, radius: 0.05 } } },
  { name: 'norm, per-task θ with writeBack, order 2', dim: 5, hidden: [6], classes: 3, context: 0, tasks: 3, Ks: 4, Kq: 4, norm: true, p: { order: 2, innerSteps: 2, thetaPerTask: true, writeBack: true } },
];

for (const [k, c] of CORE_CASES.entries()) {
  test(`MAML core on the fast kernels = the reference composition (float32 bits; float64 oracle within float32 tolerance): ${c.name}`, () => {
    const layout = mlpLayout(c.dim, c.hidden, c.classes, c.context, c.norm ?? false);
    const V = layout.vector;
    const seed = 400 + k;
    const support = { x: withZeros(c.tasks * c.Ks * c.dim, seed, 1, -2, 2, c.zeros ?? 0), y: randomClassLabels(c.tasks * c.Ks, c.classes, seed, 2) };
    const query = { x: withZeros(c.tasks * c.Kq * c.dim, seed, 3, -2, 2, c.zeros ?? 0), y: randomClassLabels(c.tasks * c.Kq, c.classes, seed, 4) };
    const p: ModelTaskParams = {
      tasks: c.tasks, supportRows: c.Ks, queryRows: c.Kq, dim: c.dim, innerSteps: 1, order: 2, wantMetaGrad: true, innerLr: 0.4, outSet: 0,
      layout, adapt: 'all', thetaPerTask: false, perturb: null, ...c.p,
    };
    const models = p.thetaPerTask ? c.tasks : 1;
    const theta = new Float32Array(models * V);
    for (let m = 0; m < models; m++) {
      const init = mlpInit(layout, seed + m);
      for (const l of layout.layers) for (let j = l.b; j < l.b + l.outputs; j++) init[j] = 0.3 * (uniform01(seed + m, 9, j) - 0.5);
      theta.set(init, m * V);
    }
    const sets = p.outSet + 1;
    const sizes = modelTaskScratchSizes({ tasks: c.tasks, layout }, sets);
    const outputs = (make: (n: number) => Floats) => ({ adapted: make(sizes.adapted), metaGrad: make(sizes.metaGrad), taskStats: make(sizes.taskStats) });
    const f32 = (n: number) => new Float32Array(n);
    const f64 = (n: number) => new Float64Array(n);

    const fast = outputs(f32) as ModelTaskOutputs;
    const fastTheta = theta.slice();
    modelAdaptAndMetaGrad(fast, support, query, fastTheta, p);

    const ref32 = outputs(f32);
    const refTheta32 = theta.slice();
    referenceCore(ref32, support, query, refTheta32, p, f32);
    assert.equal(Array.from(fast.adapted), Array.from(ref32.adapted), 'adapted: the same bits');
    assert.equal(Array.from(fast.metaGrad), Array.from(ref32.metaGrad), 'meta-gradient: the same bits');
    assert.equal(Array.from(fast.taskStats), Array.from(ref32.taskStats), 'statistics: the same bits');
    assert.equal(Array.from(fastTheta), Array.from(refTheta32), 'θ after writeBack');

    const ref64 = outputs(f64);
    referenceCore(ref64, support, query, Float64Array.from(theta), p, f64);
    assertClose('adapted vs float64', fast.adapted, ref64.adapted, 2e-6, 1e-4);
    assertClose('meta-gradient vs float64', fast.metaGrad, ref64.metaGrad, 2e-6, 1e-4);
    assertClose('statistics vs float64', fast.taskStats, ref64.taskStats, 2e-6, 1e-4);
    if (p.wantMetaGrad) assert.ok(fast.metaGrad.some((g) => g !== 0), 'a meta-gradient was written');
    // A task range alone gives the same bits (the worker threads' split).
    const split = outputs(f32) as ModelTaskOutputs;
    const splitTheta = theta.slice();
    modelAdaptAndMetaGrad(split, support, query, splitTheta, p, [1, c.tasks]);
    modelAdaptAndMetaGrad(split, support, query, splitTheta, p, [0, 1]);
    assert.equal(Array.from(split.metaGrad), Array.from(fast.metaGrad), 'split meta-gradient');
    assert.equal(Array.from(split.adapted), Array.from(fast.adapted), 'split adapted');
  });
}

test.run();
