// The MAML core (docs/neural-models.md "The seam"), task by task on the CPU, over any model with a
// TaskModel (src/cpu/task-model.ts: the MLP's fused kernels, or a list of layers — conv, pooling, norm,
// dense): inner loop on the adapted index set M (MAML: every parameter; CAML: the context φ only; ANIL:
// the head only), optionally with AMP's perturbed gradient or Meta-SGD's learned per-parameter step
// sizes; query statistics; first- or second-order meta-gradient. Also the FGSM / PGD attack through the
// network and the scoring of given rows. It knows no layer. Same contract as adaptAndMetaGrad
// (src/cpu/maml-task.ts): per-task vectors are stored as float32 (as on the GPU), gradients and
// Hessian-vector products are float64 sums (for the MLP, the same sums in the same order as its float64
// reference src/cpu/mlp.ts).
import type { ModelLayout } from '../models/model.js';
import type { AttackParams } from './fgsm.js';
import type { PerturbParams, RowSet, TaskPassParams } from './maml-task.js';
import { scoredRows, taskModelFor, type TaskModel, type TaskPoint, type TaskRows, type TaskTape } from './task-model.js';

export interface ModelTaskParams extends TaskPassParams {
  layout: ModelLayout;
  /** The adapted index set M: 'all' parameters (MAML, ADML, GA-MAML, AMP, Meta-SGD), the 'context' φ
   * (CAML) or the 'head' W_L, b_L (ANIL: the body stays θ's; no context, no perturbation). */
  adapt: 'all' | 'context' | 'head';
  /** false: one θ for every task; true: θ holds one vector per task, stride layout.vector (AMP). */
  thetaPerTask: boolean;
  perturb: PerturbParams | null;
  /** θ_t ← θ'_t after the inner loop (AMP's plain training; needs thetaPerTask). */
  writeBack?: boolean;
  /** Meta-SGD (default false): θ holds [θ (V floats) | α (V floats, pad entries ignored)], the inner step
   * is θ' − α ⊙ ∇L (innerLr unused), and each metaGrad slot holds [g_θ | g_α] (2V floats, pads 0). Only
   * with adapt 'all', one θ (thetaPerTask false, no writeBack), no perturbation and no context. */
  stepSizes?: boolean;
  /** Protonet: the query rows are each task's episode (support then query rows, queryRows in all) and
   * the first episodeSupport of them its support rows; innerSteps 0. */
  episodeSupport?: number;
}

export interface ModelTaskOutputs {
  adapted: Float32Array;    // sets×T×V: θ'_t⁽ⁿ⁾ (CAML: θ with the task's adapted φ)
  metaGrad: Float32Array;   // sets×T×V (stepSizes: sets×T×2V, [g_θ | g_α]): φ and pad entries 0 (untouched when wantMetaGrad is false)
  taskStats: Float32Array;  // sets×T×2: query (loss, accuracy) of θ'_t⁽ⁿ⁾
}

export function modelTaskScratchSizes(p: { tasks: number; layout: ModelLayout; stepSizes?: boolean }, sets = 1): Record<keyof ModelTaskOutputs, number> {
  const metaGradFloats = (p.stepSizes ? 2 : 1) * p.layout.vector;
  return { adapted: sets * p.tasks * p.layout.vector, metaGrad: sets * p.tasks * metaGradFloats, taskStats: sets * p.tasks * 2 };
}

/** taskRange [first, end) restricts the work to those tasks (the CPU engine's worker threads split T).
 * Each task's results depend on that task alone (any range, any thread count: the same bits).
 *
 * Per task (MAML, M = every entry): θ'⁽⁰⁾ = θ is read in place, θ'⁽ˢ⁺¹⁾ is written by the inner step's
 * fused epilogue (θ'⁽ˢ⁾ − α∇L, float32) into a scratch slot (s + 1 < n) or into out.adapted (s + 1 = n);
 * the slots stay for the order-2 backward, which reuses each step's support tape (forward and backward
 * at θ'⁽ˢ⁾, or θ'⁽ˢ⁾+Δ under AMP) and updates v ← v − α H v in place. CAML: W and b never move, so the
 * points differ only in φ, kept per step; the inner step computes φ's gradient alone.
 *
 * ANIL (adapt 'head'): the body never moves, so one support forward at θ serves every inner step, which
 * redoes only the head's layer and steps W_L, b_L. Order 1: the query gradient at θ'⁽ⁿ⁾ (body and head).
 * Order 2: v ← v − α H(θ'⁽ˢ⁾; S)·(M ⊙ v), M the head: the body's meta-gradient flows through the head's
 * adaptation; each step's head pass is redone from its kept point (one layer) before its product.
 *
 * Meta-SGD (stepSizes): θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ⊙ g_s, g_s = ∇L(θ'⁽ˢ⁾; S) kept in float64. Order 1 (the inner
 * gradients as constants): g_θ = v_n, g_α = −(Σ_s g_s) ⊙ v_n, v_n the query gradient at θ'⁽ⁿ⁾. Order 2:
 * from v = v_n, for s = n−1 … 0: g_α −= g_s ⊙ v, then v ← v − H_s (α ⊙ v); g_θ = v. */
export function modelAdaptAndMetaGrad(out: ModelTaskOutputs, support: RowSet, query: RowSet, theta: Float32Array, p: ModelTaskParams, taskRange?: [number, number]): void {
  const { layout, dim: D, supportRows: Ks, queryRows: Kq, innerSteps: n, innerLr: alpha } = p;
  const V = layout.vector;
  const C = layout.context;
  const ws = taskModelFor(layout);
  const contextOnly = p.adapt === 'context';
  const headOnly = p.adapt === 'head';
  const stepSizes = !!p.stepSizes;
  const perturb = p.perturb && p.perturb.steps > 0 ? p.perturb : null;
  const secondOrder = p.wantMetaGrad && p.order === 2;
  if (headOnly && (C !== 0 || perturb)) {
    throw new Error(`modelAdaptAndMetaGrad: adapt 'head' (ANIL) takes no context (layout.context is ${C}) and no perturbation (perturb ${JSON.stringify(p.perturb)})`);
  }
  if (stepSizes && (p.adapt !== 'all' || p.thetaPerTask || p.writeBack || perturb || C !== 0)) {
    throw new Error(`modelAdaptAndMetaGrad: stepSizes (Meta-SGD) needs adapt 'all' (got '${p.adapt}'), one θ (thetaPerTask ${p.thetaPerTask}, writeBack ${!!p.writeBack}), no perturbation and no context (layout.context is ${C})`);
  }
  if (stepSizes && theta.length < 2 * V) {
    throw new Error(`modelAdaptAndMetaGrad: stepSizes (Meta-SGD) needs θ and α in θ, 2 × ${V} floats; got ${theta.length}`);
  }
  // 'all' and 'head': θ'⁽ˢ⁾ for 0 < s < n. CAML: φ⁽ˢ⁾ for s ≤ n. AMP: the points θ'⁽ˢ⁾+Δ (every step's, for order 2).
  const steps = contextOnly ? null : ws.f32('steps', Math.max(0, n - 1) * V);
  const phis = contextOnly ? ws.f32('phis', (n + 1) * C) : null;
  const perturbed = perturb ? ws.f32('perturbed', (secondOrder ? n : 1) * V) : null;
  const ascent = perturb ? ws.f64('ascent', V) : null;
  const contextGrad = ws.f64('contextGrad', C);
  const v = secondOrder || stepSizes ? ws.f64('v', V) : null;
  // Meta-SGD: the inner gradients g_s (every step's for order 2, else the latest), Σ_s g_s (order 1),
  // g_α, and the direction α ⊙ v of the order-2 products.
  const innerGrads = stepSizes ? ws.f64('innerGrads', (secondOrder ? Math.max(n, 1) : 1) * V) : null;
  const innerGradSum = stepSizes && p.wantMetaGrad && !secondOrder ? ws.f64('innerGradSum', V) : null;
  const stepSizeGrad = stepSizes && p.wantMetaGrad ? ws.f64('stepSizeGrad', V) : null;
  const direction = stepSizes && secondOrder ? ws.f64('direction', V) : null;
  // θ_t is overwritten by writeBack: the order-2 backward then reads θ'⁽⁰⁾ from a copy.
  const thetaCopy = !contextOnly && secondOrder && p.writeBack ? ws.f32('theta0', V) : null;
  const points: TaskPoint[] = [];
  const supportRows: TaskRows = { x: support.x, xOff: 0, xStride: D, y: support.y, yOff: 0, rows: Ks };
  const queryRows: TaskRows = { x: query.x, xOff: 0, xStride: D, y: query.y, yOff: 0, rows: Kq, ...(p.episodeSupport ? { episodeSupport: p.episodeSupport } : {}) };
  const scored = scoredRows(queryRows);
  if (p.episodeSupport && n !== 0) throw new Error(`modelAdaptAndMetaGrad: an episode (protonet) takes no inner steps, got ${n}`);
  // ANIL keeps one support tape: the body's activations are those of every step.
  const tapeOf = (s: number) => ws.tape(`support${secondOrder && !headOnly ? s : 0}`, Ks);
  const metaGradStride = stepSizes ? 2 * V : V;
  const [first, end] = taskRange ?? [0, p.tasks];
  for (let t = first; t < end; t++) {
    const slot = p.outSet * p.tasks + t;
    const own = slot * V;
    supportRows.xOff = t * Ks * D;
    supportRows.yOff = t * Ks;
    queryRows.xOff = t * Kq * D;
    queryRows.yOff = t * Kq;
    const thetaOff = p.thetaPerTask ? t * V : 0;
    points.length = 0;

    if (contextOnly) {
      // W and b stay θ's; the context starts at 0 for every task (CAVIA), whatever θ holds there.
      out.adapted.set(theta.subarray(thetaOff, thetaOff + V), own);
      out.adapted.fill(0, own + layout.contextOffset, own + layout.contextOffset + C);
      phis!.fill(0, 0, C);
      for (let s = 0; s < n; s++) {
        const point: TaskPoint = perturb
          ? perturbInto(ws, perturbed!, secondOrder ? s * V : 0, out.adapted, own, supportRows, perturb, ascent!)
          : { P: out.adapted, pOff: own, phi: phis!, phiOff: s * C };
        const tape = tapeOf(s);
        ws.lossAndDeltas(point, supportRows, tape, true);
        ws.contextGradient(point, tape, contextGrad);
        for (let c = 0; c < C; c++) {
          const next = (phis![(s + 1) * C + c] = phis![s * C + c] - alpha * contextGrad[c]);
          out.adapted[own + layout.contextOffset + c] = next;
        }
        points.push(point);
      }
    } else {
      if (n === 0) out.adapted.set(theta.subarray(thetaOff, thetaOff + V), own);
      if (thetaCopy) thetaCopy.set(theta.subarray(thetaOff, thetaOff + V));
      let src = thetaCopy ?? theta;
      let srcOff = thetaCopy ? 0 : thetaOff;
      if (innerGradSum) innerGradSum.fill(0);
      for (let s = 0; s < n; s++) {
        const last = s === n - 1;
        const dst = last ? out.adapted : steps!;
        const dstOff = last ? own : s * V;
        const point = perturb
          ? perturbInto(ws, perturbed!, secondOrder ? s * V : 0, src, srcOff, supportRows, perturb, ascent!)
          : ws.pointAt(src, srcOff);
        const tape = tapeOf(s);
        if (headOnly) {
          // The body's forward once (at θ'⁽⁰⁾ = θ), the head's layer at every step.
          if (s === 0) ws.forwardBody(point, supportRows, tape);
          ws.headLossAndDeltas(point, supportRows, tape);
          ws.sgdStepHead(tape, alpha, src, srcOff, dst, dstOff);
        } else if (stepSizes) {
          ws.lossAndDeltas(point, supportRows, tape, true);
          const gradOff = secondOrder ? s * V : 0;
          ws.sgdStepScaled(point, tape, theta, V, src, srcOff, dst, dstOff, innerGrads!, gradOff);
          if (innerGradSum) for (let k = 0; k < V; k++) innerGradSum[k] += innerGrads![gradOff + k];
        } else {
          ws.lossAndDeltas(point, supportRows, tape, true);
          ws.sgdStepAll(point, tape, alpha, src, srcOff, dst, dstOff);
        }
        points.push(point);
        src = dst;
        srcOff = dstOff;
      }
    }
    if (p.writeBack) theta.set(out.adapted.subarray(own, own + V), t * V);

    const queryPoint = ws.pointAt(out.adapted, own);
    const queryTape = ws.tape('query', Kq);
    ws.lossAndDeltas(queryPoint, queryRows, queryTape, p.wantMetaGrad);
    out.taskStats[2 * slot] = queryTape.lossSum / scored;
    out.taskStats[2 * slot + 1] = queryTape.metricSum / scored;
    if (!p.wantMetaGrad) continue;
    if (stepSizes) {
      metaSgdBackward(ws, out.metaGrad, slot * metaGradStride, queryPoint, queryTape, points, tapeOf, theta, v!, innerGrads!, innerGradSum, stepSizeGrad!, direction);
      continue;
    }
    if (!secondOrder) {
      // W and b entries of the query gradient at θ'⁽ⁿ⁾ (order 1 treats φ as a constant); φ and pad 0.
      ws.weightGradientInto32(queryTape, out.metaGrad, own);
      continue;
    }
    // v ← v − α·H(point_s; S)·(M ⊙ v): the transpose of d θ'⁽ˢ⁺¹⁾/d θ'⁽ˢ⁾ = I − α M H (H symmetric).
    ws.gradientInto(queryPoint, queryTape, v!, 0);
    for (let s = n - 1; s >= 0; s--) {
      // ANIL's one support tape holds the last step's head: redo step s's (one layer) before its product.
      if (headOnly) ws.headLossAndDeltas(points[s], supportRows, tapeOf(s));
      ws.hvpStep(points[s], tapeOf(s), v!, 0, alpha, p.adapt);
    }
    // φ starts at 0 for every task and is not meta-learned; pad entries hold nothing.
    out.metaGrad.set(v!.subarray(0, layout.params), own);
    out.metaGrad.fill(0, own + layout.params, own + V);
  }
}

/** Meta-SGD's meta-gradient of one task into metaGrad[at …]: [g_θ | g_α], 2V floats, pads 0 (no context:
 * params = W and b). innerGrads: the inner gradients g_s at s·V (order 2) or, with innerGradSum (order
 * 1), their sum there; α = theta[V …]. v, stepSizeGrad, direction: scratch (V). */
function metaSgdBackward(
  ws: TaskModel, metaGrad: Float32Array, at: number, queryPoint: TaskPoint, queryTape: TaskTape, points: TaskPoint[], tapeOf: (s: number) => TaskTape,
  theta: Float32Array, v: Float64Array, innerGrads: Float64Array, innerGradSum: Float64Array | null, stepSizeGrad: Float64Array, direction: Float64Array | null,
): void {
  const { params, vector: V } = ws.layout;
  ws.gradientInto(queryPoint, queryTape, v, 0);
  stepSizeGrad.fill(0);
  if (innerGradSum) {
    // Order 1: ∂θ'⁽ⁿ⁾/∂α = −Σ_s g_s with the g_s held constant.
    for (let k = 0; k < params; k++) stepSizeGrad[k] -= innerGradSum[k] * v[k];
  } else {
    // v = ∂L_Q/∂θ'⁽ˢ⁺¹⁾ here; θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ⊙ g_s gives ∂/∂α −g_s ⊙ v and ∂/∂θ'⁽ˢ⁾ (I − H_s diag α) v.
    for (let s = points.length - 1; s >= 0; s--) {
      for (let k = 0; k < params; k++) stepSizeGrad[k] -= innerGrads[s * V + k] * v[k];
      ws.hvpStepScaled(points[s], tapeOf(s), v, 0, theta, V, direction!);
    }
  }
  for (let k = 0; k < params; k++) {
    metaGrad[at + k] = v[k];
    metaGrad[at + V + k] = stepSizeGrad[k];
  }
  metaGrad.fill(0, at + params, at + V);
  metaGrad.fill(0, at + V + params, at + 2 * V);
}

/** AMP's inner optimizer into perturbed[pOff … + V): θ' + Δ, θ' = adapted[aOff …], after `steps` ascent
 * steps Δ ← Δ + ζ∇L(θ'+Δ; S) from Δ = 0, each followed by projecting Δ of every tensor (each W_l, each
 * b_l) onto the L2 ball of radius ε. The context and pad entries are never perturbed. `grad`: scratch (V). */
function perturbInto(ws: TaskModel, perturbed: Float32Array, pOff: number, adapted: Float32Array, aOff: number, rows: TaskRows, perturb: PerturbParams, grad: Float64Array): TaskPoint {
  const layout = ws.layout;
  perturbed.set(adapted.subarray(aOff, aOff + layout.vector), pOff);
  const point = ws.pointAt(perturbed, pOff);
  const tape = ws.tape('perturb', rows.rows);
  for (let i = 0; i < perturb.steps; i++) {
    ws.lossAndDeltas(point, rows, tape, true);
    ws.gradientInto(point, tape, grad, 0);
    for (const [start, stop] of layout.tensors) {
      for (let k = start; k < stop; k++) perturbed[pOff + k] += perturb.lr * grad[k];
      clipAt(perturbed, pOff, adapted, aOff, start, stop, perturb.radius);
    }
  }
  return point;
}

/** AMP's inner optimizer: perturbed[0 … V) = θ' + Δ, θ' = adapted[own …] (see perturbInto). */
export function modelPerturb(perturbed: Float32Array, adapted: Float32Array, own: number, rows: TaskRows, layout: ModelLayout, perturb: PerturbParams, grad: Float64Array): void {
  perturbInto(taskModelFor(layout), perturbed, 0, adapted, own, rows, perturb, grad);
}

/** Projects perturbed[start … stop) onto the L2 ball of radius ε around adapted[own + start …]. */
export function clipTensor(perturbed: Float32Array, adapted: Float32Array, own: number, start: number, stop: number, radius: number): void {
  clipAt(perturbed, 0, adapted, own, start, stop, radius);
}

function clipAt(perturbed: Float32Array, pOff: number, adapted: Float32Array, own: number, start: number, stop: number, radius: number): void {
  let sq = 0;
  for (let k = start; k < stop; k++) sq += (perturbed[pOff + k] - adapted[own + k]) ** 2;
  const norm = Math.sqrt(sq);
  if (!(norm > radius)) return;
  const scale = radius / norm;
  for (let k = start; k < stop; k++) perturbed[pOff + k] = adapted[own + k] + scale * (perturbed[pOff + k] - adapted[own + k]);
}

/** Sizes of an attack or a scoring: T tasks of `rows` rows of `dim` features; the vector of task t
 * starts at t·paramStride (0: one θ for every task). */
export interface ModelRowsShape {
  tasks: number;
  rows: number;
  dim: number;
  paramStride: number;
  /** A protonet's episodes: each task's support rows (`rows` of them per task), which come before the
   * rows attacked or scored and give the prototypes; they are not attacked. */
  episode?: { x: Float32Array; y: Float32Array; rows: number };
}

/** Task t's rows as a model reads them, copied into `into`: its own rows (x only; labels read in place),
 * or (episode) its support rows then those, labels too. */
function episodeRows(shape: ModelRowsShape, t: number, x: Float32Array, y: Float32Array, into: { x: Float32Array; y: Float32Array }): TaskRows {
  const { rows: K, dim: D } = shape;
  const e = shape.episode;
  const S = e?.rows ?? 0;
  into.x.set(x.subarray(t * K * D, (t + 1) * K * D), S * D);
  if (!e) return { x: into.x, xOff: 0, xStride: D, y, yOff: t * K, rows: K };
  into.x.set(e.x.subarray(t * S * D, (t + 1) * S * D), 0);
  into.y.set(e.y.subarray(t * S, (t + 1) * S), 0);
  into.y.set(y.subarray(t * K, (t + 1) * K), S);
  return { x: into.x, xOff: 0, xStride: D, y: into.y, yOff: 0, rows: S + K, episodeSupport: S };
}

/** FGSM / PGD through the network (SPEC.md): k steps x ← clip(Π_ε(x + s·sign(∇x ℓ_r)), lo, hi) from the
 * clean rows, Π_ε the L∞ ball around them; sign(0) = 0. The gradient's sign is taken on float32-rounded
 * values (the MLP's float32 mode of its input gradient; a layer-list net takes the float64 gradient's
 * sign) and each bound and stepped value rounds to float32 where the
 * logistic attack (src/cpu/fgsm.ts) rounds them. */
export function modelAttack(out: Float32Array, clean: RowSet, params: Float32Array, shape: ModelRowsShape, attack: AttackParams, layout: ModelLayout, taskRange?: [number, number]): void {
  const { rows: K, dim: D } = shape;
  const S = shape.episode?.rows ?? 0;
  const fround = Math.fround;
  const model = taskModelFor(layout);
  const buffers = { x: new Float32Array((S + K) * D), y: new Float32Array(S + K) };
  const current = buffers.x;
  const inputGrad = new Float64Array((S + K) * D);
  const [first, end] = taskRange ?? [0, shape.tasks];
  for (let t = first; t < end; t++) {
    const off = t * K * D;
    const rows = episodeRows(shape, t, clean.x, clean.y, buffers);
    for (let i = 0; i < attack.steps; i++) {
      model.inputGrad(params, t * shape.paramStride, rows, inputGrad, true);
      // The attacked rows only (an episode's support rows stay as they are).
      for (let e = S * D; e < (S + K) * D; e++) {
        const x0 = clean.x[off + e - S * D];
        let v = fround(current[e] + attack.stepSize * Math.sign(inputGrad[e]));
        const below = fround(x0 - attack.epsilon);
        const above = fround(x0 + attack.epsilon);
        v = v < below ? below : v > above ? above : v;
        current[e] = v < attack.lo ? attack.lo : v > attack.hi ? attack.hi : v;
      }
    }
    out.set(current.subarray(S * D, (S + K) * D), off);
  }
}

/** stats[2t], stats[2t + 1] = mean loss and metric (accuracy, or MSE) of task t's vector on its rows of x, y. */
export function modelScore(stats: Float32Array, x: Float32Array, y: Float32Array, params: Float32Array, shape: ModelRowsShape, layout: ModelLayout, taskRange?: [number, number]): void {
  const { rows: K, dim: D } = shape;
  const S = shape.episode?.rows ?? 0;
  const model = taskModelFor(layout);
  // An episode's rows are copied together (support, then the scored rows); other rows are read in place.
  const buffers = shape.episode ? { x: new Float32Array((S + K) * D), y: new Float32Array(S + K) } : null;
  const [first, end] = taskRange ?? [0, shape.tasks];
  for (let t = first; t < end; t++) {
    const rows: TaskRows = buffers ? episodeRows(shape, t, x, y, buffers) : { x, xOff: t * K * D, xStride: D, y, yOff: t * K, rows: K };
    const s = model.lossGrad(params, t * shape.paramStride, rows, null);
    stats[2 * t] = s.loss;
    stats[2 * t + 1] = s.metric;
  }
}
