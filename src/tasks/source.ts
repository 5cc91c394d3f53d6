// Task sources: where batches of tasks come from. Device sources (seed, linear, images, omniglot, sinusoid) are sampled on
// the GPU by shaders/sample-tasks.wgsl (CPU twin: src/cpu/sample-tasks.ts) from a counter-based
// generator, so a (seed, iteration, split) gives the same batch on both backends. The file source holds
// the user's own tasks on the CPU and uploads the batch each iteration.
import { InvalidOptionError, ShapeError } from '../errors.js';
import { OMNIGLOT_SIZE, type OmniglotSet } from './omniglot.js';
import type { SinusoidSource } from './sinusoid.js';

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
  | { kind: 'file'; dim: number; train: FileTasks; test: FileTasks; name?: string }
  | OmniglotSource
  | SinusoidSource;

/**
 * N-way K-shot Omniglot episodes: each task draws `ways` distinct classes of its split, `shots` support
 * and `queries` query images of each (distinct drawers within a class), and labels the classes 0 … N−1
 * in a random order. Meta-train classes are (character, rotation by 0/90/180/270° clockwise), as in
 * MAML; meta-test classes are the characters unrotated. A batch then has supportShots = ways·shots and
 * queryShots = ways·queries rows per task, of 784 features (ink / 255, no bias feature). Rows of a task
 * cycle through the labels: support row i has label i mod N and is that class's shot ⌊i / N⌋; query
 * row i has label i mod N (its class's image shots + ⌊i / N⌋).
 */
export interface OmniglotSource {
  kind: 'omniglot';
  set: OmniglotSet;
  ways: number;
  shots: number;
  queries: number;
  /** Alphabet names of each split (disjoint); default OMNIGLOT_EMBEDDED_SPLIT. */
  split?: OmniglotSplit;
  /** Rotations by 90°, 180°, 270° as extra meta-train classes (MAML's Omniglot protocol; default true).
   * fashionEpisodes turns them off: a turned shoe is not a new kind of garment. */
  rotations?: boolean;
  name?: string;
}

/** Alphabets of each split, by name (pairwise disjoint). `val`: a validation split for tuning, apart
 * from the test split (optional; its alphabets are then not trained on). */
export interface OmniglotSplit { train: string[]; val?: string[]; test: string[] }

/** The embedded set's 8 alphabets: meta-test on two held out, meta-train on the other six; no
 * validation split (every figure of the README uses this one). */
export const OMNIGLOT_EMBEDDED_SPLIT: OmniglotSplit = {
  train: ['Balinese', 'Early_Aramaic', 'Greek', 'Japanese_(katakana)', 'Korean', 'Latin'],
  test: ['Sanskrit', 'Tagalog'],
};

/** The split for tuning on the embedded set: Greek moves from meta-train to validation; the test
 * alphabets stay untouched. Tune on 'val' with this split, then train on OMNIGLOT_EMBEDDED_SPLIT. */
export const OMNIGLOT_TUNING_SPLIT: OmniglotSplit = {
  train: ['Balinese', 'Early_Aramaic', 'Japanese_(katakana)', 'Korean', 'Latin'],
  val: ['Greek'],
  test: ['Sanskrit', 'Tagalog'],
};

/** Moves the named alphabets from a split's train side to its validation side. */
export function withValidation(split: OmniglotSplit, val: string[]): OmniglotSplit {
  return { train: split.train.filter((a) => !val.includes(a)), val: [...(split.val ?? []), ...val], test: split.test };
}

/** Most ways, and most shots + queries, of an Omniglot task (the samplers keep arrays of this size). */
export const OMNIGLOT_MAX_WAYS = 64;
export const OMNIGLOT_MAX_IMAGES_PER_CLASS = 64;

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

/** Which classes a batch draws from: meta-train, validation (Omniglot with a val split only), meta-test. */
export type Split = 'train' | 'val' | 'test';

/** Classes per character of a split: 4 rotations in meta-train (unless the source turns them off), else 1. */
export function trainRotations(source: OmniglotSource, split: Split): number {
  return split === 'train' && source.rotations !== false ? 4 : 1;
}

/** Alphabet names of fashionEpisodes' two class groups. */
export const FASHION_EPISODE_GROUPS = { train: 'Fashion-MNIST classes 0–5', test: 'Fashion-MNIST classes 6–9' };

/**
 * N-way K-shot episodes on Fashion-MNIST, with the Omniglot episode sampler: each class is a "character"
 * (its images its "drawers"), meta-train on classes 0–5 (T-shirt/top, Trouser, Pullover, Dress, Coat,
 * Sandal), meta-test on 6–9 (Shirt, Sneaker, Bag, Ankle boot), no rotations. The held-out side is small:
 * 4 classes, so at most 4-way test tasks, and every test task draws from the same four classes (only
 * the images and the order of the labels change).
 */
export function fashionEpisodes(images: ImageSet, shape: { ways: number; shots: number; queries: number }, name = 'Fashion-MNIST'): OmniglotSource {
  if (images.pixels !== OMNIGLOT_SIZE * OMNIGLOT_SIZE || images.classStart.length !== 10) {
    throw new ShapeError(`fashionEpisodes needs the 10 classes of 28×28 Fashion-MNIST, got ${images.classStart.length} classes of ${images.pixels} pixels.`, 'Load it with loadFashionMnist.');
  }
  const n = images.data.length / images.pixels;
  const alphabet = new Uint16Array(n);
  const character = new Uint16Array(n);
  const drawer = new Uint8Array(n);
  // Images sorted by class, as an OmniglotSet needs (a class's images contiguous, in class order).
  const order: number[] = [];
  for (let c = 0; c < 10; c++) for (let k = 0; k < images.classCount[c]; k++) order.push(images.classStart[c] + k);
  const pixels = new Uint8Array(order.length * images.pixels);
  order.forEach((src, i) => {
    pixels.set(images.data.subarray(src * images.pixels, (src + 1) * images.pixels), i * images.pixels);
  });
  let i = 0;
  for (let c = 0; c < 10; c++) {
    for (let k = 0; k < images.classCount[c]; k++, i++) {
      alphabet[i] = c < FASHION_SPLIT.train[1] ? 0 : 1;
      character[i] = c;
      drawer[i] = k & 255;  // metadata only: the sampler draws distinct images by index
    }
  }
  const set: OmniglotSet = {
    images: pixels, alphabet, character, drawer,
    alphabets: [FASHION_EPISODE_GROUPS.train, FASHION_EPISODE_GROUPS.test],
    characters: FASHION_CLASSES.map((c, k) => ({ alphabet: k < FASHION_SPLIT.train[1] ? 0 : 1, name: c })),
    sets: [{ name: 'fashion-mnist', alphabets: [0, 2] }],
  };
  return {
    kind: 'omniglot', set, ...shape, rotations: false, name,
    split: { train: [FASHION_EPISODE_GROUPS.train], test: [FASHION_EPISODE_GROUPS.test] },
  };
}

/** Keys of the splits' random streams: task t of iteration i draws from pcgHash(pcgHash(i ^ key) ^ t). */
export const SPLIT_STREAM_KEY: Record<Split, number> = { train: 0, test: 0x80000000, val: 0x40000000 };

/** Features per row a source produces (bias included where the source adds one). */
export function sourceDim(source: TaskSource): number {
  if (source.kind === 'omniglot') return OMNIGLOT_SIZE * OMNIGLOT_SIZE;
  if (source.kind === 'sinusoid') return 1;
  return source.kind === 'images' ? source.images.pixels + 1 : source.dim;
}

export const SOURCE_KIND_CODE = { seed: 0, linear: 1, images: 2, omniglot: 3, sinusoid: 4 } as const;

export const LINEAR_DEFAULTS = { taskSpread: 0.5, meanScale: 1.5 };

/** Fashion-MNIST's classes and metagrad's split of them: meta-train on 0–5, meta-test on 6–9. */
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const FASHION_SPLIT: ClassSplit = { train: [0, 6], test: [6, 10] };

/** The [first, end) class range of a split, checked against the image set. */
export function classRange(source: Extract<TaskSource, { kind: 'images' }>, split: Split): [number, number] {
  if (split === 'val') throw new InvalidOptionError('Image sources have no validation split (only meta-train and meta-test class ranges).', "Evaluate on 'test', or use an Omniglot source with a val split.");
  const [lo, hi] = source.split[split];
  const classes = source.images.classStart.length;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && 0 <= lo && hi - lo >= 2 && hi <= classes && classes <= 16)) {
    throw new InvalidOptionError(`The ${split} split [${lo}, ${hi}) needs at least 2 of the image set's ${classes} classes (at most 16).`, 'Give each split a range of 2 or more classes.');
  }
  return [lo, hi];
}

/** The characters of an Omniglot split's alphabets (global indices, ascending), with their first image
 * and image count, checked: known, disjoint alphabets; enough characters for `ways` and enough drawers
 * for shots + queries in every character. */
export function omniglotPool(source: OmniglotSource, split: Split): { characters: number[]; start: number[]; count: number[] } {
  const { set, ways, shots, queries } = source;
  const chosen = source.split ?? OMNIGLOT_EMBEDDED_SPLIT;
  const int = (name: string, v: number, lo: number, hi: number) => {
    if (!(Number.isInteger(v) && v >= lo && v <= hi)) throw new InvalidOptionError(`Omniglot ${name} must be an integer from ${lo} to ${hi}, got ${String(v)}.`, 'e.g. ways: 5, shots: 1, queries: 15.');
  };
  int('ways', ways, 2, OMNIGLOT_MAX_WAYS);
  int('shots', shots, 1, OMNIGLOT_MAX_IMAGES_PER_CLASS - 1);
  int('queries', queries, 1, OMNIGLOT_MAX_IMAGES_PER_CLASS - shots);
  const names = chosen[split];
  if (!names || names.length === 0) {
    throw new InvalidOptionError(`The Omniglot source has no ${split} split.`, split === 'val' ? 'Give split.val (e.g. OMNIGLOT_TUNING_SPLIT, or --val-alphabets Greek), or evaluate on test.' : `Name the ${split} alphabets in split.${split}.`);
  }
  for (const a of names) {
    if (!set.alphabets.includes(a)) throw new InvalidOptionError(`The Omniglot ${split} split names the alphabet ${a}, which the set does not hold.`, `Use alphabets of the set: ${set.alphabets.join(', ')}.`);
    for (const other of (['train', 'val', 'test'] as const).filter((s) => s !== split)) {
      if (chosen[other]?.includes(a)) throw new InvalidOptionError(`The alphabet ${a} is in both the ${split} and ${other} splits.`, 'Keep meta-train, validation and meta-test alphabets disjoint.');
    }
  }
  const alphabets = new Set(names.map((a) => set.alphabets.indexOf(a)));
  const start = new Array<number>(set.characters.length).fill(-1);
  const count = new Array<number>(set.characters.length).fill(0);
  for (let i = 0; i < set.character.length; i++) {
    const c = set.character[i];
    if (start[c] < 0) start[c] = i;
    count[c]++;
  }
  const characters: number[] = [];
  for (let c = 0; c < set.characters.length; c++) {
    if (!alphabets.has(set.characters[c].alphabet) || count[c] === 0) continue;
    if (count[c] < shots + queries) {
      throw new ShapeError(`Omniglot character ${set.alphabets[set.characters[c].alphabet]}/${set.characters[c].name} has ${count[c]} drawers, fewer than shots + queries = ${shots + queries}.`, `Use shots + queries ≤ ${count[c]}.`);
    }
    characters.push(c);
  }
  const rotations = trainRotations(source, split);
  if (characters.length * rotations < ways) {
    throw new ShapeError(`The Omniglot ${split} split has ${characters.length * rotations} classes, fewer than ways = ${ways}.`, 'Use fewer ways or more alphabets.');
  }
  return { characters, start: characters.map((c) => start[c]), count: characters.map((c) => count[c]) };
}
