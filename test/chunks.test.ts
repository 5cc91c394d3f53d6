// Batches bigger than one storage binding (llvmpipe and Chrome grant 128 MiB) run in chunks of tasks.
// METAGRAD_MAX_BINDING shrinks the binding limit so that small batches split into several chunks, and
// every algorithm must then match the CPU backend exactly as an unsplit batch does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner, type Learner } from '../src/learner.js';
import type { LearnerOptions } from '../src/types.js';
import { dataLayout } from '../src/kernels/layout.js';
import { assertClose, randomBatch, withGpu } from './helpers.js';

const D = 30, T = 13, Ks = 20, Kq = 20;  // rows dominate the per-task scratch, so only the data needs chunks
const PER_TASK = dataLayout(1, Ks, Kq, D).total * 4;

/** A GPU learner whose data binding holds 5 tasks: 13 tasks → chunks of 5, 5, 3. */
async function chunkedLearner(options: LearnerOptions): Promise<Learner> {
  process.env.METAGRAD_MAX_BINDING = String(5 * PER_TASK + 64);
  try {
    return await createLearner({ ...options, backend: 'webgpu' });
  } finally {
    delete process.env.METAGRAD_MAX_BINDING;
  }
}

const CASES: Array<[string, Partial<LearnerOptions>]> = [
  ['maml o2', { algorithm: 'maml', order: 2 }],
  ['adml', { algorithm: 'adml', epsilon: 0.1 }],
  ['ga-maml', { algorithm: 'ga-maml' }],
  ['caml', { algorithm: 'caml', contextDim: 2 }],
  ['amp', { algorithm: 'amp', models: T }],
  ['meta-sgd o2', { algorithm: 'meta-sgd', order: 2 }],
  // Its joined rows (Ks + Kq + Kq per task) make smaller chunks: 13 tasks → 5 chunks.
  ['reptile', { algorithm: 'reptile', innerSteps: 2 }],
];

for (const [name, extra] of CASES) {
  test(`a batch split in 3 chunks matches the CPU backend (${name}), with an attacked evaluation`, () =>
    withGpu(async () => {
      const options = { dim: D, innerLr: 0.3, outerLr: 0.1, seed: 4, ...extra } as LearnerOptions;
      if (extra.algorithm === 'amp') { delete options.innerLr; delete options.outerLr; }
      const gpu = await chunkedLearner(options);
      const cpu = await createLearner({ ...options, backend: 'cpu' });
      for (let i = 0; i < 5; i++) {
        const b = randomBatch(T, Ks, Kq, D, 500 + i);
        await gpu.step(b);
        await cpu.step(b);
      }
      assertClose('params after 5 steps', await gpu.getParams(), await cpu.getParams(), 1e-4, 1e-3);
      const b = randomBatch(T, Ks, Kq, D, 599);
      const attack = { kind: 'pgd' as const, epsilon: 0.1, steps: 3 };
      const [g, c] = [await gpu.evaluate(b, { attack }), await cpu.evaluate(b, { attack })];
      assertClose('per-task clean and attacked query loss (tasks of every chunk)', [...g.taskLoss, ...g.attacked!.taskLoss], [...c.taskLoss, ...c.attacked!.taskLoss], 1e-4, 1e-3);
      const [ga, ca] = [await gpu.adapt(b, { attack }), await cpu.adapt(b, { attack })];
      assertClose('adapted parameters of every chunk', ga.adapted, ca.adapted, 1e-4, 1e-3);
      const differ = ga.attackedQueryX!.reduce((n, v, i) => n + (Math.abs(v - ca.attackedQueryX![i]) > 1e-5 ? 1 : 0), 0);
      assert.ok(differ <= ga.attackedQueryX!.length / 1000, `attacked rows of every chunk: ${differ} values differ`);
      gpu.destroy();
      cpu.destroy();
    }));
}

test('on-device sampling into chunks gives the batches of the CPU twin', () =>
  withGpu(async () => {
    const options: LearnerOptions = { dim: 9, innerLr: 0.3, outerLr: 0.05, seed: 6, optimizer: 'adam' };
    process.env.METAGRAD_MAX_BINDING = String(4 * dataLayout(1, 5, 5, 9).total * 4 + 64);
    const gpu = await createLearner({ ...options, backend: 'webgpu' });
    delete process.env.METAGRAD_MAX_BINDING;
    const cpu = await createLearner({ ...options, backend: 'cpu' });
    const train = { source: { kind: 'seed' as const, dim: 9 }, iterations: 12, tasksPerBatch: 10, supportShots: 5, queryShots: 5, evalEvery: 12, evalTasks: 10 };
    const [pg, pc] = [await gpu.train(train), await cpu.train(train)];
    assertClose('params after 12 sampled iterations', await gpu.getParams(), await cpu.getParams(), 1e-4, 1e-3);
    assert.ok(pg.eval && pc.eval);
    assertClose('held-out loss', [pg.eval!.loss], [pc.eval!.loss], 1e-4, 1e-3);
    gpu.destroy();
    cpu.destroy();
  }));

test.run();
