// The fast CPU implementation of the MLP model (../shared/SPEC.md "Neural models"): the same math as the
// float64 reference src/cpu/mlp.ts (which stays the readable oracle of the tests), restructured for V8.
//
// Exactness: every output is the same float64 sum as the reference's, in the same order: z_l[r, j] =
// b_j + Σ_i a[r, i]·W[i, j] summed over i in order, weight gradients 0 + Σ_r a[r, i]·δ[r, j] over r in
// order (zero coefficients skipped, as the reference skips them), dot products over j in order. Only the
// loop nest differs (blocking over rows and unrolling over the summation index, with the partial sums
// kept in left-to-right order), so the results are the reference's bits (up to the sign of an exact zero:
// the forward adds the reference's skipped zero terms a·W = ±0 in blocks). Per-task results therefore do
// not depend on anything but the task (any thread count, any task range gives the same bits).
// Per-task normalisation (layout.norm) does the reference's operations in its order too: per unit, the
// two-pass mean and variance, s = √(σ² + ε), n = (z − μ)/s; J u = (u − mean(u) − n·mean(u n))/s with both
// means summed together over r in order; τ = mean(g R(n)) over r in order, g = ∂/∂n kept on the tape.
// Each per-unit sum runs over the rows in order while the loops stay row-major (per-unit accumulators).
// A normalised layer couples its rows, so the forward completes every row of z_l before any of a_l (as
// it does anyway), relu' masks read n instead of z, and δ = J g is dense (the weight-gradient skipping
// reads the activations, still exact zeros where n ≤ 0).
//
// Speed: parameters stay Float32Array (θ, θ'_t, the points of the inner loop), activations and
// gradients are float64 (small: rows × width, and one parameter-sized vector for the order-2 backward);
// every kernel is monomorphic in its array types (hence the twin kernels for float32 and float64
// weights), row-major with the inner loop contiguous over the output's columns; the forward is blocked 2
// rows × 4 inputs; weight gradients accumulate up to 5 rows per pass over an output row (two output rows
// per pass where consecutive rows of W have the same nonzero rows, as dense inputs do) and apply their
// epilogue in that pass (write the gradient, the SGD step θ' = θ − α g into float32, or v ← v − α Hv),
// so an inner step never stores its gradient; ReLU and input zeros skip their terms. The support tapes of the inner loop are kept, so the
// Hessian-vector products of the order-2 backward reuse their forward and backward passes. Scratch is
// allocated once per shape (per thread: each worker has its own module instance).
// ANIL (the inner loop adapts the head W_L, b_L alone) keeps the body's activations of the support set
// for the whole inner loop and redoes only the head's layer (headLossAndDeltas, sgdStepHead); its
// Hessian-vector products take a head-only direction, whose R-pass is zero below the head. Meta-SGD
// (learned per-parameter step sizes α) stores each inner gradient (its meta-gradient needs them) and
// steps with α ⊙ g (sgdStepScaled); its order-2 backward multiplies H by α ⊙ v (hvpStepScaled).
import { TASK_NORM_EPS, type MlpLayout } from '../models/mlp.js';
import type { MlpRows } from './mlp.js';
import type { AdaptedSet, TaskModel } from './task-model.js';

// ---- Kernels -------------------------------------------------------------------------------------
// Conventions: W_l is row-major (inputs × outputs h) at float offset w of a Float32Array (or of a
// Float64Array in the …F64 twins); activations are R rows of a Float64Array, row r at r·stride.

/** Z[r·h + j] += Σ_{i ∈ [iLo, iHi)} A[r·aStride + i]·W[w + i·h + j] for r < R, summed over i in order. */
function accRowsF32(Z: Float64Array, h: number, A: Float64Array, aStride: number, R: number, iLo: number, iHi: number, W: Float32Array, w: number): void {
  let i = iLo;
  for (; i + 4 <= iHi; i += 4) {
    const w0 = w + i * h, w1 = w0 + h, w2 = w1 + h, w3 = w2 + h;
    let r = 0;
    for (; r + 2 <= R; r += 2) {
      const p = r * aStride + i, q = p + aStride;
      const a0 = A[p], a1 = A[p + 1], a2 = A[p + 2], a3 = A[p + 3];
      const c0 = A[q], c1 = A[q + 1], c2 = A[q + 2], c3 = A[q + 3];
      const za = r * h, zc = za + h;
      const nzA = a0 !== 0 || a1 !== 0 || a2 !== 0 || a3 !== 0;
      const nzC = c0 !== 0 || c1 !== 0 || c2 !== 0 || c3 !== 0;
      if (nzA && nzC) {
        for (let j = 0; j < h; j++) {
          const x0 = W[w0 + j], x1 = W[w1 + j], x2 = W[w2 + j], x3 = W[w3 + j];
          Z[za + j] = Z[za + j] + a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3;
          Z[zc + j] = Z[zc + j] + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3;
        }
      } else if (nzA) {
        for (let j = 0; j < h; j++) Z[za + j] = Z[za + j] + a0 * W[w0 + j] + a1 * W[w1 + j] + a2 * W[w2 + j] + a3 * W[w3 + j];
      } else if (nzC) {
        for (let j = 0; j < h; j++) Z[zc + j] = Z[zc + j] + c0 * W[w0 + j] + c1 * W[w1 + j] + c2 * W[w2 + j] + c3 * W[w3 + j];
      }
    }
    if (r < R) {
      const p = r * aStride + i;
      const a0 = A[p], a1 = A[p + 1], a2 = A[p + 2], a3 = A[p + 3];
      const za = r * h;
      if (a0 !== 0 || a1 !== 0 || a2 !== 0 || a3 !== 0) {
        for (let j = 0; j < h; j++) Z[za + j] = Z[za + j] + a0 * W[w0 + j] + a1 * W[w1 + j] + a2 * W[w2 + j] + a3 * W[w3 + j];
      }
    }
  }
  for (; i < iHi; i++) {
    const wi = w + i * h;
    for (let r = 0; r < R; r++) {
      const a = A[r * aStride + i];
      if (a === 0) continue;
      const za = r * h;
      for (let j = 0; j < h; j++) Z[za + j] += a * W[wi + j];
    }
  }
}

/** accRowsF32 with float64 weights (the direction V of a Hessian-vector product). */
function accRowsF64(Z: Float64Array, h: number, A: Float64Array, aStride: number, R: number, iLo: number, iHi: number, W: Float64Array, w: number): void {
  let i = iLo;
  for (; i + 4 <= iHi; i += 4) {
    const w0 = w + i * h, w1 = w0 + h, w2 = w1 + h, w3 = w2 + h;
    let r = 0;
    for (; r + 2 <= R; r += 2) {
      const p = r * aStride + i, q = p + aStride;
      const a0 = A[p], a1 = A[p + 1], a2 = A[p + 2], a3 = A[p + 3];
      const c0 = A[q], c1 = A[q + 1], c2 = A[q + 2], c3 = A[q + 3];
      const za = r * h, zc = za + h;
      const nzA = a0 !== 0 || a1 !== 0 || a2 !== 0 || a3 !== 0;
      const nzC = c0 !== 0 || c1 !== 0 || c2 !== 0 || c3 !== 0;
      if (nzA && nzC) {
        for (let j = 0; j < h; j++) {
          const x0 = W[w0 + j], x1 = W[w1 + j], x2 = W[w2 + j], x3 = W[w3 + j];
          Z[za + j] = Z[za + j] + a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3;
          Z[zc + j] = Z[zc + j] + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3;
        }
      } else if (nzA) {
        for (let j = 0; j < h; j++) Z[za + j] = Z[za + j] + a0 * W[w0 + j] + a1 * W[w1 + j] + a2 * W[w2 + j] + a3 * W[w3 + j];
      } else if (nzC) {
        for (let j = 0; j < h; j++) Z[zc + j] = Z[zc + j] + c0 * W[w0 + j] + c1 * W[w1 + j] + c2 * W[w2 + j] + c3 * W[w3 + j];
      }
    }
    if (r < R) {
      const p = r * aStride + i;
      const a0 = A[p], a1 = A[p + 1], a2 = A[p + 2], a3 = A[p + 3];
      const za = r * h;
      if (a0 !== 0 || a1 !== 0 || a2 !== 0 || a3 !== 0) {
        for (let j = 0; j < h; j++) Z[za + j] = Z[za + j] + a0 * W[w0 + j] + a1 * W[w1 + j] + a2 * W[w2 + j] + a3 * W[w3 + j];
      }
    }
  }
  for (; i < iHi; i++) {
    const wi = w + i * h;
    for (let r = 0; r < R; r++) {
      const a = A[r * aStride + i];
      if (a === 0) continue;
      const za = r * h;
      for (let j = 0; j < h; j++) Z[za + j] += a * W[wi + j];
    }
  }
}

/** The R-forward's two-operand product: Z[r·h + j] += Σ_i (RA[r, i]·W[i, j] + A[r, i]·V[i, j]), over i
 * in order, each term's two products added first (as the reference does). */
function accRowsR(Z: Float64Array, h: number, RA: Float64Array, A: Float64Array, aStride: number, R: number, iLo: number, iHi: number, W: Float32Array, w: number, V: Float64Array, v: number): void {
  let i = iLo;
  for (; i + 2 <= iHi; i += 2) {
    const w0 = w + i * h, w1 = w0 + h, v0 = v + i * h, v1 = v0 + h;
    for (let r = 0; r < R; r++) {
      const p = r * aStride + i;
      const ra0 = RA[p], ra1 = RA[p + 1], a0 = A[p], a1 = A[p + 1];
      if (ra0 === 0 && ra1 === 0 && a0 === 0 && a1 === 0) continue;
      const za = r * h;
      for (let j = 0; j < h; j++) Z[za + j] = Z[za + j] + (ra0 * W[w0 + j] + a0 * V[v0 + j]) + (ra1 * W[w1 + j] + a1 * V[v1 + j]);
    }
  }
  for (; i < iHi; i++) {
    const wi = w + i * h, vi = v + i * h;
    for (let r = 0; r < R; r++) {
      const ra = RA[r * aStride + i], a = A[r * aStride + i];
      if (ra === 0 && a === 0) continue;
      const za = r * h;
      for (let j = 0; j < h; j++) Z[za + j] += ra * W[wi + j] + a * V[vi + j];
    }
  }
}

/** out[r·oStride + i] = Σ_j D[dOff + r·h + j]·W[w + i·h + j] (summed over j in order) for i in [iLo, iHi)
 * and r < R; with a mask M, rows with !(M[r·oStride + i] > 0) get 0 (relu' of the layer below). Rounds
 * each result to float32 when `round`. `list` is scratch for R row indices. */
function backDot(out: Float64Array, oStride: number, D: Float64Array, dOff: number, h: number, R: number, iLo: number, iHi: number, W: Float32Array, w: number, M: Float64Array | null, round: boolean, list: Int32Array): void {
  for (let i = iLo; i < iHi; i++) {
    const wi = w + i * h;
    let n = 0;
    for (let r = 0; r < R; r++) {
      if (M !== null && !(M[r * oStride + i] > 0)) out[r * oStride + i] = 0;
      else list[n++] = r;
    }
    let k = 0;
    for (; k + 4 <= n; k += 4) {
      const r0 = list[k], r1 = list[k + 1], r2 = list[k + 2], r3 = list[k + 3];
      const d0 = dOff + r0 * h, d1 = dOff + r1 * h, d2 = dOff + r2 * h, d3 = dOff + r3 * h;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let j = 0; j < h; j++) {
        const x = W[wi + j];
        s0 += D[d0 + j] * x;
        s1 += D[d1 + j] * x;
        s2 += D[d2 + j] * x;
        s3 += D[d3 + j] * x;
      }
      out[r0 * oStride + i] = round ? Math.fround(s0) : s0;
      out[r1 * oStride + i] = round ? Math.fround(s1) : s1;
      out[r2 * oStride + i] = round ? Math.fround(s2) : s2;
      out[r3 * oStride + i] = round ? Math.fround(s3) : s3;
    }
    for (; k + 2 <= n; k += 2) {
      const r0 = list[k], r1 = list[k + 1];
      const d0 = dOff + r0 * h, d1 = dOff + r1 * h;
      let s0 = 0, s1 = 0;
      for (let j = 0; j < h; j++) {
        const x = W[wi + j];
        s0 += D[d0 + j] * x;
        s1 += D[d1 + j] * x;
      }
      out[r0 * oStride + i] = round ? Math.fround(s0) : s0;
      out[r1 * oStride + i] = round ? Math.fround(s1) : s1;
    }
    if (k < n) {
      const r0 = list[k];
      const d0 = dOff + r0 * h;
      let s0 = 0;
      for (let j = 0; j < h; j++) s0 += D[d0 + j] * W[wi + j];
      out[r0 * oStride + i] = round ? Math.fround(s0) : s0;
    }
  }
}

/** The R-backward's dot products: out[r·oStride + i] = Σ_j (RD[r, j]·W[i, j] + D[r, j]·V[i, j]), RD rows
 * at B[rdOff + r·h], D rows at B[dOff + r·h]; masked as backDot. */
function backDotR(out: Float64Array, oStride: number, B: Float64Array, rdOff: number, dOff: number, h: number, R: number, iLo: number, iHi: number, W: Float32Array, w: number, V: Float64Array, v: number, M: Float64Array | null, list: Int32Array): void {
  for (let i = iLo; i < iHi; i++) {
    const wi = w + i * h, vi = v + i * h;
    let n = 0;
    for (let r = 0; r < R; r++) {
      if (M !== null && !(M[r * oStride + i] > 0)) out[r * oStride + i] = 0;
      else list[n++] = r;
    }
    let k = 0;
    for (; k + 2 <= n; k += 2) {
      const r0 = list[k], r1 = list[k + 1];
      const e0 = rdOff + r0 * h, e1 = rdOff + r1 * h, d0 = dOff + r0 * h, d1 = dOff + r1 * h;
      let s0 = 0, s1 = 0;
      for (let j = 0; j < h; j++) {
        const x = W[wi + j], y = V[vi + j];
        s0 += B[e0 + j] * x + B[d0 + j] * y;
        s1 += B[e1 + j] * x + B[d1 + j] * y;
      }
      out[r0 * oStride + i] = s0;
      out[r1 * oStride + i] = s1;
    }
    if (k < n) {
      const r0 = list[k];
      const e0 = rdOff + r0 * h, d0 = dOff + r0 * h;
      let s0 = 0;
      for (let j = 0; j < h; j++) s0 += B[e0 + j] * W[wi + j] + B[d0 + j] * V[vi + j];
      out[r0 * oStride + i] = s0;
    }
  }
}

/** What an outer-product row does with its sum g[j]: */
const WRITE64 = 0;  // o64[at + j] = g
const SGD32 = 1;    // o32[at + j] = s32[sAt + j] − α·g   (float32: the inner step θ' = θ − α∇L)
const AXPY64 = 2;   // o64[at + j] = o64[at + j] − α·g    (the order-2 backward v ← v − α·H v)
const WRITE32 = 3;  // o32[at + j] = g                    (float32: the order-1 meta-gradient)

/** Where outer products write: the mode, its arrays and α (unused arrays: any of the right type). */
interface Sink {
  mode: number;
  o64: Float64Array;
  o32: Float32Array;
  s32: Float32Array;
  alpha: number;
}

/** One output row of a sum of outer products: g[j] = 0 + Σ_t cf[t]·B[of[t] + j] (t in order) for j < h,
 * then the sink's epilogue at o[at …] (and s32[sAt …]). Five terms per pass; earlier passes into acc. */
function outerRow(nt: number, cf: Float64Array, of: Int32Array, B: Float64Array, h: number, acc: Float64Array, zeros: Float64Array, sink: Sink, at: number, sAt: number): void {
  let prev = zeros;
  let t = 0;
  for (; nt - t > 5; t += 5) {
    const c0 = cf[t], c1 = cf[t + 1], c2 = cf[t + 2], c3 = cf[t + 3], c4 = cf[t + 4];
    const b0 = of[t], b1 = of[t + 1], b2 = of[t + 2], b3 = of[t + 3], b4 = of[t + 4];
    for (let j = 0; j < h; j++) acc[j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j] + c4 * B[b4 + j];
    prev = acc;
  }
  const k = nt - t;
  const c0 = k > 0 ? cf[t] : 0, c1 = k > 1 ? cf[t + 1] : 0, c2 = k > 2 ? cf[t + 2] : 0, c3 = k > 3 ? cf[t + 3] : 0, c4 = k > 4 ? cf[t + 4] : 0;
  const b0 = k > 0 ? of[t] : 0, b1 = k > 1 ? of[t + 1] : 0, b2 = k > 2 ? of[t + 2] : 0, b3 = k > 3 ? of[t + 3] : 0, b4 = k > 4 ? of[t + 4] : 0;
  const { mode, alpha } = sink;
  if (mode === SGD32) {
    const o = sink.o32, s = sink.s32;
    switch (k) {
      case 0: for (let j = 0; j < h; j++) o[at + j] = s[sAt + j] - alpha * prev[j]; break;
      case 1: for (let j = 0; j < h; j++) o[at + j] = s[sAt + j] - alpha * (prev[j] + c0 * B[b0 + j]); break;
      case 2: for (let j = 0; j < h; j++) o[at + j] = s[sAt + j] - alpha * (prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j]); break;
      case 3: for (let j = 0; j < h; j++) o[at + j] = s[sAt + j] - alpha * (prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j]); break;
      case 4: for (let j = 0; j < h; j++) o[at + j] = s[sAt + j] - alpha * (prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j]); break;
      default: for (let j = 0; j < h; j++) o[at + j] = s[sAt + j] - alpha * (prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j] + c4 * B[b4 + j]);
    }
  } else if (mode === AXPY64) {
    const o = sink.o64;
    switch (k) {
      case 0: for (let j = 0; j < h; j++) o[at + j] = o[at + j] - alpha * prev[j]; break;
      case 1: for (let j = 0; j < h; j++) o[at + j] = o[at + j] - alpha * (prev[j] + c0 * B[b0 + j]); break;
      case 2: for (let j = 0; j < h; j++) o[at + j] = o[at + j] - alpha * (prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j]); break;
      case 3: for (let j = 0; j < h; j++) o[at + j] = o[at + j] - alpha * (prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j]); break;
      case 4: for (let j = 0; j < h; j++) o[at + j] = o[at + j] - alpha * (prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j]); break;
      default: for (let j = 0; j < h; j++) o[at + j] = o[at + j] - alpha * (prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j] + c4 * B[b4 + j]);
    }
  } else if (mode === WRITE32) {
    const o = sink.o32;
    switch (k) {
      case 0: for (let j = 0; j < h; j++) o[at + j] = prev[j]; break;
      case 1: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j]; break;
      case 2: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j]; break;
      case 3: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j]; break;
      case 4: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j]; break;
      default: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j] + c4 * B[b4 + j];
    }
  } else {
    const o = sink.o64;
    switch (k) {
      case 0: for (let j = 0; j < h; j++) o[at + j] = prev[j]; break;
      case 1: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j]; break;
      case 2: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j]; break;
      case 3: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j]; break;
      case 4: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j]; break;
      default: for (let j = 0; j < h; j++) o[at + j] = prev[j] + c0 * B[b0 + j] + c1 * B[b1 + j] + c2 * B[b2 + j] + c3 * B[b3 + j] + c4 * B[b4 + j];
    }
  }
}

/** Two consecutive output rows with the same term rows (of) and 5·m terms each (the dense case: every
 * row active), sharing each pass's loads of B: g[j] = 0 + Σ_t cf[t]·B[of[t] + j], g2 with cf2, into the
 * sink at at and at + h (s32 at sAt and sAt + h). Same sums as two outerRow calls. */
function outerRowPair(nt: number, cf: Float64Array, cf2: Float64Array, of: Int32Array, B: Float64Array, h: number, acc: Float64Array, acc2: Float64Array, zeros: Float64Array, sink: Sink, at: number, sAt: number): void {
  let prev = zeros;
  let prev2 = zeros;
  let t = 0;
  for (; nt - t > 5; t += 5) {
    const c0 = cf[t], c1 = cf[t + 1], c2 = cf[t + 2], c3 = cf[t + 3], c4 = cf[t + 4];
    const e0 = cf2[t], e1 = cf2[t + 1], e2 = cf2[t + 2], e3 = cf2[t + 3], e4 = cf2[t + 4];
    const b0 = of[t], b1 = of[t + 1], b2 = of[t + 2], b3 = of[t + 3], b4 = of[t + 4];
    for (let j = 0; j < h; j++) {
      const x0 = B[b0 + j], x1 = B[b1 + j], x2 = B[b2 + j], x3 = B[b3 + j], x4 = B[b4 + j];
      acc[j] = prev[j] + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4;
      acc2[j] = prev2[j] + e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3 + e4 * x4;
    }
    prev = acc;
    prev2 = acc2;
  }
  const c0 = cf[t], c1 = cf[t + 1], c2 = cf[t + 2], c3 = cf[t + 3], c4 = cf[t + 4];
  const e0 = cf2[t], e1 = cf2[t + 1], e2 = cf2[t + 2], e3 = cf2[t + 3], e4 = cf2[t + 4];
  const b0 = of[t], b1 = of[t + 1], b2 = of[t + 2], b3 = of[t + 3], b4 = of[t + 4];
  const { mode, alpha } = sink;
  const au = at + h, su = sAt + h;
  if (mode === SGD32) {
    const o = sink.o32, s = sink.s32;
    for (let j = 0; j < h; j++) {
      const x0 = B[b0 + j], x1 = B[b1 + j], x2 = B[b2 + j], x3 = B[b3 + j], x4 = B[b4 + j];
      o[at + j] = s[sAt + j] - alpha * (prev[j] + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4);
      o[au + j] = s[su + j] - alpha * (prev2[j] + e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3 + e4 * x4);
    }
  } else if (mode === AXPY64) {
    const o = sink.o64;
    for (let j = 0; j < h; j++) {
      const x0 = B[b0 + j], x1 = B[b1 + j], x2 = B[b2 + j], x3 = B[b3 + j], x4 = B[b4 + j];
      o[at + j] = o[at + j] - alpha * (prev[j] + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4);
      o[au + j] = o[au + j] - alpha * (prev2[j] + e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3 + e4 * x4);
    }
  } else if (mode === WRITE32) {
    const o = sink.o32;
    for (let j = 0; j < h; j++) {
      const x0 = B[b0 + j], x1 = B[b1 + j], x2 = B[b2 + j], x3 = B[b3 + j], x4 = B[b4 + j];
      o[at + j] = prev[j] + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4;
      o[au + j] = prev2[j] + e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3 + e4 * x4;
    }
  } else {
    const o = sink.o64;
    for (let j = 0; j < h; j++) {
      const x0 = B[b0 + j], x1 = B[b1 + j], x2 = B[b2 + j], x3 = B[b3 + j], x4 = B[b4 + j];
      o[at + j] = prev[j] + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4;
      o[au + j] = prev2[j] + e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3 + e4 * x4;
    }
  }
}

/** The sink's epilogue on one value g (φ entries). */
function sinkOne(sink: Sink, at: number, sAt: number, g: number): void {
  switch (sink.mode) {
    case SGD32: sink.o32[at] = sink.s32[sAt] - sink.alpha * g; break;
    case AXPY64: sink.o64[at] = sink.o64[at] - sink.alpha * g; break;
    case WRITE32: sink.o32[at] = g; break;
    default: sink.o64[at] = g;
  }
}

// ---- Tapes and workspace -------------------------------------------------------------------------

/** Activations of one pass over R rows at one point (kept for the order-2 backward). */
class Tape {
  /** a[0] = [x | φ] (R × inputs); a[l] = relu(z_l), 0 < l < L. */
  readonly a: Float64Array[];
  /** z[l], 1 ≤ l ≤ L (z[0] unused). */
  readonly z: Float64Array[];
  /** d[l] = ∂loss/∂z_l (1 ≤ l ≤ L); d[0]: ∂/∂(inputs), the columns computed. */
  readonly d: Float64Array[];
  readonly prob: Float64Array;
  /** Per-task normalisation (hidden layers; empty arrays without it): n[l] = (z_l − μ)/s, g[l] = ∂loss/∂n_l,
   * and per unit sd[l] = s, kappa[l] = mean(g n). */
  readonly n: Float64Array[];
  readonly g: Float64Array[];
  readonly sd: Float64Array[];
  readonly kappa: Float64Array[];
  /** pre[l]: what the ReLU of hidden layer l sees (its relu' mask): n[l] with normalisation, else z[l]. */
  readonly pre: Float64Array[];
  lossSum = 0;
  hits = 0;
  /** The TaskTape view of the hits (src/cpu/task-model.ts). */
  get metricSum(): number { return this.hits; }
  set metricSum(v: number) { this.hits = v; }
  constructor(widths: number[], readonly rows: number, norm: boolean) {
    this.a = widths.map((h) => new Float64Array(rows * h));
    this.z = widths.map((h) => new Float64Array(rows * h));
    this.d = widths.map((h) => new Float64Array(rows * h));
    this.prob = new Float64Array(rows * widths[widths.length - 1]);
    const k = norm ? 1 : 0;
    this.n = widths.map((h) => new Float64Array(k * rows * h));
    this.g = widths.map((h) => new Float64Array(k * rows * h));
    this.sd = widths.map((h) => new Float64Array(k * h));
    this.kappa = widths.map((h) => new Float64Array(k * h));
    this.pre = norm ? this.n : this.z;
  }
}

/** The R-operator's activations: ra[l], rz[l]; rd[l] = [R(δ_l) rows | δ_l rows] (one array, so that one
 * outer-product pass reads both); rd[0] = R(δ_0) (R × inputs). */
class RTape {
  readonly ra: Float64Array[];
  readonly rz: Float64Array[];
  readonly rd: Float64Array[];
  /** Per-task normalisation (empty arrays without it): rn[l] = R(n_l) = J R(z_l); per unit rho[l] = mean(n R(z)). */
  readonly rn: Float64Array[];
  readonly rho: Float64Array[];
  constructor(widths: number[], readonly rows: number, norm: boolean) {
    this.ra = widths.map((h) => new Float64Array(rows * h));
    this.rz = widths.map((h) => new Float64Array(rows * h));
    this.rd = widths.map((h, l) => new Float64Array((l === 0 ? 1 : 2) * rows * h));
    const k = norm ? 1 : 0;
    this.rn = widths.map((h) => new Float64Array(k * rows * h));
    this.rho = widths.map((h) => new Float64Array(k * h));
  }
}

/** A point of the parameter space: W and b from P at pOff, the context φ from phi at phiOff. */
export interface MlpPoint {
  P: Float32Array;
  pOff: number;
  phi: Float32Array;
  phiOff: number;
}

const pointAt = (P: Float32Array, pOff: number, layout: MlpLayout): MlpPoint => ({ P, pOff, phi: P, phiOff: pOff + layout.contextOffset });

/** Scratch of one layout (one per thread: the module instance's cache), and the MLP's side of the
 * MAML core's seam (TaskModel, src/cpu/task-model.ts): each method is one of the passes below. */
export class MlpWorkspace implements TaskModel<Tape> {
  private readonly tapes = new Map<string, Tape>();
  private rtape: RTape | null = null;
  readonly acc: Float64Array;
  readonly acc2: Float64Array;
  readonly zeros: Float64Array;
  /** Per-unit scratch of the normalisation (means, mean(u n), τ). */
  readonly unit: Float64Array;
  readonly unit2: Float64Array;
  /** Outer-product terms (coefficients, row offsets) of one output row and of the next; row indices. */
  cf = new Float64Array(0);
  of = new Int32Array(0);
  cf2 = new Float64Array(0);
  of2 = new Int32Array(0);
  list = new Int32Array(0);
  readonly sink: Sink = { mode: WRITE64, o64: new Float64Array(0), o32: new Float32Array(0), s32: new Float32Array(0), alpha: 0 };
  private readonly vectors = new Map<string, Float32Array | Float64Array>();

  constructor(readonly layout: MlpLayout) {
    const wMax = Math.max(...layout.widths);
    this.acc = new Float64Array(wMax);
    this.acc2 = new Float64Array(wMax);
    this.zeros = new Float64Array(wMax);
    this.unit = new Float64Array(wMax);
    this.unit2 = new Float64Array(wMax);
  }

  /** The tape named `name` for `rows` rows (kept across calls). */
  tape(name: string, rows: number): Tape {
    let t = this.tapes.get(name);
    if (!t || t.rows !== rows) {
      t = new Tape(this.layout.widths, rows, this.layout.norm);
      this.tapes.set(name, t);
    }
    return t;
  }

  rTape(rows: number): RTape {
    if (!this.rtape || this.rtape.rows !== rows) this.rtape = new RTape(this.layout.widths, rows, this.layout.norm);
    return this.rtape;
  }

  /** Row-index and term scratch for R rows (2R terms: a Hessian-vector product's two sums). */
  ensureRows(rows: number): void {
    if (this.list.length < rows) {
      this.list = new Int32Array(rows);
      this.cf = new Float64Array(2 * rows);
      this.of = new Int32Array(2 * rows);
      this.cf2 = new Float64Array(2 * rows);
      this.of2 = new Int32Array(2 * rows);
    }
  }

  pointAt(P: Float32Array, pOff: number): MlpPoint { return pointAt(P, pOff, this.layout); }
  forwardBody(pt: MlpPoint, rows: MlpRows, tape: Tape): void { forwardPass(this, pt, rows, tape, false); }
  lossAndDeltas(pt: MlpPoint, rows: MlpRows, tape: Tape, withDeltas: boolean): void { lossAndDeltas(this, pt, rows, tape, withDeltas); }
  headLossAndDeltas(pt: MlpPoint, rows: MlpRows, tape: Tape): void { headLossAndDeltas(this, pt, rows, tape); }
  gradientInto(pt: MlpPoint, tape: Tape, o64: Float64Array, oOff: number): void { gradientInto(this, pt, tape, o64, oOff); }
  weightGradientInto32(tape: Tape, o32: Float32Array, oOff: number): void { weightGradientInto32(this, tape, o32, oOff); }
  sgdStepAll(pt: MlpPoint, tape: Tape, alpha: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number): void { sgdStepAll(this, pt, tape, alpha, src, sOff, dst, dOff); }
  sgdStepHead(tape: Tape, alpha: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number): void { sgdStepHead(this, tape, alpha, src, sOff, dst, dOff); }
  sgdStepScaled(pt: MlpPoint, tape: Tape, stepSizes: Float32Array, aOff: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number, grad: Float64Array, gOff: number): void {
    sgdStepScaled(this, pt, tape, stepSizes, aOff, src, sOff, dst, dOff, grad, gOff);
  }
  contextGradient(pt: MlpPoint, tape: Tape, g: Float64Array): void { contextGradient(this, pt, tape, g); }
  hvpStep(pt: MlpPoint, tape: Tape, v: Float64Array, vOff: number, alpha: number, mask: AdaptedSet): void { hvpStep(this, pt, tape, v, vOff, alpha, mask); }
  hvpStepScaled(pt: MlpPoint, tape: Tape, v: Float64Array, vOff: number, stepSizes: Float32Array, aOff: number, direction: Float64Array): void {
    hvpStepScaled(this, pt, tape, v, vOff, stepSizes, aOff, direction);
  }
  lossGrad(P: Float32Array, pOff: number, rows: MlpRows, grad: Float64Array | null, gOff = 0): { loss: number; metric: number } {
    const s = fastLossGrad(this.layout, P, pOff, rows, grad, gOff);
    return { loss: s.loss, metric: s.accuracy };
  }
  inputGrad(P: Float32Array, pOff: number, rows: MlpRows, out: Float64Array, float32: boolean): void { fastInputGrad(this.layout, P, pOff, rows, out, { float32 }); }

  /** A named scratch vector of at least `length` floats (kept across calls). */
  f32(name: string, length: number): Float32Array {
    let v = this.vectors.get(name);
    if (!(v instanceof Float32Array) || v.length < length) {
      v = new Float32Array(length);
      this.vectors.set(name, v);
    }
    return v;
  }

  f64(name: string, length: number): Float64Array {
    let v = this.vectors.get(name);
    if (!(v instanceof Float64Array) || v.length < length) {
      v = new Float64Array(length);
      this.vectors.set(name, v);
    }
    return v;
  }
}

let cached: { key: string; ws: MlpWorkspace } | null = null;

/** The workspace of this layout (this thread's; rebuilt when the layout changes). */
export function mlpWorkspace(layout: MlpLayout): MlpWorkspace {
  const key = `${layout.dim}+${layout.context}:${layout.widths.join(',')}:${layout.norm}`;
  if (cached?.key !== key) cached = { key, ws: new MlpWorkspace(layout) };
  return cached.ws;
}

// ---- Passes --------------------------------------------------------------------------------------

/** z_l = a_{l−1} W_l + b_l, a_l = relu(z_l); a_0 = [x_r | φ]; z rounded to float32 when `round`. */
export function forwardPass(ws: MlpWorkspace, pt: MlpPoint, rows: MlpRows, tape: Tape, round: boolean): void {
  const layout = ws.layout;
  const { dim: D, context: C, inputs } = layout;
  const L = layout.layers.length;
  const R = rows.rows;
  const { P, pOff, phi, phiOff } = pt;
  const a0 = tape.a[0];
  const x = rows.x;
  for (let r = 0; r < R; r++) {
    const src = rows.xOff + r * rows.xStride;
    const dst = r * inputs;
    for (let d = 0; d < D; d++) a0[dst + d] = x[src + d];
    for (let c = 0; c < C; c++) a0[dst + D + c] = phi[phiOff + c];
  }
  for (let l = 1; l <= L; l++) {
    affineLayer(ws, P, pOff, R, tape, l, round);
    if (l < L) {
      const h = layout.widths[l];
      const z = tape.z[l];
      // With normalisation every row of z_l is needed before any of a_l (μ and s are over the rows).
      if (layout.norm) normaliseRows(R, h, z, tape.n[l], tape.sd[l], ws.unit, round);
      const pre = tape.pre[l];
      const a = tape.a[l];
      for (let k = 0; k < R * h; k++) a[k] = pre[k] > 0 ? pre[k] : 0;
    }
  }
}

/** z_l = a_{l−1} W_l + b_l on the tape's R rows (rounded to float32 when `round`). */
function affineLayer(ws: MlpWorkspace, P: Float32Array, pOff: number, R: number, tape: Tape, l: number, round: boolean): void {
  const { inputs: hin, outputs: h, w, b } = ws.layout.layers[l - 1];
  const z = tape.z[l];
  for (let r = 0; r < R; r++) for (let j = 0; j < h; j++) z[r * h + j] = P[pOff + b + j];
  accRowsF32(z, h, tape.a[l - 1], hin, R, 0, hin, P, pOff + w);
  if (round) for (let k = 0; k < R * h; k++) z[k] = Math.fround(z[k]);
}

/** n[r·h + j] = (z[r·h + j] − μ_j)/s_j over the R rows, s_j = √(σ²_j + ε): src/cpu/mlp.ts normalise's
 * operations (two-pass mean and variance, each sum over r in order), row-major. `mean`: scratch (h). */
function normaliseRows(R: number, h: number, z: Float64Array, n: Float64Array, sd: Float64Array, mean: Float64Array, round: boolean): void {
  for (let j = 0; j < h; j++) { mean[j] = 0; sd[j] = 0; }
  for (let r = 0; r < R; r++) {
    const o = r * h;
    for (let j = 0; j < h; j++) mean[j] += z[o + j];
  }
  for (let j = 0; j < h; j++) mean[j] /= R;
  // sd[j] accumulates the variance first.
  for (let r = 0; r < R; r++) {
    const o = r * h;
    for (let j = 0; j < h; j++) sd[j] += (z[o + j] - mean[j]) ** 2;
  }
  for (let j = 0; j < h; j++) {
    let variance = sd[j];
    variance /= R;
    sd[j] = Math.sqrt(variance + TASK_NORM_EPS);
  }
  for (let r = 0; r < R; r++) {
    const o = r * h;
    if (round) for (let j = 0; j < h; j++) n[o + j] = Math.fround((z[o + j] - mean[j]) / sd[j]);
    else for (let j = 0; j < h; j++) n[o + j] = (z[o + j] - mean[j]) / sd[j];
  }
}

/** out = J u per unit over the R rows: (u − mean(u) − n·mean(u n))/s, mean(u) and mean(u n) summed
 * together over r in order (src/cpu/mlp.ts normJacobian); mean(u n) left in dot. `mean`: scratch (h). */
function normJacobianRows(R: number, h: number, n: Float64Array, sd: Float64Array, u: Float64Array, out: Float64Array, mean: Float64Array, dot: Float64Array, round: boolean): void {
  for (let j = 0; j < h; j++) { mean[j] = 0; dot[j] = 0; }
  for (let r = 0; r < R; r++) {
    const o = r * h;
    for (let j = 0; j < h; j++) {
      const x = u[o + j];
      mean[j] += x;
      dot[j] += x * n[o + j];
    }
  }
  for (let j = 0; j < h; j++) { mean[j] /= R; dot[j] /= R; }
  for (let r = 0; r < R; r++) {
    const o = r * h;
    if (round) for (let j = 0; j < h; j++) out[o + j] = Math.fround((u[o + j] - mean[j] - n[o + j] * dot[j]) / sd[j]);
    else for (let j = 0; j < h; j++) out[o + j] = (u[o + j] - mean[j] - n[o + j] * dot[j]) / sd[j];
  }
}

/** Softmax of the head into tape.prob; δ_L = scale·(p − onehot(y)); tape.lossSum, tape.hits. */
export function softmaxHead(ws: MlpWorkspace, rows: MlpRows, tape: Tape, scale: number, round: boolean): void {
  const N = ws.layout.classes;
  const L = ws.layout.layers.length;
  const zL = tape.z[L];
  const dL = tape.d[L];
  const prob = tape.prob;
  let lossSum = 0;
  let hits = 0;
  for (let r = 0; r < rows.rows; r++) {
    const label = rows.y[rows.yOff + r];
    const o = r * N;
    let argmax = 0;
    for (let c = 1; c < N; c++) if (zL[o + c] > zL[o + argmax]) argmax = c;  // strict: smallest index of the max
    const max = zL[o + argmax];
    let sum = 0;
    for (let c = 0; c < N; c++) sum += Math.exp(zL[o + c] - max);
    lossSum += max + Math.log(sum) - zL[o + label];
    if (argmax === label) hits++;
    for (let c = 0; c < N; c++) {
      let p = Math.exp(zL[o + c] - max) / sum;
      if (round) p = Math.fround(p);
      prob[o + c] = p;
      const d = scale * (p - (c === label ? 1 : 0));
      dL[o + c] = round ? Math.fround(d) : d;
    }
  }
  tape.lossSum = lossSum;
  tape.hits = hits;
}

/** δ_{l−1} = (δ_l W_lᵀ) ⊙ relu'(z_{l−1}) for l = L … 2; with normalisation g_{l−1} = (δ_l W_lᵀ) ⊙
 * relu'(n_{l−1}) and δ_{l−1} = J g_{l−1} (κ = mean(g n) kept for the R-backward). */
export function backwardPass(ws: MlpWorkspace, pt: MlpPoint, R: number, tape: Tape, round: boolean): void {
  const layout = ws.layout;
  ws.ensureRows(R);
  for (let l = layout.layers.length; l >= 2; l--) {
    const { inputs: hin, outputs: h, w } = layout.layers[l - 1];
    if (layout.norm) {
      const k = l - 1;
      backDot(tape.g[k], hin, tape.d[l], 0, h, R, 0, hin, pt.P, pt.pOff + w, tape.n[k], round, ws.list);
      normJacobianRows(R, hin, tape.n[k], tape.sd[k], tape.g[k], tape.d[k], ws.unit, tape.kappa[k], round);
    } else backDot(tape.d[l - 1], hin, tape.d[l], 0, h, R, 0, hin, pt.P, pt.pOff + w, tape.z[l - 1], round, ws.list);
  }
}

/** δ_0[r, i] = Σ_j δ_1[r, j] W_1[i, j] for inputs i in [lo, hi) (no mask: the input is not a ReLU). */
export function inputDelta(ws: MlpWorkspace, pt: MlpPoint, R: number, tape: Tape, lo: number, hi: number, round: boolean): void {
  const { inputs: hin, outputs: h, w } = ws.layout.layers[0];
  ws.ensureRows(R);
  backDot(tape.d[0], hin, tape.d[1], 0, h, R, lo, hi, pt.P, pt.pOff + w, null, round, ws.list);
}

/** The outer products of every layer from firstLayer on into the sink: weights Σ_r a_{l−1}[r, i]·δ_l[r, j]
 * (MAML's inner step, gradients), biases Σ_r δ_l[r, j]; with rt (a Hessian-vector product), Σ_r
 * (a[r, i]·R(δ_l)[r, j] + R(a)[r, i]·δ_l[r, j]) and Σ_r R(δ_l)[r, j]. oOff / sOff: the vector offsets of
 * the sink's arrays. firstLayer L: the head alone (ANIL's inner step). */
function layerOuterProducts(ws: MlpWorkspace, R: number, tape: Tape, rt: RTape | null, oOff: number, sOff: number, firstLayer = 1): void {
  const layout = ws.layout;
  ws.ensureRows(R);
  const { cf, cf2, of, of2, acc, acc2, zeros, sink } = ws;
  for (let l = firstLayer; l <= layout.layers.length; l++) {
    const { inputs: hin, outputs: h, w, b } = layout.layers[l - 1];
    const A = tape.a[l - 1];
    const B = rt ? rt.rd[l] : tape.d[l];
    const RA = rt ? rt.ra[l - 1] : null;
    const dBase = R * h;  // δ_l rows within rt.rd[l]
    let i = 0;
    while (i < hin) {
      const nt = gatherTerms(A, RA, hin, i, R, h, dBase, cf, of);
      if (i + 1 < hin && nt > 0 && nt % 5 === 0) {
        // The next row with the same term rows (dense rows): both in one pass over B.
        const nt2 = gatherTerms(A, RA, hin, i + 1, R, h, dBase, cf2, of2);
        let same = nt2 === nt;
        for (let k = 0; same && k < nt; k++) same = of[k] === of2[k];
        if (same) {
          outerRowPair(nt, cf, cf2, of, B, h, acc, acc2, zeros, sink, oOff + w + i * h, sOff + w + i * h);
          i += 2;
          continue;
        }
      }
      outerRow(nt, cf, of, B, h, acc, zeros, sink, oOff + w + i * h, sOff + w + i * h);
      i++;
    }
    for (let r = 0; r < R; r++) { cf[r] = 1; of[r] = r * h; }
    outerRow(R, cf, of, B, h, acc, zeros, sink, oOff + b, sOff + b);
  }
}

/** The terms of output row i: (A[r, i], row r of B) and, with RA, (RA[r, i], row dBase + r·h), for r in
 * order, zero coefficients skipped (as the reference skips them). Returns their count. */
function gatherTerms(A: Float64Array, RA: Float64Array | null, hin: number, i: number, R: number, h: number, dBase: number, cf: Float64Array, of: Int32Array): number {
  let nt = 0;
  for (let r = 0; r < R; r++) {
    const f = A[r * hin + i];
    if (f !== 0) { cf[nt] = f; of[nt++] = r * h; }
    if (RA !== null) {
      const f2 = RA[r * hin + i];
      if (f2 !== 0) { cf[nt] = f2; of[nt++] = dBase + r * h; }
    }
  }
  return nt;
}

/** The φ entries Σ_r rows[r, D + c] into the sink, and the pad entries (WRITE: 0; SGD: copied). */
function contextEntries(ws: MlpWorkspace, R: number, rowsOfInputs: Float64Array, oOff: number, sOff: number): void {
  const { dim: D, context: C, inputs, contextOffset } = ws.layout;
  const sink = ws.sink;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let r = 0; r < R; r++) s += rowsOfInputs[r * inputs + D + c];
    sinkOne(sink, oOff + contextOffset + c, sOff + contextOffset + c, s);
  }
  padEntries(ws, oOff, sOff);
}

function padEntries(ws: MlpWorkspace, oOff: number, sOff: number): void {
  const { context: C, contextOffset, vector } = ws.layout;
  const sink = ws.sink;
  for (let k = contextOffset + C; k < vector; k++) {
    if (sink.mode === WRITE64) sink.o64[oOff + k] = 0;
    else if (sink.mode === WRITE32) sink.o32[oOff + k] = 0;
    else if (sink.mode === SGD32) sink.o32[oOff + k] = sink.s32[sOff + k];
  }
}

function setSink(ws: MlpWorkspace, mode: number, o64: Float64Array | null, o32: Float32Array | null, s32: Float32Array | null, alpha: number): void {
  const sink = ws.sink;
  sink.mode = mode;
  if (o64) sink.o64 = o64;
  if (o32) sink.o32 = o32;
  if (s32) sink.s32 = s32;
  sink.alpha = alpha;
}

/** Forward, softmax (mean over rows) and backward at pt on `rows` into `tape` (δ of every layer). */
export function lossAndDeltas(ws: MlpWorkspace, pt: MlpPoint, rows: MlpRows, tape: Tape, withDeltas: boolean): void {
  forwardPass(ws, pt, rows, tape, false);
  softmaxHead(ws, rows, tape, 1 / rows.rows, false);
  if (withDeltas) backwardPass(ws, pt, rows.rows, tape, false);
}

/** The gradient of the mean loss (tape from lossAndDeltas at pt) over the whole per-task vector into
 * o64[oOff …] (φ and pad included: pad 0). */
export function gradientInto(ws: MlpWorkspace, pt: MlpPoint, tape: Tape, o64: Float64Array, oOff: number): void {
  const R = tape.rows;
  const { dim: D, inputs } = ws.layout;
  inputDelta(ws, pt, R, tape, D, inputs, false);
  setSink(ws, WRITE64, o64, null, null, 0);
  layerOuterProducts(ws, R, tape, null, oOff, 0);
  contextEntries(ws, R, tape.d[0], oOff, 0);
}

/** The gradient's W and b entries rounded to float32 into o32[oOff …]; φ and pad entries 0 (the
 * order-1 meta-gradient). */
export function weightGradientInto32(ws: MlpWorkspace, tape: Tape, o32: Float32Array, oOff: number): void {
  setSink(ws, WRITE32, null, o32, null, 0);
  layerOuterProducts(ws, tape.rows, tape, null, oOff, 0);
  o32.fill(0, oOff + ws.layout.params, oOff + ws.layout.vector);
}

/** The inner step on every parameter (W, b and φ): dst[dOff + k] = src[sOff + k] − α·∇L (float32; pad
 * entries copied from src), the gradient taken at pt (tape from lossAndDeltas there). */
export function sgdStepAll(ws: MlpWorkspace, pt: MlpPoint, tape: Tape, alpha: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number): void {
  const R = tape.rows;
  const { dim: D, inputs } = ws.layout;
  inputDelta(ws, pt, R, tape, D, inputs, false);
  setSink(ws, SGD32, null, dst, src, alpha);
  layerOuterProducts(ws, R, tape, null, dOff, sOff);
  contextEntries(ws, R, tape.d[0], dOff, sOff);
}

/** ANIL's inner forward at pt's head: z_L = a_{L−1} W_L + b_L, softmax and δ_L on the tape, whose body
 * activations (a_l, l < L) come from a forwardPass on the same rows at a point with the same body (the
 * body does not move in ANIL's inner loop, so they are computed once per task). */
export function headLossAndDeltas(ws: MlpWorkspace, pt: MlpPoint, rows: MlpRows, tape: Tape): void {
  affineLayer(ws, pt.P, pt.pOff, rows.rows, tape, ws.layout.layers.length, false);
  softmaxHead(ws, rows, tape, 1 / rows.rows, false);
}

/** ANIL's inner step: dst = src with the head stepped, W_L and b_L ← src's − α·∇ (float32; the gradient
 * needs only a_{L−1} and δ_L, so no backward pass through the body); body and pad entries copied. */
export function sgdStepHead(ws: MlpWorkspace, tape: Tape, alpha: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number): void {
  const L = ws.layout.layers.length;
  const headStart = ws.layout.layers[L - 1].w;
  dst.set(src.subarray(sOff, sOff + headStart), dOff);
  setSink(ws, SGD32, null, dst, src, alpha);
  layerOuterProducts(ws, tape.rows, tape, null, dOff, sOff, L);
  padEntries(ws, dOff, sOff);
}

/** Meta-SGD's inner step (no context): grad[gOff …] = ∇L at pt (float64, pad 0; the meta-gradient of α
 * needs it), then dst[dOff + k] = src[sOff + k] − α_k·grad_k in float32, α_k = stepSizes[aOff + k], for
 * the W and b entries; pad entries copied from src. With every α_k = α these are sgdStepAll's bits. */
export function sgdStepScaled(ws: MlpWorkspace, pt: MlpPoint, tape: Tape, stepSizes: Float32Array, aOff: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number, grad: Float64Array, gOff: number): void {
  const { params, vector } = ws.layout;
  gradientInto(ws, pt, tape, grad, gOff);
  for (let k = 0; k < params; k++) dst[dOff + k] = src[sOff + k] - stepSizes[aOff + k] * grad[gOff + k];
  for (let k = params; k < vector; k++) dst[dOff + k] = src[sOff + k];
}

/** The context's gradient Σ_r δ_0[r, D + c] into g[0 … C) (tape from lossAndDeltas at pt). */
export function contextGradient(ws: MlpWorkspace, pt: MlpPoint, tape: Tape, g: Float64Array): void {
  const R = tape.rows;
  const { dim: D, context: C, inputs } = ws.layout;
  inputDelta(ws, pt, R, tape, D, inputs, false);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let r = 0; r < R; r++) s += tape.d[0][r * inputs + D + c];
    g[c] = s;
  }
}


/** H·v at pt, H the Hessian of the mean loss over the whole per-task vector, by the R-operator (as
 * src/cpu/mlp.ts mlpHvp), reusing `tape` (lossAndDeltas at pt with deltas on the same rows). The
 * direction v is V[vOff …], taken as 0 outside the set `mask`: 'context' (CAML: the V_l terms vanish);
 * 'head' (ANIL; no context): R(z_l) = R(a_l) = 0 below the head, so the R-forward is one layer, the
 * R-backward below it is a plain backward of R(δ_L) (the normalisation's J does not move), and the tape
 * needs only its forward below the head (with the head's z_L, p and δ_L: headLossAndDeltas). The result
 * goes to the sink set by the caller: AXPY64 on V itself (v ← v − α H v, safe in place: every read of V
 * precedes the first write), or on another array, or WRITE64 elsewhere. */
function hvpInto(ws: MlpWorkspace, pt: MlpPoint, tape: Tape, V: Float64Array, vOff: number, mask: AdaptedSet, oOff: number): void {
  const layout = ws.layout;
  const R = tape.rows;
  const L = layout.layers.length;
  const N = layout.classes;
  const { dim: D, context: C, inputs } = layout;
  const { P, pOff } = pt;
  const rt = ws.rTape(R);
  ws.ensureRows(R);
  const list = ws.list;
  const contextOnly = mask === 'context';
  const headOnly = mask === 'head';

  // R(a_0) = [0 | v_φ] (the data columns stay 0 from allocation).
  const ra0 = rt.ra[0];
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) ra0[r * inputs + D + c] = V[vOff + layout.contextOffset + c];
  // R-forward: R(z_l) = R(a_{l−1}) W_l + a_{l−1} V_l + c_l; R(a_l) = relu'(z_l) ⊙ R(z_l).
  for (let l = 1; l <= L; l++) {
    const { inputs: hin, outputs: h, w, b } = layout.layers[l - 1];
    const rz = rt.rz[l];
    const A = tape.a[l - 1];
    const RA = rt.ra[l - 1];
    if (headOnly && l < L) {
      // R(a_l) = 0: the outer products read it (R(z_l) is only scratch below).
      rt.ra[l].fill(0, 0, R * h);
      continue;
    }
    if (headOnly) {
      // R(a_{L−1}) = 0: R(z_L) = a_{L−1} V_L + c_L.
      for (let r = 0; r < R; r++) for (let j = 0; j < h; j++) rz[r * h + j] = V[vOff + b + j];
      accRowsF64(rz, h, A, hin, R, 0, hin, V, vOff + w);
    } else if (contextOnly) {
      rz.fill(0, 0, R * h);
      if (l === 1) accRowsF32(rz, h, RA, hin, R, D, inputs, P, pOff + w);
      else accRowsF32(rz, h, RA, hin, R, 0, hin, P, pOff + w);
    } else {
      for (let r = 0; r < R; r++) for (let j = 0; j < h; j++) rz[r * h + j] = V[vOff + b + j];
      if (l === 1) {
        // Data columns: R(a_0) = 0 there, so each term is a·V alone.
        accRowsF64(rz, h, A, hin, R, 0, D, V, vOff + w);
        accRowsR(rz, h, RA, A, hin, R, D, inputs, P, pOff + w, V, vOff + w);
      } else accRowsR(rz, h, RA, A, hin, R, 0, hin, P, pOff + w, V, vOff + w);
    }
    if (l < L) {
      const pre = tape.pre[l];
      const ra = rt.ra[l];
      if (layout.norm) {
        // R(n) = J R(z) (ρ = mean(n R(z)) kept for the R-backward); R(a) = relu'(n) ⊙ R(n).
        const rn = rt.rn[l];
        normJacobianRows(R, h, tape.n[l], tape.sd[l], rz, rn, ws.unit, rt.rho[l], false);
        for (let k = 0; k < R * h; k++) ra[k] = pre[k] > 0 ? rn[k] : 0;
      } else for (let k = 0; k < R * h; k++) ra[k] = pre[k] > 0 ? rz[k] : 0;
    }
  }
  // δ_l next to R(δ_l) for the outer products and the R-backward ('head': only δ_L is read, R(a) = 0 below).
  for (let l = headOnly ? L : 1; l <= L; l++) {
    const n = R * layout.widths[l];
    const rd = rt.rd[l];
    const d = tape.d[l];
    for (let k = 0; k < n; k++) rd[n + k] = d[k];
  }
  // R(δ_L) = (diag(p) − p pᵀ) R(z_L) / rows.
  const rzL = rt.rz[L];
  const rdL = rt.rd[L];
  const prob = tape.prob;
  for (let r = 0; r < R; r++) {
    let mean = 0;
    for (let c = 0; c < N; c++) mean += prob[r * N + c] * rzL[r * N + c];
    for (let c = 0; c < N; c++) rdL[r * N + c] = (prob[r * N + c] * (rzL[r * N + c] - mean)) / R;
  }
  // R-backward: R(δ_{l−1}) = (R(δ_l) W_lᵀ + δ_l V_lᵀ) ⊙ relu'(z_{l−1}); φ's columns of R(δ_0) unmasked.
  // With normalisation that product is R(g) (into rz, no longer needed), and
  // R(δ_{l−1}) = J R(g) − (ρ/s) δ − (R(n) κ + n τ)/s, τ = mean(g R(n)).
  for (let l = L; l >= 1; l--) {
    const { inputs: hin, outputs: h, w } = layout.layers[l - 1];
    const lo = l === 1 ? D : 0;
    const hi = l === 1 ? inputs : hin;
    const reluMask = l === 1 ? null : tape.pre[l - 1];
    if (lo === hi) continue;
    const norm = layout.norm && l > 1;
    const dst = norm ? rt.rz[l - 1] : rt.rd[l - 1];
    if (contextOnly || (headOnly && l < L)) backDot(dst, hin, rt.rd[l], 0, h, R, lo, hi, P, pOff + w, reluMask, false, list);
    else backDotR(dst, hin, rt.rd[l], 0, R * h, h, R, lo, hi, P, pOff + w, V, vOff + w, reluMask, list);
    // 'head': ρ = R(s) = 0 and R(n) = 0 below the head, so R(δ) = J R(g) alone.
    if (norm && headOnly) normJacobianRows(R, hin, tape.n[l - 1], tape.sd[l - 1], rt.rz[l - 1], rt.rd[l - 1], ws.unit, ws.unit2, false);
    else if (norm) normBackwardR(ws, tape, rt, l - 1);
  }
  // (Hv)_{W_l} = R(a_{l−1})ᵀ δ_l + a_{l−1}ᵀ R(δ_l); (Hv)_{b_l} = Σ_r R(δ_l); (Hv)_φ = Σ_r R(δ_0)[r, D:].
  layerOuterProducts(ws, R, tape, rt, oOff, 0);
  contextEntries(ws, R, rt.rd[0], oOff, 0);
}

/** R(δ_k) = J R(g) − (ρ/s) δ_k − (R(n) κ + n τ)/s into rt.rd[k] (its R(δ) rows), R(g) in rt.rz[k]:
 * src/cpu/mlp.ts mlpHvp's operations, τ = mean(g R(n)) summed over r in order. */
function normBackwardR(ws: MlpWorkspace, tape: Tape, rt: RTape, k: number): void {
  const R = tape.rows;
  const h = ws.layout.widths[k];
  const rd = rt.rd[k];
  const n = tape.n[k], g = tape.g[k], d = tape.d[k], sd = tape.sd[k], kappa = tape.kappa[k];
  const rn = rt.rn[k], rho = rt.rho[k];
  const tau = ws.unit2;
  normJacobianRows(R, h, n, sd, rt.rz[k], rd, ws.unit, tau, false);  // tau: scratch for mean(R(g) n) here
  for (let j = 0; j < h; j++) tau[j] = 0;
  for (let r = 0; r < R; r++) {
    const o = r * h;
    for (let j = 0; j < h; j++) tau[j] += g[o + j] * rn[o + j];
  }
  for (let j = 0; j < h; j++) tau[j] /= R;
  for (let r = 0; r < R; r++) {
    const o = r * h;
    for (let j = 0; j < h; j++) {
      const s = sd[j];
      rd[o + j] += -(rho[j] / s) * d[o + j] - (rn[o + j] * kappa[j] + n[o + j] * tau[j]) / s;
    }
  }
}

/** v ← v − α·H(pt)·(M ⊙ v) in place (the order-2 backward through one inner step), M the adapted set
 * (every entry, φ alone, or the head); tape: lossAndDeltas at pt on the step's support rows ('head': a
 * forwardPass there, or at any point with pt's body, then headLossAndDeltas at pt). */
export function hvpStep(ws: MlpWorkspace, pt: MlpPoint, tape: Tape, v: Float64Array, vOff: number, alpha: number, mask: AdaptedSet): void {
  setSink(ws, AXPY64, v, null, null, alpha);
  hvpInto(ws, pt, tape, v, vOff, mask, vOff);
}

/** Meta-SGD's order-2 backward through one inner step (no context): v ← v − H(pt)·(α ⊙ v) in place, α_k =
 * stepSizes[aOff + k] (the transpose of d θ'⁽ˢ⁺¹⁾/d θ'⁽ˢ⁾ = I − diag(α) H is I − H diag(α)). `direction`:
 * scratch of layout.vector floats for α ⊙ v. */
export function hvpStepScaled(ws: MlpWorkspace, pt: MlpPoint, tape: Tape, v: Float64Array, vOff: number, stepSizes: Float32Array, aOff: number, direction: Float64Array): void {
  const { params, vector } = ws.layout;
  for (let k = 0; k < params; k++) direction[k] = stepSizes[aOff + k] * v[vOff + k];
  direction.fill(0, params, vector);
  setSink(ws, AXPY64, v, null, null, 1);
  hvpInto(ws, pt, tape, direction, 0, 'all', vOff);
}

// ---- One-call functions (the API of src/cpu/mlp.ts, float32 parameters) -------------------------

/** Mean loss and accuracy at the float32 params P[pOff …] on `rows`; with `grad`, the gradient over the
 * whole vector into grad[gOff …] (pad 0). Same values as src/cpu/mlp.ts mlpLossGrad. */
export function fastLossGrad(layout: MlpLayout, P: Float32Array, pOff: number, rows: MlpRows, grad: Float64Array | null, gOff = 0): { loss: number; accuracy: number } {
  const ws = mlpWorkspace(layout);
  const pt = pointAt(P, pOff, layout);
  const tape = ws.tape('call', rows.rows);
  lossAndDeltas(ws, pt, rows, tape, grad !== null);
  if (grad) gradientInto(ws, pt, tape, grad, gOff);
  return { loss: tape.lossSum / rows.rows, accuracy: tape.hits / rows.rows };
}

/** out[oOff …] = H·v (v at v[vOff …]) at P[pOff …]: src/cpu/mlp.ts mlpHvp. */
export function fastHvp(layout: MlpLayout, P: Float32Array, pOff: number, rows: MlpRows, v: Float64Array, vOff: number, out: Float64Array, oOff = 0): void {
  const ws = mlpWorkspace(layout);
  const pt = pointAt(P, pOff, layout);
  const tape = ws.tape('call', rows.rows);
  lossAndDeltas(ws, pt, rows, tape, true);
  setSink(ws, WRITE64, out, null, null, 0);
  hvpInto(ws, pt, tape, v, vOff, 'all', oOff);
}

/** out[r·D + d] = ∂ℓ_r/∂x_r[d] (row r's own loss): src/cpu/mlp.ts mlpInputGrad, with its float32 mode. */
export function fastInputGrad(layout: MlpLayout, P: Float32Array, pOff: number, rows: MlpRows, out: Float64Array, options: { float32?: boolean } = {}): void {
  const ws = mlpWorkspace(layout);
  const pt = pointAt(P, pOff, layout);
  const round = !!options.float32;
  const R = rows.rows;
  const tape = ws.tape('call', R);
  forwardPass(ws, pt, rows, tape, round);
  softmaxHead(ws, rows, tape, 1, round);
  backwardPass(ws, pt, R, tape, round);
  inputDelta(ws, pt, R, tape, 0, layout.dim, round);
  const { dim: D, inputs } = layout;
  const d0 = tape.d[0];
  for (let r = 0; r < R; r++) for (let d = 0; d < D; d++) out[r * D + d] = d0[r * inputs + d];
}

export { pointAt as mlpPointAt };
export type { Tape as MlpTape };
