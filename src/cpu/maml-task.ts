// CPU twin of shaders/maml-task.wgsl: the per-task half of a MAML-family meta-iteration (inner loop,
// optionally with AMP's perturbed gradient; query statistics; first- or second-order meta-gradient),
// same inputs and outputs, task by task.
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
}

export interface TaskOutputs {
  adapted: Float32Array;      // sets×T×D
  metaGrad: Float32Array;     // sets×T×D (untouched when wantMetaGrad is false)
  supportProb: Float32Array;  // sets×T×max(n,1)×Ks
  taskStats: Float32Array;    // sets×T×2
  perturbed: Float32Array;    // sets×T×D: θ'+Δ of the last inner step (AMP)
}

export function taskScratchSizes(p: { tasks: number; supportRows: number; dim: number; innerSteps: number }, sets = 1) {
  const perSet = {
    adapted: p.tasks * p.dim,
    metaGrad: p.tasks * p.dim,
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

/** taskRange [first, end) restricts the work to those tasks (the CPU engine's worker threads split T). */
export function adaptAndMetaGrad(out: TaskOutputs, support: RowSet, query: RowSet, theta: Float32Array, p: TaskParams, taskRange?: [number, number]): void {
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
      for (let r = 0; r < Ks; r++) {
        const prob = sigmoid(rowVal[r]);
        out.supportProb[probOff + s * Ks + r] = prob;
        rowVal[r] = prob - support.y[t * Ks + r];
      }
      rowsTransposeTimes(out.adapted, own, support.x, sx, Ks, rowVal, D, -innerLr / Ks, true);
    }
    if (p.writeBack) theta.set(out.adapted.subarray(own, own + D), t * D);
    rowDots(rowVal, query.x, qx, Kq, out.adapted, own, D);
    const [loss, acc] = logitsToResidual(rowVal, query.y, t * Kq, Kq);
    out.taskStats[2 * slot] = loss;
    out.taskStats[2 * slot + 1] = acc;
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
