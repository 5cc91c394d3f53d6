// Issue 21: MAML's sinusoid regression. The source (src/tasks/sinusoid.ts): the WGSL sampler against its
// CPU twin (the same bits), y = A·sin(x − φ) against float64 sin with each task's (A, φ), the ranges and
// their uniformity, bad options; the MLP regressor (1-40-40-1 under MSE) as a model spec; and every
// algorithm on sinusoid batches, the GPU engine against the CPU engine. (The MSE loss and its R-operator
// are checked against finite differences and the float64 oracle by net-fast.test.ts and
// net-oracle.test.ts, whose nets include MSE heads.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sampleTasks, sinusoidTasks } from '../src/cpu/sample-tasks.js';
import { sinusoidGrid, type SinusoidSource } from '../src/tasks/sinusoid.js';
import { createLearner } from '../src/learner.js';
import { modelLayoutOf } from '../src/models/model.js';
import { resolveLearnerOptions } from '../src/validate.js';
import { InvalidOptionError, ShapeError } from '../src/errors.js';
import type { LearnerOptions } from '../src/types.js';
import { compareEngines, exactlyEqual, gpuSample, thrown } from './helpers.js';

const REGRESSOR = { kind: 'mlp' as const, hidden: [40, 40], loss: 'mse' as const };

test('the sinusoid sampler gives the same bits on GPU and CPU (default and custom ranges, every split)', async () => {
  const sources: SinusoidSource[] = [
    { kind: 'sinusoid', shots: 10 },
    { kind: 'sinusoid', shots: 5, queries: 7, amplitude: [-2, 3.3], phase: [-1, 0.25], x: [-7.5, -1] },
  ];
  for (const source of sources) {
    const shape = { tasks: 37, supportShots: source.shots, queryShots: source.queries ?? source.shots };
    for (const [iteration, split] of [[0, 'train'], [4321, 'train'], [9, 'test'], [2, 'val']] as const) {
      const gpu = await gpuSample(source, shape, 17, iteration, split);
      const cpu = sampleTasks(source, shape, 17, iteration, split);
      for (const k of ['supportX', 'supportY', 'queryX', 'queryY'] as const) exactlyEqual(`${k} (iteration ${iteration}, ${split})`, gpu[k], cpu[k]);
    }
  }
});

test('sinusoid tasks: y = A·sin(x − φ) to float32 rounding, with A, φ and x inside their ranges and spread over them', () => {
  const source: SinusoidSource = { kind: 'sinusoid', shots: 10 };
  const T = 2000;
  const b = sampleTasks(source, { tasks: T, supportShots: 10, queryShots: 10 }, 3, 5, 'train');
  const { amplitude, phase } = sinusoidTasks(source, T, 3, 5, 'train');
  let xMean = 0;
  for (let t = 0; t < T; t++) {
    assert.ok(amplitude[t] >= 0.1 - 2 ** -12 && amplitude[t] <= 5, `A = ${amplitude[t]}`);
    assert.ok(phase[t] >= 0 && phase[t] <= Math.PI, `φ = ${phase[t]}`);
    for (const [X, Y] of [[b.supportX, b.supportY], [b.queryX, b.queryY]]) {
      for (let k = 0; k < 10; k++) {
        const x = X[t * 10 + k], y = Y[t * 10 + k];
        assert.ok(x >= -5 && x <= 5, `x = ${x}`);
        const exact = amplitude[t] * Math.sin(x - phase[t]);
        assert.ok(Math.abs(y - exact) <= 1e-6 * amplitude[t], `task ${t}: y = ${y}, A·sin(x − φ) = ${exact}`);
        xMean += x / (20 * T);
      }
    }
  }
  // Uniform: the means of A (U[0.1, 5]: 2.55, sd 1.41) and φ (U[0, π]: π/2, sd 0.91) over 2000 tasks
  // are within 5 standard errors; x (40,000 points, sd 2.89) likewise.
  const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean(amplitude) - 2.55) < 5 * 1.41 / Math.sqrt(T), `mean A ${mean(amplitude)}`);
  assert.ok(Math.abs(mean(phase) - Math.PI / 2) < 5 * 0.91 / Math.sqrt(T), `mean φ ${mean(phase)}`);
  assert.ok(Math.abs(xMean) < 5 * 2.89 / Math.sqrt(20 * T), `mean x ${xMean}`);
  // Different tasks, and different splits, differ.
  const test2 = sinusoidTasks(source, T, 3, 5, 'test');
  assert.ok(test2.amplitude.some((a, t) => a !== amplitude[t]), 'the test split draws other tasks');
});

test('sinusoid options: bad ranges, rows that do not match the source, and a classifier model are refused with the fix', async () => {
  for (const bad of [{ amplitude: [5, 0.1] }, { phase: [0, Infinity] }, { x: [-5] }, { x: [-5000, 5] }, { x: [-600, 600], phase: [0, 10] }]) {
    const e = await thrown(() => sinusoidGrid({ kind: 'sinusoid', shots: 10, ...bad } as SinusoidSource));
    assert.instance(e, InvalidOptionError, JSON.stringify(bad));
  }
  const learner = await createLearner({ dim: 1, model: REGRESSOR, backend: 'cpu' });
  try {
    const source: SinusoidSource = { kind: 'sinusoid', shots: 10 };
    const rows = await thrown(() => learner.train({ source, iterations: 1, supportShots: 5 }));
    assert.instance(rows, ShapeError);
    assert.match(rows.message, /10 support and 10 query points/);
    const shots = await thrown(() => learner.train({ source: { kind: 'sinusoid', shots: 0 }, iterations: 1 }));
    assert.instance(shots, InvalidOptionError);
  } finally {
    learner.destroy();
  }
  const classifier = await createLearner({ dim: 1, model: { kind: 'mlp', hidden: [40], classes: 2 }, backend: 'cpu' });
  try {
    const e = await thrown(() => classifier.train({ source: { kind: 'sinusoid', shots: 10 }, iterations: 1 }));
    assert.instance(e, ShapeError);
    assert.match(e.message, /real targets/);
    assert.match((e as ShapeError).hint, /loss: 'mse'/);
  } finally {
    classifier.destroy();
  }
});

test("the MLP regressor { kind: 'mlp', hidden: [40, 40], loss: 'mse' } is MAML's 1-40-40-1 under MSE; classes is refused with it", async () => {
  const layout = modelLayoutOf(resolveLearnerOptions({ dim: 1, model: REGRESSOR }));
  assert.ok(layout && layout.kind === 'net');
  assert.is(layout.classes, 0);
  assert.is(layout.params, (1 * 40 + 40) + (40 * 40 + 40) + (40 * 1 + 1));
  assert.equal(layout.net.layers.map((l) => l.spec.kind), ['dense', 'relu', 'dense', 'relu', 'dense']);
  assert.is(layout.net.loss.kind, 'mse');
  const e = await thrown(() => resolveLearnerOptions({ dim: 1, model: { ...REGRESSOR, classes: 5 } as never }));
  assert.instance(e, InvalidOptionError);
  assert.match(e.message, /takes no classes/);
  const r = await thrown(() => resolveLearnerOptions({ dim: 1, model: { ...REGRESSOR, loss: 'l1' } as never }));
  assert.instance(r, InvalidOptionError);
});

test('FGSM on x raises the query MSE of an adapted regressor; ADML trains on those samples (CPU)', async () => {
  const source: SinusoidSource = { kind: 'sinusoid', shots: 10 };
  const batch = sampleTasks(source, { tasks: 50, supportShots: 10, queryShots: 10 }, 4, 0, 'test');
  const learner = await createLearner({ dim: 1, model: REGRESSOR, backend: 'cpu', innerLr: 0.01, outerLr: 0.001, optimizer: 'adam', seed: 2 });
  const adml = await createLearner({ algorithm: 'adml', dim: 1, model: REGRESSOR, backend: 'cpu', innerLr: 0.01, outerLr: 0.001, optimizer: 'adam', epsilon: 0.1, seed: 2 });
  try {
    await learner.train({ source, iterations: 200, tasksPerBatch: 25 });
    const r = await learner.evaluate(batch, { steps: 1, attack: { kind: 'fgsm', epsilon: 0.3 } });
    assert.is(r.attacked!.metric, 'mse');
    assert.ok(r.attacked!.mse! > r.mse!, `attacked MSE ${r.attacked!.mse} > clean ${r.mse}`);
    const before = await adml.evaluate(batch, { steps: 1 });
    await adml.train({ source, iterations: 200, tasksPerBatch: 25 });
    const after = await adml.evaluate(batch, { steps: 1 });
    assert.ok(after.mse! < before.mse!, `ADML lowers the held-out MSE: ${before.mse} → ${after.mse}`);
  } finally {
    learner.destroy();
    adml.destroy();
  }
});

// Every algorithm on sinusoid batches (K = 10, 6 tasks): the GPU engine against the CPU engine. ADML
// with ε = 0 (FGSM's sign of an input gradient near 0 may differ between float32 and float64).
const ALGORITHMS: Array<{ name: string; options: Partial<LearnerOptions>; tasks?: number }> = [
  { name: 'maml order 1', options: { algorithm: 'maml', order: 1 } },
  { name: 'maml order 2, 2 steps', options: { algorithm: 'maml', order: 2, innerSteps: 2 } },
  { name: 'meta-sgd order 2', options: { algorithm: 'meta-sgd', order: 2 } },
  { name: 'anil order 2', options: { algorithm: 'anil', order: 2 } },
  { name: 'reptile', options: { algorithm: 'reptile', innerSteps: 3 } },
  { name: 'caml (CAVIA: 4 context inputs beside x)', options: { algorithm: 'caml', contextDim: 4, innerLr: 1 } },
  { name: 'ga-maml', options: { algorithm: 'ga-maml', order: 2 } },
  { name: 'amp', options: { algorithm: 'amp', models: 6, epsilon: 0.05, perturbSteps: 1, lr: 0.01 }, tasks: 6 },
  { name: 'adml (ε = 0)', options: { algorithm: 'adml', order: 2, epsilon: 0 } },
];

for (const a of ALGORITHMS) {
  test(`sinusoid, ${a.name}: the GPU engine matches the CPU engine (meta-gradient, 1 and 20 steps, evaluation)`, async () => {
    const source: SinusoidSource = { kind: 'sinusoid', shots: 10 };
    const batch = sampleTasks(source, { tasks: a.tasks ?? 6, supportShots: 10, queryShots: 10 }, 2, 0, 'train');
    const rates = a.options.algorithm === 'amp' ? {} : { innerLr: 0.01, outerLr: 0.001 };
    await compareEngines({ dim: 1, model: REGRESSOR, seed: 3, ...rates, ...a.options } as LearnerOptions, batch, 2e-5, 1e-3);
  });
}

test.run();
