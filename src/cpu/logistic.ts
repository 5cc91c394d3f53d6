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
  for (let r = 0; r < rows; r++) {
    const rowOff = xOff + r * dim;
    let acc = 0;
    for (let d = 0; d < dim; d++) acc += x[rowOff + d] * v[vOff + d];
    out[r] = acc;
  }
}

/** out[outOff + d] (+)= scale · Σ_r X[r, d] · w[r]. */
export function rowsTransposeTimes(
  out: Float32Array, outOff: number, x: Float32Array, xOff: number, rows: number, w: Float64Array,
  dim: number, scale: number, accumulate: boolean,
): void {
  const acc = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const wr = w[r];
    if (wr === 0) continue;
    const rowOff = xOff + r * dim;
    for (let d = 0; d < dim; d++) acc[d] += x[rowOff + d] * wr;
  }
  for (let d = 0; d < dim; d++) {
    out[outOff + d] = accumulate ? out[outOff + d] + scale * acc[d] : scale * acc[d];
  }
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

/** Twin of logistic.wgsl `hvp`: out_t = X_tᵀ(p(1−p) ⊙ X_t v_t)/K at θ_t. */
export function hvp(out: Float32Array, x: Float32Array, params: Float32Array, v: Float32Array, s: LogisticShape): void {
  const { tasks, rows: K, dim: D } = s;
  const logits = new Float64Array(K);
  const xv = new Float64Array(K);
  for (let t = 0; t < tasks; t++) {
    rowDots(logits, x, t * K * D, K, params, t * s.paramStride, D);
    rowDots(xv, x, t * K * D, K, v, t * D, D);
    for (let r = 0; r < K; r++) {
      const p = sigmoid(logits[r]);
      xv[r] *= p * (1 - p);
    }
    rowsTransposeTimes(out, t * D, x, t * K * D, K, xv, D, 1 / K, false);
  }
}
