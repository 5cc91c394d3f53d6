// Issue 22: prototypical networks on the CPU backend. The prototypical loss (src/cpu/net/losses.ts)
// against a direct computation in this file and its gradient against central finite differences; the
// learner's meta-gradient (the CPU engine: body over each episode, prototype loss, backward) against
// finite differences of an independent float64 protonet written here over the oracle's forward pass;
// evaluation against nearest-prototype classification done here; the options and labels it refuses;
// and that training raises held-out accuracy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { protoLoss } from '../src/cpu/net/losses.js';
import { netOutputs } from '../src/cpu/net/oracle.js';
import { netModelLayout } from '../src/models/model.js';
import { createLearner } from '../src/learner.js';
import { sampleTasks } from '../src/cpu/sample-tasks.js';
import { loadOmniglotEmbedded } from '../src/node/omniglot.js';
import { InvalidOptionError, LabelError } from '../src/errors.js';
import type { CheckedBatch, LearnerOptions, ModelSpec } from '../src/types.js';
import { assertClose, randomArray, thrown, withGpu } from './helpers.js';

/** The prototypical loss, directly: prototypes of the classes present, −squared distances, log-sum-exp. */
function directLoss(Z: ArrayLike<number>, F: number, labels: ArrayLike<number>, S: number, rows: number): { loss: number; hits: number } {
  const protos = new Map<number, number[]>();
  const counts = new Map<number, number>();
  for (let s = 0; s < S; s++) {
    const k = labels[s];
    const p = protos.get(k) ?? new Array<number>(F).fill(0);
    for (let f = 0; f < F; f++) p[f] += Z[s * F + f];
    protos.set(k, p);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  for (const [k, p] of protos) for (let f = 0; f < F; f++) p[f] /= counts.get(k)!;
  let loss = 0, hits = 0;
  for (let q = S; q < rows; q++) {
    const logits = [...protos].map(([k, p]) => [k, -p.reduce((d, v, f) => d + (Z[q * F + f] - v) ** 2, 0)] as const);
    const max = Math.max(...logits.map(([, l]) => l));
    const lse = max + Math.log(logits.reduce((a, [, l]) => a + Math.exp(l - max), 0));
    loss += lse - logits.find(([k]) => k === labels[q])![1];
    const best = logits.filter(([, l]) => l === max).map(([k]) => k).sort((a, b) => a - b)[0];
    if (best === labels[q]) hits++;
  }
  return { loss: loss / (rows - S), hits };
}

test('the prototypical loss: the direct computation, and its gradient against central finite differences; a class without support rows takes no part', () => {
  const F = 4, S = 4, rows = 9;
  const Z = Float64Array.from(randomArray(rows * F, 3, 1, -1, 1));
  const y = Float32Array.from([0, 1, 0, 2, /* queries */ 0, 1, 2, 2, 1]);
  const r = protoLoss(4, Z, rows, y, 0, S);   // class 3 has no support row
  const direct = directLoss(Z, F, y, S, rows);
  assert.ok(Math.abs(r.loss - direct.loss) < 1e-12, `loss ${r.loss} vs ${direct.loss}`);
  assert.ok(Math.abs(r.metric - direct.hits / (rows - S)) < 1e-12);
  const h = 1e-6;
  for (let i = 0; i < Z.length; i++) {
    const plus = Z.slice(), minus = Z.slice();
    plus[i] += h;
    minus[i] -= h;
    const fd = (directLoss(plus, F, y, S, rows).loss - directLoss(minus, F, y, S, rows).loss) / (2 * h);
    assert.ok(Math.abs(r.dZ[i] - fd) < 1e-7, `∂L/∂Z[${i}]: ${r.dZ[i]} vs ${fd}`);
  }
});

/** T tasks of N-way episodes with `shots` support and `queries` query rows per class, D features. */
function episodes(T: number, N: number, shots: number, queries: number, D: number, seed: number): CheckedBatch {
  const Ks = N * shots, Kq = N * queries;
  const protos = randomArray(T * N * D, seed, 9);
  const rows = (count: number, stream: number) => {
    const x = randomArray(T * count * D, seed, stream, -0.3, 0.3);
    const y = new Float32Array(T * count);
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < count; r++) {
        const k = r % N;
        y[t * count + r] = k;
        for (let d = 0; d < D; d++) x[(t * count + r) * D + d] += protos[(t * N + k) * D + d];
      }
    }
    return [x, y] as const;
  };
  const [supportX, supportY] = rows(Ks, 1);
  const [queryX, queryY] = rows(Kq, 2);
  return { tasks: T, supportShots: Ks, queryShots: Kq, supportX, supportY, queryX, queryY };
}

/** The mean over tasks of the episode loss at θ, embeddings from the oracle's forward pass over each
 * task's support then query rows (so a body's per-task norm sees the whole episode). */
function episodeLoss(model: ModelSpec, D: number, theta: Float64Array, b: CheckedBatch): { loss: number; accuracy: number } {
  const body = netModelLayout(model, D, 0, true)!.net;
  const Ks = b.supportShots, Kq = b.queryShots;
  let loss = 0, hits = 0;
  for (let t = 0; t < b.tasks; t++) {
    const x = new Float64Array((Ks + Kq) * D);
    x.set(b.supportX.subarray(t * Ks * D, (t + 1) * Ks * D));
    x.set(b.queryX.subarray(t * Kq * D, (t + 1) * Kq * D), Ks * D);
    const labels = [...b.supportY.subarray(t * Ks, (t + 1) * Ks), ...b.queryY.subarray(t * Kq, (t + 1) * Kq)];
    const Z = netOutputs(body, theta, x, 0, Ks + Kq);
    const r = directLoss(Z, body.outputs, labels, Ks, Ks + Kq);
    loss += r.loss / b.tasks;
    hits += r.hits;
  }
  return { loss, accuracy: hits / (b.tasks * Kq) };
}

const BODIES: Array<{ name: string; model: ModelSpec; D: number }> = [
  { name: 'MLP body with per-task norm', model: { kind: 'mlp', hidden: [6, 5], classes: 3, norm: 'task' }, D: 8 },
  { name: 'conv body (conv s2 p1 → norm → relu → maxpool → flatten)', model: { kind: 'layers', input: { h: 6, w: 6, c: 1 },
    layers: [{ kind: 'conv2d', filters: 3, size: 3, stride: 1, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'maxpool' }, { kind: 'flatten' }, { kind: 'dense', units: 3 }] }, D: 36 },
];

for (const body of BODIES) {
  test(`protonet, ${body.name}: the meta-gradient is the episode loss's gradient (finite differences of an independent float64 protonet); evaluate is nearest-prototype accuracy`, async () => {
    const b = episodes(2, 3, 2, 2, body.D, 5);
    const learner = await createLearner({ algorithm: 'protonet', dim: body.D, model: body.model, backend: 'cpu', threads: 1, seed: 3 } as LearnerOptions);
    try {
      const theta = Float64Array.from(await learner.getParams());
      const g = await learner.metaGradient(b);
      assert.is(g.length, theta.length, 'the body\'s parameters only (no head)');
      const h = 1e-6;
      for (let trial = 0; trial < 4; trial++) {
        const u = Float64Array.from(randomArray(theta.length, 11 + trial, 1));
        const fd = (episodeLoss(body.model, body.D, theta.map((v, i) => v + h * u[i]), b).loss - episodeLoss(body.model, body.D, theta.map((v, i) => v - h * u[i]), b).loss) / (2 * h);
        const dot = g.reduce((a, v, i) => a + v * u[i], 0);
        assert.ok(Math.abs(dot - fd) <= 1e-5 * Math.max(1, Math.abs(fd)), `g·u ${dot} vs finite differences ${fd}`);
      }
      const e = await learner.evaluate(b);
      const direct = episodeLoss(body.model, body.D, theta, b);
      assert.ok(Math.abs(e.loss - direct.loss) < 1e-5, `evaluate loss ${e.loss} vs ${direct.loss}`);
      assert.ok(Math.abs(e.accuracy - direct.accuracy) < 1e-6, `evaluate accuracy ${e.accuracy} vs nearest prototype ${direct.accuracy}`);
    } finally {
      learner.destroy();
    }
  });
}

test("protonet under attack: the input gradient of a query row through the prototypes against finite differences; FGSM and PGD keep the queries in the ε-ball, leave the support rows alone and lower the accuracy", async () => {
  const body = BODIES[0];
  const b = episodes(3, 3, 2, 2, body.D, 7);
  const layout = netModelLayout(body.model, body.D, 0, true)!;
  const learner = await createLearner({ algorithm: 'protonet', dim: body.D, model: body.model, backend: 'cpu', threads: 1, seed: 4 } as LearnerOptions);
  try {
    const theta = await learner.getParams();
    // Task 0's episode: the input gradient (the loss summed over its query rows) at its first query row.
    const Ks = b.supportShots, Kq = b.queryShots, D = body.D;
    const x = new Float32Array((Ks + Kq) * D);
    x.set(b.supportX.subarray(0, Ks * D));
    x.set(b.queryX.subarray(0, Kq * D), Ks * D);
    const y = Float32Array.from([...b.supportY.subarray(0, Ks), ...b.queryY.subarray(0, Kq)]);
    const grad = new Float64Array((Ks + Kq) * D);
    const { netWorkspace } = await import('../src/cpu/net/fast.js');
    netWorkspace(layout).inputGrad(theta, 0, { x, xOff: 0, xStride: D, y, yOff: 0, rows: Ks + Kq, episodeSupport: Ks }, grad);
    const summed = (xs: Float64Array) => directLoss(netOutputs(layout.net, Float64Array.from(theta), xs, 0, Ks + Kq), layout.net.outputs, y, Ks, Ks + Kq).loss * Kq;
    const h = 1e-5;
    for (const e of [Ks * D, Ks * D + 3, (Ks + 1) * D + 5]) {
      const plus = Float64Array.from(x), minus = Float64Array.from(x);
      plus[e] += h;
      minus[e] -= h;
      const fd = (summed(plus) - summed(minus)) / (2 * h);
      assert.ok(Math.abs(grad[e] - fd) <= 1e-6 * Math.max(1, Math.abs(fd)), `∂L/∂x[${e}]: ${grad[e]} vs ${fd}`);
    }
    for (const attack of [{ kind: 'fgsm' as const, epsilon: 0.3 }, { kind: 'pgd' as const, epsilon: 0.3, steps: 5 }]) {
      const r = await learner.adapt(b, { attack });
      for (let i = 0; i < b.queryX.length; i++) assert.ok(Math.abs(r.attackedQueryX![i] - b.queryX[i]) <= 0.3 + 1e-6, `query value ${i} within ε`);
      assert.ok(r.attackedQueryX!.some((v, i) => v !== b.queryX[i]), 'the queries moved');
      assert.ok(r.attacked!.loss > r.loss, `${attack.kind}: the attacked loss ${r.attacked!.loss} > clean ${r.loss}`);
      assert.ok(r.attacked!.accuracy <= r.accuracy, `${attack.kind}: accuracy ${r.accuracy} → ${r.attacked!.accuracy}`);
    }
  } finally {
    learner.destroy();
  }
});

test('protonet options and data: bodies it cannot take, inner steps at evaluation and a query class without support rows are refused with the fix', async () => {
  for (const model of [{ kind: 'logistic' }, { kind: 'mlp', hidden: [40], loss: 'mse' }, { kind: 'mlp', hidden: [], classes: 5 }] as ModelSpec[]) {
    const e = await thrown(() => createLearner({ algorithm: 'protonet', dim: 8, model, backend: 'cpu' }));
    assert.instance(e, InvalidOptionError, JSON.stringify(model));
    assert.match(e.message, /protonet embeds rows with the network's body/);
  }
  const model: ModelSpec = { kind: 'mlp', hidden: [6], classes: 3 };
  const learner = await createLearner({ algorithm: 'protonet', dim: 8, model, backend: 'cpu' });
  try {
    const b = episodes(2, 3, 1, 1, 8, 2);
    const steps = await thrown(() => learner.evaluate(b, { steps: 1 }));
    assert.instance(steps, InvalidOptionError);
    assert.match(steps.message, /does not apply to a protonet/);
    const noSupport = { ...b, supportY: Float32Array.from(b.supportY, (v) => (v === 2 ? 0 : v)) };
    const label = await thrown(() => learner.step(noSupport));
    assert.instance(label, LabelError);
    assert.match(label.message, /class 2, which has no support row in task 0/);
  } finally {
    learner.destroy();
  }
});

test('protonet trains: Omniglot 5-way 1-shot episodes with an MLP body, 60 iterations raise held-out accuracy above the untrained body\'s', async () => {
  const source = { kind: 'omniglot' as const, set: loadOmniglotEmbedded(), ways: 5, shots: 1, queries: 5 };
  const heldOut = sampleTasks(source, { tasks: 100, supportShots: 5, queryShots: 25 }, 1, 0, 'test');
  const learner = await createLearner({ algorithm: 'protonet', dim: 784, model: { kind: 'mlp', hidden: [64, 64], classes: 5 }, backend: 'cpu', seed: 2 });
  try {
    const before = await learner.evaluate(heldOut);
    await learner.train({ source, iterations: 60, tasksPerBatch: 8 });
    const after = await learner.evaluate(heldOut);
    assert.ok(after.accuracy > before.accuracy + 0.03, `held-out accuracy ${before.accuracy} → ${after.accuracy}`);
  } finally {
    learner.destroy();
  }
});

test('train with evalSource: a protonet trained on 10-way episodes is evaluated on 5-way ones (the same figure as evaluating those tasks directly); a source of another kind is refused', async () => {
  const set = loadOmniglotEmbedded();
  const train = { kind: 'omniglot' as const, set, ways: 10, shots: 1, queries: 2 };
  const test5 = { ...train, ways: 5 };
  const learner = await createLearner({ algorithm: 'protonet', dim: 784, model: { kind: 'mlp', hidden: [32], classes: 10 }, backend: 'cpu', seed: 5 });
  try {
    const p = await learner.train({ source: train, evalSource: test5, iterations: 10, tasksPerBatch: 4, evalEvery: 10, evalTasks: 40 });
    const direct = await learner.evaluate(sampleTasks(test5, { tasks: 40, supportShots: 5, queryShots: 10 }, 5, 0, 'test'));
    assert.is(p.eval!.accuracy, direct.accuracy);
    assert.is(p.eval!.loss, direct.loss);
    const e = await thrown(() => learner.train({ source: train, evalSource: { kind: 'sinusoid', shots: 5 }, iterations: 1 }));
    assert.instance(e, InvalidOptionError);
    assert.match(e.message, /evalSource must be a task source of the training source's kind \(omniglot\)/);
  } finally {
    learner.destroy();
  }
});

for (const body of BODIES) {
  test(`protonet, ${body.name}: the GPU engine matches the CPU engine (meta-gradient, 1 and 20 steps, evaluation; attacked under FGSM, ε = 0 and ε > 0)`, () =>
    withGpu(async () => {
      const b = episodes(5, 3, 2, 2, body.D, 9);
      // SGD: Adam would turn the float32 noise of a zero gradient (a bias before a per-task norm) into steps.
      const options = { algorithm: 'protonet', dim: body.D, model: body.model, outerLr: 0.01, optimizer: 'sgd', seed: 6 } as LearnerOptions;
      const gpu = await createLearner({ ...options, backend: 'webgpu' });
      const cpu = await createLearner({ ...options, backend: 'cpu', threads: 1 });
      try {
        assert.is(gpu.backend.kind, 'webgpu');
        assertClose('meta-gradient', await gpu.metaGradient(b), await cpu.metaGradient(b), 2e-5, 1e-3);
        await gpu.step(b);
        await cpu.step(b);
        assertClose('θ after 1 step', await gpu.getParams(), await cpu.getParams(), 2e-5, 1e-3);
        for (let i = 0; i < 19; i++) await cpu.step(b);
        await gpu.step(b, { iterations: 19 });
        assertClose('θ after 20 steps', await gpu.getParams(), await cpu.getParams(), 2e-4, 1e-2);
        const [ge, ce] = [await gpu.evaluate(b), await cpu.evaluate(b)];
        assertClose('task losses', ge.taskLoss, ce.taskLoss, 1e-4, 1e-3);
        assertClose('task accuracies', ge.taskAccuracy, ce.taskAccuracy, 0, 0);
        const zero = await gpu.evaluate(b, { attack: { kind: 'fgsm', epsilon: 0 } });
        assertClose('ε = 0: attacked = clean', zero.attacked!.taskLoss, ge.taskLoss, 1e-6, 1e-5);
        const [ga, ca] = [await gpu.adapt(b, { attack: { kind: 'fgsm', epsilon: 0.2 } }), await cpu.adapt(b, { attack: { kind: 'fgsm', epsilon: 0.2 } })];
        let same = 0;
        for (let i = 0; i < b.queryX.length; i++) if (Math.abs(ga.attackedQueryX![i] - ca.attackedQueryX![i]) < 1e-5) same++;
        assert.ok(same / b.queryX.length > 0.95, `${same} of ${b.queryX.length} attacked values agree`);
        assert.ok(ga.attacked!.loss > ga.loss, 'the attack raises the loss on the GPU');
        // (FGSM's sign of an input gradient near 0 may differ between float32 and float64, so the two
        // attacks differ in a few values; the GPU's attacked queries, scored by the CPU, give its scores.)
        const rescored = await cpu.evaluate({ ...b, queryX: ga.attackedQueryX! });
        assertClose('the GPU\'s attacked scores', ga.attacked!.taskLoss, rescored.taskLoss, 1e-4, 1e-3);
      } finally {
        gpu.destroy();
        cpu.destroy();
      }
    }));
}

test.run();
