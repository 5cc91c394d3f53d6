// CPU twin of shaders/maml-task.wgsl: the per-task half of a MAML-family meta-iteration (inner loop,
// optionally with AMP's perturbed gradient or Meta-SGD's learned step sizes; query statistics; first- or
// second-order meta-gradient), same inputs and outputs, task by task.
import { logitsToResidual, rowDots, rowsTransposeTimes, sigmoid } from './logistic.js';
import { clipToBall } from './norm-clip.js';

/** Rows and labels of one side (support or query) of a batch. */
export interface RowSet {
  x: Float32Array;
  y: Float32Array;
}

export interface PerturbParams {
  /** N ascent steps (0 = plain SGD inner step). */
  steps: number;
  /** ζ */
  lr: number;
  /** ε, radius of the L2 ball */
  radius: number;
}

/** What every per-task pass (maml-task, caml-task) is told: sizes, inner loop, output set. */
export interface TaskPassParams {
  tasks: number;
  supportRows: number;
  queryRows: number;
  dim: number;
  innerSteps: number;
  order: 1 | 2;
  wantMetaGrad: boolean;
  innerLr: number;
  /** Outputs of task t go to slot outSet·T + t. */
  outSet: number;
  /** GPU only: this dispatch is a chunk of a bigger batch, starting at task `base` of `slotTasks`. */
  chunk?: { base: number; slotTasks: number };
}

export interface TaskParams extends TaskPassParams {
  /** false: one θ for every task; true: θ holds one model per task (AMP). */
  thetaPerTask: boolean;
  perturb: PerturbParams | null;
  /** θ_t ← θ'_t after the inner loop (AMP's plain training; needs thetaPerTask). */
  writeBack?: boolean;
  /**
   * Meta-SGD: θ holds [θ | α] (α at D here, at paddedDim on the GPU), the inner step is θ' ← θ' − α ⊙ g
   * (innerLr unused), and each metaGrad slot holds [g_θ | g_α]. Needs thetaPerTask = false, perturb = null.
   */
  stepSizes?: boolean;
}

export interface TaskOutputs {
  adapted: Float32Array;      // sets×T×D
  metaGrad: Float32Array;     // sets×T×D, or sets×T×2D [g_θ | g_α] with stepSizes (untouched when wantMetaGrad is false)
  supportProb: Float32Array;  // sets×T×max(n,1)×Ks
  taskStats: Float32Array;    // sets×T×2
  perturbed: Float32Array;    // sets×T×D: θ'+Δ of the last inner step (AMP)
}

export function taskScratchSizes(p: { tasks: number; supportRows: number; dim: number; innerSteps: number; stepSizes?: boolean }, sets = 1) {
  const perSet = {
    adapted: p.tasks * p.dim,
    metaGrad: p.tasks * p.dim * (p.stepSizes ? 2 : 1),
    supportProb: p.tasks * Math.max(p.innerSteps, 1) * p.supportRows,
    taskStats: p.tasks * 2,
  };
  return {
    adapted: sets * perSet.adapted,
    metaGrad: sets * perSet.metaGrad,
    supportProb: sets * perSet.supportProb,
    taskStats: sets * perSet.taskStats,
    perturbed: sets * perSet.adapted,
  };
}

/** rowVal holds the support logits (rowDots): σ into prob[probAt …], then rowVal = σ − y (y from y[yAt …]). */
function supportResiduals(rowVal: Float64Array, prob: Float32Array, probAt: number, y: Float32Array, yAt: number, Ks: number): void {
  for (let r = 0; r < Ks; r++) {
    const sigma = sigmoid(rowVal[r]);
    prob[probAt + r] = sigma;
    rowVal[r] = sigma - y[yAt + r];
  }
}

/** Query loss and accuracy of task t's adapted vector (slot) into taskStats; leaves σ − y in rowVal. */
function scoreQuery(out: TaskOutputs, rowVal: Float64Array, query: RowSet, t: number, slot: number, Kq: number, D: number): void {
  rowDots(rowVal, query.x, t * Kq * D, Kq, out.adapted, slot * D, D);
  const [loss, acc] = logitsToResidual(rowVal, query.y, t * Kq, Kq);
  out.taskStats[2 * slot] = loss;
  out.taskStats[2 * slot + 1] = acc;
}

/** taskRange [first, end) restricts the work to those tasks (the CPU engine's worker threads split T). */
export function adaptAndMetaGrad(out: TaskOutputs, support: RowSet, query: RowSet, theta: Float32Array, p: TaskParams, taskRange?: [number, number]): void {
  if (p.stepSizes) {
    adaptWithStepSizes(out, support, query, theta, p, taskRange);
    return;
  }
  const { dim: D, supportRows: Ks, queryRows: Kq, innerSteps: n, innerLr } = p;
  const rowVal = new Float64Array(Math.max(Ks, Kq));
  const [first, end] = taskRange ?? [0, p.tasks];
  for (let t = first; t < end; t++) {
    const slot = p.outSet * p.tasks + t;
    const own = slot * D;
    const sx = t * Ks * D;
    const qx = t * Kq * D;
    const probOff = slot * Math.max(n, 1) * Ks;
    out.adapted.set(theta.subarray(p.thetaPerTask ? t * D : 0, (p.thetaPerTask ? t * D : 0) + D), own);
    for (let s = 0; s < n; s++) {
      let point = out.adapted;
      if (p.perturb && p.perturb.steps > 0) {
        out.perturbed.set(out.adapted.subarray(own, own + D), own);
        for (let i = 0; i < p.perturb.steps; i++) {
          rowDots(rowVal, support.x, sx, Ks, out.perturbed, own, D);
          for (let r = 0; r < Ks; r++) rowVal[r] = sigmoid(rowVal[r]) - support.y[t * Ks + r];
          rowsTransposeTimes(out.perturbed, own, support.x, sx, Ks, rowVal, D, p.perturb.lr / Ks, true);
          clipToBall(out.perturbed, out.adapted, own, D, p.perturb.radius);
        }
        point = out.perturbed;
      }
      rowDots(rowVal, support.x, sx, Ks, point, own, D);
      supportResiduals(rowVal, out.supportProb, probOff + s * Ks, support.y, t * Ks, Ks);
      rowsTransposeTimes(out.adapted, own, support.x, sx, Ks, rowVal, D, -innerLr / Ks, true);
    }
    if (p.writeBack) theta.set(out.adapted.subarray(own, own + D), t * D);
    scoreQuery(out, rowVal, query, t, slot, Kq, D);
    if (!p.wantMetaGrad) continue;
    rowsTransposeTimes(out.metaGrad, own, query.x, qx, Kq, rowVal, D, 1 / Kq, false);
    if (p.order === 2) {
      for (let s = n; s > 0; s--) {
        rowDots(rowVal, support.x, sx, Ks, out.metaGrad, own, D);
        for (let r = 0; r < Ks; r++) {
          const prob = out.supportProb[probOff + (s - 1) * Ks + r];
          rowVal[r] *= prob * (1 - prob);
        }
        rowsTransposeTimes(out.metaGrad, own, support.x, sx, Ks, rowVal, D, -innerLr / Ks, true);
      }
    }
  }
}

/** Meta-SGD's settings are programming errors when combined with per-task models or AMP's inner optimizer. */
export function checkStepSizes(p: TaskParams): void {
  if (p.stepSizes && (p.thetaPerTask || p.perturb || p.writeBack)) {
    throw new Error('maml-task: stepSizes (Meta-SGD) needs one shared θ (thetaPerTask false, no writeBack) and perturb null');
  }
}

/**
 * adaptAndMetaGrad with Meta-SGD's learned per-parameter step sizes α = theta[D … 2D):
 *   inner        θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ⊙ g_s,  g_s = ∇L(θ'⁽ˢ⁾; S)
 *   meta-grad    v_n = ∇L(θ'⁽ⁿ⁾; Q);  order 1: g_θ = v_n, g_α = −(Σ_s g_s) ⊙ v_n
 *                order 2: for s = n−1 … 0: g_α −= g_s ⊙ v_{s+1}, v_s = v_{s+1} − H_s (α ⊙ v_{s+1}); g_θ = v_0
 * g_s is rebuilt in the backward pass from the stored σ_s. Float32 rounding points follow the kernel's:
 * g_s, α ⊙ v and the two transpose products are float32 values there (registers), so they are stored in
 * float32 scratch here.
 */
function adaptWithStepSizes(out: TaskOutputs, support: RowSet, query: RowSet, theta: Float32Array, p: TaskParams, taskRange?: [number, number]): void {
  checkStepSizes(p);
  const { dim: D, supportRows: Ks, queryRows: Kq, innerSteps: n } = p;
  const rowVal = new Float64Array(Math.max(Ks, Kq));
  const residual = new Float64Array(Ks);    // σ_s − y, to rebuild g_s in the backward pass
  const innerGrad = new Float32Array(D);    // g_s
  const hessTimes = new Float32Array(D);    // H_s (α ⊙ v)
  const alphaTimesV = new Float32Array(D);  // α ⊙ v
  const [first, end] = taskRange ?? [0, p.tasks];
  for (let t = first; t < end; t++) {
    const slot = p.outSet * p.tasks + t;
    const own = slot * D;
    const gradTheta = 2 * slot * D;
    const gradAlpha = gradTheta + D;
    const sx = t * Ks * D;
    const qx = t * Kq * D;
    const probOff = slot * Math.max(n, 1) * Ks;
    // Order 1 sums the inner gradients into g_α's slot on the way (metaGrad stays untouched in evaluation).
    const sumInner = p.wantMetaGrad && p.order === 1;
    if (p.wantMetaGrad) out.metaGrad.fill(0, gradAlpha, gradAlpha + D);
    out.adapted.set(theta.subarray(0, D), own);
    for (let s = 0; s < n; s++) {
      rowDots(rowVal, support.x, sx, Ks, out.adapted, own, D);
      supportResiduals(rowVal, out.supportProb, probOff + s * Ks, support.y, t * Ks, Ks);
      rowsTransposeTimes(innerGrad, 0, support.x, sx, Ks, rowVal, D, 1 / Ks, false);
      for (let d = 0; d < D; d++) {
        out.adapted[own + d] -= theta[D + d] * innerGrad[d];
        if (sumInner) out.metaGrad[gradAlpha + d] += innerGrad[d];
      }
    }
    scoreQuery(out, rowVal, query, t, slot, Kq, D);
    if (!p.wantMetaGrad) continue;
    rowsTransposeTimes(out.metaGrad, gradTheta, query.x, qx, Kq, rowVal, D, 1 / Kq, false);
    if (p.order === 1) {
      for (let d = 0; d < D; d++) out.metaGrad[gradAlpha + d] = -out.metaGrad[gradAlpha + d] * out.metaGrad[gradTheta + d];
      continue;
    }
    for (let s = n; s > 0; s--) {
      // g_θ's slot holds v_s (v_n first); step s−1 used σ_{s−1}.
      for (let d = 0; d < D; d++) alphaTimesV[d] = theta[D + d] * out.metaGrad[gradTheta + d];
      rowDots(rowVal, support.x, sx, Ks, alphaTimesV, 0, D);
      for (let r = 0; r < Ks; r++) {
        const prob = out.supportProb[probOff + (s - 1) * Ks + r];
        residual[r] = prob - support.y[t * Ks + r];
        rowVal[r] *= prob * (1 - prob);
      }
      rowsTransposeTimes(hessTimes, 0, support.x, sx, Ks, rowVal, D, 1 / Ks, false);
      rowsTransposeTimes(innerGrad, 0, support.x, sx, Ks, residual, D, 1 / Ks, false);
      for (let d = 0; d < D; d++) {
        const v = out.metaGrad[gradTheta + d];
        out.metaGrad[gradAlpha + d] -= innerGrad[d] * v;
        out.metaGrad[gradTheta + d] = v - hessTimes[d];
      }
    }
  }
}
