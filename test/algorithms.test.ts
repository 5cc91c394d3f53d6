// The seed algorithms through the public API on both backends, against independent float64 oracles
// (test/oracle.ts) and the identities of SPEC.md: ADML's order-2 gradient vs finite differences and
// ε = 0 ADML = two MAML updates; GA-MAML = MAML when all updates agree; CAML's gradients vs finite
// differences and its inner loop moving only the context; AMP vs its oracle, ε = 0 AMP = SGD; robust
// evaluation where attacks never help; and GPU vs CPU over many steps for every algorithm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner } from '../src/learner.js';
import { InvalidOptionError, ShapeError } from '../src/errors.js';
import type { BackendChoice, CheckedBatch, LearnerOptions } from '../src/types.js';
import { assertClose, maxAbs, randomArray, randomBatch, thrown, withGpu } from './helpers.js';
import { adapt, ampStep, camlAdapt, fgsm, finiteDifference, grad, labelsOf, loss, rowsOf, type Rows, type Vec } from './oracle.js';

const BACKENDS: BackendChoice[] = ['cpu', 'webgpu'];
const run = (backend: BackendChoice, body: () => Promise<void>) => (backend === 'webgpu' ? withGpu(body) : body());

const task = (b: CheckedBatch, t: number, D: number) => ({
  Xs: rowsOf(b.supportX, t, b.supportShots, D), ys: labelsOf(b.supportY, t, b.supportShots),
  Xq: rowsOf(b.queryX, t, b.queryShots, D), yq: labelsOf(b.queryY, t, b.queryShots),
});

/** ADML's combined objective, whose gradient (attacks held fixed) is g_c + (β2/β1)·g_a. */
function admlObjective(b: CheckedBatch, D: number, o: { a1: number; a2: number; ratio: number; eps: number; steps: number }, attackAt: Vec) {
  const adv = Array.from({ length: b.tasks }, (_, t) => {
    const { Xs, ys, Xq, yq } = task(b, t, D);
    return { Xs: fgsm(attackAt, Xs, ys, o.eps), Xq: fgsm(attackAt, Xq, yq, o.eps) };
  });
  return (theta: Vec) => {
    let total = 0;
    for (let t = 0; t < b.tasks; t++) {
      const { Xs, ys, Xq, yq } = task(b, t, D);
      total += loss(adapt(theta, Xs, ys, o.a1, o.steps), adv[t].Xq, yq);
      total += o.ratio * loss(adapt(theta, adv[t].Xs, ys, o.a2, o.steps), Xq, yq);
    }
    return total / b.tasks;
  };
}

/** CAML's objective over the public parameters (w, then W row-major D×C). */
function camlObjective(b: CheckedBatch, D: number, C: number, lr: number, steps: number) {
  return (params: Vec) => {
    const w = params.slice(0, D);
    const W = params.slice(D);
    let total = 0;
    for (let t = 0; t < b.tasks; t++) {
      const { Xs, ys, Xq, yq } = task(b, t, D);
      total += loss(camlAdapt(w, W, C, Xs, ys, lr, steps).theta, Xq, yq);
    }
    return total / b.tasks;
  };
}

for (const backend of BACKENDS) {
  test(`[${backend}] ADML order-2 meta-gradient equals finite differences (attacks fixed at θ)`, () =>
    run(backend, async () => {
      const D = 6, eps = 0.1;
      const b = randomBatch(3, 8, 9, D, 71);
      const theta = randomArray(D, 71, 7, -1, 1);
      const learner = await createLearner({
        backend, algorithm: 'adml', dim: D, innerLr: 0.7, innerLrAdv: 0.4, outerLr: 0.1, outerLrAdv: 0.05, epsilon: eps, innerSteps: 2, order: 2,
      });
      learner.setParams(theta);
      const g = await learner.metaGradient(b);
      const f = admlObjective(b, D, { a1: 0.7, a2: 0.4, ratio: 0.5, eps, steps: 2 }, Array.from(theta));
      assertClose('ADML gradient vs finite differences', g, finiteDifference(f, Array.from(theta), 1e-4), 2e-5, 1e-3);
      learner.destroy();
    }));

  test(`[${backend}] ADML with ε = 0 makes the update of two MAML steps (β1 and β2 on the same gradient)`, () =>
    run(backend, async () => {
      const D = 20;
      const b = randomBatch(6, 10, 10, D, 72);
      const common = { backend, dim: D, innerLr: 0.3, innerSteps: 2, order: 2 as const, seed: 5 };
      const adml = await createLearner({ ...common, algorithm: 'adml', epsilon: 0, outerLr: 0.2, outerLrAdv: 0.05, pairing: 'cross' });
      const maml = await createLearner({ ...common, algorithm: 'maml', outerLr: 0.2 });
      const theta = await maml.getParams();
      const g = await maml.metaGradient(b);
      await adml.step(b);
      const expected = theta.map((v, d) => v - 0.2 * g[d] - 0.05 * g[d]);
      assertClose('θ after one ADML step', await adml.getParams(), expected, 1e-6, 1e-5);
      adml.destroy();
      maml.destroy();
    }));

  test(`[${backend}] ADML pairing 'same' differs from 'cross' and matches its own oracle`, () =>
    run(backend, async () => {
      const D = 5, eps = 0.2;
      const b = randomBatch(2, 6, 7, D, 73);
      const theta = randomArray(D, 73, 7, -1, 1);
      const same = await createLearner({ backend, algorithm: 'adml', dim: D, innerLr: 0.5, epsilon: eps, pairing: 'same', order: 1 });
      same.setParams(theta);
      const g = await same.metaGradient(b);
      // First order, same pairing: mean_t ∇L(θ'_c; Q) + ∇L(θ'_a; Q_adv).
      const expected = new Array(D).fill(0);
      for (let t = 0; t < b.tasks; t++) {
        const { Xs, ys, Xq, yq } = task(b, t, D);
        const th = Array.from(theta);
        const XsAdv = fgsm(th, Xs, ys, eps);
        const XqAdv = fgsm(th, Xq, yq, eps);
        grad(adapt(th, Xs, ys, 0.5, 1), Xq, yq).forEach((v, d) => (expected[d] += v / b.tasks));
        grad(adapt(th, XsAdv, ys, 0.5, 1), XqAdv, yq).forEach((v, d) => (expected[d] += v / b.tasks));
      }
      assertClose("ADML 'same' first-order gradient", g, expected, 1e-6, 1e-4);
      same.destroy();
    }));

  test(`[${backend}] GA-MAML equals MAML when every task update agrees, and weighs by agreement otherwise`, () =>
    run(backend, async () => {
      const D = 15;
      const one = randomBatch(1, 10, 10, D, 74);
      const T = 5;
      // T copies of one task: every u_t is the same, so w_t = 1/T.
      const rep = (a: Float32Array) => { const out = new Float32Array(a.length * T); for (let t = 0; t < T; t++) out.set(a, t * a.length); return out; };
      const same: CheckedBatch = { tasks: T, supportShots: 10, queryShots: 10, supportX: rep(one.supportX), supportY: rep(one.supportY), queryX: rep(one.queryX), queryY: rep(one.queryY) };
      const common = { backend, dim: D, innerLr: 0.4, outerLr: 0.3, order: 2 as const, seed: 6, initScale: 0.3 };
      const ga = await createLearner({ ...common, algorithm: 'ga-maml' });
      const maml = await createLearner({ ...common });
      const r = await ga.step(same, { returnWeights: true });
      await maml.step(same);
      assertClose('weights', r!.taskWeights!, new Array(T).fill(1 / T), 1e-6, 1e-5);
      assertClose('θ', await ga.getParams(), await maml.getParams(), 1e-6, 1e-5);

      // A generic batch: the weights follow the oracle's u_t = θ − θ'_t.
      const b = randomBatch(6, 10, 10, D, 75);
      const theta = Array.from(await ga.getParams());
      const w = (await ga.step(b, { returnWeights: true }))!.taskWeights!;
      const u = Array.from({ length: 6 }, (_, t) => { const { Xs, ys } = task(b, t, D); return adapt(theta, Xs, ys, 0.4, 1).map((v, d) => theta[d] - v); });
      const s = theta.map((_, d) => u.reduce((acc, ut) => acc + ut[d], 0));
      const a = u.map((ut) => ut.reduce((acc, v, d) => acc + v * s[d], 0));
      const denom = a.reduce((acc, v) => acc + Math.abs(v), 0);
      assertClose('GA weights (paper)', w, a.map((v) => v / denom), 1e-5, 1e-3);
      ga.destroy();
      maml.destroy();
    }));

  for (const order of [1, 2] as const) {
    test(`[${backend}] CAML order-${order} gradient of (w, W) matches ${order === 2 ? 'finite differences' : 'the φ-constant oracle'}`, () =>
      run(backend, async () => {
        const D = 5, C = 2, lr = 0.9, steps = 2;
        const b = randomBatch(3, 8, 9, D, 76);
        const params = randomArray(D * (1 + C), 76, 7, -1, 1);
        const learner = await createLearner({ backend, algorithm: 'caml', dim: D, contextDim: C, innerLr: lr, innerSteps: steps, order });
        learner.setParams(params);
        assertClose('getParams returns what setParams took (w, then W row-major)', await learner.getParams(), params, 0, 0);
        const g = await learner.metaGradient(b);
        const P = Array.from(params);
        if (order === 2) {
          assertClose('CAML order-2 gradient vs finite differences', g, finiteDifference(camlObjective(b, D, C, lr, steps), P, 1e-4), 2e-5, 1e-3);
        } else {
          const expected = new Array(D * (1 + C)).fill(0);
          for (let t = 0; t < b.tasks; t++) {
            const { Xs, ys, Xq, yq } = task(b, t, D);
            const { theta, phi } = camlAdapt(P.slice(0, D), P.slice(D), C, Xs, ys, lr, steps);
            const gq = grad(theta, Xq, yq);
            for (let d = 0; d < D; d++) {
              expected[d] += gq[d] / b.tasks;
              for (let c = 0; c < C; c++) expected[D + d * C + c] += (gq[d] * phi[c]) / b.tasks;
            }
          }
          assertClose('CAML order-1 gradient', g, expected, 1e-6, 1e-4);
        }
        learner.destroy();
      }));
  }

  test(`[${backend}] CAML's inner loop changes only the context: adapted models lie in w + span(W), θ unchanged`, () =>
    run(backend, async () => {
      const D = 12, C = 1;
      const b = randomBatch(4, 10, 10, D, 77);
      const learner = await createLearner({ backend, algorithm: 'caml', dim: D, contextDim: C, innerLr: 0.5, initScale: 0.3 });
      const params = await learner.getParams();
      const before = await learner.evaluate(b, { steps: 0 });
      const after = await learner.evaluate(b, { steps: 3 });
      // With C = 1 the adapted model is w + φ·W: its query loss equals the oracle's for the same φ path.
      for (let t = 0; t < b.tasks; t++) {
        const { Xs, ys, Xq, yq } = task(b, t, D);
        const { theta, phi } = camlAdapt(Array.from(params.subarray(0, D)), Array.from(params.subarray(D)), C, Xs, ys, 0.5, 3);
        assert.ok(Math.abs(phi[0]) > 1e-3, 'the context moved');
        assertClose(`task ${t} adapted query loss`, [after.taskLoss[t]], [loss(theta, Xq, yq)], 1e-5, 1e-4);
        assertClose(`task ${t} unadapted query loss (φ = 0: the model is w)`, [before.taskLoss[t]], [loss(Array.from(params.subarray(0, D)), Xq, yq)], 1e-5, 1e-4);
      }
      assertClose('θ = (w, W) unchanged by evaluate', await learner.getParams(), params, 0, 0);
      learner.destroy();
    }));

  test(`[${backend}] AMP trains each model by the SPEC's rule; ε = 0 is plain SGD`, () =>
    run(backend, async () => {
      const D = 10, M = 4;
      const b = randomBatch(M, 12, 5, D, 78);
      for (const eps of [0.05, 0]) {
        const learner = await createLearner({ backend, algorithm: 'amp', dim: D, models: M, lr: 0.5, perturbLr: 2, perturbSteps: 3, epsilon: eps, initScale: 0.5 });
        const before = await learner.getParams();
        await learner.step(b);
        const expected: number[] = [];
        for (let m = 0; m < M; m++) {
          const { Xs, ys } = task(b, m, D);
          const th = Array.from(before.subarray(m * D, (m + 1) * D));
          expected.push(...(eps === 0 ? th.map((v, d) => v - 0.5 * grad(th, Xs, ys)[d]) : ampStep(th, Xs, ys, 0.5, 2, eps, 3)));
        }
        assertClose(`models after one AMP step (ε = ${eps})`, await learner.getParams(), expected, 1e-6, 1e-4);
        learner.destroy();
      }
      // The perturbation matters when ε > 0: AMP and SGD differ.
      const Xs: Rows = task(b, 0, D).Xs;
      const th = Array.from(randomArray(D, 78, 9, -0.5, 0.5));
      const sgd = th.map((v, d) => v - 0.5 * grad(th, Xs, task(b, 0, D).ys)[d]);
      assert.ok(maxAbs(ampStep(th, Xs, task(b, 0, D).ys, 0.5, 2, 0.05, 3).map((v, d) => v - sgd[d])) > 1e-4, 'AMP ≠ SGD for ε > 0');
    }));

  test(`[${backend}] adapt() returns each task's adapted parameters and the attacked query rows`, () =>
    run(backend, async () => {
      const D = 10, eps = 0.2;
      const b = randomBatch(5, 8, 6, D, 81);
      const learner = await createLearner({ backend, dim: D, innerLr: 0.5, initScale: 0.5, seed: 3 });
      const theta = Array.from(await learner.getParams());
      const r = await learner.adapt(b, { steps: 2, attack: { kind: 'fgsm', epsilon: eps } });
      assert.is(r.adapted.length, 5 * D);
      assert.is(r.attackedQueryX!.length, b.queryX.length);
      let same = 0;
      for (let t = 0; t < 5; t++) {
        const { Xs, ys, Xq, yq } = task(b, t, D);
        const adapted = adapt(theta, Xs, ys, 0.5, 2);
        assertClose(`task ${t} adapted θ'`, r.adapted.subarray(t * D, (t + 1) * D), adapted, 1e-5, 1e-4);
        const expected = fgsm(adapted, Xq, yq, eps).flat();
        const got = r.attackedQueryX!.subarray(t * 6 * D, (t + 1) * 6 * D);
        got.forEach((v, i) => {
          assert.ok(Math.abs(v - b.queryX[t * 6 * D + i]) <= eps + 1e-6, 'within ε of the clean row');
          if (Math.abs(v - expected[i]) < 1e-5) same++;
        });
      }
      // A component of θ' within float32 rounding of 0 may take the other sign: allow one or two.
      assert.ok(same >= 5 * 6 * D - 6, `${same} of ${5 * 6 * D} attacked values equal the oracle's`);
      // adapt() scores exactly what evaluate() scores.
      const e = await learner.evaluate(b, { steps: 2, attack: { kind: 'fgsm', epsilon: eps } });
      assertClose('scores', [r.loss, r.attacked!.loss], [e.loss, e.attacked!.loss], 0, 0);
      learner.destroy();
    }));

  test(`[${backend}] innerSteps 0 is joint training: the meta-gradient is the query gradient at θ`, () =>
    run(backend, async () => {
      const D = 8;
      const b = randomBatch(4, 6, 7, D, 80);
      const theta = randomArray(D, 80, 7, -1, 1);
      const joint = await createLearner({ backend, dim: D, innerSteps: 0, order: 2 });
      joint.setParams(theta);
      const expected = new Array(D).fill(0);
      for (let t = 0; t < b.tasks; t++) {
        const { Xq, yq } = task(b, t, D);
        grad(Array.from(theta), Xq, yq).forEach((v, d) => (expected[d] += v / b.tasks));
      }
      assertClose('joint-training gradient', await joint.metaGradient(b), expected, 1e-6, 1e-4);
      joint.destroy();
    }));

  test(`[${backend}] attacks never raise accuracy on a confident model, and PGD is at least as strong as FGSM`, () =>
    run(backend, async () => {
      const D = 16;
      const b = randomBatch(20, 10, 20, D, 79);
      // A model that is right with margin on every query row: the teacher of task 0 scaled up, on tasks
      // re-labelled by it.
      const teacher = randomArray(D, 79, 8, -2, 2);
      const relabel = (X: Float32Array, y: Float32Array) => { for (let r = 0; r < y.length; r++) { let a = 0; for (let d = 0; d < D; d++) a += X[r * D + d] * teacher[d]; y[r] = a >= 0 ? 1 : 0; } };
      relabel(b.supportX, b.supportY);
      relabel(b.queryX, b.queryY);
      const learner = await createLearner({ backend, dim: D, innerLr: 0.1 });
      learner.setParams(teacher.map((v) => 5 * v));
      const clip: [number, number] = [-1, 1];
      const f = await learner.evaluate(b, { steps: 1, attack: { kind: 'fgsm', epsilon: 0.1, clip } });
      const p = await learner.evaluate(b, { steps: 1, attack: { kind: 'pgd', epsilon: 0.1, steps: 10, clip } });
      assert.ok(f.accuracy > 0.95, `clean accuracy ${f.accuracy}`);
      for (let t = 0; t < b.tasks; t++) {
        assert.ok(f.attacked!.taskAccuracy[t] <= f.taskAccuracy[t], `task ${t}: FGSM accuracy ${f.attacked!.taskAccuracy[t]} ≤ clean ${f.taskAccuracy[t]}`);
        assert.ok(f.attacked!.taskLoss[t] > f.taskLoss[t], `task ${t}: FGSM raises the loss`);
        assert.ok(p.attacked!.taskLoss[t] >= f.attacked!.taskLoss[t] - 1e-5, `task ${t}: PGD loss ${p.attacked!.taskLoss[t]} ≥ FGSM loss ${f.attacked!.taskLoss[t]}`);
      }
      assert.ok(f.attacked!.accuracy < f.accuracy, `FGSM lowers mean accuracy (${f.attacked!.accuracy} < ${f.accuracy})`);
      assert.ok(f.attacked!.accuracyInterval.ci95 >= 0, 'attacked scores carry an interval');
      learner.destroy();
    }));
}

const AGREEMENT: Array<[string, Partial<LearnerOptions>]> = [
  ['adml cross, order 2', { algorithm: 'adml', epsilon: 0.1, clip: [-1, 1], order: 2, innerLrAdv: 0.2, outerLrAdv: 0.1 }],
  ['adml same, order 1, adam', { algorithm: 'adml', epsilon: 0.05, pairing: 'same', optimizer: 'adam', outerLr: 0.01 }],
  ['ga-maml paper', { algorithm: 'ga-maml', order: 2 }],
  ['ga-maml notebook', { algorithm: 'ga-maml', normalization: 'notebook' }],
  ['caml order 2', { algorithm: 'caml', contextDim: 3, order: 2 }],
  ['caml order 1, adam', { algorithm: 'caml', contextDim: 2, optimizer: 'adam', outerLr: 0.01 }],
  ['maml with the AMP inner optimizer', { algorithm: 'maml', innerOptimizer: 'amp', perturbEpsilon: 0.1, perturbSteps: 2, order: 2 }],
];

for (const [name, extra] of AGREEMENT) {
  test(`GPU and CPU step agree over 20 meta-iterations (${name})`, () =>
    withGpu(async () => {
      const D = 30;
      const options = { dim: D, innerLr: 0.3, outerLr: 0.1, innerSteps: 2, seed: 3, ...extra } as LearnerOptions;
      const gpu = await createLearner({ ...options, backend: 'webgpu' });
      const cpu = await createLearner({ ...options, backend: 'cpu' });
      const start = await cpu.getParams();
      for (let i = 0; i < 20; i++) {
        const batch = randomBatch(12, 10, 10, D, 200 + (i % 4));
        await gpu.step(batch);
        await cpu.step(batch);
      }
      const end = await cpu.getParams();
      assert.ok(maxAbs(end.map((v, i) => v - start[i])) > 1e-3, 'training moved the parameters');
      assertClose('params after 20 iterations', await gpu.getParams(), end, 3e-4, 1e-3);
      const evalBatch = randomBatch(12, 10, 10, D, 299);
      const attack = { kind: 'pgd' as const, epsilon: 0.1, steps: 3 };
      const [g, c] = [await gpu.evaluate(evalBatch, { attack }), await cpu.evaluate(evalBatch, { attack })];
      assertClose('clean and attacked query loss', [g.loss, g.attacked!.loss], [c.loss, c.attacked!.loss], 1e-4, 1e-3);
      gpu.destroy();
      cpu.destroy();
    }));
}

test('GPU and CPU AMP agree over 20 steps of 16 models', () =>
  withGpu(async () => {
    const D = 40, M = 16;
    const options: LearnerOptions = { algorithm: 'amp', dim: D, models: M, lr: 0.2, epsilon: 0.1, perturbSteps: 2, seed: 8 };
    const gpu = await createLearner({ ...options, backend: 'webgpu' });
    const cpu = await createLearner({ ...options, backend: 'cpu' });
    for (let i = 0; i < 20; i++) {
      const batch = randomBatch(M, 10, 10, D, 300 + (i % 3));
      await gpu.step(batch);
      await cpu.step(batch);
    }
    assertClose('models after 20 steps', await gpu.getParams(), await cpu.getParams(), 1e-4, 1e-3);
    gpu.destroy();
    cpu.destroy();
  }));

test('seed-algorithm options and batches are checked before any work', async () => {
  // Options a JavaScript caller may pass: TypeScript rejects most of them (test/types.check.ts).
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ dim: 4, contextDim: 3 }, /contextDim.*does not apply to algorithm 'maml'/],
    [{ dim: 4, algorithm: 'caml', innerOptimizer: 'amp' }, /not available for 'caml'/],
    [{ dim: 4, algorithm: 'amp', optimizer: 'adam' }, /optimizer.*does not apply to algorithm 'amp'/],
    [{ dim: 4, algorithm: 'adml', epsilon: -0.1 }, /epsilon must be a finite number ≥ 0/],
    [{ dim: 4, algorithm: 'adml', clip: [1, 0] }, /clip must be \[lo, hi\] with lo < hi/],
    [{ dim: 4, algorithm: 'adml', pairing: 'diagonal' as 'cross' }, /pairing must be one of/],
    [{ dim: 4, algorithm: 'ga-maml', normalization: 'l2' as 'paper' }, /normalization must be one of/],
    [{ dim: 4, algorithm: 'caml', contextDim: 65 }, /contextDim must be an integer in \[1, 64\]/],
    [{ dim: 4, algorithm: 'amp', models: 0 }, /models must be an integer/],
  ];
  for (const [options, message] of bad) {
    const e = await thrown(() => createLearner({ backend: 'cpu', ...options } as unknown as LearnerOptions));
    assert.instance(e, InvalidOptionError);
    assert.match(e.message, message);
  }
  const amp = await createLearner({ backend: 'cpu', algorithm: 'amp', dim: 4, models: 3 });
  const before = await amp.getParams();
  assert.is(before.length, 12, 'AMP holds models × dim parameters');
  const e = await thrown(() => amp.step(randomBatch(2, 5, 5, 4)));
  assert.instance(e, ShapeError);
  assert.match(e.message, /batch.tasks is 2, models is 3/);
  assert.instance(await thrown(() => amp.metaGradient(randomBatch(3, 5, 5, 4))), InvalidOptionError);
  assertClose('AMP models untouched by rejected calls', await amp.getParams(), before, 0, 0);
  const source = { kind: 'linear' as const, dim: 4 };
  const wrongEval = await thrown(() => amp.train({ source, iterations: 2, evalEvery: 1, evalTasks: 10 }));
  assert.instance(wrongEval, ShapeError);
  assert.match(wrongEval.message, /evalTasks is 10, models is 3/);
  const trained = await amp.train({ source, iterations: 2, evalEvery: 2 });
  assert.is(trained.eval!.taskLoss.length, 3, 'AMP evaluates one held-out task per model');
  const caml = await createLearner({ backend: 'cpu', algorithm: 'caml', dim: 4, contextDim: 2 });
  assert.match((await thrown(() => caml.setParams(new Float32Array(4)))).message, /expected 12 \(w \(dim = 4\) then W/);
  const maml = await createLearner({ backend: 'cpu', dim: 4 });
  const attackErr = await thrown(() => maml.evaluate(randomBatch(2, 5, 5, 4), { attack: { kind: 'fgsm', epsilon: 0.1, steps: 3 } }));
  assert.match(attackErr.message, /FGSM is one step/);
});

test.run();
