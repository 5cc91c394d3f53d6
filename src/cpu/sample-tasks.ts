// CPU twin of shaders/sample-tasks.wgsl: the same batch from the same (seed, iteration, split), bit for
// bit for the seed, images, omniglot and sinusoid sources; for linear, rows are identical and labels agree except where
// u lands within float32 rounding of σ(x·w_t) (the GPU computes w_t with float32 log/cos).
import { pcgHash, uniform01, normal, STREAM } from '../rng.js';
import { InvalidOptionError } from '../errors.js';
import { classRange, LINEAR_DEFAULTS, omniglotPool, sourceDim, SPLIT_STREAM_KEY, trainRotations, type OmniglotSource, type Split, type TaskSource } from '../tasks/source.js';
import { OMNIGLOT_SIZE } from '../tasks/omniglot.js';
import { gridValue, sinusoidGrid, sinusoidQueries, sinusoidTaskIndices, type SinusoidSource } from '../tasks/sinusoid.js';
import type { CheckedBatch } from '../types.js';
import { sigmoid } from './logistic.js';

export interface SampleShape { tasks: number; supportShots: number; queryShots: number }

/** The stream of task t of iteration i in a split (u32 arithmetic, as in WGSL). */
export function taskStream(iteration: number, task: number, split: Split): number {
  return pcgHash((pcgHash((iteration ^ SPLIT_STREAM_KEY[split]) >>> 0) ^ task) >>> 0);
}

function hash3(seed: number, stream: number, counter: number): number {
  return pcgHash((pcgHash((pcgHash(seed >>> 0) ^ stream) >>> 0) ^ counter) >>> 0);
}

export function randomBelow(seed: number, stream: number, counter: number, n: number): number {
  return hash3(seed, stream, counter) % n;
}

const INV_255 = Math.fround(1 / 255);

/** Batch number `iteration` of a device source, as the GPU sampler writes it (without padding). */
export function sampleTasks(source: TaskSource, shape: SampleShape, seed: number, iteration: number, split: Split): CheckedBatch {
  if (source.kind === 'file') throw new Error('file sources are sampled by sampleFileTasks');
  if (source.kind === 'omniglot') return sampleOmniglot(source, shape, seed, iteration, split);
  if (source.kind === 'sinusoid') return sampleSinusoid(source, shape, seed, iteration, split);
  const D = sourceDim(source);
  const { tasks: T, supportShots: Ks, queryShots: Kq } = shape;
  const batch: CheckedBatch = {
    tasks: T, supportShots: Ks, queryShots: Kq,
    supportX: new Float32Array(T * Ks * D), supportY: new Float32Array(T * Ks),
    queryX: new Float32Array(T * Kq * D), queryY: new Float32Array(T * Kq),
  };
  const lin = source.kind === 'linear' ? { ...LINEAR_DEFAULTS, ...source } : null;
  const mean = lin ? Float64Array.from({ length: D }, (_, d) => Math.fround(lin.meanScale * Math.fround(normal(seed, STREAM.tasks, d)))) : null;
  const w = new Float64Array(D);
  const range = source.kind === 'images' ? classRange(source, split) : null;
  for (let t = 0; t < T; t++) {
    const stream = taskStream(iteration, t, split);
    let c1 = 0, c0 = 0;
    if (range) {
      const n = range[1] - range[0];
      const first = randomBelow(seed, stream, 0, n);
      c1 = range[0] + first;
      c0 = range[0] + ((first + 1 + randomBelow(seed, stream, 1, n - 1)) % n);
    }
    if (lin) for (let d = 0; d < D; d++) w[d] = mean![d] + lin.taskSpread * normal(seed + 3, stream, d);
    for (let r = 0; r < Ks + Kq; r++) {
      const isSupport = r < Ks;
      const k = isSupport ? r : r - Ks;
      const x = isSupport ? batch.supportX : batch.queryX;
      const off = (t * (isSupport ? Ks : Kq) + k) * D;
      let label: number;
      if (source.kind === 'seed') {
        for (let d = 0; d < D; d++) x[off + d] = uniform01(seed, stream, r * D + d);
        label = uniform01(seed + 1, stream, r) >= 0.5 ? 1 : 0;
      } else if (lin) {
        let a = 0;
        for (let d = 0; d < D; d++) {
          const v = d + 1 < D ? 2 * uniform01(seed + 1, stream, r * D + d) - 1 : 1;
          x[off + d] = v;
          a += v * w[d];
        }
        label = uniform01(seed + 2, stream, r) < sigmoid(a) ? 1 : 0;
      } else {
        const images = (source as Extract<TaskSource, { kind: 'images' }>).images;
        label = k % 2;
        const c = label === 1 ? c1 : c0;
        const image = images.classStart[c] + randomBelow(seed + 1, stream, r, images.classCount[c]);
        const P = images.pixels;
        for (let d = 0; d < P; d++) x[off + d] = images.data[image * P + d] * INV_255;
        x[off + P] = 1;
      }
      (isSupport ? batch.supportY : batch.queryY)[t * (isSupport ? Ks : Kq) + k] = label;
    }
  }
  return batch;
}

/**
 * `n` distinct integers of [0, m) by Floyd's algorithm, then shuffled (Fisher–Yates): a uniformly random
 * ordered selection, exact, n draws + n − 1 swaps. Draw i uses counter `counter + i`, swap i counter
 * `counter + n + i` (as omniglotDistinct in shaders/sample-tasks.wgsl).
 */
export function distinctBelow(seed: number, stream: number, counter: number, n: number, m: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const j = m - n + i;
    const t = randomBelow(seed, stream, counter + i, j + 1);
    out.push(out.includes(t) ? j : t);
  }
  for (let i = n - 1; i >= 1; i--) {
    const k = randomBelow(seed, stream, counter + n + i, i + 1);
    [out[i], out[k]] = [out[k], out[i]];
  }
  return out;
}

/** Index into a 28×28 image of the pixel that lands at (y, x) when the image is turned clockwise by rot·90°. */
export function rotatedSource(y: number, x: number, rot: number): number {
  const S = OMNIGLOT_SIZE;
  switch (rot) {
    case 1: return (S - 1 - x) * S + y;
    case 2: return (S - 1 - y) * S + (S - 1 - x);
    case 3: return x * S + (S - 1 - y);
    default: return y * S + x;
  }
}

/** Omniglot episodes (source.ts OmniglotSource). Per task: the classes are distinctBelow(seed, stream, 0,
 * N, pool·R) (class = poolIndex·R + rotation, R = 4 in meta-train, 1 in meta-test), label ℓ is class[ℓ];
 * label ℓ's images are distinctBelow(seed + 1, stream, 128ℓ, shots + queries, drawers of its character). */
function sampleOmniglot(source: OmniglotSource, shape: SampleShape, seed: number, iteration: number, split: Split): CheckedBatch {
  const { ways: N, shots: K, queries: Q, set } = source;
  const { tasks: T, supportShots: Ks, queryShots: Kq } = shape;
  if (Ks !== N * K || Kq !== N * Q) throw new Error(`sampleTasks: the Omniglot source makes ${N * K} support and ${N * Q} query rows per task, not ${Ks} and ${Kq}`);
  const pool = omniglotPool(source, split);
  const R = trainRotations(source, split);
  const P = OMNIGLOT_SIZE * OMNIGLOT_SIZE;
  const batch: CheckedBatch = {
    tasks: T, supportShots: Ks, queryShots: Kq,
    supportX: new Float32Array(T * Ks * P), supportY: new Float32Array(T * Ks),
    queryX: new Float32Array(T * Kq * P), queryY: new Float32Array(T * Kq),
  };
  for (let t = 0; t < T; t++) {
    const stream = taskStream(iteration, t, split);
    const classes = distinctBelow(seed, stream, 0, N, pool.characters.length * R);
    for (let label = 0; label < N; label++) {
      const c = Math.floor(classes[label] / R), rot = classes[label] % R;
      const images = distinctBelow(seed + 1, stream, 128 * label, K + Q, pool.count[c]);
      for (let s = 0; s < K + Q; s++) {
        const isSupport = s < K;
        const row = t * (isSupport ? Ks : Kq) + (isSupport ? s : s - K) * N + label;
        const x = isSupport ? batch.supportX : batch.queryX;
        const base = (pool.start[c] + images[s]) * P;
        for (let y = 0; y < OMNIGLOT_SIZE; y++) {
          for (let xx = 0; xx < OMNIGLOT_SIZE; xx++) x[row * P + y * OMNIGLOT_SIZE + xx] = set.images[base + rotatedSource(y, xx, rot)] * INV_255;
        }
        (isSupport ? batch.supportY : batch.queryY)[row] = label;
      }
    }
  }
  return batch;
}

/** Sinusoid tasks (src/tasks/sinusoid.ts): per task, A and φ are grid indices drawn with counters 0 and 1
 * of its stream under `seed`; row r (support rows, then query rows) has x drawn with counter r under
 * seed + 1, and y = A·sin(x − φ) from the grid's sine table (one float32 product). */
function sampleSinusoid(source: SinusoidSource, shape: SampleShape, seed: number, iteration: number, split: Split): CheckedBatch {
  const { tasks: T, supportShots: Ks, queryShots: Kq } = shape;
  if (Ks !== source.shots || Kq !== sinusoidQueries(source)) throw new Error(`sampleTasks: the sinusoid source makes ${source.shots} support and ${sinusoidQueries(source)} query rows per task, not ${Ks} and ${Kq}`);
  const g = sinusoidGrid(source);
  const batch: CheckedBatch = {
    tasks: T, supportShots: Ks, queryShots: Kq,
    supportX: new Float32Array(T * Ks), supportY: new Float32Array(T * Ks),
    queryX: new Float32Array(T * Kq), queryY: new Float32Array(T * Kq),
  };
  for (let t = 0; t < T; t++) {
    const stream = taskStream(iteration, t, split);
    const task = sinusoidTaskIndices(g, (counter, n) => randomBelow(seed, stream, counter, n));
    const amplitude = gridValue(g.ampLo + task.amp);
    const phase = g.phaseLo + task.phase;
    for (let r = 0; r < Ks + Kq; r++) {
      const ix = g.xLo + randomBelow(seed + 1, stream, r, g.xCount);
      const at = r < Ks ? t * Ks + r : t * Kq + r - Ks;
      (r < Ks ? batch.supportX : batch.queryX)[at] = gridValue(ix);
      (r < Ks ? batch.supportY : batch.queryY)[at] = amplitude * g.table[ix - phase - g.tableLo];
    }
  }
  return batch;
}

/** The amplitude and phase of tasks 0 … tasks−1 of batch `iteration` (what sampleTasks draws them as):
 * evaluation's oracle, and the tests' check of y = A·sin(x − φ). */
export function sinusoidTasks(source: SinusoidSource, tasks: number, seed: number, iteration: number, split: Split): { amplitude: Float64Array; phase: Float64Array } {
  const g = sinusoidGrid(source);
  const amplitude = new Float64Array(tasks), phase = new Float64Array(tasks);
  for (let t = 0; t < tasks; t++) {
    const stream = taskStream(iteration, t, split);
    const task = sinusoidTaskIndices(g, (counter, n) => randomBelow(seed, stream, counter, n));
    amplitude[t] = gridValue(g.ampLo + task.amp);
    phase[t] = gridValue(g.phaseLo + task.phase);
  }
  return { amplitude, phase };
}

/** A batch of the user's file tasks: task t of iteration i is drawn uniformly from the split's tasks. */
export function sampleFileTasks(source: Extract<TaskSource, { kind: 'file' }>, tasks: number, seed: number, iteration: number, split: Split): CheckedBatch {
  if (split === 'val') throw new InvalidOptionError('Task files have a train and a test set, no validation split.', "Evaluate on 'test', or hold validation tasks out of the train file yourself.");
  const f = source[split];
  const D = source.dim;
  const { supportShots: Ks, queryShots: Kq } = f;
  const batch: CheckedBatch = {
    tasks, supportShots: Ks, queryShots: Kq,
    supportX: new Float32Array(tasks * Ks * D), supportY: new Float32Array(tasks * Ks),
    queryX: new Float32Array(tasks * Kq * D), queryY: new Float32Array(tasks * Kq),
  };
  for (let t = 0; t < tasks; t++) {
    const pick = randomBelow(seed, taskStream(iteration, t, split), 0, f.count);
    batch.supportX.set(f.supportX.subarray(pick * Ks * D, (pick + 1) * Ks * D), t * Ks * D);
    batch.supportY.set(f.supportY.subarray(pick * Ks, (pick + 1) * Ks), t * Ks);
    batch.queryX.set(f.queryX.subarray(pick * Kq * D, (pick + 1) * Kq * D), t * Kq * D);
    batch.queryY.set(f.queryY.subarray(pick * Kq, (pick + 1) * Kq), t * Kq);
  }
  return batch;
}
