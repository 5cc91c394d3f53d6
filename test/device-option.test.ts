// createLearner({ device }) (issue 13 item 5): learners run on a GPUDevice the caller made, several
// share one, results equal a learner on its own device, and no learner destroys a device it did not create.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner } from '../src/learner.js';
import { acquireDevice } from '../src/gpu/device.js';
import { InvalidOptionError, LimitError } from '../src/errors.js';
import type { LearnerOptions } from '../src/types.js';
import { assertClose, randomBatch, thrown } from './helpers.js';

const OPTIONS: LearnerOptions = { dim: 12, innerLr: 0.3, outerLr: 0.05, optimizer: 'adam', innerSteps: 2, order: 2, seed: 4 };

test('two learners on one caller-made device equal learners on their own device, and leave it alive', async () => {
  // The caller's device: made outside any learner (not metagrad's shared device).
  const mine = await acquireDevice();
  const device = mine.device;
  const batchA = randomBatch(8, 5, 5, 12, 21);
  const batchB = randomBatch(8, 5, 5, 12, 22);
  const a = await createLearner({ ...OPTIONS, device } as LearnerOptions);
  const b = await createLearner({ ...OPTIONS, seed: 5, device } as LearnerOptions);
  assert.is(a.backend.kind, 'webgpu');
  assert.match(a.backend.adapter, /\(external\)$/);
  assert.is(a.backend.software, mine.software);
  // Interleaved, un-awaited work of both learners on the one device.
  const work = [a.step(batchA, { iterations: 3 }), b.step(batchB, { iterations: 2 }), a.step(batchB), b.step(batchA, { iterations: 2 })];
  await Promise.all(work);
  const [pa, pb] = [await a.getParams(), await b.getParams()];
  const evalA = await a.evaluate(batchB, { steps: 2 });

  // The same runs, each learner on metagrad's shared device, alone.
  const refA = await createLearner({ ...OPTIONS, backend: 'webgpu' });
  await refA.step(batchA, { iterations: 3 });
  await refA.step(batchB);
  const refB = await createLearner({ ...OPTIONS, seed: 5, backend: 'webgpu' });
  await refB.step(batchB, { iterations: 2 });
  await refB.step(batchA, { iterations: 2 });
  assertClose('learner A on the shared caller device = alone', pa, await refA.getParams(), 0, 0);
  assertClose('learner B on the shared caller device = alone', pb, await refB.getParams(), 0, 0);
  assertClose('evaluate on the caller device = alone', evalA.taskLoss, (await refA.evaluate(batchB, { steps: 2 })).taskLoss, 0, 0);
  refA.destroy();
  refB.destroy();

  // Destroying the learners leaves the caller's device working: a new learner runs on it.
  a.destroy();
  b.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.is(mine.lost, null, 'the device is not lost');
  const c = await createLearner({ ...OPTIONS, device } as LearnerOptions);
  await c.step(batchA, { iterations: 3 });
  await c.step(batchB);
  assertClose('a third learner on the same device', await c.getParams(), pa, 0, 0);
  c.destroy();
  const buffer = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_DST });
  buffer.destroy();
  assert.is(mine.lost, null);
  device.destroy();  // the caller made it, the caller destroys it
});

test('the device option: a CPU backend with a device and a non-device are refused', async () => {
  const mine = await acquireDevice();
  try {
    const e = await thrown(() => createLearner({ ...OPTIONS, backend: 'cpu', device: mine.device } as LearnerOptions));
    assert.instance(e, InvalidOptionError);
    assert.match(e.message, /backend: 'cpu'/);
    const notDevice = await thrown(() => createLearner({ ...OPTIONS, device: { limits: {} } } as unknown as LearnerOptions));
    assert.instance(notDevice, InvalidOptionError);
    assert.match(notDevice.message, /must be a GPUDevice/);
    // A device with too few storage buffers per stage (a compatibility-mode default) gets a LimitError
    // that says which limits to request.
    const small = { ...fakeDevice(mine.device), limits: { ...limitsOf(mine.device), maxStorageBuffersPerShaderStage: 4 } };
    const limited = await thrown(() => createLearner({ ...OPTIONS, device: small } as unknown as LearnerOptions));
    assert.instance(limited, LimitError);
    assert.match((limited as LimitError).hint, /requiredLimits: \{ maxStorageBuffersPerShaderStage: adapter\.limits\.maxStorageBuffersPerShaderStage \}/);
  } finally {
    mine.device.destroy();
  }
});

function limitsOf(device: GPUDevice): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k in device.limits) out[k] = device.limits[k as keyof GPUSupportedLimits] as number;
  return out;
}

function fakeDevice(device: GPUDevice): Record<string, unknown> {
  return { createBuffer: () => null, queue: device.queue, lost: new Promise(() => {}), features: device.features, addEventListener: () => {} };
}

test.run();
