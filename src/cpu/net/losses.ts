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

export const metricName = (loss: LossSpec): 'accuracy' | 'mse' => (loss.kind === 'mse' ? 'mse' : 'accuracy');

/** The loss of `rows` outputs; for the prototypical loss the first `episodeSupport` rows are the support
 * rows and the loss and metric are means over the others. */
export function lossOf(loss: LossSpec, Z: Float64Array, rows: number, y: Floats, yOff: number, episodeSupport = 0): LossResult {
  if (loss.kind === 'proto') return protoLoss(loss.classes, Z, rows, y, yOff, episodeSupport);
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

/**
 * The prototypical loss, written out in float64 as the paper states it: c_k = mean of the support rows
 * of class k (classes without support rows take no part), logits −‖z_q − c_k‖², softmax cross-entropy
 * and accuracy (ties to the smallest class) over the query rows q = S … rows−1, means over them. Its
 * gradient: g_qk = (p_qk − [k = y_q]) / Q; ∂/∂z_q = 2 Σ_k g_qk (c_k − z_q); ∂/∂c_k = 2 Σ_q g_qk (z_q − c_k),
 * shared by k's support rows (÷ their count).
 */
export function protoLoss(classes: number, Z: Float64Array, rows: number, y: Floats, yOff: number, S: number): LossResult {
  const F = Z.length / rows;
  const Q = rows - S;
  if (!(S >= 1 && Q >= 1)) throw new Error(`protoLoss: an episode needs support and query rows (support ${S} of ${rows})`);
  const count = new Float64Array(classes);
  const proto = new Float64Array(classes * F);
  for (let s = 0; s < S; s++) {
    const k = y[yOff + s];
    count[k]++;
    for (let f = 0; f < F; f++) proto[k * F + f] += Z[s * F + f];
  }
  for (let k = 0; k < classes; k++) if (count[k] > 0) for (let f = 0; f < F; f++) proto[k * F + f] /= count[k];
  const dZ = new Float64Array(Z.length);
  const dProto = new Float64Array(classes * F);
  const logits = new Float64Array(classes);
  let total = 0;
  let hits = 0;
  for (let q = S; q < rows; q++) {
    let max = -Infinity;
    let best = -1;
    for (let k = 0; k < classes; k++) {
      if (count[k] === 0) continue;
      let d2 = 0;
      for (let f = 0; f < F; f++) d2 += (Z[q * F + f] - proto[k * F + f]) ** 2;
      logits[k] = -d2;
      if (logits[k] > max) { max = logits[k]; best = k; }
    }
    let sum = 0;
    for (let k = 0; k < classes; k++) if (count[k] > 0) sum += Math.exp(logits[k] - max);
    const label = y[yOff + q];
    if (count[label] === 0) throw new Error(`protoLoss: query row ${q - S} has class ${label}, which has no support row`);
    total += max + Math.log(sum) - logits[label];
    if (best === label) hits++;
    for (let k = 0; k < classes; k++) {
      if (count[k] === 0) continue;
      const g = (Math.exp(logits[k] - max) / sum - (k === label ? 1 : 0)) / Q;
      for (let f = 0; f < F; f++) {
        const diff = Z[q * F + f] - proto[k * F + f];
        dZ[q * F + f] -= 2 * g * diff;
        dProto[k * F + f] += 2 * g * diff;
      }
    }
  }
  for (let s = 0; s < S; s++) {
    const k = y[yOff + s];
    for (let f = 0; f < F; f++) dZ[s * F + f] = dProto[k * F + f] / count[k];
  }
  return { loss: total / Q, metric: hits / Q, dZ, prob: null };
}

/** R(∂L/∂Z) for a direction R(Z). */
export function lossR(loss: LossSpec, result: LossResult, RZ: Float64Array, rows: number): Float64Array {
  if (loss.kind === 'proto') throw new Error('lossR: the prototypical loss has no inner loop to differentiate through');
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
