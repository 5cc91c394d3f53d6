// The kernels of the seed algorithms against their CPU twins: caml-task (CAVIA), the FGSM/PGD attack
// step, the L2-ball projection of AMP, and the gradient-agreement weights; plus the properties each
// kernel must have whatever its twin says (attacks stay in the ε ball and the clip range, projections
// never leave the ball).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { camlAdaptAndMetaGrad, camlScratchSizes, type CamlParams } from '../src/cpu/caml-task.js';
import { attack, type AttackParams } from '../src/cpu/fgsm.js';
import { gaWeights } from '../src/cpu/ga-weights.js';
import { createBuffer, readFloats } from '../src/gpu/resources.js';
import { CamlTaskKernel } from '../src/kernels/caml-task.js';
import { AttackKernel } from '../src/kernels/fgsm.js';
import { clipModelsToBall, NormClipKernel } from './test-kernels.js';
import { GaWeightsKernel } from '../src/kernels/ga-weights.js';
import { partialFloats } from '../src/kernels/meta-update.js';
import { dataLayout, padRows, paddedDim, unpadRows } from '../src/kernels/layout.js';
import { assertClose, packBatch, randomArray, randomBatch, submit, upload, withGpu } from './helpers.js';

const CAML_CASES: Array<Pick<CamlParams, 'innerSteps' | 'order' | 'innerLr' | 'context' | 'outSet'> & { T: number; Ks: number; Kq: number; D: number }> = [
  { T: 5, Ks: 10, Kq: 15, D: 50, innerSteps: 1, order: 1, innerLr: 0.5, context: 3, outSet: 0 },
  { T: 5, Ks: 10, Kq: 15, D: 50, innerSteps: 1, order: 2, innerLr: 0.5, context: 3, outSet: 0 },
  { T: 3, Ks: 20, Kq: 7, D: 81, innerSteps: 3, order: 2, innerLr: 0.4, context: 1, outSet: 1 },
  { T: 2, Ks: 17, Kq: 5, D: 130, innerSteps: 2, order: 2, innerLr: 0.3, context: 8, outSet: 0 },
  { T: 2, Ks: 4, Kq: 6, D: 9, innerSteps: 0, order: 2, innerLr: 0.3, context: 2, outSet: 0 },
];

for (const c of CAML_CASES) {
  test(`caml-task matches the CPU twin (T=${c.T} Ks=${c.Ks} Kq=${c.Kq} D=${c.D} C=${c.context} n=${c.innerSteps} order=${c.order} outSet=${c.outSet})`, () =>
    withGpu(async (acq) => {
      const batch = randomBatch(c.T, c.Ks, c.Kq, c.D, 31);
      const vectors = c.context + 1;
      const params = randomArray(vectors * c.D, 31, 5, -0.5, 0.5);
      const sets = c.outSet + 1;
      const p: CamlParams = { tasks: c.T, supportRows: c.Ks, queryRows: c.Kq, dim: c.D, wantMetaGrad: true, ...c };
      const Dp = paddedDim(c.D);
      const gpuSizes = camlScratchSizes({ ...p, dim: Dp }, sets);
      const cpuSizes = camlScratchSizes(p, sets);
      const data = upload(acq, 'data', packBatch(batch, c.D));
      const buffers = {
        supportData: data, queryData: data, params: upload(acq, 'params', padRows(params, vectors, c.D)),
        adapted: createBuffer(acq.device, 'test.adapted', gpuSizes.adapted), metaGrad: createBuffer(acq.device, 'test.metaGrad', gpuSizes.metaGrad),
        tape: createBuffer(acq.device, 'test.tape', gpuSizes.tape), taskStats: createBuffer(acq.device, 'test.taskStats', gpuSizes.taskStats),
        scratch: createBuffer(acq.device, 'test.scratch', gpuSizes.scratch),
      };
      const bound = new CamlTaskKernel(acq.device).bind(buffers, c.T, 'test');
      bound.setParams(p);
      submit(acq, (pass) => bound.encode(pass));
      const cpu = {
        adapted: new Float32Array(cpuSizes.adapted), metaGrad: new Float32Array(cpuSizes.metaGrad), tape: new Float32Array(cpuSizes.tape),
        taskStats: new Float32Array(cpuSizes.taskStats), scratch: new Float32Array(cpuSizes.scratch),
      };
      camlAdaptAndMetaGrad(cpu, { x: batch.supportX, y: batch.supportY }, { x: batch.queryX, y: batch.queryY }, params, p);
      assertClose('adapted', unpadRows(await readFloats(acq.device, buffers.adapted, gpuSizes.adapted), sets * c.T, c.D), cpu.adapted, 2e-6, 1e-4);
      assertClose('metaGrad', unpadRows(await readFloats(acq.device, buffers.metaGrad, gpuSizes.metaGrad), sets * c.T * vectors, c.D), cpu.metaGrad, 2e-6, 2e-4);
      assertClose('taskStats', await readFloats(acq.device, buffers.taskStats, gpuSizes.taskStats), cpu.taskStats, 2e-6, 1e-4);
      for (const b of Object.values(buffers)) b.destroy();
    }));
}

const ATTACK_CASES: Array<{ name: string; T: number; K: number; D: number; perTask: boolean; a: AttackParams }> = [
  { name: 'FGSM against a shared θ', T: 6, K: 15, D: 50, perTask: false, a: { kind: 'fgsm', epsilon: 0.1, steps: 1, stepSize: 0.1, lo: -3.4e38, hi: 3.4e38 } },
  { name: 'FGSM with clip [0, 1], D not a multiple of 4', T: 3, K: 7, D: 37, perTask: true, a: { kind: 'fgsm', epsilon: 0.2, steps: 1, stepSize: 0.2, lo: 0, hi: 1 } },
  { name: 'PGD k=5 against per-task θ\'', T: 4, K: 20, D: 66, perTask: true, a: { kind: 'pgd', epsilon: 0.15, steps: 5, stepSize: 0.075, lo: 0, hi: 1 } },
  { name: 'PGD k=4 (even: last step lands in out)', T: 2, K: 9, D: 8, perTask: false, a: { kind: 'pgd', epsilon: 0.3, steps: 4, stepSize: 0.1, lo: -3.4e38, hi: 3.4e38 } },
];

for (const c of ATTACK_CASES) {
  test(`attack kernel matches the CPU twin and stays in the ε ball and clip range (${c.name})`, () =>
    withGpu(async (acq) => {
      const batch = randomBatch(c.T, c.K, 1, c.D, 41);
      const x = randomArray(c.T * c.K * c.D, 41, 3, 0, 1);
      const params = randomArray((c.perTask ? c.T : 1) * c.D, 41, 4, -1, 1);
      params[1] = 0;  // sign(0) = 0: feature 1 of the first model never moves
      const off = dataLayout(c.T, c.K, 1, c.D);
      const packed = packBatch(batch, c.D, { supportX: x });
      const clean = upload(acq, 'clean', packed);
      const out = createBuffer(acq.device, 'test.out', off.total);
      const scratch = createBuffer(acq.device, 'test.scratch', off.total);
      const paramBuffer = upload(acq, 'params', padRows(params, c.perTask ? c.T : 1, c.D));
      const bound = new AttackKernel(acq.device).bind({
        clean: { buffer: clean, xOff: off.supportX, labelOff: off.supportY }, params: paramBuffer, paramOff: 0, paramPerTask: c.perTask,
        out: { buffer: out, xOff: off.supportX }, scratch: { buffer: scratch, xOff: off.supportX }, tasks: c.T, rows: c.K, dim: c.D,
      }, c.a, 'test');
      submit(acq, (pass) => bound.encode(pass));
      const gpu = unpadRows(await readFloats(acq.device, out, c.T * c.K * paddedDim(c.D)), c.T * c.K, c.D);
      const cpu = new Float32Array(x.length);
      attack(cpu, x, batch.supportY, params, { tasks: c.T, rows: c.K, dim: c.D, paramStride: c.perTask ? c.D : 0 }, c.a);
      assertClose('attacked rows', gpu, cpu, 1e-6, 1e-6);
      let moved = 0;
      for (let i = 0; i < x.length; i++) {
        assert.ok(Math.abs(gpu[i] - x[i]) <= c.a.epsilon * (1 + 1e-6) + 1e-7, `row value ${i} moved ${Math.abs(gpu[i] - x[i])} > ε = ${c.a.epsilon}`);
        assert.ok(gpu[i] >= c.a.lo && gpu[i] <= c.a.hi, `value ${i} = ${gpu[i]} outside [${c.a.lo}, ${c.a.hi}]`);
        if (gpu[i] !== x[i]) moved++;
      }
      assert.ok(moved > x.length / 2, `the attack moved most inputs (${moved} of ${x.length})`);
      for (let r = 0; r < c.K; r++) assert.is(gpu[r * c.D + 1], x[r * c.D + 1], 'sign(θ_d) = 0 leaves feature d alone');
      for (const b of [clean, out, scratch, paramBuffer]) b.destroy();
    }));
}

test('norm-clip projects onto the L2 ball like the CPU twin, and never leaves it', () =>
  withGpu(async (acq) => {
    const M = 7, D = 45, radius = 0.8;
    // Some points far outside the ball, some inside (scale 0.01): those must stay exactly where they are.
    const centres = randomArray(M * D, 51, 1);
    const points = centres.map((v, i) => v + (Math.floor(i / D) % 2 === 0 ? 1 : 0.01) * randomArray(1, 51, 100 + i)[0]);
    const gpuPoints = upload(acq, 'points', padRows(points, M, D));
    const gpuCentres = upload(acq, 'centres', padRows(centres, M, D));
    const bound = new NormClipKernel(acq.device).bind(gpuPoints, gpuCentres, M, D, radius);
    submit(acq, (pass) => bound.encode(pass));
    const gpu = unpadRows(await readFloats(acq.device, gpuPoints, M * paddedDim(D)), M, D);
    const cpu = points.slice();
    clipModelsToBall(cpu, centres, M, D, radius);
    assertClose('projected points', gpu, cpu, 1e-6, 1e-5);
    for (let m = 0; m < M; m++) {
      let sq = 0;
      for (let d = 0; d < D; d++) sq += (gpu[m * D + d] - centres[m * D + d]) ** 2;
      assert.ok(Math.sqrt(sq) <= radius * (1 + 1e-5), `model ${m}: ‖Δ‖ = ${Math.sqrt(sq)} > ε`);
      if (m % 2 === 1) assertClose(`model ${m} inside the ball is untouched`, gpu.subarray(m * D, (m + 1) * D), points.subarray(m * D, (m + 1) * D), 0, 0);
      else assert.ok(Math.abs(Math.sqrt(sq) - radius) < 1e-5, `model ${m} outside lands on the sphere`);
    }
    gpuPoints.destroy();
    gpuCentres.destroy();
  }));

for (const [normalization, T] of [['paper', 9], ['notebook', 9], ['paper', 150]] as const) {
  test(`ga-weights match the CPU twin (${normalization} normalisation, T=${T}), with negative weights`, () =>
    withGpu(async (acq) => {
      const D = 70;
      const theta = randomArray(D, 61, 1);
      // Updates with a shared direction plus noise, and one task pointing the other way.
      const adapted = new Float32Array(T * D);
      const shared = randomArray(D, 61, 2);
      for (let t = 0; t < T; t++) {
        const noise = randomArray(D, 61, 10 + t);
        for (let d = 0; d < D; d++) adapted[t * D + d] = theta[d] - (t === 4 ? -1 : 1) * 0.1 * shared[d] - 0.05 * noise[d];
      }
      const Dp = paddedDim(D);
      const buffers = {
        theta: upload(acq, 'theta', padRows(theta, 1, D)), adapted: upload(acq, 'adapted', padRows(adapted, T, D)),
        updateSum: createBuffer(acq.device, 'test.updateSum', Dp), agree: createBuffer(acq.device, 'test.agree', 2 * T),
        taskWeight: createBuffer(acq.device, 'test.taskWeight', T),
        partial: createBuffer(acq.device, 'test.partial', partialFloats(T, Dp)),
      };
      const bound = new GaWeightsKernel(acq.device).bind(buffers, T, Dp, normalization);
      submit(acq, (pass) => bound.encode(pass));
      const gpu = await readFloats(acq.device, buffers.taskWeight, T);
      const cpu = new Float32Array(T);
      gaWeights(cpu, theta, adapted, T, D, normalization);
      assertClose('weights', gpu, cpu, 1e-6, 1e-4);
      assert.ok(cpu[4] < 0, 'the disagreeing task gets a negative weight');
      if (normalization === 'paper') assertClose('Σ|w| = 1', [cpu.reduce((s, w) => s + Math.abs(w), 0)], [1], 1e-6, 0);
      for (const b of Object.values(buffers)) b.destroy();
    }));
}

test.run();
