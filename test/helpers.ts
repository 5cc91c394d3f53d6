// Shared test helpers: seeded batches, tolerance checks that name index/expected/got, and withGpu,
// which runs a test body inside validation / out-of-memory / internal error scopes and fails if any
// WebGPU error was raised (a test cannot hide one).
import * as assert from 'uvu/assert';
import { createLearner, getSharedDevice } from '../src/learner.js';
import type { AcquiredDevice } from '../src/gpu/device.js';
import type { Batch, CheckedBatch, LearnerOptions } from '../src/types.js';
import { uniform01 } from '../src/rng.js';
import { createBuffer, readFloats, writeFloats } from '../src/gpu/resources.js';
import { packImages, SampleTasksKernel } from '../src/kernels/sample-tasks.js';
import { sourceDim, type Split, type TaskSource } from '../src/tasks/source.js';
import type { SampleShape } from '../src/cpu/sample-tasks.js';
import { dataLayout, paddedDim, padRows, unpadRows } from '../src/kernels/layout.js';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A small program for a child process, given as TypeScript that imports from the checkout
 * ('./src/…'), bundled to `outfile` (beside the test bundles, inside the checkout, so that the native
 * packages left external — webgpu, ffi-rs — resolve from node_modules).
 */
export async function bundleChildScript(contents: string, outfile: string): Promise<string> {
  const { build } = await import('esbuild');
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  mkdirSync(path.dirname(outfile), { recursive: true });
  await build({
    stdin: { contents, resolveDir: root, loader: 'ts' },
    bundle: true, format: 'esm', platform: 'node', target: 'node20', loader: { '.wgsl': 'text' },
    external: ['webgpu', 'ffi-rs', 'esbuild', 'uvu', 'uvu/assert'], outfile, logLevel: 'warning',
  });
  return outfile;
}

export function randomArray(n: number, seed: number, stream: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * uniform01(seed, stream, i);
  return a;
}

export function randomLabels(n: number, seed: number, stream: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = uniform01(seed, stream, i) < 0.5 ? 0 : 1;
  return a;
}

/** Class indices 0 … classes−1 drawn uniformly, as floats (the MLP's labels). */
export function randomClassLabels(n: number, classes: number, seed: number, stream: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.min(classes - 1, Math.floor(uniform01(seed, stream, i) * classes));
  return y;
}

/** A batch whose labels follow a per-task logistic teacher, so that adaptation has something to learn. */
export function randomBatch(tasks: number, supportShots: number, queryShots: number, dim: number, seed = 1): CheckedBatch {
  const teacher = randomArray(tasks * dim, seed, 100, -2, 2);
  const make = (rows: number, stream: number) => {
    const x = randomArray(tasks * rows * dim, seed, stream);
    const y = new Float32Array(tasks * rows);
    for (let t = 0; t < tasks; t++) {
      for (let r = 0; r < rows; r++) {
        let a = 0;
        for (let d = 0; d < dim; d++) a += x[(t * rows + r) * dim + d] * teacher[t * dim + d];
        y[t * rows + r] = a >= 0 ? 1 : 0;
      }
    }
    return { x, y };
  };
  const s = make(supportShots, 101);
  const q = make(queryShots, 102);
  return { tasks, supportShots, queryShots, supportX: s.x, supportY: s.y, queryX: q.x, queryY: q.y };
}

export function copyBatch(b: CheckedBatch): CheckedBatch {
  return { ...b, supportX: b.supportX.slice(), supportY: b.supportY.slice(), queryX: b.queryX.slice(), queryY: b.queryY.slice() };
}

/** Fails at the first i with |got − expected| > atol + rtol·|expected|, naming index and both values. */
export function assertClose(name: string, got: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): void {
  assert.is(got.length, expected.length, `${name}: length ${got.length}, expected ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(got[i] - expected[i]);
    const tol = atol + rtol * Math.abs(expected[i]);
    if (!(diff <= tol)) {
      assert.unreachable(`${name}[${i}]: expected ${expected[i]}, got ${got[i]} (|diff| ${diff.toExponential(2)} > tol ${tol.toExponential(2)})`);
    }
    worst = Math.max(worst, diff);
  }
  assert.ok(worst <= atol + rtol * maxAbs(expected));
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export async function withGpu<T>(body: (acq: AcquiredDevice) => Promise<T>): Promise<T> {
  const acq = await getSharedDevice();
  const { device } = acq;
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('internal');
  let result: T;
  try {
    result = await body(acq);
  } finally {
    const errors = [await device.popErrorScope(), await device.popErrorScope(), await device.popErrorScope()].filter((e) => e !== null);
    if (errors.length > 0) assert.unreachable(`WebGPU errors: ${errors.map((e) => e!.message).join(' | ')}`);
  }
  assert.is(acq.uncaptured, null, 'no uncaptured WebGPU error');
  return result;
}

/** Runs `fn` and returns the thrown error (failing when nothing is thrown). */
export async function thrown(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  assert.unreachable('expected an error');
  throw new Error('unreachable');
}

export function upload(acq: AcquiredDevice, name: string, data: Float32Array): GPUBuffer {
  const b = createBuffer(acq.device, `test.${name}`, data.length);
  writeFloats(acq.device, b, 0, data);
  return b;
}

export function submit(acq: AcquiredDevice, record: (pass: GPUComputePassEncoder) => void): void {
  const encoder = acq.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  acq.device.queue.submit([encoder.finish()]);
}

/** The four arrays of a batch packed into one buffer's layout (layout.ts dataLayout). */
export function packBatch(batch: Batch, D: number, x?: { supportX?: Float32Array; queryX?: Float32Array }): Float32Array {
  const off = dataLayout(batch.tasks, batch.supportShots, batch.queryShots, D);
  const packed = new Float32Array(off.total);
  packed.set(padRows(x?.supportX ?? batch.supportX, batch.tasks * batch.supportShots, D), off.supportX);
  packed.set(batch.supportY, off.supportY);
  packed.set(padRows(x?.queryX ?? batch.queryX, batch.tasks * batch.queryShots, D), off.queryX);
  packed.set(batch.queryY, off.queryY);
  return packed;
}

/** A synthetic N-way few-shot batch: each task draws `classes` prototypes in R^dim, its rows are a
 * prototype plus noise, labelled with the prototype's index (so an MLP has something to learn). */
export function randomNWayBatch(tasks: number, supportShots: number, queryShots: number, dim: number, classes: number, seed = 1, noise = 0.5): CheckedBatch {
  const protos = randomArray(tasks * classes * dim, seed, 200, -1, 1);
  const make = (rows: number, stream: number) => {
    const x = randomArray(tasks * rows * dim, seed, stream, -noise, noise);
    const y = new Float32Array(tasks * rows);
    for (let t = 0; t < tasks; t++) {
      for (let r = 0; r < rows; r++) {
        const c = Math.floor(uniform01(seed, stream + 50, t * rows + r) * classes);
        y[t * rows + r] = c;
        for (let d = 0; d < dim; d++) x[(t * rows + r) * dim + d] += protos[(t * classes + c) * dim + d];
      }
    }
    return { x, y };
  };
  const s = make(supportShots, 201);
  const q = make(queryShots, 202);
  return { tasks, supportShots, queryShots, supportX: s.x, supportY: s.y, queryX: q.x, queryY: q.y };
}

/** ∂f/∂x_i by central differences (f64): the independent oracle of gradient tests. */
export function centralDifferences(f: (x: Float64Array) => number, x: Float64Array, h: number): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const plus = x.slice();
    const minus = x.slice();
    plus[i] += h;
    minus[i] -= h;
    g[i] = (f(plus) - f(minus)) / (2 * h);
  }
  return g;
}

/** Runs the GPU task sampler for iteration `first` and returns the batch it wrote (unpadded); checks that
 * the sampler counted the iteration and copied the labels to the adversarial buffer. */
export async function gpuSample(source: TaskSource, shape: SampleShape, seed: number, first: number, split: Split): Promise<CheckedBatch> {
  return withGpu(async (acq) => {
    const D = sourceDim(source);
    const off = dataLayout(shape.tasks, shape.supportShots, shape.queryShots, D);
    const data = createBuffer(acq.device, 'test.data', off.total);
    const adv = createBuffer(acq.device, 'test.adv', off.total);
    const state = createBuffer(acq.device, 'test.state', 4);
    acq.device.queue.writeBuffer(state, 0, new Uint32Array([first, 0, 0, 0]));
    const images = packImages(acq.device, source);
    const bound = new SampleTasksKernel(acq.device).bind({ data, advData: adv, sampleState: state, images }, source, shape, seed, split);
    submit(acq, (pass) => bound.encode(pass));
    const all = await readFloats(acq.device, data, off.total);
    const advAll = await readFloats(acq.device, adv, off.total);
    const counter = new Uint32Array((await readFloats(acq.device, state, 1)).buffer)[0];
    assert.is(counter, first + 1, 'advance counted the iteration');
    const Dp = paddedDim(D);
    const T = shape.tasks;
    const batch: CheckedBatch = {
      ...shape,
      supportX: unpadRows(all.subarray(off.supportX, off.supportX + T * shape.supportShots * Dp), T * shape.supportShots, D),
      supportY: all.slice(off.supportY, off.supportY + T * shape.supportShots),
      queryX: unpadRows(all.subarray(off.queryX, off.queryX + T * shape.queryShots * Dp), T * shape.queryShots, D),
      queryY: all.slice(off.queryY, off.queryY + T * shape.queryShots),
    };
    assert.equal(Array.from(advAll.slice(off.supportY, off.supportY + T * shape.supportShots)), Array.from(batch.supportY), 'support labels copied to the adversarial buffer');
    assert.equal(Array.from(advAll.slice(off.queryY, off.queryY + T * shape.queryShots)), Array.from(batch.queryY), 'query labels copied to the adversarial buffer');
    for (const b of [data, adv, state, images]) b.destroy();
    return batch;
  });
}

/** Fails at the first index where two arrays differ in any bit (GPU vs its CPU twin). */
export function exactlyEqual(name: string, a: Float32Array, b: Float32Array): void {
  assert.is(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.unreachable(`${name}[${i}]: GPU ${a[i]} vs CPU ${b[i]}`);
}

/** Runs the CLI in-process (src/cli/main.ts `main`), capturing stdout and stderr. */
export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { main } = await import('../src/cli/main.js');
  let out = '';
  let err = '';
  const write = (sink: 'out' | 'err') => (chunk: string | Uint8Array) => {
    if (sink === 'out') out += String(chunk); else err += String(chunk);
    return true;
  };
  const [o, e] = [process.stdout.write, process.stderr.write];
  process.stdout.write = write('out') as typeof process.stdout.write;
  process.stderr.write = write('err') as typeof process.stderr.write;
  const log = console.log;
  console.log = (...a: unknown[]) => { out += a.join(' ') + '\n'; };
  try {
    return { code: await main(args), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
    console.log = log;
  }
}

/** The GPU engine against the CPU engine on one batch, from the same initial θ: the meta-gradient (not
 * for AMP), θ after 1 and after 20 steps (tolerance ×10), and evaluation's task losses. */
export async function compareEngines(options: LearnerOptions, batch: CheckedBatch, atol: number, rtol: number): Promise<void> {
  const gpu = await createLearner({ ...options, backend: 'webgpu' });
  const cpu = await createLearner({ ...options, backend: 'cpu', threads: 1 });
  try {
    assert.is(gpu.backend.kind, 'webgpu');
    assertClose('initial θ', await gpu.getParams(), await cpu.getParams(), 0, 0);
    if (options.algorithm !== 'amp') assertClose('meta-gradient', await gpu.metaGradient(batch), await cpu.metaGradient(batch), atol, rtol);
    await gpu.step(batch);
    await cpu.step(batch);
    assertClose('θ after 1 step', await gpu.getParams(), await cpu.getParams(), atol, rtol);
    for (let i = 0; i < 19; i++) await cpu.step(batch);
    const m = await gpu.step(batch, { iterations: 19, readback: true });
    assertClose('θ after 20 steps', await gpu.getParams(), await cpu.getParams(), 10 * atol, 10 * rtol);
    assert.ok(m && Number.isFinite(m.loss), 'finite query loss');
    const ge = await gpu.evaluate(batch, { steps: 2 });
    const ce = await cpu.evaluate(batch, { steps: 2 });
    assertClose('evaluate task loss', ge.taskLoss, ce.taskLoss, 1e-4, 1e-3);
  } finally {
    gpu.destroy();
    cpu.destroy();
  }
}
