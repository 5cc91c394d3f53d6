// The float64 oracle of a model given as a list of layers and a loss (src/models/layers.ts), for ONE
// task's set: forward, the loss and its gradient, the exact Hessian-vector product (R-operator), the
// input gradient (attacks), and MAML's meta-gradient of one task at order 1 and 2. It iterates over the
// list and knows no layer: each kind's passes are in its own file (dense.ts, conv2d.ts, norm.ts,
// relu.ts, pool.ts), the losses in losses.ts. Plain loops, float64 throughout: the reference the fast
// paths and GPU kernels of conv nets are checked against (within a stated tolerance).
import { features, type LayerSpec, type NetLayout } from '../../models/layers.js';
import type { Floats, LayerContext, LayerOps } from './layer.js';
import { dense } from './dense.js';
import { conv2d } from './conv2d.js';
import { norm } from './norm.js';
import { relu } from './relu.js';
import { flatten, maxpool, meanpool } from './pool.js';
import { lossOf, lossR, type LossResult } from './losses.js';

const OPS: Record<LayerSpec['kind'], LayerOps> = { dense, conv2d, norm, relu, maxpool, meanpool, flatten };

/** The rows of one task's set: row r is x[xOff + r·F …) (F = the input's features), its label y[yOff + r]
 * (a class index for softmax-ce, a real target for mse). */
export interface NetRows {
  x: Floats;
  xOff: number;
  y: Floats;
  yOff: number;
  rows: number;
  /** The prototypical loss: the episode's first rows are its support rows. */
  episodeSupport?: number;
}

/** One forward pass: the input of every layer (acts[0] the rows, acts[L] the outputs) and the
 * layers' contexts. */
export interface NetTape {
  acts: Float64Array[];
  ctx: LayerContext[];
  rows: number;
}

export function netForward(layout: NetLayout, p: Floats, x: Floats, xOff: number, rows: number): NetTape {
  const F = features(layout.input);
  const acts: Float64Array[] = [Float64Array.from(x.subarray(xOff, xOff + rows * F))];
  const ctx: LayerContext[] = [];
  for (const l of layout.layers) {
    const c: LayerContext = {};
    acts.push(OPS[l.spec.kind].forward(l, p, acts[acts.length - 1], rows, c));
    ctx.push(c);
  }
  return { acts, ctx, rows };
}

/** The model's outputs (rows × outputs): logits, or the regression's predictions. */
export function netOutputs(layout: NetLayout, p: Floats, x: Floats, xOff: number, rows: number): Float64Array {
  const tape = netForward(layout, p, x, xOff, rows);
  return tape.acts[tape.acts.length - 1];
}

/** Backward from the loss: fills `grad` (if given) with ∂L/∂θ and returns the δ of every layer's input
 * (deltas[0]: ∂L/∂x). */
function backward(layout: NetLayout, p: Floats, tape: NetTape, result: LossResult, grad: Float64Array | null): Float64Array[] {
  const L = layout.layers.length;
  const deltas: Float64Array[] = new Array(L + 1);
  deltas[L] = result.dZ;
  for (let i = L - 1; i >= 0; i--) {
    const l = layout.layers[i];
    const ops = OPS[l.spec.kind];
    if (grad) ops.weightGrad(l, tape.acts[i], deltas[i + 1], tape.rows, grad);
    deltas[i] = ops.backward(l, p, tape.acts[i], deltas[i + 1], tape.rows, tape.ctx[i]);
  }
  return deltas;
}

/** Mean loss and metric over the set; `grad` (length layout.params) receives ∂L/∂θ when given. */
export function netLossGrad(layout: NetLayout, p: Floats, rows: NetRows, grad: Float64Array | null): { loss: number; metric: number } {
  const tape = netForward(layout, p, rows.x, rows.xOff, rows.rows);
  const result = lossOf(layout.loss, tape.acts[tape.acts.length - 1], rows.rows, rows.y, rows.yOff, rows.episodeSupport);
  if (grad) {
    grad.fill(0);
    backward(layout, p, tape, result, grad);
  }
  return { loss: result.loss, metric: result.metric };
}

/** ∂L/∂x (rows × input features) of the mean loss over the set: what FGSM and PGD step along. */
export function netInputGrad(layout: NetLayout, p: Floats, rows: NetRows): Float64Array {
  const tape = netForward(layout, p, rows.x, rows.xOff, rows.rows);
  const result = lossOf(layout.loss, tape.acts[tape.acts.length - 1], rows.rows, rows.y, rows.yOff, rows.episodeSupport);
  return backward(layout, p, tape, result, null)[0];
}

/** H·v, the Hessian of the mean loss over the set in θ times v (Pearlmutter's R-operator: the forward
 * and backward passes again, each with its directional derivative along v; the input is data: R(x) = 0). */
export function netHvp(layout: NetLayout, p: Floats, rows: NetRows, v: Floats): Float64Array {
  const tape = netForward(layout, p, rows.x, rows.xOff, rows.rows);
  const L = layout.layers.length;
  const R: Float64Array[] = [new Float64Array(tape.acts[0].length)];
  for (let i = 0; i < L; i++) {
    const l = layout.layers[i];
    R.push(OPS[l.spec.kind].rForward(l, p, v, tape.acts[i], R[i], rows.rows, tape.ctx[i]));
  }
  const result = lossOf(layout.loss, tape.acts[L], rows.rows, rows.y, rows.yOff);
  const deltas = backward(layout, p, tape, result, null);
  const Hv = new Float64Array(layout.params);
  let Rd = lossR(layout.loss, result, R[L], rows.rows);
  for (let i = L - 1; i >= 0; i--) {
    const l = layout.layers[i];
    Rd = OPS[l.spec.kind].rBackward(l, p, v, tape.acts[i], R[i], deltas[i + 1], Rd, rows.rows, tape.ctx[i], Hv);
  }
  return Hv;
}

export interface NetMetaGradient {
  /** ∂/∂θ of the query loss at the adapted parameters (order 2), or the query gradient there (order 1). */
  grad: Float64Array;
  queryLoss: number;
  queryMetric: number;
  adapted: Float64Array;
}

/**
 * MAML for one task: θ' = θ − α Σ_k ∇L_s(θ_k) over `steps` inner SGD steps, then the query loss at θ'.
 * Order 2 (exact): g = (I − αH_0)(I − αH_1)…(I − αH_{K−1}) ∇L_q(θ'), applied right to left with one
 * Hessian-vector product per step; order 1: g = ∇L_q(θ') (the inner gradients as constants).
 */
export function netMetaGradient(layout: NetLayout, theta: Floats, support: NetRows, query: NetRows, options: { lr: number; steps: number; order: 1 | 2 }): NetMetaGradient {
  const points: Float64Array[] = [];
  let current = Float64Array.from(theta);
  const g = new Float64Array(layout.params);
  for (let k = 0; k < options.steps; k++) {
    points.push(current);
    netLossGrad(layout, current, support, g);
    current = current.map((v, i) => v - options.lr * g[i]);
  }
  const grad = new Float64Array(layout.params);
  const q = netLossGrad(layout, current, query, grad);
  if (options.order === 2) {
    for (let k = options.steps - 1; k >= 0; k--) {
      const Hv = netHvp(layout, points[k], support, grad);
      for (let i = 0; i < grad.length; i++) grad[i] -= options.lr * Hv[i];
    }
  }
  return { grad, queryLoss: q.loss, queryMetric: q.metric, adapted: current };
}
