// Task sources: where batches of tasks come from. Device sources (seed, linear, images) are sampled on
// the GPU by shaders/sample-tasks.wgsl (CPU twin: src/cpu/sample-tasks.ts) from a counter-based
// generator, so a (seed, iteration, split) gives the same batch on both backends. The file source holds
// the user's own tasks on the CPU and uploads the batch each iteration.
import { InvalidOptionError } from '../errors.js';

/** Images of one dataset, grouped by class: class c holds images classStart[c] … classStart[c]+classCount[c]−1. */
export interface ImageSet {
  /** Pixels per image (784 for 28×28). */
  pixels: number;
  /** count × pixels bytes, images sorted by class. */
  data: Uint8Array;
  classStart: number[];
  classCount: number[];
  /** Class names, for messages and plots. */
  classNames: string[];
}

/** Meta-train / meta-test class ranges of an image source. */
export interface ClassSplit { train: [number, number]; test: [number, number] }

export type TaskSource =
  | { kind: 'seed'; dim: number }
  | { kind: 'linear'; dim: number; taskSpread?: number; meanScale?: number }
  | { kind: 'images'; images: ImageSet; split: ClassSplit; name?: string }
  | { kind: 'file'; dim: number; train: FileTasks; test: FileTasks; name?: string };

/** Tasks read from a file (src/tasks/file.ts): every task has the same support and query sizes. */
export interface FileTasks {
  count: number;
  supportShots: number;
  queryShots: number;
  supportX: Float32Array;  // count × Ks × D
  supportY: Float32Array;
  queryX: Float32Array;
  queryY: Float32Array;
}

export type Split = 'train' | 'test';

/** Features per row a source produces (bias included where the source adds one). */
export function sourceDim(source: TaskSource): number {
  return source.kind === 'images' ? source.images.pixels + 1 : source.dim;
}

export const SOURCE_KIND_CODE = { seed: 0, linear: 1, images: 2 } as const;

export const LINEAR_DEFAULTS = { taskSpread: 0.5, meanScale: 1.5 };

/** Fashion-MNIST's classes and metagrad's split of them: meta-train on 0–5, meta-test on 6–9. */
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const FASHION_SPLIT: ClassSplit = { train: [0, 6], test: [6, 10] };

/** The [first, end) class range of a split, checked against the image set. */
export function classRange(source: Extract<TaskSource, { kind: 'images' }>, split: Split): [number, number] {
  const [lo, hi] = source.split[split];
  const classes = source.images.classStart.length;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && 0 <= lo && hi - lo >= 2 && hi <= classes && classes <= 16)) {
    throw new InvalidOptionError(`The ${split} split [${lo}, ${hi}) needs at least 2 of the image set's ${classes} classes (at most 16).`, 'Give each split a range of 2 or more classes.');
  }
  return [lo, hi];
}
