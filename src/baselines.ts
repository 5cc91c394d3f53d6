// Baselines of `metagrad eval` beside the meta-learned initialisation: 1-nearest-neighbour on the raw
// inputs, the field's pixel baseline for N-way few-shot tasks (each query row takes the label of the
// closest support row of its task), and the transfer baseline (pretrain one classifier over every
// meta-train class, fine-tune a fresh head per task). CPU, deterministic from the seed.
import { meanWithInterval } from './stats.js';
import type { AttackOptions, CheckedBatch, MeanWithInterval, ResolvedLearnerOptions } from './types.js';
import { resolveEvaluateOptions } from './validate.js';
import { mlpLayout, type ModelSpec } from './models/mlp.js';
import { layoutOfModel, modelInit, type ModelLayout } from './models/model.js';
import { mlpBodyFeatures, mlpLossGrad, type Floats, type MlpRows } from './cpu/mlp.js';
import { taskModelFor } from './cpu/task-model.js';
import { netWorkspace } from './cpu/net/fast.js';
import { InvalidOptionError } from './errors.js';
import { modelAttack } from './cpu/model-task.js';
import { randomBelow, rotatedSource } from './cpu/sample-tasks.js';
import type { AttackParams } from './cpu/fgsm.js';
import { omniglotPool, trainRotations, type OmniglotSource } from './tasks/source.js';
import { OMNIGLOT_SIZE } from './tasks/omniglot.js';

const INV_255 = Math.fround(1 / 255);

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

// ---- The transfer baseline ------------------------------------------------------------------------
// "Pretrain, then fine-tune a fresh head": the meta-learner's network (an MLP with its hidden widths and
// norm, or a layer list such as Conv-4: its body) with a head over every meta-train class, trained as a
// plain classifier by minibatch Adam; per held-out task the body is frozen and a new N-way head,
// zero-initialised, is fitted to the support set alone by full-batch gradient descent (a convex problem:
// softmax regression on the body's features). The fine-tuned network is the model of the standard
// layout with N classes, so it is scored and attacked like any other.

/** A labelled set of examples to pretrain on: example i (0 ≤ i < size) of `dim` features, label in [0, classes). */
export interface LabelledSet {
  dim: number;
  classes: number;
  size: number;
  /** Writes example i's features to out[off … off + dim) and returns its label. */
  example(i: number, out: Float32Array, off: number): number;
}

/** Every meta-train class of an Omniglot source (or Fashion-MNIST episodes) as the sampler defines
 * them: class = poolIndex·R + rotation, R = 4 rotations (0/90/180/270° clockwise, src/cpu/sample-tasks.ts)
 * unless the source turns them off (R = 1); example = (image of the split, rotation), pixels ink/255
 * read through the rotation's index map. */
export function omniglotTrainSet(source: OmniglotSource): LabelledSet {
  const pool = omniglotPool(source, 'train');
  const R = trainRotations(source, 'train');
  const S = OMNIGLOT_SIZE;
  const P = S * S;
  const imageStart: number[] = [];
  const imageClass: number[] = [];
  pool.characters.forEach((_, k) => {
    for (let j = 0; j < pool.count[k]; j++) { imageStart.push((pool.start[k] + j) * P); imageClass.push(k); }
  });
  const map = Array.from({ length: R }, (_, rot) => Int32Array.from({ length: P }, (_, e) => rotatedSource(Math.floor(e / S), e % S, rot)));
  const images = source.set.images;
  return {
    dim: P, classes: pool.characters.length * R, size: imageStart.length * R,
    example(i, out, off) {
      const image = Math.floor(i / R), rot = i % R;
      const base = imageStart[image];
      const m = map[rot];
      for (let e = 0; e < P; e++) out[off + e] = images[base + m[e]] * INV_255;
      return imageClass[image] * R + rot;
    },
  };
}

export interface PretrainOptions {
  hidden: number[];
  /** Per-task normalisation of the hidden units (model.norm 'task'): the minibatch is the set. */
  norm: boolean;
  seed: number;
  iterations: number;
  /** Examples per minibatch (drawn uniformly with replacement). */
  batch: number;
  /** Adam's rate (β = 0.9, 0.999, ε = 1e-8). */
  lr: number;
}

export interface Pretrained {
  /** The pretraining network: the model's body, a head over every class of the set. */
  layout: ModelLayout;
  /** The model with that head (its classes: the set's). */
  model: ModelSpec;
  params: Float32Array;
  /** Minibatch loss of every iteration (before its update). */
  losses: Float64Array;
  seconds: number;
}

const TRANSFER_STREAM = 0x7472616e;  // 'tran': the pretraining's minibatch draws

/** pretrainModel for the MLP of `o.hidden` (and norm). */
export function pretrainMlp(set: LabelledSet, o: PretrainOptions): Pretrained {
  return pretrainModel(set, { kind: 'mlp', hidden: o.hidden, classes: set.classes, norm: o.norm ? 'task' : 'none' }, o);
}

/** The model spec with `classes` outputs (the head is the part that changes). */
function withClasses(model: ModelSpec, classes: number): ModelSpec {
  if (model.kind === 'mlp' && model.loss === 'mse') throw new InvalidOptionError('The transfer baseline pretrains a classifier; this mlp model is a regressor (loss mse).', 'Leave the transfer baseline out for regression models.');
  if (model.kind === 'mlp' || model.kind === 'conv4') return { ...model, classes };
  if (model.kind === 'layers') {
    const layers = model.layers.slice();
    const last = layers[layers.length - 1];
    if (last.kind !== 'dense') throw new InvalidOptionError('The transfer baseline replaces the head, the last layer, which must be dense.', "End the layer list with { kind: 'dense', units: N }.");
    layers[layers.length - 1] = { kind: 'dense', units: classes };
    return { ...model, layers };
  }
  throw new InvalidOptionError('The transfer baseline needs a network (mlp, conv4 or layers), not the logistic unit.', 'Leave the transfer baseline out for the logistic model.');
}

/** Minibatch Adam on the mean cross-entropy from the He initialisation of the seed (modelInit: the
 * body starts where the meta-learner's does), for `model` with a head over the set's classes.
 * Deterministic from the seed. */
export function pretrainModel(set: LabelledSet, model: ModelSpec, o: Omit<PretrainOptions, 'hidden' | 'norm'>): Pretrained {
  const t0 = performance.now();
  const spec = withClasses(model, set.classes);
  const layout = modelLayoutOf(spec, set.dim);
  const params = modelInit(layout, o.seed);
  const ops = taskModelFor(layout);
  const n = layout.params;
  const grad = new Float64Array(layout.vector);
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const B = o.batch;
  const x = new Float32Array(B * set.dim);
  const y = new Float32Array(B);
  const rows: MlpRows = { x, xOff: 0, xStride: set.dim, y, yOff: 0, rows: B };
  const losses = new Float64Array(o.iterations);
  for (let it = 0; it < o.iterations; it++) {
    for (let r = 0; r < B; r++) y[r] = set.example(randomBelow(o.seed, TRANSFER_STREAM, it * B + r, set.size), x, r * set.dim);
    losses[it] = ops.lossGrad(params, 0, rows, grad).loss;
    const c1 = 1 - b1 ** (it + 1), c2 = 1 - b2 ** (it + 1);
    for (let k = 0; k < n; k++) {
      const g = grad[k];
      m[k] = b1 * m[k] + (1 - b1) * g;
      v[k] = b2 * v[k] + (1 - b2) * g * g;
      params[k] -= (o.lr * (m[k] / c1)) / (Math.sqrt(v[k] / c2) + eps);
    }
  }
  return { layout, model: spec, params, losses, seconds: (performance.now() - t0) / 1000 };
}

/** The layout of a model spec on rows of `dim` features (no context). */
function modelLayoutOf(model: ModelSpec, dim: number): ModelLayout {
  const layout = layoutOfModel(model, dim);
  if (!layout) throw new InvalidOptionError('The transfer baseline needs a network, not the logistic unit.', 'Leave it out for the logistic model.');
  return layout;
}

/** The body's output (what the head sees) for `rows` rows of x from xOff (stride layout.dim): for the
 * MLP the reference forward (src/cpu/mlp.ts) up to the last hidden layer, normalised over these rows with
 * layout.norm (rows × h_{L−1}; the inputs when there is no hidden layer); for a layer list the fast
 * path's forward up to the head (the input of the last, dense, layer). */
export function bodyFeatures(layout: ModelLayout, params: Floats, x: Floats, xOff: number, rows: number): Float64Array {
  const set = { x, xOff, xStride: layout.dim, y: new Float32Array(rows), yOff: 0, rows };
  if (layout.kind === 'mlp') return mlpBodyFeatures(layout, params, 0, set);
  const ws = netWorkspace(layout);
  const tape = ws.tape('body', rows);
  ws.forwardBody(ws.pointAt(Float32Array.from(params), 0), set, tape);
  const L = layout.net.layers.length;
  return tape.acts[L - 1].slice(0, rows * layout.net.layers[L - 1].input.c);
}

/** The head's step when none is given: 1/L for L = ½·mean_r(‖f_r‖² + 1), an upper bound on the
 * smoothness of the mean cross-entropy in (W, b) (the softmax's Hessian is ≤ ½ I, and the largest
 * eigenvalue of the features' second-moment matrix is ≤ its trace): every step lowers the loss. */
export function headStepSize(features: Float64Array, rows: number): number {
  let sq = 0;
  for (let k = 0; k < features.length; k++) sq += features[k] * features[k];
  return 2 / (sq / rows + 1);
}

/** A fresh `classes`-way head (W: width × classes row-major as in the MLP layout, then b), zero at
 * first, fitted by `steps` steps of full-batch gradient descent on the mean cross-entropy of the given
 * features (rows × width) and labels: softmax regression, convex. losses[s]: the loss before step s
 * (losses[steps]: after the last). */
export function fineTuneHead(features: Float64Array, labels: Floats, labelOff: number, rows: number, classes: number, o: { steps: number; lr?: number }): { head: Float64Array; losses: Float64Array; lr: number } {
  const width = features.length / rows;
  // Softmax regression is the MLP without hidden layers: its reference loss and gradient.
  const layout = mlpLayout(width, [], classes);
  const head = new Float64Array(layout.vector);
  const grad = new Float64Array(layout.vector);
  const set: MlpRows = { x: features, xOff: 0, xStride: width, y: labels, yOff: labelOff, rows };
  const lr = o.lr ?? headStepSize(features, rows);
  const losses = new Float64Array(o.steps + 1);
  for (let s = 0; s <= o.steps; s++) {
    const last = s === o.steps;
    losses[s] = mlpLossGrad(layout, head, 0, set, last ? null : grad).loss;
    if (!last) for (let k = 0; k < layout.params; k++) head[k] -= lr * grad[k];
  }
  return { head: head.subarray(0, layout.params), losses, lr };
}

/** The pretrained body with a head of `classes` outputs as one vector of the model's standard layout. */
export function withHead(pre: Pretrained, classes: number, head: Float64Array): { layout: ModelLayout; params: Float32Array } {
  const layout = modelLayoutOf(withClasses(pre.model, classes), pre.layout.dim);
  const params = new Float32Array(layout.vector);
  const headStart = layout.kind === 'mlp' ? layout.layers[layout.layers.length - 1].w : layout.net.layers[layout.net.layers.length - 1].offset;
  params.set(pre.params.subarray(0, headStart));  // the body: the same offsets in both layouts
  for (let k = 0; k < head.length; k++) params[headStart + k] = head[k];  // W then b of the head, contiguous
  return { layout, params };
}

/** An eval attack's parameters as learner.evaluate resolves them (PGD: 10 steps of 2.5·ε/10 unless
 * given; the clip, else the learner's). */
export function resolveAttack(attack: AttackOptions | undefined, learner: ResolvedLearnerOptions): AttackParams | null {
  return resolveEvaluateOptions({ attack }, learner).attack;
}

export interface TransferOptions {
  /** N of the tasks (labels 0 … N−1). */
  ways: number;
  /** Gradient steps on the head per task. */
  steps: number;
  /** The head's rate (default: headStepSize of the task's support features). */
  lr?: number;
  /** An attack on each task's query rows against its fine-tuned network. */
  attack?: AttackParams | null;
}

export interface TransferResult {
  taskAccuracy: Float32Array;
  accuracy: MeanWithInterval;
  attacked?: { taskAccuracy: Float32Array; accuracy: MeanWithInterval };
  /** Mean support loss after fine-tuning, and the mean head rate used. */
  supportLoss: number;
  lr: number;
}

/** Per task: body frozen, a zero head fine-tuned on the support set, query accuracy (clean and under
 * the attack). With normalisation the support set is the set the body normalises over while the head
 * learns, and the query set is normalised over itself at test time (transductive, as the meta-learned
 * MLP is scored). */
export function transferAccuracy(pre: Pretrained, batch: CheckedBatch, o: TransferOptions): TransferResult {
  const { tasks: T, supportShots: Ks, queryShots: Kq } = batch;
  const D = pre.layout.dim;
  const taskAccuracy = new Float32Array(T);
  const attackedAccuracy = o.attack ? new Float32Array(T) : null;
  let supportLoss = 0;
  let lrSum = 0;
  for (let t = 0; t < T; t++) {
    const features = bodyFeatures(pre.layout, pre.params, batch.supportX, t * Ks * D, Ks);
    const fit = fineTuneHead(features, batch.supportY, t * Ks, Ks, o.ways, { steps: o.steps, lr: o.lr });
    supportLoss += fit.losses[o.steps];
    lrSum += fit.lr;
    const net = withHead(pre, o.ways, fit.head);
    const ops = taskModelFor(net.layout);
    const score = (x: Float32Array, xOff: number, y: Float32Array, yOff: number) => ops.lossGrad(net.params, 0, { x, xOff, xStride: D, y, yOff, rows: Kq }, null);
    taskAccuracy[t] = score(batch.queryX, t * Kq * D, batch.queryY, t * Kq).metric;
    if (o.attack && attackedAccuracy) {
      // The engines' attack (src/cpu/model-task.ts) on this one task's query rows.
      const clean = { x: batch.queryX.subarray(t * Kq * D, (t + 1) * Kq * D), y: batch.queryY.subarray(t * Kq, (t + 1) * Kq) };
      const adv = new Float32Array(Kq * D);
      modelAttack(adv, clean, net.params, { tasks: 1, rows: Kq, dim: D, paramStride: 0 }, o.attack, net.layout);
      attackedAccuracy[t] = score(adv, 0, clean.y, 0).metric;
    }
  }
  return {
    taskAccuracy, accuracy: meanWithInterval(taskAccuracy),
    ...(attackedAccuracy ? { attacked: { taskAccuracy: attackedAccuracy, accuracy: meanWithInterval(attackedAccuracy) } } : {}),
    supportLoss: supportLoss / T, lr: lrSum / T,
  };
}
