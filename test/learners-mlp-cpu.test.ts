// ANIL (adapt 'head') and Meta-SGD (stepSizes) in the MLP's MAML core on the CPU (src/cpu/model-task.ts over
// src/cpu/mlp-fast.ts), checked against independent oracles: central finite differences of float64
// re-implementations of the meta-objectives (written here over the reference src/cpu/mlp.ts), and
// identities — ANIL's order 1 is the query gradient at θ'; ANIL with its body frozen is MAML of a
// softmax regression on the body's features; ANIL of a model without hidden layers is MAML; Meta-SGD
// with α = lr·1 is MAML with innerLr = lr; order-1 Meta-SGD's g_α = −(Σ_s g_s) ⊙ v_n; a task split
// across threads gives the same bits as one call; evaluation adapts as training does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mlpInit, mlpLayout, type MlpLayout } from '../src/models/mlp.js';
import { mlpBodyFeatures, mlpHvp, mlpLossGrad, type MlpRows } from '../src/cpu/mlp.js';
import { modelAdaptAndMetaGrad, modelTaskScratchSizes, type ModelTaskOutputs, type ModelTaskParams } from '../src/cpu/model-task.js';
import { uniform01 } from '../src/rng.js';
import { assertClose, centralDifferences, randomArray, randomClassLabels, thrown } from './helpers.js';
import { episode, outputsFor, paramsFor, sgd, thetaOf, type Episode } from './mlp-episode.js';

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);



// The small MLPs of the brief: dim 5, hidden [4, 3], 3 classes, without and with per-task normalisation.
const MODELS = [
  { name: 'hidden [4, 3]', norm: false },
  { name: 'hidden [4, 3], per-task norm', norm: true },
];




/** Meta-SGD's θ: [θ | α], α in [0.2, 0.6] entry by entry (not all equal), pad entries of α garbage. */
function thetaAndStepSizes(layout: MlpLayout, seed: number): Float32Array {
  const V = layout.vector;
  const both = new Float32Array(2 * V);
  both.set(thetaOf(layout, seed));
  both.set(randomArray(layout.params, seed, 12, 0.2, 0.6), V);
  both.fill(Number.NaN, V + layout.params, 2 * V);  // "α's pad entries: ignore"
  return both;
}

const rowsOf = (x: MlpRows['x'], y: MlpRows['y'], rows: number, dim: number, task = 0): MlpRows =>
  ({ x, xOff: task * rows * dim, xStride: dim, y, yOff: task * rows, rows });

const taskRows = (e: Episode, t: number) => ({
  s: rowsOf(e.support.x, e.support.y, e.Ks, e.layout.dim, t),
  q: rowsOf(e.query.x, e.query.y, e.Kq, e.layout.dim, t),
});

/** The head's index range [W_L, b_L end). */
function headRange(layout: MlpLayout): [number, number] {
  const head = layout.layers[layout.layers.length - 1];
  return [head.w, head.b + head.outputs];
}

// ---- Float64 oracles of the meta-objectives ------------------------------------------------------

/** ANIL's inner loop in float64: `steps` SGD steps on the head entries alone. */
const anilAdapt = (layout: MlpLayout, start: Float64Array, rows: MlpRows, lr: number, steps: number): Float64Array =>
  sgd(layout, start, rows, lr, steps, ...headRange(layout));

/** Meta-SGD's inner loop in float64: θ' ← θ' − α ⊙ ∇L, the inner gradients g_s kept. */
function metaSgdAdapt(layout: MlpLayout, start: Float64Array, alpha: Float64Array, rows: MlpRows, steps: number): { adapted: Float64Array; grads: Float64Array[] } {
  const p = start.slice();
  const grads: Float64Array[] = [];
  for (let s = 0; s < steps; s++) {
    const g = new Float64Array(layout.vector);
    mlpLossGrad(layout, p, 0, rows, g);
    for (let k = 0; k < layout.params; k++) p[k] -= alpha[k] * g[k];
    grads.push(g);
  }
  return { adapted: p, grads };
}

const queryLoss = (layout: MlpLayout, params: Float64Array, rows: MlpRows) => mlpLossGrad(layout, params, 0, rows, null).loss;

// ---- ANIL ----------------------------------------------------------------------------------------

for (const [k, m] of MODELS.entries()) {
  test(`ANIL order 2: the meta-gradient (body and head) equals finite differences of the query loss after 2 head steps: ${m.name}`, () => {
    const e = episode(5, [4, 3], 3, 3, 6, 5, 90 + k, m.norm);
    const { layout } = e;
    const V = layout.vector;
    const [lo, hi] = headRange(layout);
    const theta = thetaOf(layout, 90 + k);
    const out = outputsFor(e, 2);
    // MAML's order 2 first leaves its R-pass values in this layout's scratch: ANIL must not read them.
    modelAdaptAndMetaGrad(outputsFor(e, 2), e.support, e.query, theta, paramsFor(e, { innerLr: 0.6 }, 2));
    // Set 1, to check the slot arithmetic.
    modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { adapt: 'head', innerLr: 0.6, outSet: 1 }, 2));
    for (let t = 0; t < e.tasks; t++) {
      const { s, q } = taskRows(e, t);
      const slot = e.tasks + t;
      const objective = (th: Float64Array) => queryLoss(layout, anilAdapt(layout, th, s, 0.6, 2), q);
      const expected = centralDifferences(objective, f64(theta), 1e-5);
      const metaGrad = out.metaGrad.subarray(slot * V, (slot + 1) * V);
      assertClose(`ANIL meta-gradient of task ${t}`, metaGrad, expected, 2e-6, 2e-4);
      // The body receives a meta-gradient through the head's adaptation.
      assert.ok(metaGrad.subarray(0, lo).some((g) => Math.abs(g) > 1e-4), 'the body\'s meta-gradient is not 0');
      const adapted = out.adapted.subarray(slot * V, (slot + 1) * V);
      assert.equal(Array.from(adapted.subarray(0, lo)), Array.from(theta.subarray(0, lo)), 'the body does not move');
      assertClose(`adapted head of task ${t}`, adapted.subarray(lo, hi), anilAdapt(layout, f64(theta), s, 0.6, 2).subarray(lo, hi), 1e-6, 1e-5);
      assertClose(`query loss of task ${t}`, [out.taskStats[2 * slot]], [objective(f64(theta))], 1e-6, 1e-5);
    }
    assert.ok(out.metaGrad.subarray(0, e.tasks * V).every((g) => g === 0), 'set 0 untouched');
  });

  test(`ANIL order 1: the meta-gradient is the query gradient at θ' (whose body is θ's): ${m.name}`, () => {
    const e = episode(5, [4, 3], 3, 3, 6, 5, 95 + k, m.norm);
    const { layout } = e;
    const V = layout.vector;
    const [lo] = headRange(layout);
    const theta = thetaOf(layout, 95 + k);
    const out = outputsFor(e);
    modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { adapt: 'head', innerSteps: 3, order: 1 }, 2));
    for (let t = 0; t < e.tasks; t++) {
      const adapted = out.adapted.subarray(t * V, (t + 1) * V);
      assert.equal(Array.from(adapted.subarray(0, lo)), Array.from(theta.subarray(0, lo)), 'the body does not move');
      assert.ok(adapted.subarray(lo).some((p, i) => p !== theta[lo + i]), 'the head moved');
      // The fast kernels give the reference's bits.
      const g = new Float32Array(V);
      mlpLossGrad(layout, out.adapted, t * V, taskRows(e, t).q, g);
      assert.equal(Array.from(out.metaGrad.subarray(t * V, (t + 1) * V)), Array.from(g), `task ${t}`);
    }
  });

  test(`ANIL with a frozen body is MAML (order 2) of a softmax regression on the body's features: ${m.name}`, () => {
    const e = episode(5, [4, 3], 3, 2, 6, 5, 100 + k, m.norm);
    const { layout } = e;
    const V = layout.vector;
    const [lo, hi] = headRange(layout);
    const theta = thetaOf(layout, 100 + k);
    const out = outputsFor(e);
    const lr = 0.7;
    const n = 3;
    modelAdaptAndMetaGrad(out, e.support, e.query, theta, paramsFor(e, { adapt: 'head', innerSteps: n, innerLr: lr }, 2));
    // The head alone: hidden [] on h_{L−1} features, its vector [W | b] = the head's entries of θ.
    const width = layout.widths[layout.layers.length - 1];
    const headLayout = mlpLayout(width, [], layout.classes);
    for (let t = 0; t < e.tasks; t++) {
      const { s, q } = taskRows(e, t);
      const features = (rows: MlpRows) => rowsOf(mlpBodyFeatures(layout, theta, 0, rows), rows.y.subarray(rows.yOff, rows.yOff + rows.rows), rows.rows, width);
      const fs = features(s);
      const fq = features(q);
      // MAML on the head in float64: the points of the inner loop, then v ← (I − αH_s) v backwards.
      const points: Float64Array[] = [new Float64Array(headLayout.vector)];
      points[0].set(theta.subarray(lo, hi));
      const g = new Float64Array(headLayout.vector);
      for (let i = 0; i < n; i++) {
        mlpLossGrad(headLayout, points[i], 0, fs, g);
        points.push(points[i].map((p, j) => p - lr * g[j]));
      }
      const v = new Float64Array(headLayout.vector);
      mlpLossGrad(headLayout, points[n], 0, fq, v);
      const hv = new Float64Array(headLayout.vector);
      for (let i = n - 1; i >= 0; i--) {
        mlpHvp(headLayout, points[i], 0, fs, v, 0, hv);
        for (let j = 0; j < v.length; j++) v[j] -= lr * hv[j];
      }
      assertClose(`head meta-gradient of task ${t}`, out.metaGrad.subarray(t * V + lo, t * V + hi), v.subarray(0, hi - lo), 1e-6, 1e-5);
      assertClose(`adapted head of task ${t}`, out.adapted.subarray(t * V + lo, t * V + hi), points[n].subarray(0, hi - lo), 1e-6, 1e-5);
      assertClose(`query loss of task ${t}`, [out.taskStats[2 * t]], [queryLoss(headLayout, points[n], fq)], 1e-6, 1e-5);
    }
  });
}

test('ANIL of a model without hidden layers (the head is the whole model) is MAML, bit for bit', () => {
  const e = episode(5, [], 3, 3, 6, 5, 105);
  const theta = thetaOf(e.layout, 105);
  for (const order of [1, 2] as const) {
    const anil = outputsFor(e);
    const maml = outputsFor(e);
    modelAdaptAndMetaGrad(anil, e.support, e.query, theta, paramsFor(e, { adapt: 'head', order, innerSteps: 3 }, 2));
    modelAdaptAndMetaGrad(maml, e.support, e.query, theta, paramsFor(e, { adapt: 'all', order, innerSteps: 3 }, 2));
    assert.equal(Array.from(anil.adapted), Array.from(maml.adapted), `adapted, order ${order}`);
    assert.equal(Array.from(anil.metaGrad), Array.from(maml.metaGrad), `meta-gradient, order ${order}`);
    assert.equal(Array.from(anil.taskStats), Array.from(maml.taskStats), `statistics, order ${order}`);
  }
});

// ---- Meta-SGD ------------------------------------------------------------------------------------

for (const [k, m] of MODELS.entries()) {
  test(`Meta-SGD order 2: g_θ and g_α equal finite differences of the query loss after 2 steps θ' − α ⊙ ∇L: ${m.name}`, () => {
    const e = episode(5, [4, 3], 3, 3, 6, 5, 110 + k, m.norm);
    const { layout } = e;
    const V = layout.vector;
    const P = layout.params;
    const both = thetaAndStepSizes(layout, 110 + k);
    const out = outputsFor(e, 2, true);
    assert.is(out.metaGrad.length, 2 * e.tasks * 2 * V, 'scratch: 2V floats per slot');
    // innerLr is unused: NaN would spread into everything.
    modelAdaptAndMetaGrad(out, e.support, e.query, both, paramsFor(e, { stepSizes: true, innerLr: Number.NaN, outSet: 1 }, 2));
    const theta = f64(both.subarray(0, V));
    const alpha = f64(both.subarray(V, V + P));
    for (let t = 0; t < e.tasks; t++) {
      const { s, q } = taskRows(e, t);
      const slot = e.tasks + t;
      const gTheta = out.metaGrad.subarray(slot * 2 * V, slot * 2 * V + V);
      const gAlpha = out.metaGrad.subarray(slot * 2 * V + V, (slot + 1) * 2 * V);
      const objective = (th: Float64Array, al: Float64Array) => queryLoss(layout, metaSgdAdapt(layout, th, al, s, 2).adapted, q);
      const expectedTheta = centralDifferences((th) => objective(th, alpha), theta, 1e-5);
      const expectedAlpha = centralDifferences((al) => objective(theta, al), alpha, 1e-5);
      assertClose(`g_θ of task ${t}`, gTheta, expectedTheta, 2e-6, 2e-4);
      assertClose(`g_α of task ${t}`, gAlpha.subarray(0, P), expectedAlpha, 2e-6, 2e-4);
      assert.ok(gAlpha.subarray(P).every((g) => g === 0), 'α\'s pad entries of the meta-gradient are 0');
      assert.ok(gAlpha.some((g) => Math.abs(g) > 1e-4), 'α receives a meta-gradient');
      assertClose(`adapted θ' of task ${t}`, out.adapted.subarray(slot * V, (slot + 1) * V), metaSgdAdapt(layout, theta, alpha, s, 2).adapted, 1e-6, 1e-5);
      assertClose(`query loss of task ${t}`, [out.taskStats[2 * slot]], [objective(theta, alpha)], 1e-6, 1e-5);
    }
    assert.ok(out.metaGrad.subarray(0, e.tasks * 2 * V).every((g) => g === 0), 'set 0 untouched');
  });
}

test('Meta-SGD with α = lr·1 is MAML with innerLr = lr (adapted and statistics bit for bit; g_θ orders 1 and 2)', () => {
  for (const norm of [false, true]) {
    const e = episode(5, [4, 3], 3, 3, 6, 5, 115, norm);
    const V = e.layout.vector;
    const lr = Math.fround(0.4);  // α is stored in float32: MAML steps with the same number
    const both = new Float32Array(2 * V);
    both.set(thetaOf(e.layout, 115));
    both.fill(lr, V);
    for (const order of [1, 2] as const) {
      const metaSgd = outputsFor(e, 1, true);
      const maml = outputsFor(e);
      modelAdaptAndMetaGrad(metaSgd, e.support, e.query, both, paramsFor(e, { stepSizes: true, order, innerSteps: 3 }, 2));
      modelAdaptAndMetaGrad(maml, e.support, e.query, both.subarray(0, V), paramsFor(e, { order, innerSteps: 3, innerLr: lr }, 2));
      const what = `norm ${norm}, order ${order}`;
      assert.equal(Array.from(metaSgd.adapted), Array.from(maml.adapted), `adapted, ${what}`);
      assert.equal(Array.from(metaSgd.taskStats), Array.from(maml.taskStats), `statistics, ${what}`);
      for (let t = 0; t < e.tasks; t++) {
        const gTheta = metaSgd.metaGrad.subarray(t * 2 * V, t * 2 * V + V);
        const mamlGrad = maml.metaGrad.subarray(t * V, (t + 1) * V);
        // Order 1: the same query gradient; order 2: H(α ⊙ v) against α·(H v), equal up to rounding.
        if (order === 1) assert.equal(Array.from(gTheta), Array.from(mamlGrad), `g_θ of task ${t}, ${what}`);
        else assertClose(`g_θ of task ${t}, ${what}`, gTheta, mamlGrad, 1e-7, 1e-5);
      }
    }
  }
});

test('Meta-SGD order 1: g_θ = v_n and g_α = −(Σ_s g_s) ⊙ v_n, the inner gradients held constant', () => {
  const e = episode(5, [4, 3], 3, 3, 6, 5, 120);
  const { layout } = e;
  const V = layout.vector;
  const P = layout.params;
  const n = 3;
  const both = thetaAndStepSizes(layout, 120);
  const out = outputsFor(e, 1, true);
  modelAdaptAndMetaGrad(out, e.support, e.query, both, paramsFor(e, { stepSizes: true, order: 1, innerSteps: n }, 2));
  const theta = f64(both.subarray(0, V));
  const alpha = f64(both.subarray(V, V + P));
  for (let t = 0; t < e.tasks; t++) {
    const { s, q } = taskRows(e, t);
    const { adapted, grads } = metaSgdAdapt(layout, theta, alpha, s, n);
    const vn = new Float64Array(V);
    mlpLossGrad(layout, adapted, 0, q, vn);
    const expectedAlpha = new Float64Array(V);
    for (let k = 0; k < P; k++) expectedAlpha[k] = -grads.reduce((sum, g) => sum + g[k], 0) * vn[k];
    assertClose(`g_θ of task ${t}`, out.metaGrad.subarray(t * 2 * V, t * 2 * V + V), vn, 1e-6, 1e-5);
    assertClose(`g_α of task ${t}`, out.metaGrad.subarray(t * 2 * V + V, (t + 1) * 2 * V), expectedAlpha, 1e-6, 1e-5);
  }
});

test('Meta-SGD with no inner step: g_θ is the query gradient at θ and g_α is 0 (both orders)', () => {
  const e = episode(5, [4, 3], 3, 2, 6, 5, 125);
  const V = e.layout.vector;
  const both = thetaAndStepSizes(e.layout, 125);
  for (const order of [1, 2] as const) {
    const out = outputsFor(e, 1, true);
    out.metaGrad.fill(7);
    modelAdaptAndMetaGrad(out, e.support, e.query, both, paramsFor(e, { stepSizes: true, order, innerSteps: 0 }, 2));
    for (let t = 0; t < e.tasks; t++) {
      const g = new Float32Array(V);
      mlpLossGrad(e.layout, both, 0, taskRows(e, t).q, g);
      assert.equal(Array.from(out.metaGrad.subarray(t * 2 * V, t * 2 * V + V)), Array.from(g), `g_θ of task ${t}, order ${order}`);
      assert.ok(out.metaGrad.subarray(t * 2 * V + V, (t + 1) * 2 * V).every((x) => x === 0), `g_α of task ${t}, order ${order}`);
      assert.equal(Array.from(out.adapted.subarray(t * V, (t + 1) * V)), Array.from(both.subarray(0, V)), 'θ\' = θ');
    }
  }
});

// ---- Evaluation, threads, refusals ---------------------------------------------------------------

const VARIANTS: { name: string; over: Partial<ModelTaskParams>; stepSizes: boolean }[] = [
  { name: 'ANIL', over: { adapt: 'head' }, stepSizes: false },
  { name: 'Meta-SGD', over: { stepSizes: true }, stepSizes: true },
];

test('evaluation (no meta-gradient) adapts as training does and leaves metaGrad alone', () => {
  for (const norm of [false, true]) {
    const e = episode(5, [4, 3], 3, 3, 6, 5, 130, norm);
    const V = e.layout.vector;
    const both = thetaAndStepSizes(e.layout, 130);
    for (const { name, over, stepSizes } of VARIANTS) {
      const theta = stepSizes ? both : both.subarray(0, V);
      const train = outputsFor(e, 1, stepSizes);
      const evaluate = outputsFor(e, 1, stepSizes);
      modelAdaptAndMetaGrad(train, e.support, e.query, theta, paramsFor(e, { ...over, innerSteps: 3 }, 2));
      modelAdaptAndMetaGrad(evaluate, e.support, e.query, theta, paramsFor(e, { ...over, innerSteps: 3, wantMetaGrad: false }, 2));
      assert.equal(Array.from(evaluate.adapted), Array.from(train.adapted), `${name}, norm ${norm}: adapted`);
      assert.equal(Array.from(evaluate.taskStats), Array.from(train.taskStats), `${name}, norm ${norm}: statistics`);
      assert.ok(evaluate.metaGrad.every((g) => g === 0), `${name}: metaGrad untouched`);
      // And adaptation does something on the support set: its loss falls.
      for (let t = 0; t < e.tasks; t++) {
        const { s } = taskRows(e, t);
        const before = mlpLossGrad(e.layout, theta, 0, s, null).loss;
        const after = mlpLossGrad(e.layout, evaluate.adapted, t * V, s, null).loss;
        assert.ok(after < before, `${name}, task ${t}: support loss ${before} → ${after}`);
      }
    }
  }
});

test('task ranges (the worker threads\' split) give the same bits as one call', () => {
  for (const norm of [false, true]) {
    const e = episode(5, [4, 3], 3, 4, 6, 5, 135, norm);
    const V = e.layout.vector;
    const both = thetaAndStepSizes(e.layout, 135);
    for (const { name, over, stepSizes } of VARIANTS) {
      for (const order of [1, 2] as const) {
        const theta = stepSizes ? both : both.subarray(0, V);
        const p = paramsFor(e, { ...over, order, outSet: 1 }, 2);
        const whole = outputsFor(e, 2, stepSizes);
        const split = outputsFor(e, 2, stepSizes);
        modelAdaptAndMetaGrad(whole, e.support, e.query, theta, p);
        modelAdaptAndMetaGrad(split, e.support, e.query, theta, p, [2, 4]);
        modelAdaptAndMetaGrad(split, e.support, e.query, theta, p, [0, 2]);
        const what = `${name}, order ${order}, norm ${norm}`;
        assert.equal(Array.from(split.adapted), Array.from(whole.adapted), `${what}: adapted`);
        assert.equal(Array.from(split.metaGrad), Array.from(whole.metaGrad), `${what}: meta-gradient`);
        assert.equal(Array.from(split.taskStats), Array.from(whole.taskStats), `${what}: statistics`);
        assert.ok(whole.metaGrad.some((g) => g !== 0), `${what}: something was computed`);
      }
    }
  }
});

test('ANIL refuses a context and a perturbation; Meta-SGD refuses all but plain MAML\'s setting and a short θ', async () => {
  const withContext = episode(3, [4], 3, 1, 4, 4, 140, false, 2);
  const plain = episode(3, [4], 3, 1, 4, 4, 141);
  const V = plain.layout.vector;
  const theta = thetaOf(plain.layout, 141);
  const both = thetaAndStepSizes(plain.layout, 141);
  const run = (e: Episode, th: Float32Array, over: Partial<ModelTaskParams>, stepSizes = false) =>
    () => modelAdaptAndMetaGrad(outputsFor(e, 1, stepSizes), e.support, e.query, th, paramsFor(e, over, 2));
  const perturb = { steps: 1, lr: 0.5, radius: 0.1 };
  assert.match((await thrown(run(withContext, thetaOf(withContext.layout, 140), { adapt: 'head' }))).message, /context/);
  assert.match((await thrown(run(plain, theta, { adapt: 'head', perturb }))).message, /perturb/);
  for (const over of [{ adapt: 'head' as const }, { adapt: 'context' as const }, { thetaPerTask: true }, { perturb }]) {
    assert.match((await thrown(run(plain, both, { stepSizes: true, ...over }, true))).message, /stepSizes/, JSON.stringify(over));
  }
  assert.match((await thrown(run(plain, both.subarray(0, V + 2), { stepSizes: true }, true))).message, /2 × /);
});

test.run();
