// The generic MAML core over the MLP model (docs/neural-models.md "The seam"), task by task on the CPU:
// inner loop on the adapted index set M (MAML: every parameter; CAML: the context φ only), optionally
// with AMP's perturbed gradient; query statistics; first- or second-order meta-gradient. Also the
// FGSM / PGD attack through the network and the scoring of given rows. Same contract as
// adaptAndMetaGrad (src/cpu/maml-task.ts): per-task vectors are stored as float32 (as on the GPU),
// gradients and Hessian-vector products are computed in float64 by src/cpu/mlp.ts.
import type { MlpLayout } from '../models/mlp.js';
import type { AttackParams } from './fgsm.js';
import type { PerturbParams, RowSet, TaskPassParams } from './maml-task.js';
import { mlpHvp, mlpInputGrad, mlpLossGrad, type MlpRows } from './mlp.js';

export interface MlpTaskParams extends TaskPassParams {
  layout: MlpLayout;
  /** The adapted index set M: 'all' parameters (MAML, ADML, GA-MAML, AMP) or the 'context' φ (CAML). */
  adapt: 'all' | 'context';
  /** false: one θ for every task; true: θ holds one vector per task, stride layout.vector (AMP). */
  thetaPerTask: boolean;
  perturb: PerturbParams | null;
  /** θ_t ← θ'_t after the inner loop (AMP's plain training; needs thetaPerTask). */
  writeBack?: boolean;
}

export interface MlpTaskOutputs {
  adapted: Float32Array;    // sets×T×V: θ'_t⁽ⁿ⁾ (CAML: θ with the task's adapted φ)
  metaGrad: Float32Array;   // sets×T×V: φ and pad entries 0 (untouched when wantMetaGrad is false)
  taskStats: Float32Array;  // sets×T×2: query (loss, accuracy) of θ'_t⁽ⁿ⁾
}

export function mlpTaskScratchSizes(p: { tasks: number; layout: MlpLayout }, sets = 1): Record<keyof MlpTaskOutputs, number> {
  return { adapted: sets * p.tasks * p.layout.vector, metaGrad: sets * p.tasks * p.layout.vector, taskStats: sets * p.tasks * 2 };
}

/** [start, end) of M within the per-task vector. 'all' also spans φ (empty unless a context exists). */
function adaptedRange(layout: MlpLayout, adapt: 'all' | 'context'): [number, number] {
  const contextEnd = layout.contextOffset + layout.context;
  return adapt === 'all' ? [0, contextEnd] : [layout.contextOffset, contextEnd];
}

/** taskRange [first, end) restricts the work to those tasks (the CPU engine's worker threads split T). */
export function mlpAdaptAndMetaGrad(out: MlpTaskOutputs, support: RowSet, query: RowSet, theta: Float32Array, p: MlpTaskParams, taskRange?: [number, number]): void {
  const { layout, dim: D, supportRows: Ks, queryRows: Kq, innerSteps: n, innerLr: alpha } = p;
  const V = layout.vector;
  const [mLo, mHi] = adaptedRange(layout, p.adapt);
  const perturbSteps = p.perturb?.steps ?? 0;
  const secondOrder = p.wantMetaGrad && p.order === 2;
  // The points ∇L(·; S) was taken at, kept for the order-2 backward (θ'⁽ˢ⁾, or θ'⁽ˢ⁾+Δ_s under AMP).
  const points = new Float32Array(secondOrder ? n * V : 0);
  const perturbed = new Float32Array(perturbSteps > 0 ? V : 0);
  const grad = new Float64Array(V);
  const direction = new Float64Array(secondOrder ? V : 0);
  const hv = new Float64Array(secondOrder ? V : 0);
  const [first, end] = taskRange ?? [0, p.tasks];
  for (let t = first; t < end; t++) {
    const slot = p.outSet * p.tasks + t;
    const own = slot * V;
    const supportRows: MlpRows = { x: support.x, xOff: t * Ks * D, xStride: D, y: support.y, yOff: t * Ks, rows: Ks };
    const queryRows: MlpRows = { x: query.x, xOff: t * Kq * D, xStride: D, y: query.y, yOff: t * Kq, rows: Kq };
    const thetaOff = p.thetaPerTask ? t * V : 0;
    out.adapted.set(theta.subarray(thetaOff, thetaOff + V), own);
    // The context starts at 0 for every task (CAVIA), whatever θ holds there.
    if (p.adapt === 'context') out.adapted.fill(0, own + layout.contextOffset, own + layout.contextOffset + layout.context);

    for (let s = 0; s < n; s++) {
      let point: Float32Array = out.adapted;
      let pointOff = own;
      if (perturbSteps > 0) {
        mlpPerturb(perturbed, out.adapted, own, supportRows, layout, p.perturb!, grad);
        point = perturbed;
        pointOff = 0;
      }
      if (secondOrder) points.set(point.subarray(pointOff, pointOff + V), s * V);
      mlpLossGrad(layout, point, pointOff, supportRows, grad);
      for (let k = mLo; k < mHi; k++) out.adapted[own + k] -= alpha * grad[k];
    }
    if (p.writeBack) theta.set(out.adapted.subarray(own, own + V), t * V);

    const stats = mlpLossGrad(layout, out.adapted, own, queryRows, p.wantMetaGrad ? grad : null);
    out.taskStats[2 * slot] = stats.loss;
    out.taskStats[2 * slot + 1] = stats.accuracy;
    if (!p.wantMetaGrad) continue;
    if (secondOrder) {
      // v ← v − α·H(point_s; S)·(M ⊙ v): the transpose of d θ'⁽ˢ⁺¹⁾/d θ'⁽ˢ⁾ = I − α M H (H symmetric).
      for (let s = n - 1; s >= 0; s--) {
        direction.fill(0);
        for (let k = mLo; k < mHi; k++) direction[k] = grad[k];
        mlpHvp(layout, points, s * V, supportRows, direction, 0, hv);
        for (let k = 0; k < V; k++) grad[k] -= alpha * hv[k];
      }
    }
    // φ starts at 0 for every task and is not meta-learned; pad entries hold nothing.
    grad.fill(0, layout.params);
    out.metaGrad.set(grad, own);
  }
}

/** AMP's inner optimizer: perturbed[0 … V) = θ' + Δ, θ' = adapted[own …], after `steps` ascent steps
 * Δ ← Δ + ζ∇L(θ'+Δ; S) from Δ = 0, each followed by projecting Δ of every tensor (each W_l, each b_l)
 * onto the L2 ball of radius ε. The context and pad entries are never perturbed. `grad` is scratch (V). */
export function mlpPerturb(perturbed: Float32Array, adapted: Float32Array, own: number, rows: MlpRows, layout: MlpLayout, perturb: PerturbParams, grad: Float64Array): void {
  perturbed.set(adapted.subarray(own, own + layout.vector));
  for (let i = 0; i < perturb.steps; i++) {
    mlpLossGrad(layout, perturbed, 0, rows, grad);
    for (const [start, stop] of layout.tensors) {
      for (let k = start; k < stop; k++) perturbed[k] += perturb.lr * grad[k];
      clipTensor(perturbed, adapted, own, start, stop, perturb.radius);
    }
  }
}

/** Projects perturbed[start … stop) onto the L2 ball of radius ε around adapted[own + start …]. */
export function clipTensor(perturbed: Float32Array, adapted: Float32Array, own: number, start: number, stop: number, radius: number): void {
  let sq = 0;
  for (let k = start; k < stop; k++) sq += (perturbed[k] - adapted[own + k]) ** 2;
  const norm = Math.sqrt(sq);
  if (!(norm > radius)) return;
  const scale = radius / norm;
  for (let k = start; k < stop; k++) perturbed[k] = adapted[own + k] + scale * (perturbed[k] - adapted[own + k]);
}

/** Sizes of an attack or a scoring: T tasks of `rows` rows of `dim` features; the vector of task t
 * starts at t·paramStride (0: one θ for every task). */
export interface MlpRowsShape {
  tasks: number;
  rows: number;
  dim: number;
  paramStride: number;
}

/** FGSM / PGD through the network (SPEC.md): k steps x ← clip(Π_ε(x + s·sign(∇x ℓ_r)), lo, hi) from the
 * clean rows, Π_ε the L∞ ball around them; sign(0) = 0. The gradient's sign is taken on float32-rounded
 * values (mlpInputGrad's float32 mode) and each bound and stepped value rounds to float32 where the
 * logistic attack (src/cpu/fgsm.ts) rounds them. */
export function mlpAttack(out: Float32Array, clean: RowSet, params: Float32Array, shape: MlpRowsShape, attack: AttackParams, layout: MlpLayout, taskRange?: [number, number]): void {
  const { rows: K, dim: D } = shape;
  const fround = Math.fround;
  const current = new Float32Array(K * D);
  const inputGrad = new Float64Array(K * D);
  const [first, end] = taskRange ?? [0, shape.tasks];
  for (let t = first; t < end; t++) {
    const off = t * K * D;
    current.set(clean.x.subarray(off, off + K * D));
    const rows: MlpRows = { x: current, xOff: 0, xStride: D, y: clean.y, yOff: t * K, rows: K };
    for (let i = 0; i < attack.steps; i++) {
      mlpInputGrad(layout, params, t * shape.paramStride, rows, inputGrad, { float32: true });
      for (let e = 0; e < K * D; e++) {
        const x0 = clean.x[off + e];
        let v = fround(current[e] + attack.stepSize * Math.sign(inputGrad[e]));
        const below = fround(x0 - attack.epsilon);
        const above = fround(x0 + attack.epsilon);
        v = v < below ? below : v > above ? above : v;
        current[e] = v < attack.lo ? attack.lo : v > attack.hi ? attack.hi : v;
      }
    }
    out.set(current, off);
  }
}

/** stats[2t], stats[2t + 1] = mean loss and accuracy of task t's vector on its rows of x, y. */
export function mlpScore(stats: Float32Array, x: Float32Array, y: Float32Array, params: Float32Array, shape: MlpRowsShape, layout: MlpLayout, taskRange?: [number, number]): void {
  const { rows: K, dim: D } = shape;
  const [first, end] = taskRange ?? [0, shape.tasks];
  for (let t = first; t < end; t++) {
    const s = mlpLossGrad(layout, params, t * shape.paramStride, { x, xOff: t * K * D, xStride: D, y, yOff: t * K, rows: K }, null);
    stats[2 * t] = s.loss;
    stats[2 * t + 1] = s.accuracy;
  }
}
