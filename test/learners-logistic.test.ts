// Meta-SGD in the logistic unit's fused per-task pass (maml-task with stepSizes: learned per-parameter
// inner step sizes α) and Reptile's join-rows kernel. The CPU twins are checked against independent
// float64 oracles written here (central differences of the query loss after the inner loop, the
// first-order formula, the plain pass at α = lr·1, a hand-built join); the kernels against the twins.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { adaptAndMetaGrad, taskScratchSizes, type TaskOutputs, type TaskParams } from '../src/cpu/maml-task.js';
import { joinRows, type JoinShape } from '../src/cpu/join-rows.js';
import { createBuffer, readFloats, writeFloats } from '../src/gpu/resources.js';
import { JoinRowsKernel } from '../src/kernels/join-rows.js';
import { dataLayout, padRows, paddedDim, unpadRows } from '../src/kernels/layout.js';
import { MamlTaskKernel } from '../src/kernels/maml-task.js';
import type { CheckedBatch } from '../src/types.js';
import { assertClose, centralDifferences, exactlyEqual, packBatch, randomArray, randomBatch, submit, thrown, upload, withGpu } from './helpers.js';

// ---- float64 oracle of Meta-SGD on the logistic unit (independent of src/cpu) ----

interface Rows { x: Float32Array; y: Float32Array; rows: number; dim: number }

function taskRows(batch: CheckedBatch, t: number, dim: number): { support: Rows; query: Rows } {
  const Ks = batch.supportShots;
  const Kq = batch.queryShots;
  return {
    support: { x: batch.supportX.subarray(t * Ks * dim, (t + 1) * Ks * dim), y: batch.supportY.subarray(t * Ks, (t + 1) * Ks), rows: Ks, dim },
    query: { x: batch.queryX.subarray(t * Kq * dim, (t + 1) * Kq * dim), y: batch.queryY.subarray(t * Kq, (t + 1) * Kq), rows: Kq, dim },
  };
}

function logit(set: Rows, r: number, w: ArrayLike<number>): number {
  let a = 0;
  for (let d = 0; d < set.dim; d++) a += set.x[r * set.dim + d] * w[d];
  return a;
}

/** Mean BCE of σ(X·w) against y. */
function meanLoss64(set: Rows, w: ArrayLike<number>): number {
  let loss = 0;
  for (let r = 0; r < set.rows; r++) {
    const a = logit(set, r, w);
    loss += Math.log(1 + Math.exp(a)) - set.y[r] * a;
  }
  return loss / set.rows;
}

/** ∇ of meanLoss64: Xᵀ(σ − y)/K. */
function meanGrad64(set: Rows, w: ArrayLike<number>): Float64Array {
  const g = new Float64Array(set.dim);
  for (let r = 0; r < set.rows; r++) {
    const residual = 1 / (1 + Math.exp(-logit(set, r, w))) - set.y[r];
    for (let d = 0; d < set.dim; d++) g[d] += set.x[r * set.dim + d] * residual / set.rows;
  }
  return g;
}

/** n Meta-SGD steps θ' ← θ' − α ⊙ ∇L(θ'; S); returns θ'⁽ⁿ⁾ and the inner gradients g_0 … g_{n−1}. */
function metaSgdInner64(support: Rows, theta: ArrayLike<number>, alpha: ArrayLike<number>, n: number): { adapted: Float64Array; grads: Float64Array[] } {
  const adapted = Float64Array.from(theta);
  const grads: Float64Array[] = [];
  for (let s = 0; s < n; s++) {
    const g = meanGrad64(support, adapted);
    grads.push(g);
    for (let d = 0; d < adapted.length; d++) adapted[d] -= alpha[d] * g[d];
  }
  return { adapted, grads };
}

/** The Meta-SGD objective of one task as a function of the meta-parameters [θ | α]. */
function queryLossAfterInnerLoop(support: Rows, query: Rows, n: number): (params: Float64Array) => number {
  const D = support.dim;
  return (params) => meanLoss64(query, metaSgdInner64(support, params.subarray(0, D), params.subarray(D, 2 * D), n).adapted);
}

// ---- helpers ----

function freshOutputs(p: TaskParams, sets: number, fill = 0): TaskOutputs {
  const sizes = taskScratchSizes(p, sets);
  return {
    adapted: new Float32Array(sizes.adapted), metaGrad: new Float32Array(sizes.metaGrad).fill(fill),
    supportProb: new Float32Array(sizes.supportProb), taskStats: new Float32Array(sizes.taskStats), perturbed: new Float32Array(sizes.perturbed),
  };
}

function metaSgdParams(T: number, Ks: number, Kq: number, D: number, n: number, order: 1 | 2, outSet = 0): TaskParams {
  return {
    tasks: T, supportRows: Ks, queryRows: Kq, dim: D, innerSteps: n, order, wantMetaGrad: true, innerLr: 0,
    outSet, thetaPerTask: false, perturb: null, stepSizes: true,
  };
}

/** [θ | α]: θ in [−0.5, 0.5], α in [0.1, 0.9] (all different, so that α ⊙ · is not a scalar step). */
function thetaAndAlpha(D: number, seed: number): Float32Array {
  const params = new Float32Array(2 * D);
  params.set(randomArray(D, seed, 5, -0.5, 0.5), 0);
  params.set(randomArray(D, seed, 6, 0.1, 0.9), D);
  return params;
}

const rowSets = (b: CheckedBatch) => [{ x: b.supportX, y: b.supportY }, { x: b.queryX, y: b.queryY }] as const;

// ---- CPU twin ----

test('Meta-SGD order 2 (twin): g_θ and g_α equal central differences of the float64 query loss after 2 inner steps', () => {
  const [T, Ks, Kq, D, n] = [3, 6, 4, 5, 2];
  const batch = randomBatch(T, Ks, Kq, D, 41);
  const params = thetaAndAlpha(D, 41);
  const alpha = params.subarray(D);
  assert.ok(Math.max(...alpha) - Math.min(...alpha) > 0.2, 'α is not one step size everywhere');
  // outSet 1: task t's gradient lands at slot T + t, 2D floats per slot; set 0 stays untouched.
  const p = metaSgdParams(T, Ks, Kq, D, n, 2, 1);
  const out = freshOutputs(p, 2);
  assert.is(out.metaGrad.length, 2 * T * 2 * D, 'metaGrad holds [g_θ | g_α] per slot');
  adaptAndMetaGrad(out, ...rowSets(batch), params, p);
  assert.ok(out.metaGrad.subarray(0, T * 2 * D).every((v) => v === 0), 'output set 0 untouched');
  for (let t = 0; t < T; t++) {
    const { support, query } = taskRows(batch, t, D);
    const objective = queryLossAfterInnerLoop(support, query, n);
    const expected = centralDifferences(objective, Float64Array.from(params), 1e-5);
    const slot = T + t;
    const got = out.metaGrad.subarray(slot * 2 * D, (slot + 1) * 2 * D);
    assertClose(`task ${t} [g_θ | g_α]`, got, expected, 1e-7, 1e-5);
    assert.ok(expected.subarray(D).some((v) => Math.abs(v) > 1e-3), 'g_α is not trivially zero');
    const inner = metaSgdInner64(support, params.subarray(0, D), alpha, n);
    assertClose(`task ${t} adapted`, out.adapted.subarray(slot * D, (slot + 1) * D), inner.adapted, 1e-7, 1e-5);
    assertClose(`task ${t} query loss`, [out.taskStats[2 * slot]], [meanLoss64(query, inner.adapted)], 1e-7, 1e-5);
  }
});

for (const n of [3, 0]) {
  test(`Meta-SGD order 1 (twin, n=${n}): g_θ = v_n and g_α = −(Σ g_s) ⊙ v_n, from a float64 inner loop`, () => {
    const [T, Ks, Kq, D] = [3, 5, 6, 6];
    const batch = randomBatch(T, Ks, Kq, D, 43);
    const params = thetaAndAlpha(D, 43);
    const p = metaSgdParams(T, Ks, Kq, D, n, 1);
    const out = freshOutputs(p, 1, Number.NaN);  // every float of a slot must be written
    adaptAndMetaGrad(out, ...rowSets(batch), params, p);
    for (let t = 0; t < T; t++) {
      const { support, query } = taskRows(batch, t, D);
      const inner = metaSgdInner64(support, params.subarray(0, D), params.subarray(D), n);
      const v = meanGrad64(query, inner.adapted);
      const gradAlpha = new Float64Array(D);
      for (const g of inner.grads) for (let d = 0; d < D; d++) gradAlpha[d] -= g[d] * v[d];
      assertClose(`task ${t} g_θ`, out.metaGrad.subarray(2 * t * D, (2 * t + 1) * D), v, 1e-7, 1e-5);
      assertClose(`task ${t} g_α`, out.metaGrad.subarray((2 * t + 1) * D, (2 * t + 2) * D), gradAlpha, 1e-7, 1e-5);
      if (n === 0) assert.ok(out.metaGrad.subarray((2 * t + 1) * D, (2 * t + 2) * D).every((g) => g === 0), 'n = 0: g_α = 0');
    }
  });
}

test('Meta-SGD order 2 (twin, n=0): g_θ is the query gradient at θ and g_α = 0', () => {
  const [T, Ks, Kq, D] = [2, 4, 5, 5];
  const batch = randomBatch(T, Ks, Kq, D, 44);
  const params = thetaAndAlpha(D, 44);
  const p = metaSgdParams(T, Ks, Kq, D, 0, 2);
  const out = freshOutputs(p, 1, Number.NaN);
  adaptAndMetaGrad(out, ...rowSets(batch), params, p);
  for (let t = 0; t < T; t++) {
    const { query } = taskRows(batch, t, D);
    assertClose(`task ${t} g_θ`, out.metaGrad.subarray(2 * t * D, (2 * t + 1) * D), meanGrad64(query, params.subarray(0, D)), 1e-7, 1e-5);
    assert.ok(out.metaGrad.subarray((2 * t + 1) * D, (2 * t + 2) * D).every((g) => g === 0), 'g_α = 0');
  }
});

for (const order of [1, 2] as const) {
  test(`Meta-SGD with α = lr·1 equals plain MAML with innerLr = lr (twin, order ${order}): g_θ, adapted, stats`, () => {
    const [T, Ks, Kq, D, n, lr] = [3, 6, 5, 7, 3, 0.4];
    const batch = randomBatch(T, Ks, Kq, D, 45);
    const theta = randomArray(D, 45, 5, -0.5, 0.5);
    const params = new Float32Array(2 * D);
    params.set(theta, 0);
    params.fill(lr, D);
    const p = metaSgdParams(T, Ks, Kq, D, n, order);
    const plainP: TaskParams = { ...p, stepSizes: false, innerLr: lr };
    const out = freshOutputs(p, 1);
    const plain = freshOutputs(plainP, 1);
    assert.is(out.metaGrad.length, 2 * plain.metaGrad.length, 'stepSizes doubles metaGrad');
    adaptAndMetaGrad(out, ...rowSets(batch), params, p);
    adaptAndMetaGrad(plain, ...rowSets(batch), theta, plainP);
    const gradTheta = new Float32Array(T * D);
    for (let t = 0; t < T; t++) gradTheta.set(out.metaGrad.subarray(2 * t * D, (2 * t + 1) * D), t * D);
    // The two passes round differently (α·(acc/Ks) vs (−lr/Ks)·acc): float32-level differences only.
    assertClose('g_θ vs plain meta-gradient', gradTheta, plain.metaGrad, 1e-7, 1e-5);
    assertClose('adapted', out.adapted, plain.adapted, 1e-7, 1e-5);
    assertClose('taskStats', out.taskStats, plain.taskStats, 1e-7, 1e-5);
    assertClose('supportProb', out.supportProb, plain.supportProb, 1e-7, 1e-5);
  });
}

test('Meta-SGD evaluation (wantMetaGrad false) runs the α inner loop and leaves metaGrad untouched; bad settings throw', async () => {
  const [T, Ks, Kq, D, n] = [2, 5, 4, 5, 2];
  const batch = randomBatch(T, Ks, Kq, D, 46);
  const params = thetaAndAlpha(D, 46);
  const train = metaSgdParams(T, Ks, Kq, D, n, 2);
  const evaluate: TaskParams = { ...train, wantMetaGrad: false };
  const trained = freshOutputs(train, 1);
  const evaluated = freshOutputs(evaluate, 1, 7);
  adaptAndMetaGrad(trained, ...rowSets(batch), params, train);
  adaptAndMetaGrad(evaluated, ...rowSets(batch), params, evaluate);
  assert.ok(evaluated.metaGrad.every((v) => v === 7), 'metaGrad untouched');
  assert.equal(Array.from(evaluated.adapted), Array.from(trained.adapted));
  assert.equal(Array.from(evaluated.taskStats), Array.from(trained.taskStats));
  for (let t = 0; t < T; t++) {
    const { support } = taskRows(batch, t, D);
    assertClose(`task ${t} adapted`, evaluated.adapted.subarray(t * D, (t + 1) * D), metaSgdInner64(support, params.subarray(0, D), params.subarray(D), n).adapted, 1e-7, 1e-5);
  }
  const perTask = await thrown(() => adaptAndMetaGrad(freshOutputs(train, 1), ...rowSets(batch), params, { ...train, thetaPerTask: true }));
  assert.match(perTask.message, /stepSizes/);
  const amp = await thrown(() => adaptAndMetaGrad(freshOutputs(train, 1), ...rowSets(batch), params, { ...train, perturb: { steps: 1, lr: 0.1, radius: 0.1 } }));
  assert.match(amp.message, /stepSizes/);
});

// ---- GPU kernel against the twin ----

const GPU_CASES: Array<{ order: 1 | 2; outSet: number; wantMetaGrad: boolean }> = [
  { order: 1, outSet: 0, wantMetaGrad: true },
  { order: 2, outSet: 1, wantMetaGrad: true },
  { order: 2, outSet: 0, wantMetaGrad: false },
];

for (const c of GPU_CASES) {
  test(`maml-task with stepSizes matches the CPU twin (T=2 Ks=5 Kq=3 D=7 n=2 order=${c.order} outSet=${c.outSet}${c.wantMetaGrad ? '' : ', evaluation'})`, () =>
    withGpu(async (acq) => {
      const [T, Ks, Kq, D, n] = [2, 5, 3, 7, 2];
      const batch = randomBatch(T, Ks, Kq, D, 47);
      // Support and query from separate buffers (as ADML binds them).
      const queryBatch = { ...batch, queryX: randomArray(batch.queryX.length, 47, 9) };
      const params = thetaAndAlpha(D, 47);
      const sets = c.outSet + 1;
      const p: TaskParams = { ...metaSgdParams(T, Ks, Kq, D, n, c.order, c.outSet), wantMetaGrad: c.wantMetaGrad };
      const Dp = paddedDim(D);
      const sizes = taskScratchSizes({ ...p, dim: Dp }, sets);
      const sentinel = new Float32Array(sizes.metaGrad).fill(3);
      const buffers = {
        supportData: upload(acq, 'support', packBatch(batch, D)), queryData: upload(acq, 'query', packBatch(queryBatch, D)),
        theta: upload(acq, 'theta', padRows(params, 2, D)),  // θ at 0, α at paddedDim
        adapted: createBuffer(acq.device, 'test.adapted', sizes.adapted), metaGrad: upload(acq, 'metaGrad', sentinel),
        supportProb: createBuffer(acq.device, 'test.supportProb', sizes.supportProb), taskStats: createBuffer(acq.device, 'test.taskStats', sizes.taskStats),
        perturbed: createBuffer(acq.device, 'test.perturbed', sizes.perturbed),
      };
      const bound = new MamlTaskKernel(acq.device).bind(buffers, T, 'test');
      bound.setParams(p);
      submit(acq, (pass) => bound.encode(pass));
      const cpu = freshOutputs(p, sets, 3);
      adaptAndMetaGrad(cpu, { x: batch.supportX, y: batch.supportY }, { x: queryBatch.queryX, y: batch.queryY }, params, p);
      // The twin stores float32 where the kernel does; measured agreement on SwiftShader: 1e-7 + 2e-6 relative.
      assertClose('adapted', unpadRows(await readFloats(acq.device, buffers.adapted, sizes.adapted), sets * T, D), cpu.adapted, 5e-7, 1e-5);
      assertClose('taskStats', await readFloats(acq.device, buffers.taskStats, sizes.taskStats), cpu.taskStats, 5e-7, 1e-5);
      assertClose('supportProb', await readFloats(acq.device, buffers.supportProb, sizes.supportProb), cpu.supportProb, 1e-7, 1e-5);
      const gpuMetaGrad = await readFloats(acq.device, buffers.metaGrad, sizes.metaGrad);
      if (c.wantMetaGrad) {
        // Set 0 is untouched when outSet is 1 (both sides start at the sentinel).
        assertClose('metaGrad [g_θ | g_α]', unpadRows(gpuMetaGrad, sets * T * 2, D), cpu.metaGrad, 5e-7, 1e-5);
        assert.ok(cpu.metaGrad.some((v) => v !== 3), 'the twin wrote a meta-gradient');
      } else {
        exactlyEqual('metaGrad untouched in evaluation', gpuMetaGrad, sentinel);
      }
      for (const b of Object.values(buffers)) b.destroy();
    }));
}

// ---- join-rows ----

test('joinRows (twin): each task\'s support rows then its query rows, labels likewise (hand-built batch)', () => {
  // T = 2, Ks = 2, Kq = 1, D = 2.
  const joined = joinRows(
    Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), Float32Array.of(0, 1, 1, 0),
    Float32Array.of(9, 10, 11, 12), Float32Array.of(1, 0),
    { tasks: 2, supportRows: 2, queryRows: 1, dim: 2 });
  assert.equal(Array.from(joined.x), [1, 2, 3, 4, 9, 10, 5, 6, 7, 8, 11, 12]);
  assert.equal(Array.from(joined.y), [0, 1, 1, 1, 0, 0]);
});

const JOIN_CASES: Array<JoinShape & { maxWorkgroupsPerDimension?: number }> = [
  { tasks: 3, supportRows: 3, queryRows: 2, dim: 5 },
  // 26 workgroups folded into 4 × 4 × 2; T·(Ks+Kq) and T·Kq labels not multiples of 4.
  { tasks: 37, supportRows: 9, queryRows: 6, dim: 30, maxWorkgroupsPerDimension: 4 },
];

for (const c of JOIN_CASES) {
  test(`join-rows matches the CPU twin bit for bit (T=${c.tasks} Ks=${c.supportRows} Kq=${c.queryRows} D=${c.dim}${c.maxWorkgroupsPerDimension ? ', folded grid' : ''})`, () =>
    withGpu(async (acq) => {
      const { tasks: T, supportRows: Ks, queryRows: Kq, dim: D } = c;
      const batch = randomBatch(T, Ks, Kq, D, 48);
      const output = dataLayout(T, Ks + Kq, Kq, D);
      const data = upload(acq, 'data', packBatch(batch, D));
      const joint = createBuffer(acq.device, 'test.joint', output.total);
      // Every float of joint must be written (padding included): start from a sentinel.
      writeFloats(acq.device, joint, 0, new Float32Array(output.total).fill(-7));
      const bound = new JoinRowsKernel(acq.device, { maxWorkgroupsPerDimension: c.maxWorkgroupsPerDimension }).bind({ data, joint }, c, 'test');
      submit(acq, (pass) => bound.encode(pass));
      const joined = joinRows(batch.supportX, batch.supportY, batch.queryX, batch.queryY, c);
      const expected = packBatch({ ...batch, supportShots: Ks + Kq, supportX: joined.x, supportY: joined.y }, D);
      exactlyEqual('joint', await readFloats(acq.device, joint, output.total), expected);
      data.destroy();
      joint.destroy();
    }));
}

test.run();
