// The neural model (../shared/SPEC.md "Neural models"): an MLP body with an N-way softmax head, as data
// (its layer sizes) plus named views into one flat parameter vector, the llm.c way. Every kernel, twin
// and engine reads offsets from MlpLayout and nothing else.
//
// Per-task parameter vector (what θ, θ'_t, meta-gradients and directions hold, `vector` floats):
//   [ W_1 (in_1 × h_1, row-major) | b_1 | W_2 | b_2 | … | W_L | b_L | φ (context, C floats) | zero pad ]
// The first `params` floats are the public layout (getParams/setParams/checkpoints). CAML's context φ
// is input columns D … D+C−1 of layer 1 (W_1 has D + C rows, the context rows last); it lives after the
// parameters so that an adapted vector carries its own context. It is 0 in θ and never meta-learned.
import { normal, STREAM } from '../rng.js';
import { roundUp4 } from '../kernels/layout.js';
import type { Conv4ModelSpec, LayersModelSpec } from './layers.js';

/** The binary logistic unit of the seeds (default). */
export interface LogisticModelSpec {
  kind: 'logistic';
}

/** An MLP with ReLU hidden layers and an N-way softmax head; hidden: [] is multinomial logistic
 * regression. With loss: 'mse' it is a regressor instead (MlpRegressorSpec). */
export interface MlpModelSpec {
  kind: 'mlp';
  /** Hidden layer widths, input side first, e.g. [256, 128, 64, 64]. */
  hidden: number[];
  /** N, the classes of the softmax head (labels 0 … N−1). */
  classes: number;
  /** 'task': every hidden unit is normalised over the rows of the task's current set (mean 0, variance 1,
   * ε = TASK_NORM_EPS, no affine parameters), before its ReLU: the transductive batch norm of MAML's own
   * networks. Default 'none'. */
  norm?: 'none' | 'task';
  loss?: 'softmax-ce';
}

/** An MLP regressor: ReLU hidden layers and one real output under the mean squared error (labels: real
 * targets; metric: MSE), e.g. MAML's sinusoid net { kind: 'mlp', hidden: [40, 40], loss: 'mse' }
 * (1-40-40-1). It runs as the layer list dense → (norm) → relu … → dense(1) (src/models/model.ts). */
export interface MlpRegressorSpec {
  kind: 'mlp';
  hidden: number[];
  loss: 'mse';
  norm?: 'none' | 'task';
}

/** ε of the per-task normalisation: n = (z − μ) / √(σ² + ε) (MAML's reference value). */
export const TASK_NORM_EPS = 1e-3;

export type ModelSpec = LogisticModelSpec | MlpModelSpec | MlpRegressorSpec | Conv4ModelSpec | LayersModelSpec;

/** One affine layer: W (inputs × outputs, row-major) at float offset w, b (outputs) at offset b. */
export interface LayerView {
  inputs: number;
  outputs: number;
  w: number;
  b: number;
}

export interface MlpLayout {
  kind: 'mlp';
  /** Features per row of the data (D). */
  dim: number;
  /** CAML context size C (0 otherwise). */
  context: number;
  /** Inputs of layer 1: D + C. */
  inputs: number;
  classes: number;
  /** Widths h_0 = D + C, h_1, …, h_L = N. */
  widths: number[];
  layers: LayerView[];
  /** Public parameter count: Σ_l (h_{l−1} + 1)·h_l. */
  params: number;
  /** Offset of φ in the per-task vector (= params). */
  contextOffset: number;
  /** Floats per per-task vector: params + context rounded up to a multiple of 4. */
  vector: number;
  /** The tensors (each W_l, each b_l, in layout order) as [start, end) ranges: AMP clips Δ on each. */
  tensors: [number, number][];
  /** Per-task normalisation of the hidden layers (model.norm === 'task'). */
  norm: boolean;
}

export function mlpLayout(dim: number, hidden: readonly number[], classes: number, context = 0, norm = false): MlpLayout {
  const inputs = dim + context;
  const widths = [inputs, ...hidden, classes];
  const layers: LayerView[] = [];
  const tensors: [number, number][] = [];
  let offset = 0;
  for (let l = 1; l < widths.length; l++) {
    const w = offset;
    const b = w + widths[l - 1] * widths[l];
    offset = b + widths[l];
    layers.push({ inputs: widths[l - 1], outputs: widths[l], w, b });
    tensors.push([w, b], [b, offset]);
  }
  return { kind: 'mlp', dim, context, inputs, classes, widths, layers, params: offset, contextOffset: offset, vector: roundUp4(offset + context), tensors, norm };
}

/** He-normal W_l ~ N(0, 2 / h_{l−1}), b_l = 0, φ = 0, from the seed (the same on every backend). */
export function mlpInit(layout: MlpLayout, seed: number, counterBase = 0): Float32Array {
  const theta = new Float32Array(layout.vector);
  for (const layer of layout.layers) {
    const scale = Math.sqrt(2 / layer.inputs);
    for (let i = layer.w; i < layer.b; i++) theta[i] = scale * normal(seed, STREAM.init, counterBase + i);
  }
  return theta;
}
