// The math against independent oracles (test/oracle.ts, float64, no code shared with src/), on both
// backends: finite differences of the MAML objective, FOMAML's identity, the descent property of one
// inner step, and BCE's stability at huge logits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner } from '../src/learner.js';
import { hvp } from './test-kernels.js';
import type { BackendChoice, CheckedBatch } from '../src/types.js';
import { assertClose, maxAbs, randomArray, randomBatch, withGpu } from './helpers.js';
import { adapt, finiteDifference, grad, labelsOf, loss, rowsOf, type Vec } from './oracle.js';

const BACKENDS: BackendChoice[] = ['cpu', 'webgpu'];
const run = (backend: BackendChoice, body: () => Promise<void>) => (backend === 'webgpu' ? withGpu(body) : body());

/** The MAML objective mean_t L(θ'_t(θ); Q_t) in float64. */
function mamlObjective(batch: CheckedBatch, dim: number, lr: number, steps: number): (theta: Vec) => number {
  return (theta) => {
    let total = 0;
    for (let t = 0; t < batch.tasks; t++) {
      const adapted = adapt(theta, rowsOf(batch.supportX, t, batch.supportShots, dim), labelsOf(batch.supportY, t, batch.supportShots), lr, steps);
      total += loss(adapted, rowsOf(batch.queryX, t, batch.queryShots, dim), labelsOf(batch.queryY, t, batch.queryShots));
    }
    return total / batch.tasks;
  };
}

for (const backend of BACKENDS) {
  test(`[${backend}] order-2 meta-gradient equals central finite differences of the MAML objective`, () =>
    run(backend, async () => {
      const D = 6, lr = 0.8, steps = 3;
      const batch = randomBatch(3, 8, 9, D, 21);
      const theta = randomArray(D, 21, 7, -1, 1);
      const learner = await createLearner({ backend, dim: D, innerLr: lr, innerSteps: steps, order: 2 });
      learner.setParams(theta);
      const g2 = await learner.metaGradient(batch);
      const fd = finiteDifference(mamlObjective(batch, D, lr, steps), Array.from(theta), 1e-4);
      assertClose('order-2 meta-gradient vs finite differences', g2, fd, 2e-5, 1e-3);
      // The check has teeth: the first-order gradient differs from the exact one by far more.
      const fo = await createLearner({ backend, dim: D, innerLr: lr, innerSteps: steps, order: 1 });
      fo.setParams(theta);
      const g1 = await fo.metaGradient(batch);
      assert.ok(maxAbs(Array.from(g1, (v, i) => v - fd[i])) > 100 * 2e-5, 'FOMAML differs from the exact gradient here');
      learner.destroy();
      fo.destroy();
    }));

  test(`[${backend}] order-1 meta-gradient equals the plain query gradient at the adapted parameters`, () =>
    run(backend, async () => {
      const D = 30, lr = 0.3, steps = 2;
      const batch = randomBatch(5, 10, 12, D, 22);
      const theta = randomArray(D, 22, 7, -0.5, 0.5);
      const learner = await createLearner({ backend, dim: D, innerLr: lr, innerSteps: steps, order: 1 });
      learner.setParams(theta);
      const g = await learner.metaGradient(batch);
      const expected = new Array(D).fill(0);
      for (let t = 0; t < batch.tasks; t++) {
        const adapted = adapt(Array.from(theta), rowsOf(batch.supportX, t, 10, D), labelsOf(batch.supportY, t, 10), lr, steps);
        grad(adapted, rowsOf(batch.queryX, t, 12, D), labelsOf(batch.queryY, t, 12)).forEach((v, d) => (expected[d] += v / batch.tasks));
      }
      assertClose('FOMAML meta-gradient', g, expected, 1e-6, 1e-4);
      learner.destroy();
    }));

  test(`[${backend}] one small inner step lowers every task's support loss`, () =>
    run(backend, async () => {
      const D = 20;
      const b = randomBatch(8, 10, 10, D, 23);
      // Score the support set itself: query := support.
      const onSupport: CheckedBatch = { ...b, queryShots: b.supportShots, queryX: b.supportX, queryY: b.supportY };
      const learner = await createLearner({ backend, dim: D, initScale: 0.5, seed: 4 });
      const before = await learner.evaluate(onSupport, { steps: 0, lr: 0.01 });
      const after = await learner.evaluate(onSupport, { steps: 1, lr: 0.01 });
      for (let t = 0; t < b.tasks; t++) {
        assert.ok(after.taskLoss[t] < before.taskLoss[t], `task ${t}: ${after.taskLoss[t]} < ${before.taskLoss[t]}`);
      }
      learner.destroy();
    }));

  test(`[${backend}] BCE stays finite and exact for logits of magnitude 1e4`, () =>
    run(backend, async () => {
      const D = 4;
      const b = randomBatch(2, 3, 5, D, 24);
      const learner = await createLearner({ backend, dim: D });
      const theta = new Float32Array([5000, -5000, 2500, 4000]);
      learner.setParams(theta);
      const r = await learner.evaluate(b, { steps: 0 });
      // softplus(a) − y·a is |a| for a wrong confident prediction and 0 for a right one.
      for (let t = 0; t < 2; t++) {
        let expected = 0;
        for (let k = 0; k < 5; k++) {
          let a = 0;
          for (let d = 0; d < D; d++) a += b.queryX[(t * 5 + k) * D + d] * theta[d];
          const y = b.queryY[t * 5 + k];
          expected += (a > 0 ? (y === 1 ? 0 : a) : y === 1 ? -a : 0) / 5;
        }
        assert.ok(Number.isFinite(r.taskLoss[t]), `finite loss, got ${r.taskLoss[t]}`);
        assertClose(`loss task ${t}`, [r.taskLoss[t]], [expected], 1e-3, 1e-5);
      }
      learner.destroy();
    }));
}

test('[cpu twin] Hessian-vector product equals finite differences of the gradient', () => {
  const D = 7, K = 9;
  const x = randomArray(K * D, 25, 1);
  const batchY = randomBatch(1, K, 1, D, 25).supportY;
  const theta = randomArray(D, 25, 2);
  const v = randomArray(D, 25, 3);
  const out = new Float32Array(D);
  hvp(out, x, theta, v, { tasks: 1, rows: K, dim: D, paramStride: D });
  const X = rowsOf(x, 0, K, D);
  const y = labelsOf(batchY, 0, K);
  const h = 1e-4;
  const expected = grad(Array.from(theta, (t, d) => t + h * v[d]), X, y).map((gp, d) => (gp - grad(Array.from(theta, (t, i) => t - h * v[i]), X, y)[d]) / (2 * h));
  assertClose('H·v', out, expected, 1e-6, 1e-4);
});

test.run();
