// Host side of shaders/sample-tasks.wgsl (CPU twin: src/cpu/sample-tasks.ts): on-device task sampling
// into a slot's packed data buffer, and the one-invocation `advance` of the device-side iteration counter.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, createBuffer, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import { classRange, LINEAR_DEFAULTS, omniglotPool, SOURCE_KIND_CODE, sourceDim, SPLIT_STREAM_KEY, trainRotations, type OmniglotSource, type Split, type TaskSource } from '../tasks/source.js';
import { SHADERS } from './shader-source.js';
import { dataLayout, paddedDim } from './layout.js';
import type { SampleShape } from '../cpu/sample-tasks.js';
import { sinusoidGrid, sinusoidQueries } from '../tasks/sinusoid.js';

const IMAGE_HEADER_WORDS = 32;

/** Word offsets of an Omniglot source's resident buffer: [header(32) | train pool: first image (P),
 * image count (P) | test pool: same | pixels, 4 per u32]. */
export function omniglotLayout(source: OmniglotSource) {
  const train = omniglotPool(source, 'train');
  const test = omniglotPool(source, 'test');
  const empty = { characters: [] as number[], start: [] as number[], count: [] as number[] };
  const val = source.split?.val?.length ? omniglotPool(source, 'val') : empty;
  const trainOff = IMAGE_HEADER_WORDS;
  const testOff = trainOff + 2 * train.characters.length;
  const valOff = testOff + 2 * test.characters.length;
  const pixelBase = valOff + 2 * val.characters.length;
  return { train, test, val, trainOff, testOff, valOff, pixelBase, words: pixelBase + Math.ceil(source.set.images.length / 4) };
}

/** The resident image buffer: [classStart(16) | classCount(16) | pixels, 4 per u32] (images),
 * omniglotLayout's (omniglot), or the sine table (sinusoid). */
export function packImages(device: GPUDevice, source: TaskSource): GPUBuffer {
  if (source.kind === 'omniglot') {
    const l = omniglotLayout(source);
    const words = new Uint32Array(l.words);
    words.set(l.train.start, l.trainOff);
    words.set(l.train.count, l.trainOff + l.train.characters.length);
    words.set(l.test.start, l.testOff);
    words.set(l.test.count, l.testOff + l.test.characters.length);
    words.set(l.val.start, l.valOff);
    words.set(l.val.count, l.valOff + l.val.characters.length);
    new Uint8Array(words.buffer, l.pixelBase * 4).set(source.set.images);
    const buffer = createBuffer(device, 'sampler.omniglot', words.length);
    device.queue.writeBuffer(buffer, 0, words);
    return buffer;
  }
  if (source.kind === 'sinusoid') {
    const table = sinusoidGrid(source).table;
    const buffer = createBuffer(device, 'sampler.sineTable', table.length);
    device.queue.writeBuffer(buffer, 0, table);
    return buffer;
  }
  if (source.kind !== 'images') {
    // Other sources read nothing from it; WebGPU still needs a bound buffer.
    return createBuffer(device, 'sampler.noImages', IMAGE_HEADER_WORDS);
  }
  const { data, classStart, classCount } = source.images;
  const words = new Uint32Array(IMAGE_HEADER_WORDS + Math.ceil(data.length / 4));
  words.set(classStart, 0);
  words.set(classCount, 16);
  new Uint8Array(words.buffer, IMAGE_HEADER_WORDS * 4).set(data);  // little-endian: byte b of a word = pixel 4w+b
  const buffer = createBuffer(device, 'sampler.images', words.length);
  device.queue.writeBuffer(buffer, 0, words);
  return buffer;
}

export interface SamplerBuffers {
  data: GPUBuffer;
  advData: GPUBuffer;
  sampleState: GPUBuffer;  // one u32: the iteration number
  images: GPUBuffer;
}

export class SampleTasksKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly sample: GPUComputePipeline;
  private readonly advance: GPUComputePipeline;
  constructor(private readonly device: GPUDevice) {
    this.layout = bindGroupLayout(device, 'SampleTasksKernel.layout', ['uniform', 'rw', 'rw', 'read', 'rw']);
    this.sample = computePipeline(device, 'sample-tasks.wgsl', SHADERS.sampleTasks, 'sample_tasks', this.layout, {});
    this.advance = computePipeline(device, 'sample-tasks.wgsl', SHADERS.sampleTasks, 'advance', this.layout, {});
  }

  /** Records "sample the batch of the current iteration, then count it". */
  /** taskBase: for a chunk of a bigger batch, the index of its first task (keys the random streams);
   * countIteration: record the counter's advance after sampling (the last chunk of a batch does). */
  bind(b: SamplerBuffers, source: TaskSource, shape: SampleShape, seed: number, split: Split, taskBase = 0, countIteration = true): BoundDispatch {
    const D = sourceDim(source);
    const off = dataLayout(shape.tasks, shape.supportShots, shape.queryShots, D);
    const grid = taskGrid(shape.tasks, this.device.limits.maxComputeWorkgroupsPerDimension);
    const range = source.kind === 'images' ? classRange(source, split) : [0, 0];
    const lin = source.kind === 'linear' ? { ...LINEAR_DEFAULTS, ...source } : LINEAR_DEFAULTS;
    let omni = { ways: 0, shots: 0, rotations: 1, poolOff: 0, poolCount: 0, pixelBase: 0 };
    if (source.kind === 'omniglot') {
      const { ways: N, shots: K, queries: Q } = source;
      if (shape.supportShots !== N * K || shape.queryShots !== N * Q) throw new Error(`SampleTasksKernel: the Omniglot source makes ${N * K} support and ${N * Q} query rows per task, not ${shape.supportShots} and ${shape.queryShots}`);
      const l = omniglotLayout(source);
      if (split === 'val') omniglotPool(source, 'val');  // its checks (the source has a val split) and errors
      const pool = l[split];
      omni = { ways: N, shots: K, rotations: trainRotations(source, split), poolOff: { train: l.trainOff, test: l.testOff, val: l.valOff }[split], poolCount: pool.characters.length, pixelBase: l.pixelBase };
    }
    let sin = { sinAmpLo: 0, sinAmpCount: 1, sinPhaseLo: 0, sinPhaseCount: 1, sinXLo: 0, sinXCount: 1, sinTableLo: 0 };
    if (source.kind === 'sinusoid') {
      if (shape.supportShots !== source.shots || shape.queryShots !== sinusoidQueries(source)) throw new Error(`SampleTasksKernel: the sinusoid source makes ${source.shots} support and ${sinusoidQueries(source)} query rows per task, not ${shape.supportShots} and ${shape.queryShots}`);
      const g = sinusoidGrid(source);
      sin = { sinAmpLo: g.ampLo, sinAmpCount: g.ampCount, sinPhaseLo: g.phaseLo, sinPhaseCount: g.phaseCount, sinXLo: g.xLo, sinXCount: g.xCount, sinTableLo: g.tableLo };
    }
    const uniform = writeUniform(this.device, 'SampleTasksKernel.params', SHADERS.sampleTasks, 'sp', {
      tasks: shape.tasks, supportRows: shape.supportShots, queryRows: shape.queryShots, dim: D, dimPadded: paddedDim(D), seed: seed >>> 0,
      kind: SOURCE_KIND_CODE[source.kind as keyof typeof SOURCE_KIND_CODE], splitKey: SPLIT_STREAM_KEY[split],
      supportXOff: off.supportX, supportYOff: off.supportY, queryXOff: off.queryX, queryYOff: off.queryY, groupsPerRow: grid.x,
      classBase: range[0], classCount: range[1] - range[0], pixelsPerImage: source.kind === 'images' ? source.images.pixels : 0,
      taskSpread: lin.taskSpread, meanScale: lin.meanScale, taskBase, ...omni, ...sin,
    });
    const group = bindGroup(this.device, 'SampleTasksKernel.group', this.layout, [uniform, b.data, b.sampleState, b.images, b.advData]);
    const sample = boundDispatch(this.sample, group, grid.x, grid.y);
    const advance = boundDispatch(this.advance, group, 1);
    return { encode: (pass) => { sample.encode(pass); if (countIteration) advance.encode(pass); } };
  }
}
