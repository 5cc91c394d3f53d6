// The baselines of `metagrad eval`: 1-nearest-neighbour on batches whose answers are worked out by
// hand; the transfer baseline (pretrain over every meta-train class, fresh head per task) on toy sets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  bodyFeatures, fineTuneHead, headStepSize, nearestNeighbourAccuracy, omniglotTrainSet, pretrainMlp, pretrainModel, transferAccuracy, withHead, type LabelledSet,
} from '../src/baselines.js';
import { normal, uniform01 } from '../src/rng.js';
import { distinctBelow, rotatedSource } from '../src/cpu/sample-tasks.js';
import { mlpLossGrad } from '../src/cpu/mlp.js';
import { taskModelFor } from '../src/cpu/task-model.js';
import type { ModelSpec } from '../src/models/mlp.js';
import { loadOmniglotEmbedded } from '../src/node/omniglot.js';
import { omniglotPool, type OmniglotSource } from '../src/tasks/source.js';
import type { CheckedBatch } from '../src/types.js';

test('1-nearest-neighbour: each query takes the label of its task\'s closest support row (ties: the first)', () => {
  const batch = {
    tasks: 2, supportShots: 2, queryShots: 3,
    // task 0: supports (0,0)→0, (10,10)→1; task 1: (0,0)→1, (5,0)→0
    supportX: Float32Array.from([0, 0, 10, 10, 0, 0, 5, 0]), supportY: Float32Array.from([0, 1, 1, 0]),
    // task 0: (1,1) is 0 ✓, (9,9) is 1 ✓, (4,4) is labelled 1 but nearer (0,0) ✗;
    // task 1: (0,1) is 1 ✓, (5,1) is 0 ✓, (2.5,0) ties, takes the first support's 1 but is labelled 0 ✗
    queryX: Float32Array.from([1, 1, 9, 9, 4, 4, 0, 1, 5, 1, 2.5, 0]), queryY: Float32Array.from([0, 1, 1, 1, 0, 0]),
  };
  const r = nearestNeighbourAccuracy(batch);
  assert.equal(Array.from(r.taskAccuracy), [2 / 3, 2 / 3].map(Math.fround));
  assert.ok(Math.abs(r.accuracy.mean - 2 / 3) < 1e-6);
});

// A toy problem: class c's examples are its prototype (a random ±1 pattern of DIM features) plus
// noise of sd 0.3: well separated, and any draw of them is a fresh sample of the class.
const DIM = 10;
const CLASSES = 6;
const prototype = (c: number, d: number) => (uniform01(77, c, d) < 0.5 ? -1 : 1);
const toyExample = (c: number, key: number, out: Float32Array, off: number) => {
  for (let d = 0; d < DIM; d++) out[off + d] = prototype(c, d) + 0.3 * normal(78, key, d);
};
const toySet: LabelledSet = {
  dim: DIM, classes: CLASSES, size: CLASSES * 50,
  example(i, out, off) { toyExample(i % CLASSES, i, out, off); return i % CLASSES; },
};

/** N-way tasks over the toy classes, relabelled at random per task, with fresh noise (as the samplers lay
 * rows out: row i has label i mod N). */
function toyTasks(tasks: number, N: number, shots: number, queries: number, seed: number): CheckedBatch {
  const b: CheckedBatch = {
    tasks, supportShots: N * shots, queryShots: N * queries,
    supportX: new Float32Array(tasks * N * shots * DIM), supportY: new Float32Array(tasks * N * shots),
    queryX: new Float32Array(tasks * N * queries * DIM), queryY: new Float32Array(tasks * N * queries),
  };
  for (let t = 0; t < tasks; t++) {
    const classes = distinctBelow(seed, t, 0, N, CLASSES);
    for (const [set, k] of [['support', shots], ['query', queries]] as const) {
      const rows = N * k;
      for (let r = 0; r < rows; r++) {
        const label = r % N;
        toyExample(classes[label], 1e6 + (seed * 1000 + t) * 100 + (set === 'query' ? 50 : 0) + r, set === 'support' ? b.supportX : b.queryX, (t * rows + r) * DIM);
        (set === 'support' ? b.supportY : b.queryY)[t * rows + r] = label;
      }
    }
  }
  return b;
}

const mean = (xs: ArrayLike<number>, from: number, to: number) => {
  let s = 0;
  for (let i = from; i < to; i++) s += xs[i];
  return s / (to - from);
};

for (const norm of [false, true]) {
  const tag = norm ? "norm 'task'" : 'no norm';
  test(`transfer [${tag}]: pretraining lowers its training loss; it is deterministic from the seed`, () => {
    const o = { hidden: [16, 8], norm, seed: 3, iterations: 150, batch: 24, lr: 0.01 };
    const pre = pretrainMlp(toySet, o);
    assert.is(pre.layout.classes, CLASSES);
    assert.is(pre.losses.length, 150);
    assert.ok(pre.losses[0] > 1, `starts near log 6: ${pre.losses[0]}`);
    assert.ok(mean(pre.losses, 130, 150) < 0.25 * mean(pre.losses, 0, 20), `loss ${mean(pre.losses, 0, 20)} → ${mean(pre.losses, 130, 150)}`);
    const again = pretrainMlp(toySet, o);
    assert.equal(Array.from(again.params), Array.from(pre.params), 'same seed, same parameters');
    assert.equal(Array.from(again.losses), Array.from(pre.losses));
    const other = pretrainMlp(toySet, { ...o, seed: 4 });
    assert.not.equal(Array.from(other.params), Array.from(pre.params), 'another seed, other parameters');
    const batch = toyTasks(20, 3, 2, 4, 9);
    const a = transferAccuracy(pre, batch, { ways: 3, steps: 50 });
    const b = transferAccuracy(again, batch, { ways: 3, steps: 50 });
    assert.equal(Array.from(a.taskAccuracy), Array.from(b.taskAccuracy), 'same seed, same per-task accuracy');
  });

  test(`transfer [${tag}]: on separable toy tasks (relabelled per task) the fine-tuned heads get every query right; ε = 0 attacks change nothing`, () => {
    const pre = pretrainMlp(toySet, { hidden: [16, 8], norm, seed: 5, iterations: 300, batch: 24, lr: 0.01 });
    const batch = toyTasks(30, 3, 5, 5, 11);
    const r = transferAccuracy(pre, batch, { ways: 3, steps: 100 });
    assert.equal(Array.from(r.taskAccuracy), new Array(30).fill(1));
    assert.is(r.accuracy.mean, 1);
    assert.ok(r.supportLoss < 0.2, `support loss ${r.supportLoss}`);
    const none = transferAccuracy(pre, batch, { ways: 3, steps: 100, attack: { kind: 'pgd', epsilon: 0, steps: 3, stepSize: 0, lo: -Infinity, hi: Infinity } });
    assert.equal(Array.from(none.attacked!.taskAccuracy), Array.from(r.taskAccuracy));
    // A large budget against each fine-tuned network hurts it.
    const strong = transferAccuracy(pre, batch, { ways: 3, steps: 100, attack: { kind: 'pgd', epsilon: 1.5, steps: 10, stepSize: 0.4, lo: -Infinity, hi: Infinity } });
    assert.ok(strong.attacked!.accuracy.mean < 0.5, `PGD ε=1.5: ${strong.attacked!.accuracy.mean}`);
  });

  test(`transfer [${tag}]: the head fine-tune on a frozen body is convex, and with the default rate its loss falls at every step`, () => {
    const pre = pretrainMlp(toySet, { hidden: [16, 8], norm, seed: 6, iterations: 50, batch: 24, lr: 0.01 });
    const batch = toyTasks(5, 3, 2, 4, 13);
    const Ks = batch.supportShots;
    for (let t = 0; t < batch.tasks; t++) {
      const features = bodyFeatures(pre.layout, pre.params, batch.supportX, t * Ks * DIM, Ks);
      const fit = fineTuneHead(features, batch.supportY, t * Ks, Ks, 3, { steps: 60 });
      assert.is(fit.lr, headStepSize(features, Ks));
      assert.ok(Math.abs(fit.losses[0] - Math.log(3)) < 1e-12, 'a zero head predicts uniformly');
      for (let s = 1; s <= 60; s++) assert.ok(fit.losses[s] < fit.losses[s - 1], `task ${t} step ${s}: ${fit.losses[s - 1]} → ${fit.losses[s]}`);
      // A smaller rate also descends monotonically (more slowly).
      const slow = fineTuneHead(features, batch.supportY, t * Ks, Ks, 3, { steps: 60, lr: fit.lr / 4 });
      for (let s = 1; s <= 60; s++) assert.ok(slow.losses[s] < slow.losses[s - 1]);
      assert.ok(slow.losses[60] > fit.losses[60]);
      // Convex along segments: the loss of the midpoint of two heads is at most the mean of their losses.
      // The heads' losses are the whole network's (body + head, the standard layout) on the support set.
      const loss = (head: Float64Array) => {
        const net = withHead(pre, 3, head);
        if (net.layout.kind !== 'mlp') throw new Error('an MLP was pretrained');
        return mlpLossGrad(net.layout, net.params, 0, { x: batch.supportX, xOff: t * Ks * DIM, xStride: DIM, y: batch.supportY, yOff: t * Ks, rows: Ks }, null).loss;
      };
      assert.ok(Math.abs(loss(fit.head) - fit.losses[60]) < 1e-5, `the network's support loss ${loss(fit.head)} is the head's ${fit.losses[60]}`);
      for (let k = 0; k < 20; k++) {
        const a = Float64Array.from(fit.head, (_, i) => 3 * normal(k, 1, i));
        const b = Float64Array.from(fit.head, (_, i) => 3 * normal(k, 2, i));
        const mid = a.map((v, i) => (v + b[i]) / 2);
        assert.ok(loss(mid) <= (loss(a) + loss(b)) / 2 + 1e-6, 'midpoint convexity');
      }
    }
  });
}

test('transfer with a conv body (a layer list): pretraining lowers its loss; the network with a fine-tuned head has the head\'s support loss; tasks are scored and attacked', () => {
  // The toy rows as 2 × 5 single-channel images.
  const model: ModelSpec = {
    kind: 'layers', input: { h: 2, w: 5, c: 1 },
    layers: [{ kind: 'conv2d', filters: 8, size: 2, stride: 1, padding: 0 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'meanpool' }, { kind: 'dense', units: 99 }],
  };
  const pre = pretrainModel(toySet, model, { seed: 3, iterations: 200, batch: 24, lr: 0.01 });
  assert.equal(pre.model.kind === 'layers' && pre.model.layers[4], { kind: 'dense', units: CLASSES }, 'the head covers the set\'s classes');
  assert.ok(mean(pre.losses, 180, 200) < 0.7 * mean(pre.losses, 0, 20), `pretraining loss ${mean(pre.losses, 0, 20)} → ${mean(pre.losses, 180, 200)}`);
  const batch = toyTasks(4, 3, 2, 4, 21);
  const Ks = batch.supportShots;
  for (let t = 0; t < batch.tasks; t++) {
    const features = bodyFeatures(pre.layout, pre.params, batch.supportX, t * Ks * DIM, Ks);
    assert.is(features.length, Ks * 8, 'the head sees the 8 mean-pooled channels');
    const fit = fineTuneHead(features, batch.supportY, t * Ks, Ks, 3, { steps: 40 });
    const net = withHead(pre, 3, fit.head);
    const support = taskModelFor(net.layout).lossGrad(net.params, 0, { x: batch.supportX, xOff: t * Ks * DIM, xStride: DIM, y: batch.supportY, yOff: t * Ks, rows: Ks }, null);
    assert.ok(Math.abs(support.loss - fit.losses[40]) < 1e-5, `task ${t}: the network's support loss ${support.loss} is the head's ${fit.losses[40]}`);
  }
  const r = transferAccuracy(pre, batch, { ways: 3, steps: 40, attack: { kind: 'fgsm', epsilon: 0, steps: 1, stepSize: 0, lo: -Infinity, hi: Infinity } });
  assert.is(r.taskAccuracy.length, 4);
  assert.equal(Array.from(r.attacked!.taskAccuracy), Array.from(r.taskAccuracy), 'an ε = 0 attack changes nothing');
});

test('transfer: the Omniglot meta-train set is every train character × 4 rotations, turned as the sampler turns them', () => {
  const source: OmniglotSource = { kind: 'omniglot', set: loadOmniglotEmbedded(), ways: 5, shots: 1, queries: 5 };
  const pool = omniglotPool(source, 'train');
  const set = omniglotTrainSet(source);
  assert.is(set.classes, pool.characters.length * 4);
  assert.is(set.size, pool.count.reduce((a, c) => a + c, 0) * 4);
  assert.is(set.dim, 784);
  const x = new Float32Array(784);
  // The last image of the third character, turned by 90°: class 2·4 + 1.
  const image = pool.count[0] + pool.count[1] + pool.count[2] - 1;
  assert.is(set.example(image * 4 + 1, x, 0), 2 * 4 + 1);
  const base = (pool.start[2] + pool.count[2] - 1) * 784;
  for (let y = 0; y < 28; y++) for (let c = 0; c < 28; c++) assert.is(x[y * 28 + c], Math.fround(source.set.images[base + rotatedSource(y, c, 1)] * Math.fround(1 / 255)));
});

test.run();
