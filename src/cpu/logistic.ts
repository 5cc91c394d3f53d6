// CPU twin of shaders/logistic-common.wgsl and shaders/logistic.wgsl: the oracle of the GPU kernels in
// tests and the arithmetic of the CPU backend. Sums run in float64, storage is float32 as on the GPU.

export function softplus(a: number): number {
  return Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a)));
}

export function sigmoid(a: number): number {
  if (a >= 0) return 1 / (1 + Math.exp(-a));
  const e = Math.exp(a);
  return e / (1 + e);
}

/** Sizes of a batched logistic kernel call: T tasks of K rows of D features; params of task t start at
 * t · paramStride (0 shares one θ). */
export interface LogisticShape {
  tasks: number;
  rows: number;
  dim: number;
  paramStride: number;
}

/** out[r] = X[r,:] · v for the `rows` rows starting at x[xOff]. */
export function rowDots(out: Float64Array, x: Float32Array, xOff: number, rows: number, v: Float32Array, vOff: number, dim: number): void {
  // Four independent float64 accumulators: the JIT keeps them in registers and the adds pipeline.
  const end4 = dim - (dim % 4);
  for (let r = 0; r < rows; r++) {
    const rowOff = xOff + r * dim;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (let d = 0; d < end4; d += 4) {
      a0 += x[rowOff + d] * v[vOff + d];
      a1 += x[rowOff + d + 1] * v[vOff + d + 1];
      a2 += x[rowOff + d + 2] * v[vOff + d + 2];
      a3 += x[rowOff + d + 3] * v[vOff + d + 3];
    }
    for (let d = end4; d < dim; d++) a0 += x[rowOff + d] * v[vOff + d];
    out[r] = a0 + a1 + a2 + a3;
  }
}

/** Reused accumulator of rowsTransposeTimes (allocating one per call made the GC a bottleneck). */
let transposeScratch = new Float64Array(1024);

/** out[outOff + d] (+)= scale · Σ_r X[r, d] · w[r]. */
export function rowsTransposeTimes(
  out: Float32Array, outOff: number, x: Float32Array, xOff: number, rows: number, w: Float64Array,
  dim: number, scale: number, accumulate: boolean,
): void {
  if (transposeScratch.length < dim) transposeScratch = new Float64Array(dim);
  const acc = transposeScratch;
  acc.fill(0, 0, dim);
  // Four (then two) rows per sweep cut the loads and stores of the accumulator.
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const w0 = w[r], w1 = w[r + 1], w2 = w[r + 2], w3 = w[r + 3];
    const o0 = xOff + r * dim, o1 = o0 + dim, o2 = o1 + dim, o3 = o2 + dim;
    for (let d = 0; d < dim; d++) acc[d] += x[o0 + d] * w0 + x[o1 + d] * w1 + x[o2 + d] * w2 + x[o3 + d] * w3;
  }
  for (; r + 1 < rows; r += 2) {
    const w0 = w[r];
    const w1 = w[r + 1];
    const o0 = xOff + r * dim;
    const o1 = o0 + dim;
    for (let d = 0; d < dim; d++) acc[d] += x[o0 + d] * w0 + x[o1 + d] * w1;
  }
  if (r < rows) {
    const wr = w[r];
    const rowOff = xOff + r * dim;
    for (let d = 0; d < dim; d++) acc[d] += x[rowOff + d] * wr;
  }
  if (accumulate) for (let d = 0; d < dim; d++) out[outOff + d] += scale * acc[d];
  else for (let d = 0; d < dim; d++) out[outOff + d] = scale * acc[d];
}

/** With logits in `rowVal`: rowVal ← p − y; returns [mean loss, accuracy] (accuracy: (p ≥ 0.5) == y). */
export function logitsToResidual(rowVal: Float64Array, y: Float32Array, yOff: number, rows: number): [number, number] {
  let loss = 0;
  let hits = 0;
  for (let r = 0; r < rows; r++) {
    const a = rowVal[r];
    const label = y[yOff + r];
    loss += softplus(a) - label * a;
    if ((a >= 0) === (label > 0.5)) hits++;
    rowVal[r] = sigmoid(a) - label;
  }
  return [loss / rows, hits / rows];
}

/** Twin of logistic.wgsl `forward_grad`: stats[t] = (loss, accuracy), grad_t = X_tᵀ(p − y)/K. */
export function forwardGrad(
  grad: Float32Array, stats: Float32Array, x: Float32Array, y: Float32Array, params: Float32Array, s: LogisticShape,
): void {
  const { tasks, rows: K, dim: D } = s;
  const rowVal = new Float64Array(K);
  for (let t = 0; t < tasks; t++) {
    rowDots(rowVal, x, t * K * D, K, params, t * s.paramStride, D);
    const [loss, acc] = logitsToResidual(rowVal, y, t * K, K);
    stats[2 * t] = loss;
    stats[2 * t + 1] = acc;
    rowsTransposeTimes(grad, t * D, x, t * K * D, K, rowVal, D, 1 / K, false);
  }
}
