// The public API: GPU and CPU backends agree over many meta-iterations, seeds reproduce, and every bad
// input of DEVELOPERS.md gets its typed error before any work, leaving the parameters as they were.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner, getSharedDevice, type Learner } from '../src/learner.js';
import { acquireDevice } from '../src/gpu/device.js';
import {
  DeviceLostError,
  DestroyedError, InvalidOptionError, LabelError, LimitError, MetagradError, NoAdapterError, NonFiniteError, ShapeError,
} from '../src/errors.js';
import type { BackendChoice, Batch, LearnerOptions } from '../src/types.js';
import { assertClose, copyBatch, randomBatch, thrown, withGpu } from './helpers.js';

const BACKENDS: BackendChoice[] = ['cpu', 'webgpu'];
const run = (backend: BackendChoice, body: () => Promise<void>) => (backend === 'webgpu' ? withGpu(body) : body());

for (const [order, optimizer] of [[1, 'sgd'], [2, 'sgd'], [2, 'adam']] as const) {
  test(`GPU and CPU step agree over 50 meta-iterations (order ${order}, ${optimizer})`, () =>
    withGpu(async () => {
      const D = 50;
      const options: LearnerOptions = { dim: D, innerLr: 0.3, outerLr: optimizer === 'adam' ? 0.01 : 0.2, innerSteps: 2, order, optimizer, seed: 3 };
      const gpu = await createLearner({ ...options, backend: 'webgpu' });
      const cpu = await createLearner({ ...options, backend: 'cpu' });
      assert.is(gpu.backend.kind, 'webgpu');
      assert.is(cpu.backend.kind, 'cpu');
      let lastGpu, lastCpu;
      for (let i = 0; i < 50; i++) {
        const batch = randomBatch(16, 10, 10, D, 100 + (i % 5));
        lastGpu = await gpu.step(batch, { readback: i === 49 });
        lastCpu = await cpu.step(batch, { readback: i === 49 });
      }
      // float32 on both sides, float64 sums on the CPU: differences grow slowly with iterations.
      assertClose('θ after 50 iterations', await gpu.getParams(), await cpu.getParams(), 2e-4, 1e-3);
      assertClose('query metrics of the last iteration', [lastGpu!.loss, lastGpu!.accuracy], [lastCpu!.loss, lastCpu!.accuracy], 1e-4, 1e-3);
      const trained = await cpu.evaluate(randomBatch(16, 10, 10, D, 999), { steps: 2 });
      assert.ok(Number.isFinite(trained.loss) && trained.lossInterval.ci95 > 0, 'evaluation reports mean and interval');
      gpu.destroy();
      cpu.destroy();
    }));
}

for (const backend of BACKENDS) {
  test(`[${backend}] step({ iterations: k }) equals k calls of step, and readback reports the pre-update query loss`, () =>
    run(backend, async () => {
      const D = 12;
      const batch = randomBatch(4, 5, 6, D, 5);
      const a = await createLearner({ backend, dim: D, innerLr: 0.2, outerLr: 0.1, optimizer: 'adam' });
      const b = await createLearner({ backend, dim: D, innerLr: 0.2, outerLr: 0.1, optimizer: 'adam' });
      const before = await a.evaluate(batch);
      const metrics = await a.step(batch, { readback: true });
      assertClose('readback loss', [metrics!.loss, metrics!.accuracy], [before.loss, before.accuracy], 1e-6, 1e-5);
      await a.step(batch, { iterations: 4 });
      for (let i = 0; i < 5; i++) await b.step(batch);
      assertClose('θ', await a.getParams(), await b.getParams(), 1e-7, 1e-6);
      assert.is(await a.step(batch), undefined, 'no readback unless asked');
      a.destroy();
      b.destroy();
    }));

  test(`[${backend}] a fixed seed reproduces a run; another seed does not`, () =>
    run(backend, async () => {
      const D = 10;
      const runOnce = async (seed: number) => {
        const l = await createLearner({ backend, dim: D, seed, outerLr: 0.05 });
        for (let i = 0; i < 3; i++) await l.step(randomBatch(4, 5, 5, D, i));
        const p = await l.getParams();
        l.destroy();
        return p;
      };
      const [a, b, c] = [await runOnce(7), await runOnce(7), await runOnce(8)];
      assert.equal(Array.from(a), Array.from(b));
      assert.not.equal(Array.from(a), Array.from(c));
    }));

  test(`[${backend}] setParams / getParams round-trip and getParams returns a copy`, () =>
    run(backend, async () => {
      const l = await createLearner({ backend, dim: 5 });
      const theta = new Float32Array([1, -2, 3, -4, 5]);
      l.setParams(theta);
      const got = await l.getParams();
      assert.equal(Array.from(got), [1, -2, 3, -4, 5]);
      got[0] = 99;
      assert.is((await l.getParams())[0], 1);
      l.destroy();
    }));

  test(`[${backend}] every bad input gets its typed error and leaves θ unchanged`, () =>
    run(backend, async () => {
      const D = 4;
      const l = await createLearner({ backend, dim: D });
      const theta0 = await l.getParams();
      const good = randomBatch(2, 3, 3, D, 1);
      const bad = (edit: (b: Batch) => void) => { const b = copyBatch(good); edit(b); return b; };
      const cases: Array<[string, () => unknown, new (...a: never[]) => MetagradError]> = [
        ['supportX too short', () => l.step(bad((b) => (b.supportX = b.supportX.subarray(1)))), ShapeError],
        ['queryY not a Float32Array', () => l.step(bad((b) => (b.queryY = Array.from(b.queryY) as unknown as Float32Array))), ShapeError],
        ['tasks = 0', () => l.step(bad((b) => (b.tasks = 0))), ShapeError],
        ['fractional shots', () => l.step(bad((b) => (b.supportShots = 2.5))), ShapeError],
        ['batch for another dim', () => l.step(randomBatch(2, 3, 3, D + 1, 1)), ShapeError],
        ['NaN in supportX', () => l.step(bad((b) => (b.supportX[5] = NaN))), NonFiniteError],
        ['Infinity in queryX', () => l.step(bad((b) => (b.queryX[0] = -Infinity))), NonFiniteError],
        ['label 2', () => l.step(bad((b) => (b.supportY[1] = 2))), LabelError],
        ['label 0.5', () => l.evaluate(bad((b) => (b.queryY[0] = 0.5))), LabelError],
        ['label NaN', () => l.metaGradient(bad((b) => (b.queryY[2] = NaN))), LabelError],
        ['257 support rows', () => l.step(randomBatch(1, 257, 1, D, 1)), LimitError],
        ['iterations 0', () => l.step(good, { iterations: 0 }), InvalidOptionError],
        ['evaluate steps -1', () => l.evaluate(good, { steps: -1 }), InvalidOptionError],
        ['evaluate lr NaN', () => l.evaluate(good, { lr: NaN }), InvalidOptionError],
        ['setParams wrong length', () => l.setParams(new Float32Array(D + 1)), ShapeError],
        ['setParams NaN', () => l.setParams(new Float32Array([0, NaN, 0, 0])), NonFiniteError],
      ];
      for (const [name, call, type] of cases) {
        const e = await thrown(call);
        assert.instance(e, type, `${name}: got ${e.constructor.name}: ${e.message}`);
        assert.ok((e as MetagradError).hint.length > 0, `${name}: has a hint`);
        assert.equal(Array.from(await l.getParams()), Array.from(theta0), `${name}: θ unchanged`);
      }
      l.destroy();
      assert.instance(await thrown(() => l.getParams()), DestroyedError);
    }));
}

test('invalid hyperparameters are rejected by createLearner', async () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['dim 0', { dim: 0 }],
    ['dim missing', {}],
    ['innerLr negative', { dim: 3, innerLr: -1 }],
    ['outerLr NaN', { dim: 3, outerLr: NaN }],
    ['innerSteps -1', { dim: 3, innerSteps: -1 }],
    ['innerSteps 1.5', { dim: 3, innerSteps: 1.5 }],
    ['order 3', { dim: 3, order: 3 }],
    ['optimizer rmsprop', { dim: 3, optimizer: 'rmsprop' }],
    ['backend cuda', { dim: 3, backend: 'cuda' }],
    ['algorithm matching-net', { dim: 3, algorithm: 'matching-net' }],
    ['unknown option', { dim: 3, innerlr: 0.1 }],
    ['adamBetas out of range', { dim: 3, adamBetas: [0.9, 1] }],
    ['seed negative', { dim: 3, seed: -1 }],
  ];
  for (const [name, options] of cases) {
    const e = await thrown(() => createLearner({ backend: 'cpu', ...options } as unknown as LearnerOptions));
    assert.instance(e, InvalidOptionError, `${name}: ${e.message}`);
  }
});

test('[webgpu] a task too big for one storage binding gets a LimitError before any upload', () =>
  withGpu(async () => {
    // Batches bigger than a binding are split into chunks of tasks (test/chunks.test.ts); one task whose
    // rows alone exceed the limit cannot be. METAGRAD_MAX_BINDING lowers the limit to 1 MiB here.
    const D = 1024;
    process.env.METAGRAD_MAX_BINDING = String(2 ** 20);
    const l = await createLearner({ backend: 'webgpu', dim: D, validate: false });
    delete process.env.METAGRAD_MAX_BINDING;
    const big: Batch = {
      tasks: 2, supportShots: 256, queryShots: 1,
      supportX: new Float32Array(2 * 256 * D), supportY: new Float32Array(2 * 256),
      queryX: new Float32Array(2 * D), queryY: new Float32Array(2),
    };
    const before = await l.getParams();
    const e = await thrown(() => l.step(big));
    assert.instance(e, LimitError, e.message);
    assert.match(e.message, /over the adapter's storage-binding limit of 1.0 MiB/);
    assertClose('θ unchanged', await l.getParams(), before, 0, 0);
    l.destroy();
  }));

test('no adapter: acquireDevice names the paths tried and how to install one', async () => {
  const e = await thrown(() => acquireDevice({ nodeModule: 'metagrad-no-such-module' }));
  assert.instance(e, NoAdapterError);
  assert.ok((e as NoAdapterError).tried.length >= 1);
  assert.match(e.message, /metagrad-no-such-module/);
  assert.match((e as NoAdapterError).hint, /apt-get install libegl1 libegl-mesa0 libgles2/);
});

test('backend auto picks WebGPU when an adapter exists, and says which', async () => {
  const l: Learner = await createLearner({ dim: 3 });
  assert.ok(['webgpu', 'cpu'].includes(l.backend.kind));
  if (l.backend.kind === 'cpu') assert.ok(l.backend.fallbackReason, 'a CPU fallback says why');
  else assert.ok(l.backend.adapter.length > 0);
  l.destroy();
});

for (const algorithm of ['maml', 'adml', 'caml', 'amp'] as const) {
  test(`CPU backend: worker threads give the same bits as one thread (${algorithm}, a batch large enough to split)`, async () => {
    const D = 1000;
    const batch = randomBatch(64, 10, 10, D, 77);  // 64 × 20 × 1000 multiply-adds per pass: above the threading threshold
    const options = { backend: 'cpu' as const, algorithm, dim: D, seed: 2, ...(algorithm === 'amp' ? { models: 64 } : { innerSteps: 2, order: 2 as const }) } as LearnerOptions;
    const [one, many] = [await createLearner({ ...options, threads: 1 }), await createLearner({ ...options, threads: 3 })];
    for (let i = 0; i < 3; i++) {
      await one.step(batch);
      await many.step(batch);
    }
    assertClose('params, 1 vs 3 threads', await many.getParams(), await one.getParams(), 0, 0);
    const [e1, e3] = [await one.evaluate(batch, { attack: { kind: 'fgsm', epsilon: 0.1 } }), await many.evaluate(batch, { attack: { kind: 'fgsm', epsilon: 0.1 } })];
    assertClose('per-task query loss, clean and attacked', [...e3.taskLoss, ...e3.attacked!.taskLoss], [...e1.taskLoss, ...e1.attacked!.taskLoss], 0, 0);
    one.destroy();
    many.destroy();
  });
}

test('the fast finiteness and label scans find every bad value, at any position', async () => {
  const { checkFinite, checkLabels } = await import('../src/validate.js');
  const fine = Float32Array.from([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0, 0, 1, -1]);
  checkFinite('fine', fine);
  for (const bad of [NaN, Infinity, -Infinity]) {
    for (const length of [1, 4, 7, 9]) {
      for (let at = 0; at < length; at++) {
        const a = new Float32Array(length).fill(0.5);
        a[at] = bad;
        const e = await thrown(() => checkFinite('x', a));
        assert.instance(e, NonFiniteError);
        assert.match(e.message, new RegExp(`x\\[${at}\\] is ${bad}`));
      }
    }
  }
  checkLabels('fine', Float32Array.from([0, 1, 1, 0, -0]));
  for (const bad of [0.5, -1, 2, NaN, Infinity]) {
    for (const at of [0, 3, 6]) {
      const y = Float32Array.from([0, 1, 0, 1, 0, 1, 0]);
      y[at] = bad;
      // Seven labels as tasks of 3 rows: the message names the index, the task and the row.
      const e = await thrown(() => checkLabels('y', y, 3));
      assert.instance(e, LabelError);
      assert.match(e.message, new RegExp(`y\\[${at}\\] \\(task ${Math.floor(at / 3)}, row ${at % 3}\\) is ${bad}`));
    }
  }
});

test('device loss: calls fail with DeviceLostError, and a new learner resumes from the saved state', async () => {
  const options: LearnerOptions = { dim: 12, innerLr: 0.3, outerLr: 0.05, optimizer: 'adam', seed: 9 };
  const batch = randomBatch(8, 5, 5, 12, 41);
  const before = await createLearner({ ...options, backend: 'webgpu' });
  await before.step(batch, { iterations: 3 });
  const saved = await before.getState();
  const acq = await getSharedDevice();
  acq.device.destroy();  // what a driver reset or a lost GPU does to a running program
  await acq.device.lost;
  const e = await thrown(() => before.step(batch));
  assert.instance(e, DeviceLostError);
  assert.match(e.message, /device was lost/);
  assert.match((e as MetagradError).hint, /restore parameters from your last checkpoint/);
  // The shared device is dropped once lost: the next learner gets a fresh one and continues exactly.
  const after = await createLearner({ ...options, backend: 'webgpu' });
  after.setState(saved);
  const reference = await createLearner({ ...options, backend: 'webgpu' });
  await reference.step(batch, { iterations: 3 });
  await after.step(batch);
  await reference.step(batch);
  assertClose('resumed on a new device = uninterrupted', await after.getParams(), await reference.getParams(), 0, 0);
  after.destroy();
  reference.destroy();
});

// gpuTime: test/gpu-time.test.ts (properties, no timing).

test.run();
