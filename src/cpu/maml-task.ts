// CPU twin of shaders/maml-task.wgsl: the per-task half of a MAML meta-iteration (inner loop, query
// statistics, first- or second-order meta-gradient), same inputs and outputs, task by task.
import { logitsToResidual, rowDots, rowsTransposeTimes, sigmoid } from './logistic.js';

export interface TaskData {
  supportX: Float32Array;
  supportY: Float32Array;
  queryX: Float32Array;
  queryY: Float32Array;
}

export interface TaskParams {
  tasks: number;
  supportRows: number;
  queryRows: number;
  dim: number;
  innerSteps: number;
  order: 1 | 2;
  wantMetaGrad: boolean;
  innerLr: number;
}

export interface TaskOutputs {
  adapted: Float32Array;      // T×D
  metaGrad: Float32Array;     // T×D (untouched when wantMetaGrad is false)
  supportProb: Float32Array;  // T×max(n,1)×Ks
  taskStats: Float32Array;    // T×2
}

export function taskScratchSizes(p: Pick<TaskParams, 'tasks' | 'supportRows' | 'dim' | 'innerSteps'>) {
  return {
    adapted: p.tasks * p.dim,
    metaGrad: p.tasks * p.dim,
    supportProb: p.tasks * Math.max(p.innerSteps, 1) * p.supportRows,
    taskStats: p.tasks * 2,
  };
}

export function adaptAndMetaGrad(out: TaskOutputs, data: TaskData, theta: Float32Array, p: TaskParams): void {
  const { dim: D, supportRows: Ks, queryRows: Kq, innerSteps: n, innerLr } = p;
  const rowVal = new Float64Array(Math.max(Ks, Kq));
  for (let t = 0; t < p.tasks; t++) {
    const own = t * D;
    const sx = t * Ks * D;
    const qx = t * Kq * D;
    const probOff = t * Math.max(n, 1) * Ks;
    out.adapted.set(theta, own);
    for (let s = 0; s < n; s++) {
      rowDots(rowVal, data.supportX, sx, Ks, out.adapted, own, D);
      for (let r = 0; r < Ks; r++) {
        const prob = sigmoid(rowVal[r]);
        out.supportProb[probOff + s * Ks + r] = prob;
        rowVal[r] = prob - data.supportY[t * Ks + r];
      }
      rowsTransposeTimes(out.adapted, own, data.supportX, sx, Ks, rowVal, D, -innerLr / Ks, true);
    }
    rowDots(rowVal, data.queryX, qx, Kq, out.adapted, own, D);
    const [loss, acc] = logitsToResidual(rowVal, data.queryY, t * Kq, Kq);
    out.taskStats[2 * t] = loss;
    out.taskStats[2 * t + 1] = acc;
    if (!p.wantMetaGrad) continue;
    rowsTransposeTimes(out.metaGrad, own, data.queryX, qx, Kq, rowVal, D, 1 / Kq, false);
    if (p.order === 2) {
      for (let s = n; s > 0; s--) {
        rowDots(rowVal, data.supportX, sx, Ks, out.metaGrad, own, D);
        for (let r = 0; r < Ks; r++) {
          const prob = out.supportProb[probOff + (s - 1) * Ks + r];
          rowVal[r] *= prob * (1 - prob);
        }
        rowsTransposeTimes(out.metaGrad, own, data.supportX, sx, Ks, rowVal, D, -innerLr / Ks, true);
      }
    }
  }
}
