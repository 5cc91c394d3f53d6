// Baselines that need no training: 1-nearest-neighbour on the raw inputs, the field's pixel baseline
// for N-way few-shot tasks (each query row takes the label of the closest support row of its task).
import { meanWithInterval } from './stats.js';
import type { CheckedBatch, MeanWithInterval } from './types.js';

/** Per-task query accuracy of 1-NN (squared Euclidean distance; ties go to the first support row). */
export function nearestNeighbourAccuracy(batch: CheckedBatch): { taskAccuracy: Float32Array; accuracy: MeanWithInterval } {
  const { tasks: T, supportShots: Ks, queryShots: Kq } = batch;
  const D = batch.supportX.length / (T * Ks);
  const taskAccuracy = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    let hits = 0;
    for (let q = 0; q < Kq; q++) {
      const qOff = (t * Kq + q) * D;
      let best = Infinity;
      let label = -1;
      for (let s = 0; s < Ks; s++) {
        const sOff = (t * Ks + s) * D;
        let d2 = 0;
        for (let d = 0; d < D; d++) {
          const diff = batch.queryX[qOff + d] - batch.supportX[sOff + d];
          d2 += diff * diff;
        }
        if (d2 < best) { best = d2; label = batch.supportY[t * Ks + s]; }
      }
      if (label === batch.queryY[t * Kq + q]) hits++;
    }
    taskAccuracy[t] = hits / Kq;
  }
  return { taskAccuracy, accuracy: meanWithInterval(taskAccuracy) };
}
