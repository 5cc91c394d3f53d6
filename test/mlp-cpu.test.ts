// The CPU reference of the MLP model (src/cpu/mlp.ts) and the generic MAML core over it
// (src/cpu/model-task.ts), checked against independent oracles: central finite differences in float64
// (gradients, Hessian-vector products, input gradients, meta-gradients through the inner loop, CAML's
// gradient through φ's adaptation), identities (N = 2 softmax = logistic unit; order 1 = query gradient
// at θ'; AMP with ε = 0 = SGD; a task split across threads = one thread) and the attack's guarantees.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mlpLayout, mlpInit, type MlpLayout } from '../src/models/mlp.js';
import { mlpHvp, mlpInputGrad, mlpLossGrad, type MlpRows } from '../src/cpu/mlp.js';
import { modelAdaptAndMetaGrad, modelAttack, modelPerturb, modelScore, modelTaskScratchSizes, type ModelTaskOutputs, type ModelTaskParams } from '../src/cpu/model-task.js';
import type { AttackParams } from '../src/cpu/fgsm.js';
import { CpuEngine } from '../src/schedule/cpu-engine.js';
import type { Algorithm, CheckedBatch, ResolvedLearnerOptions } from '../src/types.js';
import { applyDefaults } from '../src/algorithms/index.js';
import { uniform01 } from '../src/rng.js';
import { assertClose, centralDifferences, randomArray, randomClassLabels, thrown } from './helpers.js';
import { episode, outputsFor, paramsFor, sgd, thetaOf, type Episode } from './mlp-episode.js';

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

/** Random parameters over the whole vector (φ included when the layout has a context; pad 0). */
function randomVector(layout: MlpLayout, seed: number, scale = 1): Float64Array {
  const v = f64(randomArray(layout.vector, seed, 11, -scale, scale));
  v.fill(0, layout.contextOffset + layout.context);
  return v;
}

const rowsOf = (x: Float32Array | Float64Array, y: Float32Array, rows: number, dim: number, task = 0): MlpRows =>
  ({ x, xOff: task * rows * dim, xStride: dim, y, yOff: task * rows, rows });

const lossAt = (layout: MlpLayout, rows: MlpRows) => (params: Float64Array) => mlpLossGrad(layout, params, 0, rows, null).loss;

const CONFIGS = [
  { name: 'hidden [] (multinomial logistic)', dim: 4, hidden: [] as number[], classes: 3, context: 0 },
  { name: 'hidden [6]', dim: 5, hidden: [6], classes: 4, context: 0 },
  { name: 'hidden [5, 4] with a context of 2', dim: 3, hidden: [5, 4], classes: 3, context: 2 },
  { name: 'hidden [3], N = 2, context 3', dim: 2, hidden: [3], classes: 2, context: 3 },
  // Per-task normalisation couples the rows: its Jacobian and the R-operator's extra terms.
  { name: 'hidden [6, 5], per-task norm', dim: 4, hidden: [6, 5], classes: 3, context: 0, norm: true },
  { name: 'hidden [5, 4, 3], per-task norm, context 2', dim: 3, hidden: [5, 4, 3], classes: 4, context: 2, norm: true },
];

for (const [k, c] of CONFIGS.entries()) {
  test(`gradient of the mean loss equals finite differences: ${c.name}`, () => {
    const layout = mlpLayout(c.dim, c.hidden, c.classes, c.context, c.norm ?? false);
    const R = 7;
    const x = randomArray(R * c.dim, 20 + k, 1, -2, 2);
    const y = randomClassLabels(R, c.classes, 20 + k, 2);
    const params = randomVector(layout, 20 + k);
    const rows = rowsOf(x, y, R, c.dim);
    const grad = new Float64Array(layout.vector).fill(Number.NaN);
    mlpLossGrad(layout, params, 0, rows, grad);
    assertClose('∇L (θ, φ, pad)', grad, centralDifferences(lossAt(layout, rows), params, 1e-5), 1e-8, 1e-6);
    // The pad entries hold nothing: exactly 0.
    for (let i = layout.contextOffset + layout.context; i < layout.vector; i++) assert.is(grad[i], 0);
  });

  test(`Hessian-vector product equals finite differences of the gradient: ${c.name}`, () => {
    const layout = mlpLayout(c.dim, c.hidden, c.classes, c.context, c.norm ?? false);
    const R = 6;
    const x = randomArray(R * c.dim, 30 + k, 1, -2, 2);
    const y = randomClassLabels(R, c.classes, 30 + k, 2);
    const params = randomVector(layout, 30 + k);
    const v = randomVector(layout, 130 + k);
    const rows = rowsOf(x, y, R, c.dim);
    // With an offset on every operand, to catch offset mix-ups.
    const hv = new Float64Array(layout.vector + 3).fill(Number.NaN);
    const paramsAt = new Float64Array(layout.vector + 5);
    paramsAt.set(params, 5);
    const vAt = new Float64Array(layout.vector + 2);
    vAt.set(v, 2);
    mlpHvp(layout, paramsAt, 5, rows, vAt, 2, hv, 3);
    const h = 1e-5;
    const gp = new Float64Array(layout.vector);
    const gm = new Float64Array(layout.vector);
    mlpLossGrad(layout, params.map((p, i) => p + h * v[i]), 0, rows, gp);
    mlpLossGrad(layout, params.map((p, i) => p - h * v[i]), 0, rows, gm);
    assertClose('H·v', hv.subarray(3), gp.map((g, i) => (g - gm[i]) / (2 * h)), 1e-8, 1e-6);
  });

  test(`input gradient of the set's summed loss equals finite differences: ${c.name}`, () => {
    const layout = mlpLayout(c.dim, c.hidden, c.classes, c.context, c.norm ?? false);
    const R = 5;
    const x = f64(randomArray(R * c.dim, 40 + k, 1, -2, 2));
    const y = randomClassLabels(R, c.classes, 40 + k, 2);
    const params = randomVector(layout, 40 + k);
    const got = new Float64Array(R * c.dim);
    mlpInputGrad(layout, params, 0, rowsOf(x, y, R, c.dim), got);
    // Σ_r ℓ_r = R · mean loss, as a function of the whole set's inputs (with normalisation every row
    // moves every row's loss; without it, this is row r's own loss alone).
    const summed = (xs: Float64Array) => R * mlpLossGrad(layout, params, 0, rowsOf(xs, y, R, c.dim), null).loss;
    assertClose('∇x Σ ℓ', got, centralDifferences(summed, x, 1e-5), 1e-8, 1e-6);
    if (!c.norm) {
      for (let r = 0; r < R; r++) {
        // ℓ_r alone: a one-row set (its mean is the row's loss).
        const rowLoss = (xr: Float64Array) => mlpLossGrad(layout, params, 0, { x: xr, xOff: 0, xStride: c.dim, y, yOff: r, rows: 1 }, null).loss;
        assertClose(`∇x ℓ of row ${r}`, got.subarray(r * c.dim, (r + 1) * c.dim), centralDifferences(rowLoss, x.slice(r * c.dim, (r + 1) * c.dim), 1e-5), 1e-8, 1e-6);
      }
    }
    // The float32 mode (the attack's) rounds where the GPU stores: close to the float64 values.
    const rounded = new Float64Array(R * c.dim);
    mlpInputGrad(layout, params, 0, rowsOf(x, y, R, c.dim), rounded, { float32: true });
    assertClose('float32-rounded input gradient', rounded, got, 1e-6, 1e-4);
  });
}

test('loss stays finite and exact for logits of 1e4; argmax ties go to the smallest index', () => {
  const layout = mlpLayout(2, [], 3);
  const params = new Float64Array(layout.vector);
  // W = 0, b = (1e4, −1e4, 0): every row's logits are the biases.
  params[layout.layers[0].b] = 1e4;
  params[layout.layers[0].b + 1] = -1e4;
  const x = new Float32Array(2 * 3);
  const loss = (label: number) => mlpLossGrad(layout, params, 0, rowsOf(x, new Float32Array([label, label, label]), 3, 2), null);
  assert.is(loss(0).loss, 0);              // logsumexp = 1e4 + log(1 + e^−1e4 + e^−2e4) = 1e4 in float64
  assert.is(loss(1).loss, 2e4);
  assert.is(loss(2).loss, 1e4);
  assert.is(loss(0).accuracy, 1);
  const grad = new Float64Array(layout.vector);
  mlpLossGrad(layout, params, 0, rowsOf(x, new Float32Array([1, 1, 1]), 3, 2), grad);
  assert.ok(grad.every(Number.isFinite), 'finite gradient');
  assert.is(grad[layout.layers[0].b], 1);   // p − onehot = (1, −1, 0)
  assert.is(grad[layout.layers[0].b + 1], -1);
  // Equal logits: class 0 is the prediction, so label 0 is a hit and label 1 a miss.
  const tie = new Float64Array(layout.vector);
  const y = new Float32Array([0, 1, 1]);
  const s = mlpLossGrad(layout, tie, 0, rowsOf(x, y, 3, 2), null);
  assert.is(s.accuracy, 1 / 3);
  assertClose('log 3', [s.loss], [Math.log(3)], 1e-15, 1e-12);
});

test('a 2-way softmax head without hidden layers is the logistic unit with w = W[:,1] − W[:,0]', () => {
  const D = 4, R = 9;
  const layout = mlpLayout(D, [], 2);
  const params = randomVector(layout, 50);
  const x = randomArray(R * D, 50, 1, -2, 2);
  const y = randomClassLabels(R, 2, 50, 2);
  const { w, b } = layout.layers[0];
  const wLogistic = (d: number) => params[w + d * 2 + 1] - params[w + d * 2];
  const bias = params[b + 1] - params[b];
  let bce = 0;
  let hits = 0;
  const gradW = new Float64Array(D);
  for (let r = 0; r < R; r++) {
    let a = bias;
    for (let d = 0; d < D; d++) a += x[r * D + d] * wLogistic(d);
    const p = 1 / (1 + Math.exp(-a));
    bce += -(y[r] * Math.log(p) + (1 - y[r]) * Math.log(1 - p));
    if ((p >= 0.5) === (y[r] === 1)) hits++;
    for (let d = 0; d < D; d++) gradW[d] += ((p - y[r]) * x[r * D + d]) / R;
    // The row's softmax probability of class 1, from the row's loss with label 1: p1 = exp(−ℓ).
    const p1 = Math.exp(-mlpLossGrad(layout, params, 0, { x, xOff: r * D, xStride: D, y: new Float32Array([1]), yOff: 0, rows: 1 }, null).loss);
    assertClose(`p(class 1) of row ${r}`, [p1], [p], 1e-14, 1e-12);
  }
  const grad = new Float64Array(layout.vector);
  const s = mlpLossGrad(layout, params, 0, rowsOf(x, y, R, D), grad);
  assertClose('loss', [s.loss], [bce / R], 1e-14, 1e-12);
  assert.is(s.accuracy, hits / R);
  // ∂L/∂W[:,1] = ∇w of the logistic loss and ∂L/∂W[:,0] its negative.
  assertClose('∂L/∂W[:,1]', Array.from({ length: D }, (_, d) => grad[w + 2 * d + 1]), gradW, 1e-14, 1e-12);
  assertClose('∂L/∂W[:,0]', Array.from({ length: D }, (_, d) => -grad[w + 2 * d]), gradW, 1e-14, 1e-12);
});

// ---- The MAML core -------------------------------------------------------------------------------







const taskRows = (e: Episode, t: number) => ({
  s: rowsOf(e.support.x, e.support.y, e.Ks, e.layout.dim, t),
  q: rowsOf(e.query.x, e.query.y, e.Kq, e.layout.dim, t),
});

test('one small inner step lowers every task\'s support loss', () => {
  const e = episode(5, [8, 6], 4, 4, 10, 5, 60);
  const theta = thetaOf(e.layout, 60);
  const out = outputsFor(e);
  modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { innerLr: 0.01, wantMetaGrad: false }));
  for (let t = 0; t < e.tasks; t++) {
    const { s } = taskRows(e, t);
    const before = mlpLossGrad(e.layout, theta, 0, s, null).loss;
    const after = mlpLossGrad(e.layout, out.adapted, t * e.layout.vector, s, null).loss;
    assert.ok(after < before, `task ${t}: support loss ${before} → ${after}`);
  }
});

test('MAML order 2: the meta-gradient equals finite differences of the query loss after 2 inner steps', () => {
  const e = episode(4, [6, 5], 3, 3, 6, 7, 61);
  const theta = thetaOf(e.layout, 61);
  const sets = 2;
  const out = outputsFor(e, sets);
  // Set 1, to check the slot arithmetic too.
  modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { innerSteps: 2, innerLr: 0.4, outSet: 1 }));
  const V = e.layout.vector;
  for (let t = 0; t < e.tasks; t++) {
    const { s, q } = taskRows(e, t);
    const objective = (th: Float64Array) => mlpLossGrad(e.layout, sgd(e.layout, th, s, 0.4, 2, 0, V), 0, q, null).loss;
    const slot = e.tasks + t;
    const expected = centralDifferences(objective, f64(theta), 1e-5);
    assertClose(`meta-gradient of task ${t}`, out.metaGrad.subarray(slot * V, (slot + 1) * V), expected, 2e-6, 2e-4);
    assertClose(`adapted θ' of task ${t}`, out.adapted.subarray(slot * V, (slot + 1) * V), sgd(e.layout, f64(theta), s, 0.4, 2, 0, V), 1e-6, 1e-5);
    assertClose(`query loss of task ${t}`, [out.taskStats[2 * slot]], [objective(f64(theta))], 1e-6, 1e-5);
  }
  // Set 0 untouched.
  assert.ok(out.metaGrad.subarray(0, e.tasks * V).every((v) => v === 0));
});

test('MAML order 1: the meta-gradient is the query gradient at θ\' (with AMP as the inner optimizer too)', () => {
  for (const perturb of [null, { steps: 2, lr: 0.5, radius: 0.05 }]) {
    const e = episode(3, [4], 3, 2, 5, 6, 62);
    const theta = thetaOf(e.layout, 62);
    const out = outputsFor(e);
    modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { innerSteps: 3, order: 1, perturb }));
    const V = e.layout.vector;
    for (let t = 0; t < e.tasks; t++) {
      const g = new Float32Array(V);
      mlpLossGrad(e.layout, out.adapted, t * V, taskRows(e, t).q, g);
      assert.equal(Array.from(out.metaGrad.subarray(t * V, (t + 1) * V)), Array.from(g), `task ${t}, perturb ${JSON.stringify(perturb)}`);
    }
  }
});

test('CAML order 2: the gradient of θ equals finite differences through φ\'s adaptation; the inner loop moves only φ', () => {
  const e = episode(3, [5], 3, 2, 6, 5, 63, false, 2);
  const { layout } = e;
  const V = layout.vector;
  const theta = thetaOf(layout, 63);
  const [cLo, cHi] = [layout.contextOffset, layout.contextOffset + layout.context];
  // Garbage in θ's context entries: the task's φ starts at 0 regardless.
  const dirty = theta.slice();
  dirty.fill(0.7, cLo, cHi);
  const out = outputsFor(e);
  modelAdaptAndMetaGrad(out, e.support, e.query, dirty, paramsFor(e, { adapt: 'context', innerSteps: 2, innerLr: 0.8 }));
  for (let t = 0; t < e.tasks; t++) {
    const { s, q } = taskRows(e, t);
    const objective = (th: Float64Array) => {
      const start = th.slice();
      start.fill(0, cLo, cHi);
      return mlpLossGrad(layout, sgd(layout, start, s, 0.8, 2, cLo, cHi), 0, q, null).loss;
    };
    const expected = centralDifferences(objective, f64(theta), 1e-5);
    assertClose(`CAML meta-gradient of task ${t}`, out.metaGrad.subarray(t * V, (t + 1) * V), expected, 2e-6, 2e-4);
    const adapted = out.adapted.subarray(t * V, (t + 1) * V);
    assert.equal(Array.from(adapted.subarray(0, cLo)), Array.from(theta.subarray(0, cLo)), 'the shared parameters do not move');
    assert.ok(adapted.subarray(cLo, cHi).some((v) => v !== 0), 'φ moved');
    const start = f64(theta);
    assertClose(`φ of task ${t}`, adapted.subarray(cLo, cHi), sgd(layout, start, s, 0.8, 2, cLo, cHi).subarray(cLo, cHi), 1e-6, 1e-5);
    for (let i = cLo; i < V; i++) assert.is(out.metaGrad[t * V + i], 0, 'φ and pad entries of the meta-gradient are 0');
  }
  // Order 1 treats φ as a constant: the query gradient at (θ, φ_n), φ entries zeroed.
  const first = outputsFor(e);
  modelAdaptAndMetaGrad(first, e.support, e.query, theta, paramsFor(e, { adapt: 'context', innerSteps: 2, innerLr: 0.8, order: 1 }));
  for (let t = 0; t < e.tasks; t++) {
    const g = new Float32Array(V);
    mlpLossGrad(layout, first.adapted, t * V, taskRows(e, t).q, g);
    g.fill(0, cLo);
    assert.equal(Array.from(first.metaGrad.subarray(t * V, (t + 1) * V)), Array.from(g));
  }
});

test('AMP with radius 0 is plain SGD (adapted, statistics and order-2 meta-gradient, bit for bit)', () => {
  const e = episode(4, [5, 3], 3, 3, 6, 4, 64);
  const theta = thetaOf(e.layout, 64);
  const plain = outputsFor(e);
  const amp = outputsFor(e);
  modelAdaptAndMetaGrad(plain, e.support, e.query, theta, paramsFor(e, { innerSteps: 2 }));
  modelAdaptAndMetaGrad(amp, e.support, e.query, theta, paramsFor(e, { innerSteps: 2, perturb: { steps: 3, lr: 2, radius: 0 } }));
  assert.equal(Array.from(amp.adapted), Array.from(plain.adapted));
  assert.equal(Array.from(amp.taskStats), Array.from(plain.taskStats));
  assert.equal(Array.from(amp.metaGrad), Array.from(plain.metaGrad));
});

test('AMP\'s perturbation is clipped per tensor, leaves φ and pad alone, and the inner step takes the gradient there', () => {
  const e = episode(3, [4], 3, 1, 6, 4, 65, false, 2);
  const { layout } = e;
  const V = layout.vector;
  const theta = thetaOf(layout, 65);
  theta.fill(0.25, layout.contextOffset, layout.contextOffset + layout.context);
  const { s } = taskRows(e, 0);
  const radius = 0.05;
  // One ascent step with a big ζ: Δ of each tensor is ε·g_k/‖g_k‖ (every tensor's gradient is non-zero).
  const perturbed = new Float32Array(V);
  modelPerturb(perturbed, theta, 0, s, layout, { steps: 1, lr: 100, radius }, new Float64Array(V));
  const g = new Float64Array(V);
  mlpLossGrad(layout, theta, 0, s, g);
  for (const [start, stop] of layout.tensors) {
    let norm = 0;
    for (let k = start; k < stop; k++) norm += g[k] ** 2;
    norm = Math.sqrt(norm);
    assert.ok(norm > 0);
    const expected = Array.from({ length: stop - start }, (_, i) => theta[start + i] + (radius * g[start + i]) / norm);
    assertClose(`θ + Δ on tensor [${start}, ${stop})`, perturbed.subarray(start, stop), expected, 1e-7, 1e-6);
  }
  assert.equal(Array.from(perturbed.subarray(layout.params)), Array.from(theta.subarray(layout.params)), 'φ and pad are not perturbed');
  // Several steps: each tensor's ‖Δ‖ stays within ε (float32 rounding aside).
  modelPerturb(perturbed, theta, 0, s, layout, { steps: 4, lr: 3, radius }, new Float64Array(V));
  for (const [start, stop] of layout.tensors) {
    let sq = 0;
    for (let k = start; k < stop; k++) sq += (perturbed[k] - theta[k]) ** 2;
    assert.ok(Math.sqrt(sq) <= radius * (1 + 1e-5), `‖Δ‖ of [${start}, ${stop}) = ${Math.sqrt(sq)}`);
  }
  // The inner step is θ − α ∇L(θ + Δ; S) on every parameter.
  const out = outputsFor(e);
  const perturb = { steps: 4, lr: 3, radius };
  modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { innerLr: 0.3, perturb, wantMetaGrad: false }));
  const gp = new Float64Array(V);
  mlpLossGrad(layout, perturbed, 0, s, gp);
  assertClose('θ\' = θ − α ∇L(θ + Δ)', out.adapted, Array.from(theta, (v, k) => v - 0.3 * gp[k]), 1e-7, 1e-6);
});

test('AMP trainer: writeBack stores each task\'s adapted vector into its own θ_t', () => {
  const e = episode(3, [4], 3, 3, 5, 4, 66);
  const V = e.layout.vector;
  const theta = new Float32Array(e.tasks * V);
  for (let t = 0; t < e.tasks; t++) theta.set(thetaOf(e.layout, 66 + t), t * V);
  const before = theta.slice();
  const out = outputsFor(e);
  modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { thetaPerTask: true, writeBack: true, wantMetaGrad: false, innerLr: 0.2, perturb: { steps: 1, lr: 0.5, radius: 0.1 } }));
  assert.equal(Array.from(theta), Array.from(out.adapted));
  for (let t = 0; t < e.tasks; t++) {
    // Each task adapted from its own model.
    const alone = outputsFor({ ...e, tasks: 1 });
    const rows = { x: e.support.x.subarray(t * e.Ks * 3, (t + 1) * e.Ks * 3), y: e.support.y.subarray(t * e.Ks, (t + 1) * e.Ks) };
    const qrows = { x: e.query.x.subarray(t * e.Kq * 3, (t + 1) * e.Kq * 3), y: e.query.y.subarray(t * e.Kq, (t + 1) * e.Kq) };
    modelAdaptAndMetaGrad(alone, rows, qrows, before.slice(t * V, (t + 1) * V), paramsFor({ ...e, tasks: 1 }, { wantMetaGrad: false, innerLr: 0.2, perturb: { steps: 1, lr: 0.5, radius: 0.1 } }));
    assert.equal(Array.from(alone.adapted), Array.from(theta.subarray(t * V, (t + 1) * V)));
  }
});

// ---- Attacks -------------------------------------------------------------------------------------

const fgsm = (epsilon: number, lo = -1e30, hi = 1e30): AttackParams => ({ kind: 'fgsm', epsilon, steps: 1, stepSize: epsilon, lo, hi });
const pgd = (epsilon: number, steps: number, lo = -1e30, hi = 1e30): AttackParams => ({ kind: 'pgd', epsilon, steps, stepSize: (2.5 * epsilon) / steps, lo, hi });

test('FGSM steps each feature by ε along the sign of the finite-difference input gradient', () => {
  const e = episode(4, [6], 3, 2, 5, 5, 70);
  const theta = thetaOf(e.layout, 70);
  const eps = 0.1;
  const adv = new Float32Array(e.support.x.length);
  modelAttack(adv, e.support, theta, { tasks: e.tasks, rows: e.Ks, dim: 4, paramStride: 0 }, fgsm(eps), e.layout);
  let checked = 0;
  for (let t = 0; t < e.tasks; t++) {
    for (let r = 0; r < e.Ks; r++) {
      const off = (t * e.Ks + r) * 4;
      const rowLoss = (xr: Float64Array) => mlpLossGrad(e.layout, theta, 0, { x: xr, xOff: 0, xStride: 4, y: e.support.y, yOff: t * e.Ks + r, rows: 1 }, null).loss;
      const g = centralDifferences(rowLoss, f64(e.support.x.subarray(off, off + 4)), 1e-6);
      for (let d = 0; d < 4; d++) {
        if (Math.abs(g[d]) < 1e-6) continue;  // sign too close to call
        assert.is(adv[off + d], Math.fround(e.support.x[off + d] + eps * Math.sign(g[d])), `task ${t} row ${r} feature ${d}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 30);
});

test('attacks keep |x_adv − x| ≤ ε and [lo, hi]; on a convex head they never lower a row\'s loss nor raise accuracy', () => {
  // No hidden layer: each row's loss is convex in x, so a step along sign(∇x ℓ) never lowers it.
  for (const classes of [2, 4]) {
    const e = episode(5, [], classes, 6, 8, 8, 71 + classes);
    const theta = thetaOf(e.layout, 71);
    for (const attack of [fgsm(0.3, -1.5, 1.5), pgd(0.3, 5, -1.5, 1.5)]) {
      const shape = { tasks: e.tasks, rows: e.Kq, dim: 5, paramStride: 0 };
      const adv = new Float32Array(e.query.x.length);
      modelAttack(adv, e.query, theta, shape, attack, e.layout);
      for (let i = 0; i < adv.length; i++) {
        const x0 = e.query.x[i];
        assert.ok(adv[i] >= -1.5 && adv[i] <= 1.5, `x_adv[${i}] = ${adv[i]} within [lo, hi]`);
        // Clean values outside [lo, hi] are clipped into it, however far that is.
        if (x0 >= -1.5 && x0 <= 1.5) assert.ok(adv[i] >= Math.fround(x0 - 0.3) && adv[i] <= Math.fround(x0 + 0.3), `x_adv[${i}] = ${adv[i]}, x = ${x0}`);
      }
      for (let t = 0; t < e.tasks; t++) {
        for (let r = 0; r < e.Kq; r++) {
          const one = (x: Float32Array) => mlpLossGrad(e.layout, theta, 0, { x, xOff: (t * e.Kq + r) * 5, xStride: 5, y: e.query.y, yOff: t * e.Kq + r, rows: 1 }, null);
          // Clipping to [lo, hi] can make a PGD step undo part of an earlier one; FGSM from the clean row cannot.
          if (attack.kind === 'fgsm' && e.query.x.subarray((t * e.Kq + r) * 5, (t * e.Kq + r + 1) * 5).every((v) => v >= -1.2 && v <= 1.2)) {
            assert.ok(one(adv).loss >= one(e.query.x).loss - 1e-12, `row loss fell: task ${t} row ${r}`);
          }
          // Two classes: a miss has loss ≥ log 2 > a hit's, so a loss that does not fall cannot turn a miss into a hit.
          if (classes === 2 && attack.kind === 'fgsm') assert.ok(one(adv).accuracy <= one(e.query.x).accuracy);
        }
      }
    }
  }
});

test('attacks against each task\'s adapted vector lower accuracy on a hidden-layer net; PGD is at least as strong as FGSM', () => {
  const e = episode(6, [16], 3, 8, 12, 12, 73);
  const theta = thetaOf(e.layout, 73);
  const V = e.layout.vector;
  const out = outputsFor(e);
  modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { innerSteps: 3, innerLr: 0.5, wantMetaGrad: false }));
  const shape = { tasks: e.tasks, rows: e.Kq, dim: 6, paramStride: V };
  const clean = new Float32Array(2 * e.tasks);
  modelScore(clean, e.query.x, e.query.y, out.adapted, shape, e.layout);
  assertClose('clean scores = the pass\'s query statistics', clean, out.taskStats, 0, 0);
  const mean = (s: Float32Array, i: number) => Array.from({ length: e.tasks }, (_, t) => s[2 * t + i]).reduce((a, b) => a + b) / e.tasks;
  const scores: Record<string, Float32Array> = {};
  for (const [name, attack] of Object.entries({ fgsm: fgsm(0.5), pgd: pgd(0.5, 10) })) {
    const adv = new Float32Array(e.query.x.length);
    modelAttack(adv, e.query, out.adapted, shape, attack, e.layout);
    for (let i = 0; i < adv.length; i++) assert.ok(Math.abs(adv[i] - e.query.x[i]) <= 0.5 * (1 + 1e-6));
    scores[name] = new Float32Array(2 * e.tasks);
    modelScore(scores[name], adv, e.query.y, out.adapted, shape, e.layout);
    assert.ok(mean(scores[name], 1) < mean(clean, 1), `${name} accuracy ${mean(scores[name], 1)} < clean ${mean(clean, 1)}`);
    assert.ok(mean(scores[name], 0) > mean(clean, 0), `${name} loss rises`);
  }
  assert.ok(mean(scores.pgd, 0) >= mean(scores.fgsm, 0), 'PGD loss ≥ FGSM loss');
});

test('the attack takes its gradient sign on float32-rounded values, as the GPU stores them', () => {
  // hidden []: logits = x W + b. Row label 0, b_0 far above the others.
  const layout = mlpLayout(2, [], 3);
  const { w, b } = layout.layers[0];
  const theta = new Float32Array(layout.vector);
  // W[d, c]: d = 0 → (0.5, 0.1, 0.2), d = 1 → (−0.5, −0.1, −0.2).
  theta.set([0.5, 0.1, 0.2, -0.5, -0.1, -0.2], w);
  const x = new Float32Array([0.1, 0.3]);
  const y = new Float32Array([0]);
  const attackRow = (gap: number) => {
    theta[b] = gap;
    const adv = new Float32Array(2);
    modelAttack(adv, { x, y }, theta, { tasks: 1, rows: 1, dim: 2, paramStride: 0 }, fgsm(0.1), layout);
    return adv;
  };
  // Gap 200: every other class's probability underflows in float32, so the gradient is exactly 0
  // (float64 still has e^−200 ≈ 1e−87) and the row does not move.
  assert.equal(Array.from(attackRow(200)), Array.from(x));
  // Gap 30: p_0 rounds to 1 in float32, so δ_0 = p_0 − 1 = 0 and ∇x ℓ = Σ_{c≠0} p_c W[:, c], whose sign
  // here is the opposite of the exact Σ_{c≠0} p_c (W[:, c] − W[:, 0]).
  const adv = attackRow(30);
  for (let d = 0; d < 2; d++) {
    const z = (c: number) => x[0] * theta[w + c] + x[1] * theta[w + 3 + c] + theta[b + c];
    let rounded = 0;
    let exact = 0;
    for (let c = 1; c < 3; c++) {
      const p = Math.exp(z(c) - z(0));
      rounded += p * theta[w + 3 * d + c];
      exact += p * (theta[w + 3 * d + c] - theta[w + 3 * d]);
    }
    assert.is(Math.sign(rounded), -Math.sign(exact), 'the example separates the two conventions');
    assert.is(adv[d], Math.fround(x[d] + 0.1 * Math.sign(rounded)), `feature ${d}`);
  }
});

// ---- Threads -------------------------------------------------------------------------------------

test('task ranges (the worker threads\' split) give the same bits as one call', () => {
  const e = episode(4, [6, 5], 3, 5, 6, 5, 80, false, 2);
  const V = e.layout.vector;
  const theta = thetaOf(e.layout, 80);
  for (const over of [{}, { adapt: 'context' as const }, { perturb: { steps: 2, lr: 0.5, radius: 0.1 } }]) {
    const whole = outputsFor(e, 2);
    const split = outputsFor(e, 2);
    const p = paramsFor(e, { innerSteps: 2, outSet: 1, ...over });
    modelAdaptAndMetaGrad(whole, e.support, e.query, theta, p);
    modelAdaptAndMetaGrad(split, e.support, e.query, theta, p, [3, 5]);
    modelAdaptAndMetaGrad(split, e.support, e.query, theta, p, [0, 1]);
    modelAdaptAndMetaGrad(split, e.support, e.query, theta, p, [1, 3]);
    assert.equal(Array.from(split.adapted), Array.from(whole.adapted));
    assert.equal(Array.from(split.metaGrad), Array.from(whole.metaGrad));
    assert.equal(Array.from(split.taskStats), Array.from(whole.taskStats));
  }
  const shape = { tasks: e.tasks, rows: e.Kq, dim: 4, paramStride: 0 };
  const whole = new Float32Array(e.query.x.length);
  const split = new Float32Array(e.query.x.length);
  modelAttack(whole, e.query, theta, shape, pgd(0.2, 3), e.layout);
  modelAttack(split, e.query, theta, shape, pgd(0.2, 3), e.layout, [2, 5]);
  modelAttack(split, e.query, theta, shape, pgd(0.2, 3), e.layout, [0, 2]);
  assert.equal(Array.from(split), Array.from(whole));
});

// ---- The CPU engine ------------------------------------------------------------------------------

/** Options as the learner resolves them, unchecked (engines are given options of any algorithm here). */
function engineOptions(over: Record<string, unknown> & { dim: number; algorithm?: Algorithm }): ResolvedLearnerOptions {
  return applyDefaults(over);
}

function batchOf(e: Episode): CheckedBatch {
  return { tasks: e.tasks, supportShots: e.Ks, queryShots: e.Kq, supportX: e.support.x, supportY: e.support.y, queryX: e.query.x, queryY: e.query.y };
}

/** The CPU engine's order-2 meta-gradient (2 inner steps of innerLr; CAML adapts only φ) equals central
 * differences of the float64 reference's mean query loss after the same inner steps; returns it. */
async function assertEngineMetaGradientIsFd(algorithm: 'maml' | 'caml', e: Episode, model: Record<string, unknown>, innerLr: number, seed: number, label: string): Promise<Float32Array> {
  const { layout } = e;
  const o = engineOptions({ dim: layout.dim, algorithm, model, contextDim: layout.context || 2, innerLr, innerSteps: 2, order: 2, threads: 1 });
  const theta = thetaOf(layout, seed);
  const engine = new CpuEngine(o, theta);
  const g = await engine.metaGradient(batchOf(e));
  engine.destroy();
  const [lo, hi] = algorithm === 'caml' ? [layout.contextOffset, layout.contextOffset + layout.context] : [0, layout.params];
  const objective = (th: Float64Array) => {
    let total = 0;
    for (let t = 0; t < e.tasks; t++) {
      const { s, q } = taskRows(e, t);
      total += mlpLossGrad(layout, sgd(layout, th, s, innerLr, 2, lo, hi), 0, q, null).loss / e.tasks;
    }
    return total;
  };
  const expected = centralDifferences(objective, f64(theta), 1e-5);
  expected.fill(0, layout.params);
  assertClose(label, g, expected, 2e-6, 2e-4);
  return g;
}

test('CPU engine, MLP: MAML and CAML meta-gradients equal finite differences of the mean query loss', async () => {
  for (const algorithm of ['maml', 'caml'] as const) {
    const e = episode(3, [4], 3, 3, 5, 4, 81, false, algorithm === 'caml' ? 2 : 0);
    await assertEngineMetaGradientIsFd(algorithm, e, { kind: 'mlp', hidden: [4], classes: 3 }, 0.6, 81, `${algorithm} engine meta-gradient`);
  }
});

/** One and two worker threads give the same bits: 3 steps, then a PGD-attacked evaluation after 2 steps;
 * returns the one-thread results. */
async function assertThreadsBitIdentical(over: Record<string, unknown> & { algorithm: Algorithm }, model: Record<string, unknown>, e: Episode, init: Float32Array) {
  const results = [];
  for (const threads of [1, 2]) {
    const engine = new CpuEngine(engineOptions({ dim: e.layout.dim, model, innerLr: 0.3, outerLr: 0.1, ...over, threads }), init);
    await engine.step(batchOf(e), 3, { stats: true, weights: true });
    const evaluated = await engine.evaluate(batchOf(e), 2, 0.3, pgd(0.2, 3), true);
    results.push({ params: Array.from(await engine.getParams()), clean: Array.from(evaluated.clean), attacked: Array.from(evaluated.attacked!), adapted: Array.from(evaluated.adapted!) });
    engine.destroy();
  }
  assert.equal(results[1], results[0], JSON.stringify(over));
  assert.ok(results[0].params.some((v, i) => v !== init[i]), `${over.algorithm} trained`);
  return results[0];
}

test('CPU engine, MLP: worker threads give the same bits as one thread for every algorithm (with an attacked evaluation)', async () => {
  const runs: Array<Record<string, unknown> & { algorithm: Algorithm }> = [
    { algorithm: 'maml', order: 2, innerSteps: 2 },
    { algorithm: 'maml', innerOptimizer: 'amp', perturbEpsilon: 0.05 },
    { algorithm: 'ga-maml', optimizer: 'adam' },
    { algorithm: 'caml', contextDim: 3 },
    { algorithm: 'adml', epsilon: 0.1, innerLrAdv: 0.2, outerLrAdv: 0.05, order: 2 },
    { algorithm: 'amp', models: 5, epsilon: 0.1 },
  ];
  for (const over of runs) {
    const context = over.algorithm === 'caml' ? 3 : 0;
    const e = episode(4, [5], 3, 5, 6, 4, 82, false, context);
    const models = over.algorithm === 'amp' ? 5 : 1;
    const init = new Float32Array(models * e.layout.vector);
    for (let m = 0; m < models; m++) init.set(thetaOf(e.layout, 82 + m), m * e.layout.vector);
    const result = await assertThreadsBitIdentical(over, { kind: 'mlp', hidden: [5], classes: 3 }, e, init);
    assert.is(result.adapted.length, e.tasks * e.layout.vector);
  }
});

test('CPU engine, MLP: one MAML step is θ − β · mean of the per-task meta-gradients; φ of CAML\'s θ stays 0', async () => {
  const e = episode(3, [4], 3, 4, 5, 4, 83, false, 2);
  const theta = thetaOf(e.layout, 83);
  const engine = new CpuEngine(engineOptions({ dim: 3, algorithm: 'caml', contextDim: 2, model: { kind: 'mlp', hidden: [4], classes: 3 }, innerLr: 0.5, outerLr: 0.2, order: 2, threads: 1 }), theta);
  const out = outputsFor(e);
  modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { adapt: 'context', innerLr: 0.5, order: 2 }));
  const V = e.layout.vector;
  const expected = Array.from(theta, (v, k) => {
    let g = 0;
    for (let t = 0; t < e.tasks; t++) g += out.metaGrad[t * V + k] / e.tasks;
    return v - 0.2 * g;
  });
  await engine.step(batchOf(e), 1, { stats: false, weights: false });
  const after = await engine.getParams();
  assertClose('θ after one step', after, expected, 1e-7, 1e-6);
  assert.ok(after.subarray(e.layout.contextOffset).every((v) => v === 0), 'φ and pad of θ stay 0');
  engine.destroy();
});

// ---- Per-task normalisation through the CPU engine (its fast kernels) -------------------------------

/** An episode whose layout normalises each hidden unit over the task's set (model.norm: 'task'). */
function normEpisode(dim: number, hidden: number[], classes: number, context: number, tasks: number, Ks: number, Kq: number, seed: number): Episode {
  return { ...episode(dim, hidden, classes, tasks, Ks, Kq, seed, false, context), layout: mlpLayout(dim, hidden, classes, context, true) };
}

test('CPU engine, MLP with per-task norm: MAML order 2 and CAML meta-gradients equal finite differences of the mean query loss', async () => {
  for (const algorithm of ['maml', 'caml'] as const) {
    const e = normEpisode(3, [5, 4], 3, algorithm === 'caml' ? 2 : 0, 3, 5, 4, 84);
    // The float64 reference with normalisation (itself checked against finite differences above).
    const g = await assertEngineMetaGradientIsFd(algorithm, e, { kind: 'mlp', hidden: [5, 4], classes: 3, norm: 'task' }, 0.4, 84, `${algorithm} engine meta-gradient with norm`);
    // Normalisation changes the function: the same θ without it gives another meta-gradient.
    const plain = new CpuEngine(engineOptions({ dim: 3, algorithm, model: { kind: 'mlp', hidden: [5, 4], classes: 3 }, contextDim: 2, innerLr: 0.4, innerSteps: 2, order: 2, threads: 1 }), thetaOf(e.layout, 84));
    const gPlain = await plain.metaGradient(batchOf(e));
    assert.ok(gPlain.some((v, i) => Math.abs(v - g[i]) > 1e-4), 'norm is applied');
    plain.destroy();
  }
});

test('CPU engine, MLP with per-task norm: worker threads give the same bits as one thread (with an attacked evaluation)', async () => {
  const runs: Array<Record<string, unknown> & { algorithm: Algorithm }> = [
    { algorithm: 'maml', order: 2, innerSteps: 2 },
    { algorithm: 'maml', innerOptimizer: 'amp', perturbEpsilon: 0.05, order: 2 },
    { algorithm: 'caml', contextDim: 3, order: 2 },
  ];
  for (const over of runs) {
    const e = normEpisode(4, [6, 5], 3, over.algorithm === 'caml' ? 3 : 0, 5, 6, 4, 85);
    await assertThreadsBitIdentical(over, { kind: 'mlp', hidden: [6, 5], classes: 3, norm: 'task' }, e, thetaOf(e.layout, 85));
  }
});

test('createLearner refuses CAML with per-task norm (the normalisation cancels the context), with a hint', async () => {
  const { createLearner } = await import('../src/learner.js');
  const { InvalidOptionError } = await import('../src/errors.js');
  const e = await thrown(() => createLearner({ algorithm: 'caml', dim: 4, contextDim: 2, backend: 'cpu', model: { kind: 'mlp', hidden: [5], classes: 3, norm: 'task' } }));
  assert.ok(e instanceof InvalidOptionError && /removes/.test(e.message) && /norm: 'none'/.test((e as InstanceType<typeof InvalidOptionError>).hint), String(e));
  // Without hidden layers there is nothing to normalise: allowed.
  const ok = await createLearner({ algorithm: 'caml', dim: 4, contextDim: 2, backend: 'cpu', model: { kind: 'mlp', hidden: [], classes: 3, norm: 'task' } });
  ok.destroy();
});

test.run();
