// Issue 20: every algorithm over a layer-list model (conv, norm, ReLU, max-pool, dense) through
// createLearner on the CPU backend. Checked: MAML's learner meta-gradient against the float64 oracle
// (identity: order 1 = the mean query gradient at each task's adapted point); each algorithm's 20
// iterations on one fixed batch lower that batch's query loss (ADML: the clean query loss too, AMP: its
// models' training loss); worker threads give the same bits as one thread; getState/setState round
// trip; evaluate under PGD; and the errors a user meets (the GPU backend, a dim that is not the image,
// ANIL without a dense head, a label outside the classes).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner, type Learner } from '../src/learner.js';
import { InvalidOptionError, LabelError, NonFiniteError } from '../src/errors.js';
import type { Batch, LearnerOptions } from '../src/types.js';
import type { LayerSpec } from '../src/models/layers.js';
import { netModelLayout } from '../src/models/model.js';
import { netLossGrad } from '../src/cpu/net/oracle.js';
import { randomArray, thrown } from './helpers.js';

const IMAGE = { h: 8, w: 8, c: 1 };
const D = 64;
const N = 3;
const LAYERS: LayerSpec[] = [
  { kind: 'conv2d', filters: 4, size: 3, stride: 1, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'maxpool' },
  { kind: 'conv2d', filters: 4, size: 3, stride: 2, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'meanpool' },
  { kind: 'dense', units: N },
];
const MODEL = { kind: 'layers' as const, input: IMAGE, layers: LAYERS };

/** T tasks of N classes: each class a random prototype image per task, rows = prototype + noise. */
function batchOf(T: number, shots: number, queries: number, seed: number): Batch {
  const rows = (per: number, stream: number) => {
    const x = new Float32Array(T * N * per * D);
    const y = new Float32Array(T * N * per);
    const noise = randomArray(x.length, seed, stream, -0.3, 0.3);
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < N; c++) {
        const proto = randomArray(D, seed + 1000 * t + c, 99, 0, 1);
        for (let k = 0; k < per; k++) {
          const r = (t * N + c) * per + k;
          y[r] = c;
          for (let d = 0; d < D; d++) x[r * D + d] = proto[d] + noise[r * D + d];
        }
      }
    }
    return { x, y };
  };
  const s = rows(shots, 1);
  const q = rows(queries, 2);
  return { tasks: T, supportShots: N * shots, queryShots: N * queries, supportX: s.x, supportY: s.y, queryX: q.x, queryY: q.y };
}

const base: LearnerOptions = { dim: D, model: MODEL, backend: 'cpu', innerLr: 0.3, outerLr: 0.01, optimizer: 'adam', threads: 1, seed: 3 };

const ALGOS: Array<{ name: string; options: Partial<LearnerOptions> }> = [
  { name: 'maml order 1', options: { algorithm: 'maml', order: 1 } },
  { name: 'maml order 2', options: { algorithm: 'maml', order: 2 } },
  { name: 'adml', options: { algorithm: 'adml', order: 1, epsilon: 0.05 } },
  { name: 'ga-maml', options: { algorithm: 'ga-maml', order: 1 } },
  { name: 'caml', options: { algorithm: 'caml', order: 2, contextDim: 2, innerLr: 1 } },
  { name: 'meta-sgd', options: { algorithm: 'meta-sgd', order: 1 } },
  { name: 'anil order 2', options: { algorithm: 'anil', order: 2 } },
  { name: 'reptile', options: { algorithm: 'reptile', innerSteps: 2, outerLr: 0.05, optimizer: 'sgd' } },
  { name: 'amp', options: { algorithm: 'amp', models: 4, lr: 0.1 } },
];

/** The learner options of a row: AMP takes its own (no inner or outer rate, no optimizer). */
const optionsOf = (options: Partial<LearnerOptions>, threads = 1): LearnerOptions =>
  (options.algorithm === 'amp' ? { dim: D, model: MODEL, backend: 'cpu', seed: 3, threads, ...options } : { ...base, ...options, threads }) as LearnerOptions;

for (const { name, options } of ALGOS) {
  test(`${name} over a conv net (CPU): 20 iterations on one batch lower its query loss; threads 1 and 2 give the same bits; state round-trips`, async () => {
    const batch = batchOf(4, 2, 3, 7);
    const learner = await createLearner(optionsOf(options));
    const threaded = await createLearner(optionsOf(options, 2));
    try {
      const first = await learner.evaluate(batch, { steps: options.algorithm === 'amp' ? 0 : undefined });
      for (let i = 0; i < 20; i++) {
        await learner.step(batch);
        await threaded.step(batch);
      }
      const last = await learner.evaluate(batch, { steps: options.algorithm === 'amp' ? 0 : undefined });
      assert.ok(Number.isFinite(last.loss) && last.loss < first.loss, `query loss ${first.loss} → ${last.loss}`);
      const p = await learner.getParams();
      assert.ok(p.every(Number.isFinite));
      assert.equal(Array.from(await threaded.getParams()), Array.from(p), 'the same parameters with 2 worker threads');
      const state = await learner.getState();
      const copy = await createLearner(optionsOf(options));
      copy.setState(state);
      assert.equal(Array.from(await copy.getParams()), Array.from(p));
      copy.destroy();
    } finally {
      learner.destroy();
      threaded.destroy();
    }
  });
}

test('MAML order 1 over a conv net: the learner\'s meta-gradient is the mean over tasks of the float64 oracle\'s query gradient at each adapted point', async () => {
  const batch = batchOf(3, 1, 2, 11);
  const learner = await createLearner({ ...base, algorithm: 'maml', order: 1, innerSteps: 1 });
  try {
    const layout = netModelLayout(MODEL, D, 0)!;
    const theta = await learner.getParams();
    const g = await learner.metaGradient(batch);
    const expected = new Float64Array(layout.params);
    const Ks = batch.supportShots;
    const Kq = batch.queryShots;
    for (let t = 0; t < batch.tasks; t++) {
      const support = { x: Float64Array.from(batch.supportX.subarray(t * Ks * D, (t + 1) * Ks * D)), xOff: 0, y: batch.supportY as Float32Array, yOff: t * Ks, rows: Ks };
      const gs = new Float64Array(layout.params);
      netLossGrad(layout.net, theta, support, gs);
      const adapted = Float64Array.from(theta, (w, k) => Math.fround(w - 0.3 * gs[k]));
      const query = { x: Float64Array.from(batch.queryX.subarray(t * Kq * D, (t + 1) * Kq * D)), xOff: 0, y: batch.queryY as Float32Array, yOff: t * Kq, rows: Kq };
      const gq = new Float64Array(layout.params);
      netLossGrad(layout.net, adapted, query, gq);
      for (let k = 0; k < layout.params; k++) expected[k] += gq[k] / batch.tasks;
    }
    for (let k = 0; k < layout.params; k++) assert.ok(Math.abs(g[k] - expected[k]) <= 1e-5 * Math.max(1, Math.abs(expected[k])), `g[${k}]: ${g[k]} vs ${expected[k]}`);
  } finally {
    learner.destroy();
  }
});

test('conv4 on Omniglot-shaped rows: evaluate under PGD scores every task, the attacked accuracy at most the clean one on average', async () => {
  const learner: Learner = await createLearner({ dim: 784, model: { kind: 'conv4', classes: 5, filters: 4 }, backend: 'cpu', threads: 1, innerLr: 0.4 });
  try {
    const T = 3;
    const x = randomArray(T * 5 * 784, 5, 1, 0, 1);
    const y = Float32Array.from({ length: T * 5 }, (_, i) => i % 5);
    const batch = { tasks: T, supportShots: 5, queryShots: 5, supportX: x, supportY: y, queryX: x.slice(), queryY: y.slice() };
    const r = await learner.evaluate(batch, { steps: 3, attack: { kind: 'pgd', epsilon: 0.1, steps: 5, clip: [0, 1] } });
    assert.is(r.taskAccuracy.length, T);
    assert.ok(r.attacked && r.attacked.loss >= r.loss, `attacked loss ${r.attacked?.loss} vs clean ${r.loss}`);
  } finally {
    learner.destroy();
  }
});

test('a regression net (loss mse): results name the metric — mse with its interval, equal to the loss; accuracy NaN — and training lowers it; non-finite targets are refused', async () => {
  // Tasks y = a_t·x₁ − x₂ with a_t per task: a dense net regresses them.
  const T = 4, K = 8, F = 2;
  const make = (seed: number) => {
    const x = randomArray(T * K * F, seed, 1);
    const y = Float32Array.from({ length: T * K }, (_, r) => (1 + Math.floor(r / K) * 0.5) * x[2 * r] - x[2 * r + 1]);
    return { x, y };
  };
  const s = make(1), q = make(2);
  const batch = { tasks: T, supportShots: K, queryShots: K, supportX: s.x, supportY: s.y, queryX: q.x, queryY: q.y };
  const model = { kind: 'layers' as const, input: { h: 1, w: 1, c: F }, layers: [{ kind: 'dense', units: 16 }, { kind: 'relu' }, { kind: 'dense', units: 1 }] as LayerSpec[], loss: { kind: 'mse' as const } };
  const learner = await createLearner({ dim: F, model, backend: 'cpu', threads: 1, innerLr: 0.05, outerLr: 0.01, optimizer: 'adam', order: 2, seed: 2 });
  try {
    const first = await learner.evaluate(batch);
    assert.is(first.metric, 'mse');
    assert.ok(Number.isNaN(first.accuracy) && Number.isNaN(first.accuracyInterval.mean));
    assert.ok(Math.abs(first.mse! - first.loss) < 1e-6, `the mse ${first.mse} is the loss ${first.loss}`);
    assert.is(first.taskMse!.length, T);
    assert.ok(first.mseInterval!.ci95 >= 0);
    for (let i = 0; i < 30; i++) await learner.step(batch);
    const m = await learner.step(batch, { readback: true });
    assert.is(m.metric, 'mse');
    assert.ok(m.mse !== undefined && Number.isNaN(m.accuracy));
    const last = await learner.evaluate(batch);
    assert.ok(last.mse! < first.mse!, `query mse ${first.mse} → ${last.mse}`);
    const bad = { ...batch, queryY: batch.queryY.slice() };
    bad.queryY[3] = Number.NaN;
    const e = await thrown(() => learner.step(bad));
    assert.instance(e, NonFiniteError);
  } finally {
    learner.destroy();
  }
});

test('conv and layer-list models: clear errors for a dim that is not the image, ANIL without a dense head, a bad filter count, labels outside the classes', async () => {
  let e = await thrown(() => createLearner({ dim: 780, model: { kind: 'conv4', classes: 5 }, backend: 'cpu' }));
  assert.instance(e, InvalidOptionError);
  assert.match(e.message, /image shape/);
  e = await thrown(() => createLearner({ ...base, algorithm: 'anil', model: { kind: 'layers', input: IMAGE, layers: [{ kind: 'dense', units: 3 }, { kind: 'relu' }] } } as LearnerOptions));
  assert.instance(e, InvalidOptionError);
  assert.match(e.message, /must be dense/);
  e = await thrown(() => createLearner({ ...base, model: { kind: 'conv4', classes: 5, filters: 0 } }));
  assert.instance(e, InvalidOptionError);
  const learner = await createLearner(base);
  try {
    const batch = batchOf(2, 1, 1, 3);
    batch.queryY[1] = N;
    e = await thrown(() => learner.step(batch));
    assert.instance(e, LabelError);
  } finally {
    learner.destroy();
  }
});

test.run();
