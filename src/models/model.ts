// What engines and the learner ask of the model option: its layout (null for the logistic unit, whose
// path is the fused twins) and the parameter counts of the public and internal layouts. Two layout
// kinds: the MLP's (src/models/mlp.ts: fused kernels on both backends) and a list of layers
// (src/models/layers.ts: Conv-4 and general nets).
import { mlpInit, mlpLayout, type MlpLayout, type ModelSpec } from './mlp.js';
import { conv4MiniImagenet, conv4Omniglot, defaultImage, features, netLayout, type LayerSpec, type NetLayout, type Shape } from './layers.js';
import { capabilitiesOf } from '../algorithms/index.js';
import { roundUp4 } from '../kernels/layout.js';
import { InvalidOptionError } from '../errors.js';
import { normal, STREAM, uniform01 } from '../rng.js';
import type { ResolvedLearnerOptions } from '../types.js';

/** A model given as a list of layers, with the per-task vector laid out as the MLP's:
 * [ the layers' parameters (params floats) | φ (context, C floats) | zero pad ]. CAML's φ enters as C
 * extra input channels, constant over positions (net.input has c + C channels). */
export interface NetModelLayout {
  kind: 'net';
  net: NetLayout;
  /** Features per row of the data (the image without the context channels). */
  dim: number;
  context: number;
  /** Classes of the softmax head; 0 under MSE (real targets). */
  classes: number;
  params: number;
  contextOffset: number;
  vector: number;
  /** Every parameterised layer's W and b as [start, end) ranges: AMP clips Δ on each. */
  tensors: [number, number][];
  /** How modelInit starts θ: 'he' (He-normal weights, zero biases) or 'fan-in-uniform' (W and b ~
   * U(±1/√fan-in), PyTorch's nn.Linear: the MLP regressor, as in learn2learn's sine example). */
  init: NetInit;
}

export type NetInit = 'he' | 'fan-in-uniform';

export type ModelLayout = MlpLayout | NetModelLayout;

/** The data's image shape for a net model, checked against dim. */
function imageOf(spec: { image?: Shape }, dim: number, what: string): Shape {
  const image = spec.image ?? defaultImage(dim);
  if (!image) throw new InvalidOptionError(`${what} needs the rows' image shape: ${dim} features are not a square single-channel image.`, 'Pass model.image: { h, w, c } with h·w·c = dim.');
  if (features(image) !== dim) throw new InvalidOptionError(`${what}: the image ${image.h} × ${image.w} × ${image.c} has ${features(image)} features, the rows have ${dim}.`, 'Pass the image shape of your rows (h·w·c = dim).');
  return image;
}

/** The layer list of a net model spec (conv4, layers, or the MLP regressor), on images of `image`. */
export function netLayersOf(model: ModelSpec, dim: number, episode = false): { image: Shape; layers: NetLayout['layers'][number]['spec'][]; loss: NetLayout['loss']; init?: NetInit } | null {
  if (episode) return bodyOf(model, dim);
  if (model.kind === 'conv4') {
    const filters = model.filters ?? 64;
    const layers = model.pooling === 'max' ? conv4MiniImagenet(model.classes, filters) : conv4Omniglot(model.classes, filters);
    return { image: imageOf(model, dim, 'conv4'), layers, loss: { kind: 'softmax-ce' } };
  }
  if (model.kind === 'layers') return { image: imageOf({ image: model.input }, dim, 'The layers model'), layers: model.layers, loss: model.loss ?? { kind: 'softmax-ce' } };
  if (model.kind === 'mlp' && model.loss === 'mse') {
    // The regressor as its layer list: rows are 1 × 1 × dim "images", so that dense layers see them whole.
    const layers: LayerSpec[] = model.hidden.flatMap((units): LayerSpec[] => [{ kind: 'dense', units }, ...(model.norm === 'task' ? [{ kind: 'norm' } as const] : []), { kind: 'relu' }]);
    // Starts as PyTorch's nn.Linear: from He-normal weights one MAML step of α = 0.01 (the paper's) on
    // sinusoids overshoots (measured, seed 1: MSE 61 before the step, 7,952 after).
    return { image: { h: 1, w: 1, c: dim }, layers: [...layers, { kind: 'dense', units: 1 }], loss: { kind: 'mse' }, init: 'fan-in-uniform' };
  }
  return null;
}

/** A protonet's model: the network without its head (the body, embedding each row), under the
 * prototypical loss over the network's N classes. */
function bodyOf(model: ModelSpec, dim: number): { image: Shape; layers: LayerSpec[]; loss: NetLayout['loss'] } {
  const refuse = (why: string, hint: string) => { throw new InvalidOptionError(`A protonet embeds rows with the network's body, but ${why}.`, hint); };
  if (model.kind === 'logistic') refuse('the logistic unit has no body', "Use model: { kind: 'mlp', hidden: [256, 128, 64, 64], classes: 5 } or { kind: 'conv4', classes: 5 }.");
  if (model.kind === 'mlp') {
    if (model.loss === 'mse') refuse('this mlp is a regressor (loss mse); a protonet classifies', "Give the mlp classes (and no loss 'mse').");
    const m = model as Extract<ModelSpec, { kind: 'mlp'; classes: number }>;
    if (m.hidden.length === 0) refuse('this mlp has no hidden layer (hidden: [])', 'Give it hidden layers, e.g. hidden: [256, 128, 64, 64].');
    const layers = m.hidden.flatMap((units): LayerSpec[] => [{ kind: 'dense', units }, ...(m.norm === 'task' ? [{ kind: 'norm' } as const] : []), { kind: 'relu' }]);
    return { image: { h: 1, w: 1, c: dim }, layers, loss: { kind: 'proto', classes: m.classes } };
  }
  const full = netLayersOf(model, dim)!;
  const head = full.layers[full.layers.length - 1];
  if (full.loss.kind !== 'softmax-ce' || head?.kind !== 'dense' || full.layers.length < 2) {
    refuse('its last layer is not a dense softmax head to take off', "End the layer list with { kind: 'dense', units: N } under softmax cross-entropy.");
  }
  return { image: full.image, layers: full.layers.slice(0, -1), loss: { kind: 'proto', classes: (head as { units: number }).units } };
}

export function netModelLayout(model: ModelSpec, dim: number, context: number, episode = false): NetModelLayout | null {
  const spec = netLayersOf(model, dim, episode);
  if (!spec) return null;
  const net = netLayout({ ...spec.image, c: spec.image.c + context }, spec.layers, spec.loss);
  const tensors: [number, number][] = [];
  for (const l of net.layers) if (l.count > 0) tensors.push([l.offset, l.offset + l.weights], [l.offset + l.weights, l.offset + l.count]);
  return {
    kind: 'net', net, dim, context, classes: spec.loss.kind === 'softmax-ce' ? net.outputs : spec.loss.kind === 'proto' ? spec.loss.classes : 0,
    params: net.params, contextOffset: net.params, vector: roundUp4(net.params + context), tensors, init: spec.init ?? 'he',
  };
}

/** The layout of a model spec on rows of `dim` features with `context` context inputs, or null for
 * the logistic unit. */
export function layoutOfModel(model: ModelSpec, dim: number, context = 0, episode = false): ModelLayout | null {
  if (episode) return netModelLayout(model, dim, context, true);
  if (model.kind === 'mlp' && model.loss !== 'mse') return mlpLayout(dim, model.hidden, model.classes, context, model.norm === 'task');
  return netModelLayout(model, dim, context);
}

/** The layout of a learner's model (CAML adds its context), or null for the logistic unit. */
export function modelLayoutOf(o: ResolvedLearnerOptions): ModelLayout | null {
  const can = capabilitiesOf(o);
  return layoutOfModel(o.model, o.dim, can.context(o), can.episode);
}

/** He-normal weights (dense: N(0, 2/fan-in); conv: fan-in k²·C_in), zero biases — or, for a layout
 * with init 'fan-in-uniform', W and b ~ U(±1/√fan-in) — and φ = 0, from the seed (the same on every
 * backend). */
export function modelInit(layout: ModelLayout, seed: number, counterBase = 0): Float32Array {
  if (layout.kind === 'mlp') return mlpInit(layout, seed, counterBase);
  const theta = new Float32Array(layout.vector);
  for (const l of layout.net.layers) {
    if (l.count === 0) continue;
    const fanIn = l.weights / l.output.c;
    if (layout.init === 'fan-in-uniform') {
      const bound = 1 / Math.sqrt(fanIn);
      for (let i = l.offset; i < l.offset + l.count; i++) theta[i] = bound * (2 * uniform01(seed, STREAM.init, counterBase + i) - 1);
    } else {
      const scale = Math.sqrt(2 / fanIn);
      for (let i = l.offset; i < l.offset + l.weights; i++) theta[i] = scale * normal(seed, STREAM.init, counterBase + i);
    }
  }
  return theta;
}

/** One line naming the model's parameters (getParams' layout). */
export function describeLayout(layout: ModelLayout): string {
  if (layout.kind === 'mlp') return `MLP ${layout.widths.join('-')}`;
  const shape = (s: Shape) => `${s.h}×${s.w}×${s.c}`;
  return `net ${shape(layout.net.input)} → ${layout.net.layers.map((l) => l.spec.kind === 'conv2d' ? `conv${l.spec.size}x${l.spec.size}/${l.spec.stride}(${l.spec.filters})` : l.spec.kind === 'dense' ? `dense(${l.spec.units})` : l.spec.kind).join(' → ')}`;
}

/** Models a learner holds: AMP trains `models` independent ones, the meta-learners one θ. */
export const modelCount = (o: ResolvedLearnerOptions): number => capabilitiesOf(o).models(o);
