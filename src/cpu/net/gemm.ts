// The float64 GEMMs of the layer-list nets (src/cpu/net/fast.ts), row-major. Each has a JavaScript form
// and runs, where the thread has WebAssembly SIMD and the product is big enough to repay copying the
// operands, as the SIMD kernel of src/cpu/wasm/gemm.ts, which adds the same products in the same order
// per element: the two give the same bits (test/cpu-simd.test.ts), so the choice never changes a result.
import { simdGemm } from '../wasm/gemm.js';

/** Below this many multiply-adds the copies and the call cost more than the SIMD kernel saves. */
const SIMD_MIN_MACS = 2048;

/** Y[m·N + n] += Σ_k A[m·K + k]·W[wOff + k·N + n] for m < M. */
export function gemmAcc(Y: Float64Array, A: Float64Array, M: number, K: number, W: Float64Array, wOff: number, N: number): void {
  const k = M * K * N >= SIMD_MIN_MACS ? simdGemm(M * N + M * K + K * N) : null;
  if (!k) return gemmAccJs(Y, A, M, K, W, wOff, N);
  const y = 0, a = M * N, w = a + M * K;
  const heap = k.heap;
  heap.set(Y.subarray(0, M * N), y);
  heap.set(A.subarray(0, M * K), a);
  heap.set(W.subarray(wOff, wOff + K * N), w);
  k.gemmAcc(y * 8, a * 8, w * 8, M, K, N);
  Y.set(heap.subarray(y, y + M * N));
}

/** G[gOff + k·N + n] += Σ_m A[m·K + k]·dY[m·N + n] (a weight gradient): on the SIMD kernel as Aᵀ·dY, Aᵀ
 * written straight into its heap (gemmAccJs on Aᵀ sums four m per block in gemmAtBJs's order). */
export function gemmAtB(G: Float64Array, gOff: number, A: Float64Array, M: number, K: number, dY: Float64Array, N: number): void {
  const k = M * K * N >= SIMD_MIN_MACS ? simdGemm(K * N + K * M + M * N) : null;
  if (!k) return gemmAtBJs(G, gOff, A, M, K, dY, N);
  const g = 0, at = K * N, d = at + K * M;
  const heap = k.heap;
  heap.set(G.subarray(gOff, gOff + K * N), g);
  for (let m = 0; m < M; m++) {
    const row = m * K;
    for (let c = 0; c < K; c++) heap[at + c * M + m] = A[row + c];
  }
  heap.set(dY.subarray(0, M * N), d);
  k.gemmAcc(g * 8, at * 8, d * 8, K, M, N);
  G.set(heap.subarray(g, g + K * N), gOff);
}

/** gemmAcc in JavaScript: two rows of Y per pass over W (each W value loaded once for both), four k
 * per step; blocks of four zero a are skipped (ReLU and padding). */
export function gemmAccJs(Y: Float64Array, A: Float64Array, M: number, K: number, W: Float64Array, wOff: number, N: number): void {
  let m = 0;
  for (; m + 2 <= M; m += 2) {
    const y = m * N, z = y + N;
    const a = m * K, c = a + K;
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const a0 = A[a + k], a1 = A[a + k + 1], a2 = A[a + k + 2], a3 = A[a + k + 3];
      const c0 = A[c + k], c1 = A[c + k + 1], c2 = A[c + k + 2], c3 = A[c + k + 3];
      const nzA = a0 !== 0 || a1 !== 0 || a2 !== 0 || a3 !== 0;
      const nzC = c0 !== 0 || c1 !== 0 || c2 !== 0 || c3 !== 0;
      const w0 = wOff + k * N, w1 = w0 + N, w2 = w1 + N, w3 = w2 + N;
      if (nzA && nzC) {
        for (let n = 0; n < N; n++) {
          const x0 = W[w0 + n], x1 = W[w1 + n], x2 = W[w2 + n], x3 = W[w3 + n];
          Y[y + n] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3;
          Y[z + n] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3;
        }
      } else if (nzA) {
        for (let n = 0; n < N; n++) Y[y + n] += a0 * W[w0 + n] + a1 * W[w1 + n] + a2 * W[w2 + n] + a3 * W[w3 + n];
      } else if (nzC) {
        for (let n = 0; n < N; n++) Y[z + n] += c0 * W[w0 + n] + c1 * W[w1 + n] + c2 * W[w2 + n] + c3 * W[w3 + n];
      }
    }
    for (; k < K; k++) {
      const a0 = A[a + k], c0 = A[c + k];
      const w0 = wOff + k * N;
      for (let n = 0; n < N; n++) {
        Y[y + n] += a0 * W[w0 + n];
        Y[z + n] += c0 * W[w0 + n];
      }
    }
  }
  if (m < M) gemmAccRow(Y, m * N, A, m * K, K, W, wOff, N);
}

/** One row of gemmAccJs: Y[y + n] += Σ_k A[a + k]·W[wOff + k·N + n]. */
function gemmAccRow(Y: Float64Array, y: number, A: Float64Array, a: number, K: number, W: Float64Array, wOff: number, N: number): void {
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const a0 = A[a + k], a1 = A[a + k + 1], a2 = A[a + k + 2], a3 = A[a + k + 3];
    if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
    const w0 = wOff + k * N, w1 = w0 + N, w2 = w1 + N, w3 = w2 + N;
    for (let n = 0; n < N; n++) Y[y + n] += a0 * W[w0 + n] + a1 * W[w1 + n] + a2 * W[w2 + n] + a3 * W[w3 + n];
  }
  for (; k < K; k++) {
    const a0 = A[a + k];
    if (a0 === 0) continue;
    const w0 = wOff + k * N;
    for (let n = 0; n < N; n++) Y[y + n] += a0 * W[w0 + n];
  }
}

/** WT[n·K + k] = W[wOff + k·N + n]: the transpose that turns δ·Wᵀ into a gemmAcc. */
export function transpose(WT: Float64Array, W: Float64Array, wOff: number, K: number, N: number): void {
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) WT[n * K + k] = W[wOff + k * N + n];
}

/** gemmAtB in JavaScript: four m per pass over G (each G value loaded and stored once for four rows);
 * blocks of four zero a skipped. */
export function gemmAtBJs(G: Float64Array, gOff: number, A: Float64Array, M: number, K: number, dY: Float64Array, N: number): void {
  let m = 0;
  for (; m + 4 <= M; m += 4) {
    const a = m * K;
    const d0 = m * N, d1 = d0 + N, d2 = d1 + N, d3 = d2 + N;
    for (let k = 0; k < K; k++) {
      const x0 = A[a + k], x1 = A[a + K + k], x2 = A[a + 2 * K + k], x3 = A[a + 3 * K + k];
      if (x0 === 0 && x1 === 0 && x2 === 0 && x3 === 0) continue;
      const g = gOff + k * N;
      for (let n = 0; n < N; n++) G[g + n] += x0 * dY[d0 + n] + x1 * dY[d1 + n] + x2 * dY[d2 + n] + x3 * dY[d3 + n];
    }
  }
  for (; m < M; m++) {
    const a = m * K;
    const d = m * N;
    for (let k = 0; k < K; k++) {
      const x = A[a + k];
      if (x === 0) continue;
      const g = gOff + k * N;
      for (let n = 0; n < N; n++) G[g + n] += x * dY[d + n];
    }
  }
}

/** G[gOff + n] += Σ_m dY[m·N + n] (a bias gradient). */
export function sumRows(G: Float64Array, gOff: number, dY: Float64Array, M: number, N: number): void {
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) G[gOff + n] += dY[m * N + n];
}
