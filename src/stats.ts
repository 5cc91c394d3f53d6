import type { MeanWithInterval } from './types.js';

/** Mean and 95% confidence half-width (normal approximation, 1.96 · sample sd / √n). */
export function meanWithInterval(values: ArrayLike<number>): MeanWithInterval {
  const n = values.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  if (n < 2) return { mean, ci95: Number.NaN };
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  return { mean, ci95: (1.96 * Math.sqrt(ss / (n - 1))) / Math.sqrt(n) };
}

/** Splits interleaved T×2 (loss, accuracy) stats. */
export function splitTaskStats(stats: Float32Array): { loss: Float32Array; accuracy: Float32Array } {
  const T = stats.length / 2;
  const loss = new Float32Array(T);
  const accuracy = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    loss[t] = stats[2 * t];
    accuracy[t] = stats[2 * t + 1];
  }
  return { loss, accuracy };
}
