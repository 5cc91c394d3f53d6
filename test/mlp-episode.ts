// Random N-way episodes and the per-task arguments of the CPU MLP core (src/cpu/model-task.ts), shared by
// the MLP core's test files.
import { mlpLayout, mlpInit, type MlpLayout } from '../src/models/mlp.js';
import { modelTaskScratchSizes, type ModelTaskOutputs, type ModelTaskParams } from '../src/cpu/model-task.js';
import { mlpLossGrad, type MlpRows } from '../src/cpu/mlp.js';
import { uniform01 } from '../src/rng.js';
import { randomArray, randomClassLabels } from './helpers.js';

export interface Episode {
  layout: MlpLayout;
  tasks: number;
  Ks: number;
  Kq: number;
  support: { x: Float32Array; y: Float32Array };
  query: { x: Float32Array; y: Float32Array };
}

/** T tasks of Ks support and Kq query rows with inputs in [−2, 2] and random class labels. */
export function episode(dim: number, hidden: number[], classes: number, tasks: number, Ks: number, Kq: number, seed: number, norm = false, context = 0): Episode {
  return {
    layout: mlpLayout(dim, hidden, classes, context, norm), tasks, Ks, Kq,
    support: { x: randomArray(tasks * Ks * dim, seed, 1, -2, 2), y: randomClassLabels(tasks * Ks, classes, seed, 2) },
    query: { x: randomArray(tasks * Kq * dim, seed, 3, -2, 2), y: randomClassLabels(tasks * Kq, classes, seed, 4) },
  };
}

/** Zeroed outputs of `sets` task passes (Meta-SGD: 2V meta-gradient slots). */
export function outputsFor(e: Episode, sets = 1, stepSizes = false): ModelTaskOutputs {
  const sizes = modelTaskScratchSizes({ tasks: e.tasks, layout: e.layout, stepSizes }, sets);
  return { adapted: new Float32Array(sizes.adapted), metaGrad: new Float32Array(sizes.metaGrad), taskStats: new Float32Array(sizes.taskStats) };
}

/** MAML's task-pass parameters over the episode (order 2, α = 0.5, `innerSteps`), with `over` applied. */
export function paramsFor(e: Episode, over: Partial<ModelTaskParams>, innerSteps = 1): ModelTaskParams {
  return {
    tasks: e.tasks, supportRows: e.Ks, queryRows: e.Kq, dim: e.layout.dim, innerSteps, order: 2, wantMetaGrad: true, innerLr: 0.5, outSet: 0,
    layout: e.layout, adapt: 'all', thetaPerTask: false, perturb: null, ...over,
  };
}

/** He-initialised θ in float32 (what the engine holds, φ = 0), with nonzero biases: He init leaves b = 0,
 * and the biases' gradients should be exercised too. */
export function thetaOf(layout: MlpLayout, seed: number): Float32Array {
  const theta = mlpInit(layout, seed);
  for (const l of layout.layers) for (let j = l.b; j < l.b + l.outputs; j++) theta[j] = 0.3 * (uniform01(seed, 9, j) - 0.5);
  return theta;
}

/** Float64 SGD on the index range [lo, hi) of the vector (MAML: all of it; CAML: φ; ANIL: the head): the
 * oracle of the inner loop. */
export function sgd(layout: MlpLayout, start: Float64Array, rows: MlpRows, lr: number, steps: number, lo: number, hi: number): Float64Array {
  const p = start.slice();
  const g = new Float64Array(layout.vector);
  for (let s = 0; s < steps; s++) {
    mlpLossGrad(layout, p, 0, rows, g);
    for (let k = lo; k < hi; k++) p[k] -= lr * g[k];
  }
  return p;
}
