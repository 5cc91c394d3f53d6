// Issue 20: layer-list models on both backends — the GPU engine (src/schedule/net-pass.ts: conv2d, pool,
// norm, gemm and softmax kernels under the MAML core of task-pass.ts) against the CPU engine (src/cpu/net/
// fast.ts, float64 sums checked against the oracle by net-fast.test.ts), for every algorithm the GPU pass
// runs on a small conv net with stride, padding, norm, max-pool and mean-pool: the meta-gradient, 1 and
// 20 meta-iterations, evaluation, and attacks; rows of any length (the data's rows padded to vec4s).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner } from '../src/learner.js';
import { InvalidOptionError, LimitError } from '../src/errors.js';
import type { LayerSpec } from '../src/models/layers.js';
import type { LearnerOptions } from '../src/types.js';
import { netModelLayout } from '../src/models/model.js';
import { netTapeFloats } from '../src/schedule/net-pass.js';
import { assertClose, compareEngines, randomArray, randomNWayBatch, thrown, withGpu } from './helpers.js';

const IMAGE = { h: 8, w: 8, c: 1 };
const D = 64;
const N = 3;
const LAYERS: LayerSpec[] = [
  { kind: 'conv2d', filters: 3, size: 3, stride: 1, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'maxpool' },
  { kind: 'conv2d', filters: 4, size: 3, stride: 2, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'meanpool' },
  { kind: 'dense', units: N },
];
const model = { kind: 'layers' as const, input: IMAGE, layers: LAYERS };

// float32 sums over a few hundred terms against float64: DEVELOPERS.md's kernel bounds.
const CASES: Array<{ name: string; options: Partial<LearnerOptions>; tasks?: number; atol: number; rtol: number }> = [
  { name: 'maml order 1', options: { algorithm: 'maml', order: 1, innerSteps: 2 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'maml order 2', options: { algorithm: 'maml', order: 2, innerSteps: 2 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'maml, amp inner optimizer, order 2', options: { algorithm: 'maml', order: 2, innerOptimizer: 'amp', perturbEpsilon: 0.05, perturbSteps: 1 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'ga-maml', options: { algorithm: 'ga-maml', order: 2 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'anil order 2', options: { algorithm: 'anil', order: 2, innerSteps: 2 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'meta-sgd order 2', options: { algorithm: 'meta-sgd', order: 2, innerSteps: 2 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'meta-sgd order 1', options: { algorithm: 'meta-sgd', order: 1 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'reptile', options: { algorithm: 'reptile', innerSteps: 2 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'amp', options: { algorithm: 'amp', models: 4, epsilon: 0.05, perturbSteps: 1 }, tasks: 4, atol: 2e-5, rtol: 1e-3 },
  { name: 'caml order 2 (2 context channels)', options: { algorithm: 'caml', contextDim: 2, innerSteps: 2 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'caml order 1', options: { algorithm: 'caml', contextDim: 3, order: 1 }, atol: 2e-5, rtol: 1e-3 },
  { name: 'adml order 2 (ε = 0: no sign flips)', options: { algorithm: 'adml', order: 2, epsilon: 0 }, atol: 2e-5, rtol: 1e-3 },
];

for (const c of CASES) {
  test(`conv net, ${c.name}: the GPU engine matches the CPU engine (meta-gradient, 1 and 20 steps, evaluation)`, () =>
    withGpu(async () => {
      const T = c.tasks ?? 4;
      const batch = randomNWayBatch(T, 4, 5, D, N, 3);
      const rates = c.options.algorithm === 'amp' ? { lr: 0.1 } : { innerLr: 0.1, outerLr: 0.02 };
      const options = { dim: D, model, ...rates, ...c.options } as LearnerOptions;
      await compareEngines(options, batch, c.atol, c.rtol);
    }));
}

test('conv net, a batch split into chunks of tasks (a small binding limit) matches the CPU engine: maml order 2 with an attacked evaluation', () =>
  withGpu(async () => {
    const batch = randomNWayBatch(7, 4, 5, D, N, 12);
    const options = { dim: D, model, innerLr: 0.1, outerLr: 0.02, order: 2, seed: 4 } as LearnerOptions;
    // A binding that holds two tasks' tapes (order 2, one inner step: 2 primal sections of 5 rows): 7 tasks run in 4 chunks.
    const tape = netTapeFloats(netModelLayout(model, D, 0)!, 5, 2).tape * 4;
    process.env.METAGRAD_MAX_BINDING = String(2 * tape + 64);
    let gpu;
    try {
      gpu = await createLearner({ ...options, backend: 'webgpu' });
    } finally {
      delete process.env.METAGRAD_MAX_BINDING;
    }
    const cpu = await createLearner({ ...options, backend: 'cpu', threads: 1 });
    // The limit binds the tape: one float less than a task's tape is refused, so 2 tapes' worth makes chunks of 2.
    process.env.METAGRAD_MAX_BINDING = String(tape - 4);
    const tooSmall = await createLearner({ ...options, backend: 'webgpu' });
    delete process.env.METAGRAD_MAX_BINDING;
    assert.instance(await thrown(() => tooSmall.step(batch)), LimitError);
    tooSmall.destroy();
    try {
      for (let i = 0; i < 3; i++) { await gpu.step(batch); await cpu.step(batch); }
      assertClose('θ after 3 steps in chunks', await gpu.getParams(), await cpu.getParams(), 1e-4, 1e-3);
      const attack = { kind: 'fgsm' as const, epsilon: 0 };
      const [g, c] = [await gpu.evaluate(batch, { steps: 1, attack }), await cpu.evaluate(batch, { steps: 1, attack })];
      assertClose('clean task losses', g.taskLoss, c.taskLoss, 1e-4, 1e-3);
      assertClose('ε = 0 attacked task losses', g.attacked!.taskLoss, c.attacked!.taskLoss, 1e-4, 1e-3);
    } finally {
      gpu.destroy();
      cpu.destroy();
    }
  }));

test('conv net under PGD on both backends: the attacked rows stay in the ε-ball and the scores agree (ties of the sign aside)', () =>
  withGpu(async () => {
    const batch = randomNWayBatch(3, 3, 4, D, N, 8);
    const options = { dim: D, model, innerLr: 0.1, backend: 'webgpu' } as LearnerOptions;
    const gpu = await createLearner(options);
    const cpu = await createLearner({ ...options, backend: 'cpu', threads: 1 });
    try {
      const attack = { kind: 'pgd' as const, epsilon: 0.05, steps: 3 };
      const g = await gpu.adapt(batch, { steps: 1, attack });
      const c = await cpu.adapt(batch, { steps: 1, attack });
      for (let i = 0; i < batch.queryX.length; i++) {
        assert.ok(Math.abs(g.attackedQueryX![i] - batch.queryX[i]) <= 0.05 + 1e-6, `row value ${i} within ε`);
      }
      // The sign of an input gradient near 0 may differ between float32 and float64; most values agree.
      let same = 0;
      for (let i = 0; i < batch.queryX.length; i++) if (Math.abs(g.attackedQueryX![i] - c.attackedQueryX![i]) < 1e-5) same++;
      assert.ok(same / batch.queryX.length > 0.95, `${same} of ${batch.queryX.length} attacked values agree`);
      assertClose('clean task loss', g.taskLoss, c.taskLoss, 1e-4, 1e-3);
    } finally {
      gpu.destroy();
      cpu.destroy();
    }
  }));

test('a regression net (loss mse): the GPU engine matches the CPU engine, MAML order 2', () =>
  withGpu(async () => {
    const T = 4, K = 6, F = 4;
    const x = randomArray(T * 2 * K * F, 9, 1);
    const y = Float32Array.from({ length: T * 2 * K }, (_, r) => x[r * F] * (1 + (Math.floor(r / (2 * K)) % 3)) - x[r * F + 1]);
    const batch = { tasks: T, supportShots: K, queryShots: K, supportX: x.subarray(0, T * K * F), supportY: y.subarray(0, T * K), queryX: x.subarray(T * K * F), queryY: y.subarray(T * K) };
    const regression = { kind: 'layers' as const, input: { h: 1, w: 1, c: F }, layers: [{ kind: 'dense', units: 8 }, { kind: 'relu' }, { kind: 'dense', units: 1 }] as LayerSpec[], loss: { kind: 'mse' as const } };
    await compareEngines({ dim: F, model: regression, algorithm: 'maml', order: 2, innerSteps: 2, innerLr: 0.05, outerLr: 0.01 }, batch, 2e-5, 1e-3);
    const gpu = await createLearner({ dim: F, model: regression, backend: 'webgpu', innerLr: 0.05 });
    const r = await gpu.evaluate(batch, { steps: 1 });
    assert.is(r.metric, 'mse');
    assert.ok(Math.abs(r.mse! - r.loss) < 1e-5, 'on the GPU too the metric is the loss');
    gpu.destroy();
  }));

test('CAML over a conv net under PGD on both backends: the attack steps along the data channels only', () =>
  withGpu(async () => {
    const batch = randomNWayBatch(3, 3, 4, D, N, 8);
    const options = { dim: D, model, algorithm: 'caml', contextDim: 2, innerLr: 0.5, backend: 'webgpu' } as LearnerOptions;
    const gpu = await createLearner(options);
    const cpu = await createLearner({ ...options, backend: 'cpu', threads: 1 });
    try {
      const attack = { kind: 'fgsm' as const, epsilon: 0.05 };
      const [g, c] = [await gpu.evaluate(batch, { steps: 2, attack }), await cpu.evaluate(batch, { steps: 2, attack })];
      assertClose('clean task losses', g.taskLoss, c.taskLoss, 1e-4, 1e-3);
      // FGSM's signs may differ where the input gradient is ~0; the attacked losses agree closely anyway.
      assertClose('attacked task losses', g.attacked!.taskLoss, c.attacked!.taskLoss, 1e-3, 1e-2);
      assert.ok(g.attacked!.loss > g.loss, 'the attack raises the loss');
    } finally {
      gpu.destroy();
      cpu.destroy();
    }
  }));

test('a layer list on rows that are not a multiple of 4 floats (5 × 5 × 1: the data rows are padded to 28) matches the CPU engine: maml order 2, and adml', () =>
  withGpu(async () => {
    const odd = { kind: 'layers' as const, input: { h: 5, w: 5, c: 1 }, layers: [{ kind: 'conv2d', filters: 2, size: 3, stride: 2, padding: 1 }, { kind: 'relu' }, { kind: 'meanpool' }, { kind: 'dense', units: 3 }] as LayerSpec[] };
    const batch = randomNWayBatch(3, 3, 4, 25, 3, 5);
    await compareEngines({ dim: 25, model: odd, algorithm: 'maml', order: 2, innerLr: 0.1, outerLr: 0.02 }, batch, 2e-5, 1e-3);
    await compareEngines({ dim: 25, model: odd, algorithm: 'adml', epsilon: 0, order: 2, innerLr: 0.1, outerLr: 0.02 }, batch, 2e-5, 1e-3);
  }));

test.run();
