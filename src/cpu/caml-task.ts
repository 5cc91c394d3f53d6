// CPU twin of shaders/caml-task.wgsl: CAML / CAVIA's per-task inner loop over the context φ, query
// statistics and first- or second-order gradient for (w, W). Parameters use the kernel's internal
// layout [w | W_0 | … | W_{C−1}] (W_c = column c of W); camlToPublic/camlFromPublic convert to and from
// the public layout (w, then W row-major D×C).
import { logitsToResidual, rowDots, rowsTransposeTimes, sigmoid } from './logistic.js';
import type { RowSet, TaskPassParams } from './maml-task.js';

export interface CamlParams extends TaskPassParams {
  context: number;
}

export interface CamlOutputs {
  adapted: Float32Array;    // sets×T×D: θ_n = w + Wφ_n
  metaGrad: Float32Array;   // sets×T×(C+1)×D
  tape: Float32Array;       // sets×T×(max(n,1)·Ks + (n+1)·C)
  taskStats: Float32Array;  // sets×T×2
  scratch: Float32Array;    // sets×T×3×D: g_s | z | H z
}

export function camlScratchSizes(p: { tasks: number; supportRows: number; dim: number; innerSteps: number; context: number }, sets = 1) {
  const n = p.innerSteps;
  return {
    adapted: sets * p.tasks * p.dim,
    metaGrad: sets * p.tasks * (p.context + 1) * p.dim,
    tape: sets * p.tasks * (Math.max(n, 1) * p.supportRows + (n + 1) * p.context),
    taskStats: sets * p.tasks * 2,
    scratch: sets * p.tasks * 3 * p.dim,
  };
}

/** taskRange [first, end) restricts the work to those tasks (the CPU engine's worker threads split T). */
export function camlAdaptAndMetaGrad(out: CamlOutputs, support: RowSet, query: RowSet, params: Float32Array, p: CamlParams, taskRange?: [number, number]): void {
  const { dim: D, supportRows: Ks, queryRows: Kq, innerSteps: n, innerLr: alpha, context: C } = p;
  const rowVal = new Float64Array(Math.max(Ks, Kq, C));
  const phi = new Float64Array(C);
  const lambda = new Float64Array(C);
  const W = (c: number) => (1 + c) * D;  // offset of W_c in params
  const [first, end] = taskRange ?? [0, p.tasks];
  for (let t = first; t < end; t++) {
    const slot = p.outSet * p.tasks + t;
    const own = slot * D;
    const gradOff = slot * (C + 1) * D;
    const gS = slot * 3 * D;
    const zS = gS + D;
    const hzS = zS + D;
    const probOff = slot * (Math.max(n, 1) * Ks + (n + 1) * C);
    const ctxOff = probOff + Math.max(n, 1) * Ks;
    const sx = t * Ks * D;
    const qx = t * Kq * D;
    phi.fill(0);
    out.tape.fill(0, ctxOff, ctxOff + C);
    for (let s = 0; s <= n; s++) {
      for (let d = 0; d < D; d++) {
        let v = params[d];
        for (let c = 0; c < C; c++) v += Math.fround(phi[c]) * params[W(c) + d];
        out.adapted[own + d] = v;
      }
      if (s === n) break;
      rowDots(rowVal, support.x, sx, Ks, out.adapted, own, D);
      for (let r = 0; r < Ks; r++) {
        const prob = sigmoid(rowVal[r]);
        out.tape[probOff + s * Ks + r] = prob;
        rowVal[r] = prob - support.y[t * Ks + r];
      }
      rowsTransposeTimes(out.scratch, gS, support.x, sx, Ks, rowVal, D, 1 / Ks, false);
      rowDots(rowVal, params, D, C, out.scratch, gS, D);  // W_c · g_s
      for (let c = 0; c < C; c++) {
        phi[c] = Math.fround(phi[c] - alpha * rowVal[c]);
        out.tape[ctxOff + (s + 1) * C + c] = phi[c];
      }
    }

    rowDots(rowVal, query.x, qx, Kq, out.adapted, own, D);
    const [loss, acc] = logitsToResidual(rowVal, query.y, t * Kq, Kq);
    out.taskStats[2 * slot] = loss;
    out.taskStats[2 * slot + 1] = acc;
    if (!p.wantMetaGrad) continue;
    rowsTransposeTimes(out.metaGrad, gradOff, query.x, qx, Kq, rowVal, D, 1 / Kq, false);
    for (let d = 0; d < D; d++) {
      const gq = out.metaGrad[gradOff + d];
      for (let c = 0; c < C; c++) out.metaGrad[gradOff + W(c) + d] = phi[c] * gq;
    }
    if (p.order !== 2 || n === 0) continue;

    rowDots(rowVal, params, D, C, out.metaGrad, gradOff, D);
    for (let c = 0; c < C; c++) lambda[c] = Math.fround(rowVal[c]);
    for (let s = n - 1; s >= 0; s--) {
      for (let c = 0; c < C; c++) phi[c] = out.tape[ctxOff + s * C + c];
      for (let d = 0; d < D; d++) {
        let z = 0;
        for (let c = 0; c < C; c++) z += lambda[c] * params[W(c) + d];
        out.scratch[zS + d] = z;
      }
      rowDots(rowVal, support.x, sx, Ks, out.scratch, zS, D);
      for (let r = 0; r < Ks; r++) {
        const prob = out.tape[probOff + s * Ks + r];
        rowVal[r] *= prob * (1 - prob);
      }
      rowsTransposeTimes(out.scratch, hzS, support.x, sx, Ks, rowVal, D, 1 / Ks, false);
      for (let r = 0; r < Ks; r++) rowVal[r] = out.tape[probOff + s * Ks + r] - support.y[t * Ks + r];
      rowsTransposeTimes(out.scratch, gS, support.x, sx, Ks, rowVal, D, 1 / Ks, false);
      for (let d = 0; d < D; d++) {
        const g = out.scratch[gS + d];
        const hz = out.scratch[hzS + d];
        out.metaGrad[gradOff + d] -= alpha * hz;
        for (let c = 0; c < C; c++) out.metaGrad[gradOff + W(c) + d] -= alpha * (g * lambda[c] + hz * phi[c]);
      }
      rowDots(rowVal, params, D, C, out.scratch, hzS, D);
      for (let c = 0; c < C; c++) lambda[c] = Math.fround(lambda[c] - alpha * rowVal[c]);
    }
  }
}

/** Internal [w | W_0 … W_{C−1}] (each `stride` floats, the first D used) → public w (D), W (D×C row-major). */
export function camlToPublic(internal: Float32Array, dim: number, context: number, stride = dim): Float32Array {
  const out = new Float32Array(dim * (1 + context));
  out.set(internal.subarray(0, dim));
  for (let c = 0; c < context; c++) {
    for (let d = 0; d < dim; d++) out[dim + d * context + c] = internal[(1 + c) * stride + d];
  }
  return out;
}

/** Public (w, W row-major D×C) → internal [w | W_0 … W_{C−1}] with `stride` floats per vector (zero padded). */
export function camlFromPublic(pub: Float32Array, dim: number, context: number, stride = dim): Float32Array {
  const out = new Float32Array(stride * (1 + context));
  out.set(pub.subarray(0, dim));
  for (let c = 0; c < context; c++) {
    for (let d = 0; d < dim; d++) out[(1 + c) * stride + d] = pub[dim + d * context + c];
  }
  return out;
}
