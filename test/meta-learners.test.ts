// Meta-SGD, ANIL and Reptile through the public API, on both backends, against independent oracles:
// Meta-SGD with α = innerLr·1 is MAML for θ; its meta-gradients (θ and α) and ANIL's against finite
// differences of evaluate()'s query loss (which is the meta-objective); Reptile's update against a
// float64 hand computation; ANIL with the body held fixed is MAML on the head over the body's features;
// GPU vs CPU over 20 meta-iterations; state, checkpoints and refusals.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner, type Learner } from '../src/learner.js';
import { pickOptions } from '../src/algorithms/index.js';
import { InvalidOptionError, ShapeError } from '../src/errors.js';
import type { BackendChoice, CheckedBatch, LearnerOptions } from '../src/types.js';
import { assertClose, maxAbs, randomBatch, randomNWayBatch, thrown, withGpu } from './helpers.js';
import { grad, labelsOf, rowsOf, type Vec } from './oracle.js';
import { mlpBodyFeatures, mlpLossGrad, type MlpRows } from '../src/cpu/mlp.js';
import { mlpLayout } from '../src/models/mlp.js';
import { cli } from './helpers.js';
import { loadCheckpoint } from '../src/cli/checkpoint.js';
import { mkdtempSync } from 'node:fs';
import { loadOmniglotEmbedded } from '../src/node/omniglot.js';
import type { OmniglotSource } from '../src/tasks/source.js';
import os from 'node:os';
import path from 'node:path';

const BACKENDS: BackendChoice[] = ['cpu', 'webgpu'];
const run = (backend: BackendChoice, body: () => Promise<void>) => (backend === 'webgpu' ? withGpu(body) : body());
const mlp = { kind: 'mlp' as const, hidden: [6, 5], classes: 3 };
const D = 7;

/** Central differences of evaluate()'s mean query loss after `steps` inner steps (the meta-objective),
 * in the coordinates `at` of θ (which = 'params') or of α ('stepSizes'). */
async function fdOfEvaluate(learner: Learner, batch: CheckedBatch, which: 'params' | 'stepSizes', at: number[], h: number, steps: number): Promise<number[]> {
  const base = which === 'params' ? await learner.getParams() : await learner.getStepSizes();
  const set = (v: Float32Array) => (which === 'params' ? learner.setParams(v) : learner.setStepSizes(v));
  const out: number[] = [];
  for (const i of at) {
    const plus = base.slice();
    plus[i] += h;
    set(plus);
    const lp = (await learner.evaluate(batch, { steps })).loss;
    const minus = base.slice();
    minus[i] -= h;
    set(minus);
    const lm = (await learner.evaluate(batch, { steps })).loss;
    // The perturbation actually applied, in float32.
    out.push((lp - lm) / (plus[i] - minus[i]));
  }
  set(base);
  return out;
}

const pick = (a: Float32Array, at: number[]) => at.map((i) => a[i]);

for (const backend of BACKENDS) {
  test(`[${backend}] Meta-SGD with α = innerLr·1: θ's meta-gradient and one SGD step are MAML's (logistic and MLP, orders 1 and 2)`, () =>
    run(backend, async () => {
      for (const [model, batch] of [[undefined, randomBatch(4, 5, 6, D, 11)], [mlp, randomNWayBatch(4, 4, 5, D, 3, 12)]] as const) {
        for (const order of [1, 2] as const) {
          const options = { dim: D, innerLr: 0.3, outerLr: 0.1, innerSteps: 2, order, seed: 5, backend, threads: 1, ...(model ? { model } : {}) };
          const maml = await createLearner({ ...options, algorithm: 'maml' } as LearnerOptions);
          const sgd = await createLearner({ ...options, algorithm: 'meta-sgd' } as LearnerOptions);
          const P = sgd.paramCount;
          assert.is(P, maml.paramCount);
          assertClose('initial α = innerLr', await sgd.getStepSizes(), new Float32Array(P).fill(0.3), 0, 0);
          const g = await sgd.metaGradient(batch);
          assert.is(g.length, 2 * P, 'meta-gradient of θ then α');
          assertClose(`order ${order}: g_θ = MAML's meta-gradient`, g.subarray(0, P), await maml.metaGradient(batch), 1e-6, 1e-4);
          assert.ok(maxAbs(g.subarray(P)) > 0, 'α has a meta-gradient');
          await maml.step(batch);
          await sgd.step(batch);
          assertClose('θ after one SGD step', await sgd.getParams(), await maml.getParams(), 1e-6, 1e-4);
          // α moved by −β g_α.
          const alpha = await sgd.getStepSizes();
          assertClose('α after one SGD step', alpha, Float32Array.from(g.subarray(P), (v) => 0.3 - 0.1 * v), 1e-6, 1e-4);
          maml.destroy();
          sgd.destroy();
        }
      }
    }));

  test(`[${backend}] Meta-SGD order 2: the meta-gradients of θ and α equal finite differences of the meta-objective`, () =>
    run(backend, async () => {
      // Coordinates of W_1, b_1, W_2 and the head. (Not b_2: with these seeds some rows reach layer 2 with every
      // layer-1 unit off, so z = b_2 = 0 sits exactly on the ReLU kink, where finite differences see ½.)
      for (const [model, batch, at, h] of [[undefined, randomBatch(3, 5, 6, D, 21), [0, 3, 6], 1e-2], [mlp, randomNWayBatch(3, 4, 5, D, 3, 22), [0, 17, 44, 60, 90, 99], 2e-3]] as const) {
        const learner = await createLearner({ algorithm: 'meta-sgd', dim: D, innerLr: 0.4, innerSteps: 2, order: 2, seed: 6, backend, threads: 1, ...(model ? { model } : {}) } as LearnerOptions);
        // α not all equal: a Meta-SGD that confused θ's and α's coordinates would show.
        learner.setStepSizes(Float32Array.from({ length: learner.paramCount }, (_, i) => 0.2 + 0.3 * ((i * 7) % 5) / 5));
        const g = await learner.metaGradient(batch);
        const P = learner.paramCount;
        const idx = at.filter((i) => i < P);
        assertClose('g_θ vs finite differences', pick(g.subarray(0, P), idx), await fdOfEvaluate(learner, batch, 'params', idx, h, 2), 5e-4, 1e-2);
        assertClose('g_α vs finite differences', pick(g.subarray(P), idx), await fdOfEvaluate(learner, batch, 'stepSizes', idx, h, 2), 5e-4, 1e-2);
        learner.destroy();
      }
    }));

  test(`[${backend}] ANIL order 2 (MLP, with and without per-task norm): the meta-gradient equals finite differences`, () =>
    run(backend, async () => {
      for (const norm of ['none', 'task'] as const) {
        const batch = randomNWayBatch(3, 4, 5, D, 3, 31);
        const learner = await createLearner({ algorithm: 'anil', dim: D, model: { ...mlp, norm }, innerLr: 0.5, innerSteps: 2, order: 2, seed: 7, backend, threads: 1 });
        const g = await learner.metaGradient(batch);
        // Body entries (W_1, b_1, W_2) and head entries (W_3, b_3): the body's come through the head's adaptation.
        const layout = mlpLayout(D, mlp.hidden, mlp.classes);
        const head = layout.layers[2];
        // (h = 2e-3: a step of 1e-2 crosses a ReLU kink of this net at W_1[1].)
        const idx = [1, 20, layout.layers[0].b + 2, layout.layers[1].w + 7, head.w + 4, head.b + 1];
        assertClose(`norm ${norm}: ANIL g vs finite differences`, pick(g, idx), await fdOfEvaluate(learner, batch, 'params', idx, 2e-3, 2), 5e-4, 1e-2);
        learner.destroy();
      }
    }));

  test(`[${backend}] ANIL with a fixed body is MAML on the head alone over the body's features (orders 1 and 2)`, () =>
    run(backend, async () => {
      const batch = randomNWayBatch(4, 4, 5, D, 3, 41);
      const layout = mlpLayout(D, mlp.hidden, mlp.classes);
      const head = layout.layers[2];
      const H = head.inputs;
      for (const order of [1, 2] as const) {
        const anil = await createLearner({ algorithm: 'anil', dim: D, model: mlp, innerLr: 0.5, innerSteps: 2, order, seed: 8, backend, threads: 1 });
        const theta = await anil.getParams();
        // The body's features of every row (float64 reference forward), as the head-only model's data.
        const features = (x: Float32Array, rows: number) => {
          const out = new Float32Array(batch.tasks * rows * H);
          const r: MlpRows = { x, xOff: 0, xStride: D, y: new Float32Array(batch.tasks * rows), yOff: 0, rows: batch.tasks * rows };
          out.set(mlpBodyFeatures(layout, theta, 0, r));
          return out;
        };
        const headBatch = { ...batch, supportX: features(batch.supportX, batch.supportShots), queryX: features(batch.queryX, batch.queryShots) };
        const maml = await createLearner({ algorithm: 'maml', dim: H, model: { kind: 'mlp', hidden: [], classes: 3 }, innerLr: 0.5, innerSteps: 2, order, backend, threads: 1 });
        maml.setParams(theta.slice(head.w, head.b + mlp.classes));
        const g = await anil.metaGradient(batch);
        assertClose(`order ${order}: ANIL's head meta-gradient = MAML's on the features`, g.subarray(head.w, head.b + mlp.classes), await maml.metaGradient(headBatch), 1e-5, 1e-3);
        // The adapted heads agree too.
        const [a, m] = [await anil.adapt(batch), await maml.adapt(headBatch)];
        assertClose('query loss after adaptation', a.taskLoss, m.taskLoss, 1e-5, 1e-4);
        anil.destroy();
        maml.destroy();
      }
    }));

  test(`[${backend}] Reptile: one update equals θ + β·mean_t(θ'_t − θ) with θ'_t from SGD on support ∪ query (float64 by hand; logistic and MLP, SGD and Adam)`, () =>
    run(backend, async () => {
      const T = 3;
      // Logistic: 2 inner steps on the union, by hand with the float64 oracle.
      const batch = randomBatch(T, 4, 5, D, 51);
      const reptile = await createLearner({ algorithm: 'reptile', dim: D, innerLr: 0.3, outerLr: 0.5, innerSteps: 2, seed: 9, backend, threads: 1 });
      const theta = Array.from(await reptile.getParams());
      const mean = new Array(D).fill(0);
      for (let t = 0; t < T; t++) {
        const X = [...rowsOf(batch.supportX, t, 4, D), ...rowsOf(batch.queryX, t, 5, D)];
        const y = [...labelsOf(batch.supportY, t, 4), ...labelsOf(batch.queryY, t, 5)];
        let w: Vec = theta.slice();
        for (let s = 0; s < 2; s++) w = w.map((v, d) => v - 0.3 * grad(w, X, y)[d]);
        w.forEach((v, d) => (mean[d] += (v - theta[d]) / T));
      }
      await reptile.step(batch);
      assertClose('logistic θ after one Reptile update', await reptile.getParams(), theta.map((v, d) => v + 0.5 * mean[d]), 1e-6, 1e-4);
      reptile.destroy();

      // MLP, 1 inner step, Adam's first step: θ − β·sign-like m̂/(√v̂ + ε) of g = −mean(θ' − θ).
      const nway = randomNWayBatch(T, 3, 4, D, 3, 52);
      const layout = mlpLayout(D, mlp.hidden, mlp.classes);
      const net = await createLearner({ algorithm: 'reptile', dim: D, model: mlp, innerLr: 0.3, outerLr: 0.01, innerSteps: 1, optimizer: 'adam', seed: 10, backend, threads: 1 });
      const p0 = await net.getParams();
      const g = new Float64Array(layout.params);
      for (let t = 0; t < T; t++) {
        const x = new Float32Array([...nway.supportX.subarray(t * 3 * D, (t + 1) * 3 * D), ...nway.queryX.subarray(t * 4 * D, (t + 1) * 4 * D)]);
        const y = new Float32Array([...nway.supportY.subarray(t * 3, (t + 1) * 3), ...nway.queryY.subarray(t * 4, (t + 1) * 4)]);
        const gt = new Float64Array(layout.vector);
        mlpLossGrad(layout, p0, 0, { x, xOff: 0, xStride: D, y, yOff: 0, rows: 7 }, gt);
        // θ − θ' = α·∇L on the union; its mean is the "gradient" Adam sees.
        for (let k = 0; k < layout.params; k++) g[k] += (0.3 * gt[k]) / T;
      }
      await net.step(nway);
      // Adam's first step: m̂ = g, v̂ = g², so θ − β g/(|g| + ε): ±β wherever g is not tiny (where it is,
      // g/|g| is decided by rounding, so those entries are only checked to move by at most β).
      const p1 = await net.getParams();
      const clear = [...g.keys()].filter((k) => Math.abs(g[k]) > 1e-4);
      assert.ok(clear.length > layout.params / 2, 'most entries have a clear gradient');
      assertClose('MLP θ after one Reptile update with Adam', pick(p1, clear), clear.map((k) => p0[k] - (0.01 * g[k]) / (Math.abs(g[k]) + 1e-8)), 2e-6, 1e-4);
      assert.ok(maxAbs(p1.map((v, k) => v - p0[k])) <= 0.01 + 1e-6, 'no entry moved by more than β');
      net.destroy();
    }));
}

const AGREEMENT: Array<[string, Partial<LearnerOptions>, 'logistic' | 'mlp']> = [
  ['meta-sgd order 1, logistic', { algorithm: 'meta-sgd', order: 1 }, 'logistic'],
  ['meta-sgd order 2, logistic, adam', { algorithm: 'meta-sgd', order: 2, optimizer: 'adam', outerLr: 0.01 }, 'logistic'],
  ['reptile, logistic', { algorithm: 'reptile', innerSteps: 3 }, 'logistic'],
  ['anil order 2, logistic (= maml)', { algorithm: 'anil', order: 2 }, 'logistic'],
  ['meta-sgd order 2, mlp', { algorithm: 'meta-sgd', order: 2 }, 'mlp'],
  ['meta-sgd order 1, mlp, adam', { algorithm: 'meta-sgd', order: 1, optimizer: 'adam', outerLr: 0.01 }, 'mlp'],
  ['anil order 1, mlp', { algorithm: 'anil', order: 1 }, 'mlp'],
  ['anil order 2, mlp with per-task norm', { algorithm: 'anil', order: 2, model: { ...mlp, norm: 'task' } }, 'mlp'],
  ['reptile, mlp, adam', { algorithm: 'reptile', innerSteps: 3, optimizer: 'adam', outerLr: 0.01 }, 'mlp'],
];

for (const [name, extra, kind] of AGREEMENT) {
  test(`GPU and CPU agree over 20 meta-iterations (${name})`, () =>
    withGpu(async () => {
      const options = { dim: D, innerLr: 0.3, outerLr: 0.1, innerSteps: 2, seed: 3, ...(kind === 'mlp' ? { model: mlp } : {}), ...extra } as LearnerOptions;
      const gpu = await createLearner({ ...options, backend: 'webgpu' });
      const cpu = await createLearner({ ...options, backend: 'cpu', threads: 1 });
      const start = await cpu.getParams();
      const batchOf = (i: number) => (kind === 'mlp' ? randomNWayBatch(5, 4, 5, D, 3, 60 + (i % 4)) : randomBatch(8, 6, 6, D, 60 + (i % 4)));
      for (let i = 0; i < 20; i++) {
        await gpu.step(batchOf(i));
        await cpu.step(batchOf(i));
      }
      const end = await cpu.getParams();
      assert.ok(maxAbs(end.map((v, i) => v - start[i])) > 1e-3, 'training moved the parameters');
      assertClose('θ after 20 iterations', await gpu.getParams(), end, 3e-4, 1e-3);
      if (options.algorithm === 'meta-sgd') assertClose('α after 20 iterations', await gpu.getStepSizes(), await cpu.getStepSizes(), 3e-4, 1e-3);
      const held = batchOf(99);
      const [g, c] = [await gpu.evaluate(held), await cpu.evaluate(held)];
      assertClose('evaluate task loss', g.taskLoss, c.taskLoss, 1e-4, 1e-3);
      gpu.destroy();
      cpu.destroy();
    }));
}

test('train() on Omniglot episodes sampled on the device: GPU and CPU agree for Meta-SGD, ANIL and Reptile (Reptile joins the sampled rows on the device)', () =>
  withGpu(async () => {
    const source: OmniglotSource = { kind: 'omniglot', set: loadOmniglotEmbedded(), ways: 3, shots: 1, queries: 2 };
    for (const algorithm of ['meta-sgd', 'anil', 'reptile'] as const) {
      const options = pickOptions(algorithm, { dim: 784, model: { kind: 'mlp', hidden: [8], classes: 3, norm: 'task' }, innerLr: 0.3, outerLr: 0.1, innerSteps: 2, order: 2, seed: 4 });
      // (Plain SGD outside: Adam's first steps are ±β on every entry, whatever its size, so float32 noise in a
      // near-zero gradient would move θ by β.)
      const gpu = await createLearner({ ...options, backend: 'webgpu' });
      const cpu = await createLearner({ ...options, backend: 'cpu', threads: 1 });
      const start = await cpu.getParams();
      for (const l of [gpu, cpu]) await l.train({ source, iterations: 4, tasksPerBatch: 3 });
      const end = await cpu.getParams();
      assert.ok(maxAbs(end.map((v, i) => v - start[i])) > 1e-3, `${algorithm}: training moved θ`);
      assertClose(`${algorithm}: θ after 4 sampled iterations`, await gpu.getParams(), end, 1e-4, 1e-3);
      gpu.destroy();
      cpu.destroy();
    }
  }));

test('Meta-SGD state: getState holds α, setState restores it exactly, and a state without α (or with one, for MAML) is refused', async () => {
  const options = { algorithm: 'meta-sgd' as const, dim: D, model: mlp, innerLr: 0.3, outerLr: 0.1, optimizer: 'adam' as const, backend: 'cpu' as const };
  const a = await createLearner(options);
  const batch = randomNWayBatch(4, 3, 4, D, 3, 71);
  await a.step(batch, { iterations: 3 });
  const state = await a.getState();
  assert.ok(state.stepSizes && state.stepSizes.length === a.paramCount, 'α in the state');
  assert.ok(maxAbs(state.stepSizes!.map((v) => v - 0.3)) > 0, 'α was trained');
  const b = await createLearner(options);
  b.setState(state);
  await a.step(batch);
  await b.step(batch);
  assertClose('θ after resuming', await b.getParams(), await a.getParams(), 0, 0);
  assertClose('α after resuming', await b.getStepSizes(), await a.getStepSizes(), 0, 0);
  const missing = await thrown(() => b.setState({ params: state.params, optimizer: state.optimizer }));
  assert.instance(missing, ShapeError);
  assert.match(missing.message, /stepSizes/);
  const maml = await createLearner({ ...options, algorithm: 'maml' });
  assert.instance(await thrown(() => maml.setState(state)), ShapeError);
  assert.instance(await thrown(() => maml.getStepSizes()), InvalidOptionError);
  assert.instance(await thrown(() => maml.setStepSizes(new Float32Array(maml.paramCount))), InvalidOptionError);
  assert.instance(await thrown(() => a.setStepSizes(new Float32Array(a.paramCount).fill(Number.NaN))), Error);
  // Meta-SGD adapts with α: an evaluation rate is refused rather than ignored.
  const lr = await thrown(() => a.evaluate(batch, { lr: 0.1 }));
  assert.instance(lr, InvalidOptionError);
  assert.match(lr.message, /learned step sizes/);
  for (const l of [a, b, maml]) l.destroy();
});

test('createLearner refuses what the new algorithms do not take: Reptile order, the AMP inner optimizer for Meta-SGD and ANIL', async () => {
  for (const [options, word] of [
    [{ algorithm: 'reptile', dim: 4, order: 2 }, /order/],
    [{ algorithm: 'meta-sgd', dim: 4, innerOptimizer: 'amp' }, /innerOptimizer/],
    [{ algorithm: 'anil', dim: 4, innerOptimizer: 'amp' }, /innerOptimizer/],
  ] as const) {
    const e = await thrown(() => createLearner(options as unknown as LearnerOptions));
    assert.instance(e, InvalidOptionError);
    assert.match(e.message, word);
  }
});

test('the CLI trains, resumes and evaluates Meta-SGD, ANIL and Reptile (α in the checkpoint; --order refused for reptile, --inner-lr for a Meta-SGD eval)', async () => {
  const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'metagrad-learners-'));
  const common = ['--source', 'omniglot', '--ways', '3', '--shots', '1', '--query-shots', '2', '--model', 'mlp', '--hidden', '8', '--classes', '3',
    '--tasks', '4', '--eval-every', '0', '--eval-tasks', '12', '--backend', 'cpu', '--quiet', '--optimizer', 'adam', '--outer-lr', '0.01'];
  for (const algo of ['meta-sgd', 'anil', 'reptile']) {
    const [a, b] = [tmp(), tmp()];
    const full = await cli('train', ...common, '--algo', algo, '--iterations', '6', '--out', a);
    assert.is(full.code, 0, full.err);
    assert.is((await cli('train', ...common, '--algo', algo, '--iterations', '3', '--out', b)).code, 0);
    const resumed = await cli('train', '--resume', '--iterations', '6', '--out', b, '--backend', 'cpu', '--quiet');
    assert.is(resumed.code, 0, resumed.err);
    const [ca, cb] = [loadCheckpoint(path.join(a, 'checkpoint.json')), loadCheckpoint(path.join(b, 'checkpoint.json'))];
    assert.is(ca.options.algorithm, algo);
    assertClose(`${algo}: θ of the resumed run = the uninterrupted run's`, cb.state.params, ca.state.params, 0, 0);
    if (algo === 'meta-sgd') {
      assert.ok(ca.state.stepSizes && ca.state.stepSizes.length === ca.state.params.length, 'α in the checkpoint');
      assertClose('α of the resumed run', cb.state.stepSizes!, ca.state.stepSizes!, 0, 0);
      const lr = await cli('eval', '--checkpoint', path.join(a, 'checkpoint.json'), '--inner-lr', '0.1', '--backend', 'cpu');
      assert.is(lr.code, 2);
      assert.match(lr.err, /--inner-lr does not apply to a Meta-SGD checkpoint/);
    }
    const ev = await cli('eval', '--checkpoint', path.join(a, 'checkpoint.json'), '--eval-tasks', '12', '--max-steps', '1', '--backend', 'cpu', '--joint-iterations', '0', '--transfer-iterations', '0');
    assert.is(ev.code, 0, ev.err);
    assert.match(ev.out, new RegExp(`${algo} \\(checkpoint, iteration 6\\) \\| \\d+\\.\\d% ± `));
    if (algo === 'meta-sgd') assert.match(ev.out, /learned step sizes α/);
    assert.match(ev.out, algo === 'anil' ? /from scratch \(He init, same steps, head only\)/ : /from scratch \(He init, same steps\) \|/);
  }
  const order = await cli('train', ...common, '--algo', 'reptile', '--order', '2', '--iterations', '1', '--out', tmp());
  assert.is(order.code, 2);
  assert.match(order.err, /--order does not apply to --algo reptile/);
});

test.run();
