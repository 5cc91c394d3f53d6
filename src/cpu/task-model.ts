// The seam between the MAML core (src/cpu/model-task.ts) and a model on the CPU: the operations the core
// calls on one task's rows, at one point of the parameter space. The core knows no layer; each model
// kind gives these operations — the MLP's fused fast kernels (src/cpu/mlp-fast.ts, bit-identical to its
// float64 reference) and the layer-list nets (src/cpu/net/fast.ts: conv, pooling, norm, dense).
import type { ModelLayout } from '../models/model.js';
import { MlpWorkspace, mlpWorkspace } from './mlp-fast.js';
import { netWorkspace } from './net/fast.js';

/** The rows of one task's set: row r is x[xOff + r·xStride …] (layout.dim features), its label
 * y[yOff + r] (a class index, or a real target under MSE). */
export interface TaskRows {
  x: Float32Array | Float64Array;
  xOff: number;
  xStride: number;
  y: Float32Array | Float64Array;
  yOff: number;
  rows: number;
  /** The prototypical loss (protonet): the first rows of the episode are its support rows, whose class
   * means are the prototypes; the loss and metric are over the rest. */
  episodeSupport?: number;
}

/** Rows a pass's loss and metric are means over: every row, or an episode's query rows. */
export function scoredRows(rows: TaskRows): number {
  return rows.rows - (rows.episodeSupport ?? 0);
}

/** A point of the parameter space: the parameters from P at pOff, the context φ from phi at phiOff. */
export interface TaskPoint {
  P: Float32Array;
  pOff: number;
  phi: Float32Array;
  phiOff: number;
}

/** What a pass over one set leaves: the loss and metric sums (hits for accuracy, squared errors for
 * MSE) and whatever the model's backward and R passes need. */
export interface TaskTape {
  readonly rows: number;
  lossSum: number;
  metricSum: number;
}

/** The adapted index set M of an inner loop: every parameter (MAML), the context φ (CAML), the head (ANIL). */
export type AdaptedSet = 'all' | 'context' | 'head';

export interface TaskModel<Tape extends TaskTape = TaskTape> {
  readonly layout: ModelLayout;
  pointAt(P: Float32Array, pOff: number): TaskPoint;
  /** The tape named `name` for `rows` rows (kept across calls: the order-2 backward reuses them). */
  tape(name: string, rows: number): Tape;
  /** Named scratch vectors (kept across calls). */
  f32(name: string, length: number): Float32Array;
  f64(name: string, length: number): Float64Array;
  /** ANIL: the forward of everything below the head (the body does not move in the inner loop). */
  forwardBody(pt: TaskPoint, rows: TaskRows, tape: Tape): void;
  /** Forward, mean loss, and (withDeltas) the backward at pt on rows. */
  lossAndDeltas(pt: TaskPoint, rows: TaskRows, tape: Tape, withDeltas: boolean): void;
  /** ANIL: the head's forward and loss on a tape whose body activations forwardBody computed. */
  headLossAndDeltas(pt: TaskPoint, rows: TaskRows, tape: Tape): void;
  /** ∇L over the whole per-task vector (φ included, pad 0) into o64[oOff …]. */
  gradientInto(pt: TaskPoint, tape: Tape, o64: Float64Array, oOff: number): void;
  /** ∇L's parameter entries as float32 into o32[oOff …]; φ and pad entries 0 (order 1's meta-gradient). */
  weightGradientInto32(tape: Tape, o32: Float32Array, oOff: number): void;
  /** dst = src − α∇L on every parameter and φ (float32; pad copied). */
  sgdStepAll(pt: TaskPoint, tape: Tape, alpha: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number): void;
  /** dst = src with the head stepped by −α∇L (ANIL). */
  sgdStepHead(tape: Tape, alpha: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number): void;
  /** Meta-SGD: grad[gOff …] = ∇L (kept), dst = src − α ⊙ grad with α = stepSizes[aOff …]. */
  sgdStepScaled(pt: TaskPoint, tape: Tape, stepSizes: Float32Array, aOff: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number, grad: Float64Array, gOff: number): void;
  /** φ's gradient into g[0 … C). */
  contextGradient(pt: TaskPoint, tape: Tape, g: Float64Array): void;
  /** v ← v − α·H(pt)·(M ⊙ v) in place. */
  hvpStep(pt: TaskPoint, tape: Tape, v: Float64Array, vOff: number, alpha: number, mask: AdaptedSet): void;
  /** Meta-SGD's order-2 step: v ← v − H(pt)·(α ⊙ v), α = stepSizes[aOff …]; direction: scratch. */
  hvpStepScaled(pt: TaskPoint, tape: Tape, v: Float64Array, vOff: number, stepSizes: Float32Array, aOff: number, direction: Float64Array): void;
  /** Mean loss and metric at P[pOff …] on rows (scoring). */
  lossGrad(P: Float32Array, pOff: number, rows: TaskRows, grad: Float64Array | null, gOff?: number): { loss: number; metric: number };
  /** out[r·D + d] = ∂ℓ_r/∂x_r[d], row r's own loss (attacks); float32: the MLP's float32-rounded mode. */
  inputGrad(P: Float32Array, pOff: number, rows: TaskRows, out: Float64Array, float32: boolean): void;
}

/** This thread's model operations for the layout (MlpWorkspace for the MLP, NetWorkspace for layer lists). */
export function taskModelFor(layout: ModelLayout): TaskModel {
  return layout.kind === 'net' ? netWorkspace(layout) : mlpWorkspace(layout);
}

export { MlpWorkspace };
