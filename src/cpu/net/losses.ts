// The losses, float64 oracle, over the outputs Z (rows × outputs) of one task's set, each the mean over
// rows; each names its metric. Softmax cross-entropy in log-sum-exp form (no overflow for large
// logits); its R pass: R(∂L/∂z) = (p ⊙ R(z) − p (pᵀ R(z)))/m, the softmax Jacobian applied to R(z).
import type { LossSpec } from '../../models/layers.js';
import type { Floats } from './layer.js';

export interface LossResult {
  loss: number;
  /** Accuracy (softmax-ce: the smallest index of the largest logit, as the library scores) or MSE. */
  metric: number;
  /** ∂(mean loss)/∂Z. */
  dZ: Float64Array;
  /** What the R pass needs (softmax probabilities). */
  prob: Float64Array | null;
}

export const metricName = (loss: LossSpec): 'accuracy' | 'mse' => (loss.kind === 'softmax-ce' ? 'accuracy' : 'mse');

export function lossOf(loss: LossSpec, Z: Float64Array, rows: number, y: Floats, yOff: number): LossResult {
  const N = Z.length / rows;
  const dZ = new Float64Array(Z.length);
  if (loss.kind === 'mse') {
    let total = 0;
    for (let r = 0; r < rows; r++) {
      const e = Z[r] - y[yOff + r];
      total += e * e;
      dZ[r] = (2 * e) / rows;
    }
    return { loss: total / rows, metric: total / rows, dZ, prob: null };
  }
  const prob = new Float64Array(Z.length);
  let total = 0;
  let hits = 0;
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    let best = 0;
    for (let c = 0; c < N; c++) if (Z[r * N + c] > max) { max = Z[r * N + c]; best = c; }
    let sum = 0;
    for (let c = 0; c < N; c++) sum += Math.exp(Z[r * N + c] - max);
    const label = y[yOff + r];
    total += max + Math.log(sum) - Z[r * N + label];
    if (best === label) hits++;
    for (let c = 0; c < N; c++) {
      prob[r * N + c] = Math.exp(Z[r * N + c] - max) / sum;
      dZ[r * N + c] = (prob[r * N + c] - (c === label ? 1 : 0)) / rows;
    }
  }
  return { loss: total / rows, metric: hits / rows, dZ, prob };
}

/** R(∂L/∂Z) for a direction R(Z). */
export function lossR(loss: LossSpec, result: LossResult, RZ: Float64Array, rows: number): Float64Array {
  if (loss.kind === 'mse') return RZ.map((v) => (2 * v) / rows);
  const p = result.prob!;
  const N = RZ.length / rows;
  const out = new Float64Array(RZ.length);
  for (let r = 0; r < rows; r++) {
    let pr = 0;
    for (let c = 0; c < N; c++) pr += p[r * N + c] * RZ[r * N + c];
    for (let c = 0; c < N; c++) out[r * N + c] = (p[r * N + c] * (RZ[r * N + c] - pr)) / rows;
  }
  return out;
}
