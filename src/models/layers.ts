// Models as a list of layers and a loss (../shared/SPEC.md "Layers and losses", "Conv-4"; issue 20):
// the specs, the shapes they make, where each layer's parameters sit in the flat per-task vector, the
// option checks, and the papers' presets. The float64 oracle over such a list is src/cpu/net/.
//
// Layouts: a row is an image H × W × C, row-major with the channel fastest (index (y·W + x)·C + c), as
// the Omniglot rows are (28 × 28 × 1); a dense layer's input is that row flattened. Parameters, layer
// after layer: dense W (in × out, row-major: W[i·out + j] maps input i to unit j) then b (out); conv2d
// W (k × k × C_in × C_out: W[((ky·k + kx)·C_in + ci)·C_out + co]) then b (C_out). The other layers have none.
import { InvalidOptionError } from '../errors.js';

export type LayerSpec =
  | { kind: 'dense'; units: number }
  /** k × k filters, stride s, zero padding p on every side: output ⌊(H + 2p − k)/s⌋ + 1. */
  | { kind: 'conv2d'; filters: number; size: number; stride: number; padding: number }
  /** Per channel over every row and position of the task's set: mean 0, biased variance, ε = 1e-3, no affine. */
  | { kind: 'norm' }
  | { kind: 'relu' }
  /** 2 × 2, stride 2, floor. */
  | { kind: 'maxpool' }
  /** Global average over positions: H × W × C → C. */
  | { kind: 'meanpool' }
  | { kind: 'flatten' };

/** Softmax cross-entropy over N classes (labels: class indices; metric: accuracy), or mean squared
 * error over one real output (labels: real targets; loss and metric: mean over rows of (y − ŷ)²), or
 * the prototypical loss of an episode (protonet; made by the learner, not given by users): the outputs
 * are embeddings, the first rows of a task's episode its support rows, whose class means are the
 * prototypes of up to `classes` classes; each later row's logits are −‖z − c_k‖² over the classes that
 * have support rows; softmax cross-entropy and accuracy over those rows. */
export type LossSpec = { kind: 'softmax-ce' } | { kind: 'mse' } | { kind: 'proto'; classes: number };

export interface Shape { h: number; w: number; c: number }

export const features = (s: Shape): number => s.h * s.w * s.c;

export interface LayerLayout {
  spec: LayerSpec;
  input: Shape;
  output: Shape;
  /** First float of the layer's parameters in the per-task vector, and how many it has (0: none). */
  offset: number;
  count: number;
  /** dense / conv2d: floats of the weights (the bias follows them). */
  weights: number;
}

export interface NetLayout {
  input: Shape;
  layers: LayerLayout[];
  loss: LossSpec;
  /** Parameters of one model. */
  params: number;
  /** Outputs of the last layer: the classes (softmax-ce) or 1 (mse). */
  outputs: number;
}

export const NORM_EPS = 1e-3;

/** The papers' Conv-4 (src/models/layers.ts conv4Omniglot / conv4MiniImagenet) as a learner's model. */
export interface Conv4ModelSpec {
  kind: 'conv4';
  /** N, the classes of the softmax head. */
  classes: number;
  /** Filters of every conv layer: 64 in MAML's Omniglot net (default), 32 in its mini-ImageNet net. */
  filters?: number;
  /** 'stride' (default): MAML's Omniglot form, 3 × 3 stride-2 convolutions and a mean over space;
   * 'max': the mini-ImageNet form, stride-1 convolutions each followed by a 2 × 2 max-pool, flattened. */
  pooling?: 'stride' | 'max';
  /** The rows' image shape; default a square single-channel image of `dim` pixels (28 × 28 × 1 for
   * Omniglot), or 84 × 84 × 3 when dim is 21168. */
  image?: Shape;
}

/** A general layer list: rows are `input` images, the layers act in order, then the loss. */
export interface LayersModelSpec {
  kind: 'layers';
  input: Shape;
  layers: LayerSpec[];
  /** Default softmax cross-entropy (labels: class indices 0 … outputs−1). */
  loss?: LossSpec;
}

/** The image shape of `dim`-feature rows when the model does not name one. */
export function defaultImage(dim: number): Shape | null {
  if (dim === 84 * 84 * 3) return { h: 84, w: 84, c: 3 };
  const side = Math.round(Math.sqrt(dim));
  return side * side === dim ? { h: side, w: side, c: 1 } : null;
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** The layout of `layers` on inputs of `input`, with every option checked (InvalidOptionError naming
 * the layer and the fix). */
export function netLayout(input: Shape, layers: readonly LayerSpec[], loss: LossSpec): NetLayout {
  if (![input.h, input.w, input.c].every(positiveInt)) {
    throw new InvalidOptionError(`The input shape must be positive integers h × w × c, got ${JSON.stringify(input)}.`, 'e.g. { h: 28, w: 28, c: 1 } for Omniglot.');
  }
  if (layers.length === 0) throw new InvalidOptionError('A model needs at least one layer.', "e.g. [{ kind: 'dense', units: 5 }].");
  const out: LayerLayout[] = [];
  let shape = input;
  let offset = 0;
  for (const [i, spec] of layers.entries()) {
    const where = `layer ${i} (${String((spec as { kind?: unknown })?.kind)})`;
    let next: Shape;
    let weights = 0;
    let count = 0;
    switch (spec?.kind) {
      case 'dense':
        if (!positiveInt(spec.units)) throw new InvalidOptionError(`${where}: units must be a positive integer, got ${String(spec.units)}.`, "e.g. { kind: 'dense', units: 64 }.");
        next = { h: 1, w: 1, c: spec.units };
        weights = features(shape) * spec.units;
        count = weights + spec.units;
        break;
      case 'conv2d': {
        const { filters, size, stride, padding } = spec;
        if (!positiveInt(filters) || !positiveInt(size) || !positiveInt(stride) || !(Number.isInteger(padding) && padding >= 0 && padding < size)) {
          throw new InvalidOptionError(`${where}: filters, size and stride must be positive integers and padding an integer in [0, size), got ${JSON.stringify(spec)}.`,
            "e.g. { kind: 'conv2d', filters: 64, size: 3, stride: 2, padding: 1 }.");
        }
        const h = Math.floor((shape.h + 2 * padding - size) / stride) + 1;
        const w = Math.floor((shape.w + 2 * padding - size) / stride) + 1;
        if (h < 1 || w < 1) throw new InvalidOptionError(`${where}: a ${size} × ${size} filter does not fit its ${shape.h} × ${shape.w} input (padding ${padding}).`, 'Use fewer layers, a smaller filter, or more padding.');
        next = { h, w, c: filters };
        weights = size * size * shape.c * filters;
        count = weights + filters;
        break;
      }
      case 'maxpool':
        if (shape.h < 2 || shape.w < 2) throw new InvalidOptionError(`${where}: 2 × 2 max-pooling needs an input of at least 2 × 2, got ${shape.h} × ${shape.w}.`, 'Pool fewer times, or earlier.');
        next = { h: Math.floor(shape.h / 2), w: Math.floor(shape.w / 2), c: shape.c };
        break;
      case 'meanpool':
        next = { h: 1, w: 1, c: shape.c };
        break;
      case 'flatten':
        next = { h: 1, w: 1, c: features(shape) };
        break;
      case 'norm':
      case 'relu':
        next = shape;
        break;
      default:
        throw new InvalidOptionError(`${where}: unknown layer kind.`, 'Layers: dense, conv2d, norm, relu, maxpool, meanpool, flatten.');
    }
    out.push({ spec, input: shape, output: next, offset, count, weights });
    offset += count;
    shape = next;
  }
  const outputs = features(shape);
  if (loss?.kind === 'softmax-ce') {
    if (outputs < 2) throw new InvalidOptionError(`Softmax cross-entropy needs at least 2 outputs (classes); the last layer gives ${outputs}.`, 'End with a dense layer of N units for N classes.');
  } else if (loss?.kind === 'mse') {
    if (outputs !== 1) throw new InvalidOptionError(`Mean squared error regresses one real output; the last layer gives ${outputs}.`, "End with { kind: 'dense', units: 1 }.");
  } else if (loss?.kind === 'proto') {
    if (!(Number.isInteger(loss.classes) && loss.classes >= 2)) throw new InvalidOptionError(`The prototypical loss needs at least 2 classes, got ${String(loss.classes)}.`, 'Give the model N classes, N ≥ 2.');
  } else {
    throw new InvalidOptionError(`Unknown loss ${JSON.stringify(loss)}.`, "Use { kind: 'softmax-ce' } or { kind: 'mse' }.");
  }
  return { input, layers: out, loss, params: offset, outputs };
}

/**
 * MAML's Omniglot network (Finn et al. 2017; cbfinn/maml): 4 × [conv 3 × 3, stride 2, 'SAME' (padding 1)
 * → per-task norm → ReLU] (28 → 14 → 7 → 4 → 2), mean over space, dense N. `filters` 64 in the paper.
 */
export function conv4Omniglot(classes: number, filters = 64): LayerSpec[] {
  const block = (): LayerSpec[] => [{ kind: 'conv2d', filters, size: 3, stride: 2, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }];
  return [...block(), ...block(), ...block(), ...block(), { kind: 'meanpool' }, { kind: 'dense', units: classes }];
}

/** The mini-ImageNet form (84 × 84 × 3): 4 × [conv 3 × 3, stride 1, padding 1 → norm → ReLU → max-pool],
 * 5 × 5 × filters flattened, dense N. `filters` 32 in MAML, 64 in ProtoNets / learn2learn's CNN4. */
export function conv4MiniImagenet(classes: number, filters = 32): LayerSpec[] {
  const block = (): LayerSpec[] => [{ kind: 'conv2d', filters, size: 3, stride: 1, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'maxpool' }];
  return [...block(), ...block(), ...block(), ...block(), { kind: 'flatten' }, { kind: 'dense', units: classes }];
}

/** The MLP of src/models/mlp.ts as a layer list: [dense(h) → norm? → relu] per hidden width, dense N. */
export function mlpLayers(hidden: readonly number[], outputs: number, norm: boolean): LayerSpec[] {
  return [...hidden.flatMap((units): LayerSpec[] => [{ kind: 'dense', units }, ...(norm ? [{ kind: 'norm' } as const] : []), { kind: 'relu' }]), { kind: 'dense', units: outputs }];
}

/** Multiply-adds of one row's forward pass (convolutions and dense layers): what a CPU batch costs. */
export function forwardMacs(net: NetLayout): number {
  let macs = 0;
  for (const l of net.layers) if (l.count > 0) macs += (l.output.h * l.output.w) * l.weights;
  return macs;
}
