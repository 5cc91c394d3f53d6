// The `linear` task family, a family where meta-learning pays: a run-wide mean direction μ ~ N(0, I)
// (fixed by the seed), per task w_t = μ + σ·z_t, rows x ~ U[−1, 1]^D with a constant-1 last feature
// (the bias), labels y ~ Bernoulli(σ(x·w_t)). Sampled on the CPU here; batch index and task index key
// the counter-based generator, so batch i is the same whatever was sampled before it.
import { STREAM, normal, uniform01 } from '../rng.js';
import type { Batch } from '../types.js';
import { sigmoid } from '../cpu/logistic.js';

export interface LinearFamily {
  dim: number;            // features including the bias
  taskSpread: number;     // σ
  seed: number;
  mean: Float32Array;     // μ
}

export function linearFamily(dim: number, seed: number, taskSpread = 0.5, meanScale = 1.5): LinearFamily {
  const mean = new Float32Array(dim);
  for (let d = 0; d < dim; d++) mean[d] = meanScale * normal(seed, STREAM.tasks, d);
  return { dim, taskSpread, seed, mean };
}

/** Batch number `index` of T tasks; different indices give disjoint random streams. */
export function sampleLinearBatch(f: LinearFamily, index: number, tasks: number, supportShots: number, queryShots: number): Batch {
  const D = f.dim;
  const rows = supportShots + queryShots;
  const supportX = new Float32Array(tasks * supportShots * D);
  const queryX = new Float32Array(tasks * queryShots * D);
  const supportY = new Float32Array(tasks * supportShots);
  const queryY = new Float32Array(tasks * queryShots);
  const w = new Float64Array(D);
  for (let t = 0; t < tasks; t++) {
    const stream = 1000 + index * 65536 + t;  // 65536 tasks per batch at most keep streams apart
    for (let d = 0; d < D; d++) w[d] = f.mean[d] + f.taskSpread * normal(f.seed, stream, d);
    for (let r = 0; r < rows; r++) {
      const isSupport = r < supportShots;
      const x = isSupport ? supportX : queryX;
      const k = isSupport ? r : r - supportShots;
      const off = (t * (isSupport ? supportShots : queryShots) + k) * D;
      let a = 0;
      for (let d = 0; d < D; d++) {
        const v = d === D - 1 ? 1 : 2 * uniform01(f.seed + 1, stream, r * D + d) - 1;
        x[off + d] = v;
        a += v * w[d];
      }
      const y = uniform01(f.seed + 2, stream, r) < sigmoid(a) ? 1 : 0;
      if (isSupport) supportY[t * supportShots + k] = y;
      else queryY[t * queryShots + k] = y;
    }
  }
  return { tasks, supportShots, queryShots, supportX, supportY, queryX, queryY };
}
