// Every WGSL kernel against its CPU twin (src/cpu/*), on shapes that exercise the edge cases of the
// thread mapping: rows not a multiple of ROWS (16), more rows than one block, D above and below the
// workgroup size, shared and per-task parameters, and T beyond one dispatch dimension.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { forwardGrad, type LogisticShape } from '../src/cpu/logistic.js';
import { adaptAndMetaGrad, taskScratchSizes, type TaskParams } from '../src/cpu/maml-task.js';
import { countStep, metaUpdate, type UpdateParams } from '../src/cpu/meta-update.js';
import { createBuffer, readFloats, writeFloats } from '../src/gpu/resources.js';
import { LogisticKernels } from '../src/kernels/logistic.js';
import { MamlTaskKernel } from '../src/kernels/maml-task.js';
import { dataLayout, padRows, paddedDim, unpadRows } from '../src/kernels/layout.js';
import { MetaUpdateKernel, partialFloats } from '../src/kernels/meta-update.js';
import type { AcquiredDevice } from '../src/gpu/device.js';
import type { Batch } from '../src/types.js';
import { hvp, LogisticHvpKernel } from './test-kernels.js';
import { assertClose, packBatch, randomArray, randomBatch, randomLabels, submit, upload, withGpu } from './helpers.js';



const LOGISTIC_CASES: Array<LogisticShape & { scale: number }> = [
  { tasks: 5, rows: 37, dim: 70, paramStride: 0, scale: 1 },
  { tasks: 3, rows: 16, dim: 3, paramStride: 3, scale: 1 },
  { tasks: 4, rows: 9, dim: 130, paramStride: 130, scale: 1 },
  { tasks: 2, rows: 256, dim: 8, paramStride: 8, scale: 1 },
  // Logits of magnitude ~1e4: the stable BCE must stay finite and equal to the twin's.
  { tasks: 2, rows: 10, dim: 20, paramStride: 20, scale: 2000 },
];

for (const c of LOGISTIC_CASES) {
  const label = `T=${c.tasks} K=${c.rows} D=${c.dim} stride=${c.paramStride} scale=${c.scale}`;
  test(`logistic forward_grad and hvp match the CPU twin (${label})`, () =>
    withGpu(async (acq) => {
      const x = randomArray(c.tasks * c.rows * c.dim, 7, 1);
      const y = randomLabels(c.tasks * c.rows, 7, 2);
      const params = randomArray(c.paramStride === 0 ? c.dim : c.tasks * c.dim, 7, 3, -c.scale, c.scale);
      const v = randomArray(c.tasks * c.dim, 7, 4);
      const kernels = new LogisticKernels(acq.device);
      const Dp = paddedDim(c.dim);
      const buffers = {
        x: upload(acq, 'x', padRows(x, c.tasks * c.rows, c.dim)), y: upload(acq, 'y', y),
        params: upload(acq, 'params', padRows(params, params.length / c.dim, c.dim)), vec: upload(acq, 'v', padRows(v, c.tasks, c.dim)),
        out: createBuffer(acq.device, 'test.out', c.tasks * Dp), stats: createBuffer(acq.device, 'test.stats', 2 * c.tasks),
      };
      const bound = kernels.bind(buffers, c);
      const boundHvp = new LogisticHvpKernel(acq.device).bind(buffers, c);
      submit(acq, (pass) => bound.forwardGrad.encode(pass));
      const gpuGrad = unpadRows(await readFloats(acq.device, buffers.out, c.tasks * Dp), c.tasks, c.dim);
      const gpuStats = await readFloats(acq.device, buffers.stats, 2 * c.tasks);
      submit(acq, (pass) => boundHvp.encode(pass));
      const gpuHvp = unpadRows(await readFloats(acq.device, buffers.out, c.tasks * Dp), c.tasks, c.dim);

      const grad = new Float32Array(c.tasks * c.dim);
      const stats = new Float32Array(2 * c.tasks);
      const hv = new Float32Array(c.tasks * c.dim);
      forwardGrad(grad, stats, x, y, params, c);
      hvp(hv, x, params, v, c);
      for (const s of gpuStats) assert.ok(Number.isFinite(s), `finite loss/accuracy, got ${s}`);
      // float32 dot products of up to 256·130 terms against float64 sums: relative error ~1e-5.
      const atol = 1e-5 * c.scale;
      assertClose('stats', gpuStats, stats, atol, 1e-4);
      assertClose('grad', gpuGrad, grad, 1e-5, 1e-4);
      assertClose('hvp', gpuHvp, hv, 1e-5, 1e-3);
      for (const b of Object.values(buffers)) b.destroy();
    }));
}

test('logistic kernels cover T beyond one dispatch dimension (2-D grid)', () =>
  withGpu(async (acq) => {
    const shape: LogisticShape = { tasks: acq.device.limits.maxComputeWorkgroupsPerDimension + 7, rows: 1, dim: 1, paramStride: 1 };
    const x = randomArray(shape.tasks, 9, 1);
    const y = randomLabels(shape.tasks, 9, 2);
    const params = randomArray(shape.tasks, 9, 3);
    const padded = (a: Float32Array) => padRows(a, shape.tasks, 1);
    const buffers = {
      x: upload(acq, 'x', padded(x)), y: upload(acq, 'y', y), params: upload(acq, 'params', padded(params)), vec: upload(acq, 'v', padded(params)),
      out: createBuffer(acq.device, 'test.out', 4 * shape.tasks), stats: createBuffer(acq.device, 'test.stats', 2 * shape.tasks),
    };
    const bound = new LogisticKernels(acq.device).bind(buffers, shape);
    submit(acq, (pass) => bound.forwardGrad.encode(pass));
    const gpuGrad = unpadRows(await readFloats(acq.device, buffers.out, 4 * shape.tasks), shape.tasks, 1);
    const grad = new Float32Array(shape.tasks);
    forwardGrad(grad, new Float32Array(2 * shape.tasks), x, y, params, shape);
    assertClose('grad (last tasks are in the second grid row)', gpuGrad, grad, 1e-6, 1e-5);
    for (const b of Object.values(buffers)) b.destroy();
  }));

type TaskCase = Pick<TaskParams, 'innerSteps' | 'order' | 'innerLr'> & Partial<Pick<TaskParams, 'thetaPerTask' | 'outSet' | 'perturb' | 'writeBack'>> & {
  T: number; Ks: number; Kq: number; D: number;
};

const TASK_CASES: TaskCase[] = [
  { T: 6, Ks: 10, Kq: 15, D: 50, innerSteps: 1, order: 1, innerLr: 0.4 },
  { T: 6, Ks: 10, Kq: 15, D: 50, innerSteps: 1, order: 2, innerLr: 0.4 },
  { T: 3, Ks: 20, Kq: 7, D: 81, innerSteps: 3, order: 2, innerLr: 0.3, outSet: 1 },
  { T: 4, Ks: 5, Kq: 33, D: 20, innerSteps: 5, order: 1, innerLr: 0.2 },
  { T: 2, Ks: 3, Kq: 4, D: 130, innerSteps: 0, order: 2, innerLr: 0.2 },
  // AMP as the inner optimizer (order 2 through the perturbed points), and AMP's plain training:
  // one model per task, written back.
  { T: 4, Ks: 12, Kq: 9, D: 37, innerSteps: 2, order: 2, innerLr: 0.3, perturb: { steps: 3, lr: 0.5, radius: 0.05 } },
  { T: 5, Ks: 16, Kq: 8, D: 66, innerSteps: 1, order: 1, innerLr: 0.2, thetaPerTask: true, writeBack: true, perturb: { steps: 2, lr: 1, radius: 0.1 } },
];


for (const c of TASK_CASES) {
  const extras = [c.outSet ? `outSet=${c.outSet}` : '', c.perturb ? 'amp-inner' : '', c.writeBack ? 'per-task θ, write-back' : ''].filter(Boolean).join(' ');
  test(`maml-task adapt_and_meta_grad matches the CPU twin (T=${c.T} Ks=${c.Ks} Kq=${c.Kq} D=${c.D} n=${c.innerSteps} order=${c.order} ${extras})`, () =>
    withGpu(async (acq) => {
      const batch = randomBatch(c.T, c.Ks, c.Kq, c.D, 11);
      // Separate support and query buffers (as ADML binds them): the query comes from a second copy.
      const queryBatch = { ...batch, queryX: randomArray(batch.queryX.length, 11, 9) };
      const thetaPerTask = c.thetaPerTask ?? false;
      const theta = randomArray(thetaPerTask ? c.T * c.D : c.D, 11, 5, -0.5, 0.5);
      const sets = (c.outSet ?? 0) + 1;
      const p: TaskParams = {
        tasks: c.T, supportRows: c.Ks, queryRows: c.Kq, dim: c.D, innerSteps: c.innerSteps, order: c.order, innerLr: c.innerLr,
        wantMetaGrad: !c.writeBack, thetaPerTask, outSet: c.outSet ?? 0, perturb: c.perturb ?? null, writeBack: c.writeBack,
      };
      const sizes = taskScratchSizes({ ...p, dim: paddedDim(c.D) }, sets);
      const cpuSizes = taskScratchSizes(p, sets);
      const Dp = paddedDim(c.D);
      const models = thetaPerTask ? c.T : 1;
      const buffers = {
        supportData: upload(acq, 'support', packBatch(batch, c.D)), queryData: upload(acq, 'query', packBatch(queryBatch, c.D)),
        theta: upload(acq, 'theta', padRows(theta, models, c.D)),
        adapted: createBuffer(acq.device, 'test.adapted', sizes.adapted), metaGrad: createBuffer(acq.device, 'test.metaGrad', sizes.metaGrad),
        supportProb: createBuffer(acq.device, 'test.supportProb', sizes.supportProb), taskStats: createBuffer(acq.device, 'test.taskStats', sizes.taskStats),
        perturbed: createBuffer(acq.device, 'test.perturbed', sizes.perturbed),
      };
      const bound = new MamlTaskKernel(acq.device).bind(buffers, c.T, 'test');
      bound.setParams(p);
      submit(acq, (pass) => bound.encode(pass));
      const cpu = {
        adapted: new Float32Array(cpuSizes.adapted), metaGrad: new Float32Array(cpuSizes.metaGrad), supportProb: new Float32Array(cpuSizes.supportProb),
        taskStats: new Float32Array(cpuSizes.taskStats), perturbed: new Float32Array(cpuSizes.perturbed),
      };
      const cpuTheta = theta.slice();
      adaptAndMetaGrad(cpu, { x: batch.supportX, y: batch.supportY }, { x: queryBatch.queryX, y: batch.queryY }, cpuTheta, p);
      const names = c.writeBack ? (['adapted'] as const) : (['adapted', 'metaGrad'] as const);
      for (const name of names) {
        assertClose(name, unpadRows(await readFloats(acq.device, buffers[name], sets * c.T * Dp), sets * c.T, c.D), cpu[name], 2e-6, 1e-4);
      }
      assertClose('taskStats', await readFloats(acq.device, buffers.taskStats, sizes.taskStats), cpu.taskStats, 2e-6, 1e-4);
      if (c.innerSteps > 0) assertClose('supportProb', await readFloats(acq.device, buffers.supportProb, sizes.supportProb), cpu.supportProb, 1e-6, 1e-5);
      if (c.writeBack) {
        assertClose('theta written back', unpadRows(await readFloats(acq.device, buffers.theta, c.T * Dp), c.T, c.D), cpuTheta, 2e-6, 1e-4);
        assert.ok(cpuTheta.some((v, i) => v !== theta[i]), 'write-back changed the models');
      }
      for (const b of Object.values(buffers)) b.destroy();
    }));
}

for (const [rule, T] of [[0, 37], [1, 37], [2, 37], [0, 300], [1, 200]] as const) {
  test(`meta-update (${['sgd', 'adam', 'none'][rule]}, T=${T}: ${Math.ceil(T / 64)} task block(s)) matches the CPU twin over 5 updates`, () =>
    withGpu(async (acq) => {
      const D = 100;
      const p: UpdateParams = { tasks: T, dim: D, rule, outerLr: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
      const weights = randomArray(T, 3, 1, -0.2, 0.3);  // arbitrary signed weights, as GA-MAML produces
      const theta = randomArray(D, 3, 2);
      const buffers = {
        metaGrad: createBuffer(acq.device, 'test.metaGrad', T * D), taskWeight: upload(acq, 'w', weights), theta: upload(acq, 'theta', theta),
        optState: createBuffer(acq.device, 'test.optState', 2 * D + 1), meanGrad: createBuffer(acq.device, 'test.meanGrad', D),
        partial: createBuffer(acq.device, 'test.partial', partialFloats(T, D)),
      };
      const bound = new MetaUpdateKernel(acq.device).bind(buffers, p, 'test');
      const cpuTheta = theta.slice();
      const cpuState = new Float32Array(2 * D + 1);
      const cpuMean = new Float32Array(D);
      for (let i = 0; i < 5; i++) {
        const metaGrad = randomArray(T * D, 3, 10 + i);
        writeFloats(acq.device, buffers.metaGrad, 0, metaGrad);
        submit(acq, (pass) => bound.encode(pass));
        if (rule === 1) countStep(cpuState, D);
        metaUpdate(cpuTheta, cpuState, cpuMean, metaGrad, weights, p);
      }
      // Adam divides by √v: where a mean gradient is near 0, its float32 rounding moves the step by up
      // to ~1e-4 of outerLr, so Adam's absolute tolerance scales with outerLr × updates.
      const thetaAtol = rule === 1 ? 2e-4 * p.outerLr * 5 : 1e-6;
      assertClose('theta', await readFloats(acq.device, buffers.theta, D), cpuTheta, thetaAtol, 1e-5);
      assertClose('meanGrad', await readFloats(acq.device, buffers.meanGrad, D), cpuMean, 1e-6, 1e-5);
      assertClose('optState', await readFloats(acq.device, buffers.optState, 2 * D + 1), cpuState, 1e-7, 1e-5);
      if (rule === 2) assertClose('theta unchanged by rule none', cpuTheta, theta, 0, 0);
      for (const b of Object.values(buffers)) b.destroy();
    }));
}

test.run();
