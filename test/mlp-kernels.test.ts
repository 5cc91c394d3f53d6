// The MLP model's WGSL kernels (shaders/mlp-*.wgsl) against their CPU twins (src/cpu/mlp-kernels.ts),
// and the gemm / softmax twins against direct computations written here, so that no twin is its own
// oracle. Every GPU case compares whole buffers, so a write outside the spec's elements fails too.
// Shapes hit the tiles' edges (M, N, K not multiples of the tile, M = 1, K = 1), both gemm families
// (workgroup-memory tiles for GPUs, direct loads for software adapters), transposed and broadcast
// operands, the epilogues, every mode, tasks with shared and per-task operands, and grids folded into
// y and z (a small per-dimension limit).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  gemm, normClipTensors, signStep, softmaxXent, SRC, taskNorm, vectorOp,
  type GemmArrays, type GemmSpec, type NormClipSpec, type Operand, type SignStepSpec, type SoftmaxSpec, type TaskNormSpec, type VectorSpec,
} from '../src/cpu/mlp-kernels.js';
import { checkTiles, chooseTiles, dummyBuffer, GemmKernel, type GemmTiles } from '../src/kernels/mlp-gemm.js';
import { SoftmaxKernel } from '../src/kernels/mlp-softmax.js';
import { VectorKernel } from '../src/kernels/mlp-vector.js';
import { MAX_CLIP_TENSORS, NormClipKernel } from '../src/kernels/mlp-norm-clip.js';
import { SignStepKernel } from '../src/kernels/mlp-sign-step.js';
import { TaskNormKernel } from '../src/kernels/mlp-task-norm.js';
import type { MlpKernelOptions } from '../src/kernels/mlp-common.js';
import { LimitError, ShapeError } from '../src/errors.js';
import { readFloats } from '../src/gpu/resources.js';
import type { AcquiredDevice } from '../src/gpu/device.js';
import { uniform01 } from '../src/rng.js';
import { TASK_NORM_EPS } from '../src/models/mlp.js';
import { assertClose, randomArray, submit, thrown, upload, withGpu } from './helpers.js';

// Kernels agree with their twins to abs 1e-5 + rel 1e-4 (DEVELOPERS.md): the GPU sums ≤ 130 products of
// magnitude ≤ 1 in float32 (error ≲ K·2⁻²⁴·max|term| ≈ 1e-5), the twin in float64. The absolute term
// covers sums that cancel to near 0, where a relative bound alone would be arbitrarily tight.
const ATOL = 1e-5;
const RTOL = 1e-4;

const op = (src: number, off: number, taskStride: number, strideI: number, strideJ: number): Operand => ({ src, off, taskStride, strideI, strideJ });

async function readAll(acq: AcquiredDevice, buffers: GPUBuffer[], sizes: number[]): Promise<Float32Array[]> {
  return Promise.all(buffers.map((b, i) => readFloats(acq.device, b, sizes[i])));
}

// ------------------------------------------------------------------------------------------ gemm

const GEMM_NAMES = ['data', 'tape', 'p0', 'p1', 'p2'] as const;

/** [src, one past the largest index the operand touches over t < tasks, i < I, j < J]; [NONE, 0] for ONE / NONE. */
function extent(o: Operand | undefined, tasks: number, I: number, J: number): [number, number] {
  if (!o || o.src >= SRC.ONE || tasks === 0 || I === 0 || J === 0) return [SRC.NONE, 0];
  return [o.src, o.off + (tasks - 1) * o.taskStride + (I - 1) * o.strideI + (J - 1) * o.strideJ + 1];
}

function gemmSizes(s: GemmSpec): number[] {
  const sizes = [0, 0, 0, 0, 0];
  const bias = (b: GemmSpec['bias1']) => (b ? { ...b, strideI: 0, strideJ: 1 } : undefined);
  const touched = [
    extent(s.A1, s.tasks, s.M, s.K1), extent(s.B1, s.tasks, s.K1, s.N), extent(s.A2, s.tasks, s.M, s.K2 ?? 0), extent(s.B2, s.tasks, s.K2 ?? 0, s.N),
    extent(bias(s.bias1), s.tasks, 1, s.N), extent(bias(s.bias2), s.tasks, 1, s.N),
    ...[s.mask, s.out, s.from, s.out2, s.out2Mask].map((o) => extent(o, s.tasks, s.M, s.N)),
  ];
  for (const [src, end] of touched) if (src < SRC.ONE) sizes[src] = Math.max(sizes[src], end);
  // A few floats past the last one the spec touches: they must come back unchanged.
  return sizes.map((n) => n + 5);
}

async function checkGemm(acq: AcquiredDevice, spec: GemmSpec, seed: number, options: { tiles?: GemmTiles; kernel?: MlpKernelOptions } = {}) {
  const sizes = gemmSizes(spec);
  const host = sizes.map((n, i) => randomArray(n, seed, i)) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  const gpu = host.map((a, i) => upload(acq, GEMM_NAMES[i], a));
  const kernel = new GemmKernel(acq.device, options.kernel);
  const bound = kernel.bind({ data: gpu[0], tape: gpu[1], p0: gpu[2], p1: gpu[3], p2: gpu[4] }, spec, 'test', options.tiles);
  submit(acq, (pass) => bound.encode(pass));
  const got = await readAll(acq, gpu, sizes);
  const twin: GemmArrays = { data: host[0], tape: host[1].slice(), p0: host[2].slice(), p1: host[3].slice(), p2: host[4].slice() };
  gemm(twin, spec);
  const expected = [twin.data, twin.tape, twin.p0, twin.p1, twin.p2];
  for (let i = 0; i < 5; i++) assertClose(`gemm ${GEMM_NAMES[i]}`, got[i], expected[i], ATOL, RTOL);
  for (const b of gpu) b.destroy();
}

const { DATA, TAPE, P0, P1, P2, ONE, NONE } = SRC;

/** Layer forward: rows (stride Dp = 40) · per-task W (K×N) + b, relu into out2. */
function forwardSpec(T: number, M: number, N: number, K: number): GemmSpec {
  const Dp = 4 * Math.ceil(K / 4);
  const V = K * N + N + 3;
  return {
    tasks: T, M, N, K1: K, A1: op(DATA, 4, M * Dp, Dp, 1), B1: op(P0, 0, V, N, 1), bias1: { src: P0, off: K * N, taskStride: V },
    mode: 'write', scale: 1, out: op(TAPE, 0, 2 * M * N, N, 1), out2: op(TAPE, M * N, 2 * M * N, N, 1),
  };
}

/** Weight gradient dW = Aᵀ·δ as θ − scale·(…): A stored K×M (rows), so A(m, k) has strideI = 1. */
function weightGradSpec(T: number, M: number, N: number, K: number): GemmSpec {
  const task = K * M + K * N;
  return {
    tasks: T, M, N, K1: K, A1: op(TAPE, 0, task, 1, M), B1: op(TAPE, K * M, task, N, 1),
    mode: 'from', scale: -0.3, from: op(P0, 0, 0, N, 1), out: op(P1, 0, M * N, N, 1),
  };
}

const GEMM_CASES: Array<{ name: string; spec: GemmSpec; tiles?: GemmTiles; kernel?: MlpKernelOptions }> = [
  { name: 'forward, per-task W, bias, relu out2 (M=5 N=70 K=37)', spec: forwardSpec(3, 5, 70, 37) },
  {
    name: 'M=1, K=1, B shared across tasks (taskStride 0)',
    spec: { tasks: 4, M: 1, N: 33, K1: 1, A1: op(TAPE, 0, 1, 1, 1), B1: op(P1, 5, 0, 33, 1), mode: 'write', scale: 2, out: op(P0, 0, 33, 33, 1) },
  },
  {
    name: 'CAML: second term with a broadcast row (strideI = 0), two biases, M=25',
    spec: {
      tasks: 2, M: 25, N: 40, K1: 19, A1: op(DATA, 0, 25 * 20, 20, 1), B1: op(P0, 0, 22 * 40 + 40, 40, 1),
      K2: 3, A2: op(P1, 0, 3, 0, 1), B2: op(P0, 19 * 40, 22 * 40 + 40, 40, 1),
      bias1: { src: P0, off: 22 * 40, taskStride: 22 * 40 + 40 }, bias2: { src: P2, off: 0, taskStride: 0 },
      mode: 'write', scale: 1, out: op(TAPE, 0, 25 * 40, 40, 1), out2: op(TAPE, 2 * 25 * 40, 25 * 40, 40, 1),
    },
  },
  { name: 'weight gradient: transposed A (strideI = 1), M=37 > 32 (two m-tiles), mode from', spec: weightGradSpec(2, 37, 20, 7) },
  { name: 'weight gradient on a 16×4 grid of invocations (TY > 1, several m-tiles)', spec: weightGradSpec(2, 37, 20, 7), tiles: { TX: 16, TY: 4, RM: 1, RN: 1, KT: 32, direct: false } },
  { name: 'forward with small direct blocks (several m- and n-tiles, TY = 2)', spec: forwardSpec(2, 5, 70, 37), tiles: { TX: 4, TY: 2, RM: 2, RN: 3, KT: 1, direct: true } },
  { name: 'forward with 64×64 tiles on 5 rows (256 invocations, K tiles of 16)', spec: forwardSpec(2, 5, 70, 37), tiles: { TX: 16, TY: 16, RM: 4, RN: 4, KT: 16, direct: false } },
  {
    name: 'backward-input: transposed B (strideI = 1), mask',
    spec: {
      tasks: 3, M: 6, N: 45, K1: 19, A1: op(TAPE, 0, 6 * 19, 19, 1), B1: op(P0, 0, 45 * 19 + 2, 1, 19),
      mask: op(TAPE, 3 * 6 * 19, 6 * 45, 45, 1), mode: 'write', scale: 1, out: op(P2, 0, 6 * 45, 45, 1),
    },
  },
  {
    name: 'bias gradient: ONE operand, mode accumulate',
    spec: { tasks: 4, M: 1, N: 17, K1: 9, A1: op(ONE, 0, 0, 0, 0), B1: op(TAPE, 0, 9 * 17, 17, 1), mode: 'accumulate', scale: -0.1, out: op(P2, 3, 20, 17, 1) },
  },
  {
    name: 'R-op forward: two terms, bias, out2 masked by Z (out2Mask)',
    spec: {
      tasks: 2, M: 9, N: 130, K1: 33, A1: op(TAPE, 0, 9 * 33, 33, 1), B1: op(P0, 0, 34 * 130, 130, 1),
      K2: 33, A2: op(DATA, 0, 9 * 33, 33, 1), B2: op(P1, 0, 34 * 130, 130, 1), bias1: { src: P1, off: 33 * 130, taskStride: 34 * 130 },
      mode: 'write', scale: 1, out: op(TAPE, 2 * 9 * 33, 9 * 130, 130, 1), out2: op(P2, 0, 9 * 130, 130, 1),
      out2Mask: op(TAPE, 2 * 9 * 33 + 2 * 9 * 130, 9 * 130, 130, 1),
    },
  },
  {
    name: 'M=N=70 over tile edges, general strides, transposed out, mode accumulate',
    spec: {
      tasks: 2, M: 70, N: 70, K1: 50, A1: op(P0, 1, 7, 2, 150), B1: op(P1, 0, 0, 3, 211), mode: 'accumulate', scale: 0.5,
      out: op(TAPE, 0, 70 * 70, 1, 70),
    },
  },
  {
    name: 'a NONE factor (its K loop is skipped): the bias alone, mode from',
    spec: {
      tasks: 2, M: 3, N: 5, K1: 4, A1: op(DATA, 0, 12, 4, 1), B1: op(NONE, 0, 0, 0, 0), K2: 0,
      bias1: { src: P0, off: 0, taskStride: 5 }, mode: 'from', scale: 3, from: op(P1, 0, 15, 5, 1), out: op(TAPE, 0, 15, 5, 1),
    },
  },
  {
    name: 'every epilogue at once: mask, relu out2, mode from, two terms, 6 tasks on a grid folded into x/y/z',
    spec: {
      tasks: 6, M: 11, N: 21, K1: 13, A1: op(DATA, 0, 11 * 13, 13, 1), B1: op(P0, 0, 13 * 21, 21, 1),
      K2: 2, A2: op(P1, 0, 2 * 11, 1, 11), B2: op(P2, 0, 0, 21, 1), bias1: { src: P2, off: 42, taskStride: 0 },
      mask: op(DATA, 6 * 11 * 13, 11 * 21, 21, 1), mode: 'from', scale: -1, from: op(P1, 100, 11 * 21, 21, 1),
      out: op(TAPE, 0, 2 * 11 * 21, 21, 1), out2: op(TAPE, 11 * 21, 2 * 11 * 21, 21, 1),
    },
    // 6 workgroups with at most 2 per dimension: x = 2, y = 2, z = 2, the last two return at once.
    kernel: { maxWorkgroupsPerDimension: 2 },
  },
];

// Every case runs both tile families: the workgroup-memory tiles for GPUs and the direct loads for
// software adapters (the one this machine picks by itself is the second or the first).
GEMM_CASES.forEach((c, i) => {
  for (const software of c.tiles ? [c.tiles.direct] : [false, true]) {
    test(`gemm matches its twin (${software ? 'software' : 'GPU'} tiles): ${c.name}`, () =>
      withGpu((acq) => checkGemm(acq, c.spec, 100 + i, { tiles: c.tiles, kernel: { ...c.kernel, software } })));
  }
});

// Long reductions at the shapes the Omniglot net has (784 inputs), with the tiles this adapter picks by
// itself: llvmpipe's direct variant wrote zeros past ~512 k-iterations (chooseTiles routes around it).
for (const [M, N, K] of [[5, 256, 784], [5, 16, 2000], [784, 64, 5]]) {
  test(`gemm with the tiles chosen for this adapter matches its twin at K = ${K} (M=${M} N=${N})`, () =>
    withGpu((acq) => checkGemm(acq, M === 784 ? weightGradSpec(2, M, N, K) : forwardSpec(2, M, N, K), 7)));
}

test('gemm tiles chosen for any shape fit WebGPU\'s default limits (16 KiB workgroup memory, 256 invocations)', () => {
  const limits = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupSizeY: 256 };
  const device = { limits } as unknown as GPUDevice;
  for (const M of [1, 2, 5, 12, 16, 17, 25, 32, 33, 100, 784]) {
    for (const N of [1, 5, 16, 33, 64, 256, 784]) {
      for (const K of [1, 7, 32, 784]) {
        for (const software of [false, true]) {
          const t = chooseTiles(M, N, K, software);
          checkTiles(t, device);
          // One tile covers a task's rows whenever M ≤ 32 (GPU) or ≤ 16 (software).
          if (M <= (software ? 16 : 32)) assert.is(t.TY * t.RM, M, `M=${M}: TM = M`);
        }
      }
    }
  }
});

test('gemm twin equals a direct triple loop (forward with bias and relu)', () => {
  const T = 2, M = 4, N = 6, K = 5;
  const spec = forwardSpec(T, M, N, K);
  const x = randomArray(T * M * K, 3, 1), w = randomArray(T * K * N, 3, 2), b = randomArray(T * N, 3, 3);
  // Pack the matrices into the spec's layout, independently of its operand arithmetic.
  const Dp = 8, V = K * N + N + 3;
  const data = new Float32Array(4 + T * M * Dp), p0 = new Float32Array(T * V), tape = new Float32Array(T * 2 * M * N);
  for (let t = 0; t < T; t++) {
    for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) data[4 + (t * M + m) * Dp + k] = x[(t * M + m) * K + k];
    p0.set(w.subarray(t * K * N, (t + 1) * K * N), t * V);
    p0.set(b.subarray(t * N, (t + 1) * N), t * V + K * N);
  }
  gemm({ data, tape, p0, p1: new Float32Array(1), p2: new Float32Array(1) }, spec);
  for (let t = 0; t < T; t++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let z = b[t * N + n];
        for (let k = 0; k < K; k++) z += x[(t * M + m) * K + k] * w[(t * K + k) * N + n];
        const zAt = t * 2 * M * N + m * N + n;
        assert.ok(Math.abs(tape[zAt] - z) <= 1e-6 * (1 + Math.abs(z)), `Z[${t},${m},${n}]: expected ${z}, got ${tape[zAt]}`);
        assert.ok(Math.abs(tape[zAt + M * N] - Math.max(z, 0)) <= 1e-6 * (1 + Math.abs(z)), `relu(Z)[${t},${m},${n}]`);
      }
    }
  }
});

test('gemm rejects a write to DATA and a grid beyond the dispatch limits', () =>
  withGpu(async (acq) => {
    const spec = forwardSpec(3, 5, 70, 37);
    const buffers = { data: dummyBuffer(acq.device, 0), tape: dummyBuffer(acq.device, 1), p0: dummyBuffer(acq.device, 2), p1: dummyBuffer(acq.device, 3), p2: dummyBuffer(acq.device, 4) };
    const bad = await thrown(() => new GemmKernel(acq.device).bind(buffers, { ...spec, out: op(DATA, 0, 0, 1, 1) }, 'bad'));
    assert.instance(bad, ShapeError);
    assert.throws(() => gemm({ data: new Float32Array(1), tape: new Float32Array(1), p0: new Float32Array(1), p1: new Float32Array(1), p2: new Float32Array(1) },
      { ...spec, out: op(ONE, 0, 0, 1, 1) }), (e: unknown) => e instanceof ShapeError);
    // 3 tasks × 2 n-tiles = 6 workgroups cannot fold into 1×1×1.
    const limit = await thrown(() => new GemmKernel(acq.device, { maxWorkgroupsPerDimension: 1 }).bind(buffers, spec, 'too-big'));
    assert.instance(limit, LimitError);
  }));

// --------------------------------------------------------------------------------------- softmax

/** Labels as float class indices; row 0 of task 0 gets tied maxima at 0 and 1 with label 1 (argmax must say 0). */
function softmaxInputs(spec: SoftmaxSpec, seed: number, logitScale: number) {
  const { tasks, rows, classes } = spec;
  const data = new Float32Array(spec.yOff + tasks * rows + 3);
  for (let i = 0; i < tasks * rows; i++) data[spec.yOff + i] = Math.min(classes - 1, Math.floor(uniform01(seed, 9, i) * classes));
  const tape = randomArray(spec.tapeTaskStride * tasks + 40, seed, 10, -logitScale, logitScale);
  if (spec.mode === 'loss' && classes > 1) {
    tape[spec.zOff] = tape[spec.zOff + 1] = 2 * logitScale;
    data[spec.yOff] = 1;
  }
  return { data, tape, stats: randomArray(spec.statsOff + 2 * tasks + 2, seed, 11) };
}

function softmaxSpec(over: Partial<SoftmaxSpec> & Pick<SoftmaxSpec, 'tasks' | 'rows' | 'classes'>): SoftmaxSpec {
  const block = over.rows * over.classes;
  return {
    mode: 'loss', yOff: 4, zOff: 0, pOff: block, dOff: 2 * block, rzOff: 3 * block, tapeTaskStride: 4 * block,
    scale: 1 / over.rows, wantStats: true, statsOff: 2, ...over,
  };
}

const SOFTMAX_CASES: Array<{ name: string; spec: SoftmaxSpec; logitScale: number; kernel?: MlpKernelOptions }> = [
  { name: 'loss + stats (T=3 R=7 C=5)', spec: softmaxSpec({ tasks: 3, rows: 7, classes: 5 }), logitScale: 3 },
  { name: 'loss + stats with logits of ±1e4', spec: softmaxSpec({ tasks: 3, rows: 7, classes: 5 }), logitScale: 1e4 },
  { name: 'more rows than invocations (R=40), p written over z', spec: softmaxSpec({ tasks: 2, rows: 40, classes: 3, pOff: 0 }), logitScale: 5 },
  { name: 'loss without stats, one class', spec: softmaxSpec({ tasks: 2, rows: 4, classes: 1, wantStats: false }), logitScale: 2 },
  { name: 'R-operator', spec: softmaxSpec({ tasks: 3, rows: 9, classes: 6, mode: 'r', scale: 0.5 }), logitScale: 1 },
  { name: 'loss + stats on a grid folded into x/y/z (5 tasks, 2 per dimension)', spec: softmaxSpec({ tasks: 5, rows: 3, classes: 4 }), logitScale: 2, kernel: { maxWorkgroupsPerDimension: 2 } },
  { name: 'squared error + stats (one output, real targets)', spec: softmaxSpec({ tasks: 3, rows: 7, classes: 1, mode: 'mse' }), logitScale: 3 },
  { name: 'squared error R-operator', spec: softmaxSpec({ tasks: 2, rows: 5, classes: 1, mode: 'mse-r', scale: 0.25 }), logitScale: 1 },
];

SOFTMAX_CASES.forEach((c, i) => {
  test(`softmax matches its twin: ${c.name}`, () =>
    withGpu(async (acq) => {
      const host = softmaxInputs(c.spec, 200 + i, c.logitScale);
      const names = ['data', 'tape', 'stats'] as const;
      const gpu = names.map((n) => upload(acq, n, host[n]));
      const bound = new SoftmaxKernel(acq.device, c.kernel).bind({ data: gpu[0], tape: gpu[1], stats: gpu[2] }, c.spec, 'test');
      submit(acq, (pass) => bound.encode(pass));
      const [, tape, stats] = await readAll(acq, gpu, names.map((n) => host[n].length));
      const twin = { data: host.data, tape: host.tape.slice(), stats: host.stats.slice() };
      softmaxXent(twin, c.spec);
      for (const v of tape) assert.ok(Number.isFinite(v), `finite tape, got ${v}`);
      // The mean loss is ~|logit| for logits of 1e4: float32 holds it to ~1e-3, hence atol·scale.
      assertClose('softmax tape', tape, twin.tape, ATOL, RTOL);
      assertClose('softmax stats', stats, twin.stats, ATOL * c.logitScale, RTOL);
      for (const b of gpu) b.destroy();
    }));
});

test('squared-error twin equals the direct formulas: loss and metric (z − y)², δ = scale·2(z − y), R(δ) = scale·2·Rz', () => {
  const spec = softmaxSpec({ tasks: 1, rows: 2, classes: 1, mode: 'mse', scale: 0.5 });
  const data = new Float32Array(6);
  data[4] = 1.5;
  data[5] = -2;
  const tape = new Float32Array(spec.tapeTaskStride);
  tape.set([0.5, 1]);
  const stats = new Float32Array(4);
  softmaxXent({ data, tape, stats }, spec);
  // errors −1 and 3: mean of squares 5
  assert.equal([stats[2], stats[3]], [5, 5]);
  assert.equal(Array.from(tape.subarray(4, 6)), [0.5 * 2 * -1, 0.5 * 2 * 3]);
  tape.set([0.25, -1], 6);  // Rz at rzOff = 3·block = 6
  softmaxXent({ data, tape, stats }, { ...spec, mode: 'mse-r' });
  assert.equal(Array.from(tape.subarray(4, 6)), [0.25, -1]);
});

test('softmax twin equals the direct formulas on one row (loss = −log p_y, argmax tie → smallest index)', () => {
  const spec = softmaxSpec({ tasks: 1, rows: 1, classes: 3 });
  const data = new Float32Array(5);
  data[4] = 1;
  const tape = new Float32Array(spec.tapeTaskStride);
  tape.set([2, 2, -1]);
  const stats = new Float32Array(4);
  softmaxXent({ data, tape, stats }, spec);
  const e = [Math.exp(2), Math.exp(2), Math.exp(-1)];
  const sum = e[0] + e[1] + e[2];
  assert.ok(Math.abs(stats[2] + Math.log(e[1] / sum)) < 1e-6, `loss ${stats[2]}`);
  assert.is(stats[3], 0, 'argmax of a tie is the smallest index (0), not the label 1');
  assert.ok(Math.abs(tape[3 + 1] - e[1] / sum) < 1e-6 && Math.abs(tape[6 + 1] - (e[1] / sum - 1)) < 1e-6, 'p and d');
});

// ---------------------------------------------------------------------------------------- vector

const VECTOR_CASES: Array<{ name: string; spec: VectorSpec; kernel?: MlpKernelOptions }> = [
  {
    name: 'copy a shared θ into every task (taskStride 0 → 100)',
    spec: { tasks: 3, length: 100, lo: 0, hi: 100, a: 1, b: 0, x: { buf: 0, off: 2, taskStride: 0 }, out: { buf: 1, off: 1, taskStride: 100 } },
  },
  {
    name: 'a·X + b·Y on [10, 77), zero outside up to 90',
    spec: {
      tasks: 2, length: 90, lo: 10, hi: 77, a: 0.5, b: -2, x: { buf: 1, off: 0, taskStride: 95 }, y: { buf: 0, off: 3, taskStride: 0 },
      out: { buf: 2, off: 0, taskStride: 90 }, zeroOutside: true,
    },
  },
  {
    name: 'in place over two workgroups, b = 0 never reads Y (it holds NaN)',
    spec: {
      tasks: 2, length: 400, lo: 3, hi: 300, a: -0.5, b: 0, x: { buf: 1, off: 0, taskStride: 400 }, y: { buf: 2, off: 0, taskStride: 0 },
      out: { buf: 1, off: 0, taskStride: 400 },
    },
  },
  {
    name: 'a grid folded into x/y/z (7 tasks × 2 blocks, 3 per dimension)',
    spec: { tasks: 7, length: 300, lo: 0, hi: 300, a: 2, b: 1, x: { buf: 0, off: 0, taskStride: 300 }, y: { buf: 1, off: 0, taskStride: 300 }, out: { buf: 2, off: 0, taskStride: 300 } },
    kernel: { maxWorkgroupsPerDimension: 3 },
  },
  {
    name: 'rows gathered: 25 rows of 3 floats, 4 apart (the data\'s padded rows) into a packed tape section',
    spec: { tasks: 3, length: 75, lo: 0, hi: 75, a: 1, b: 0, x: { buf: 0, off: 5, taskStride: 100, rowLen: 3, rowStride: 4 }, out: { buf: 1, off: 2, taskStride: 80 } },
  },
];

test('vector op, rows gathered: element i of task t is X[off + t·taskStride + ⌊i/rowLen⌋·rowStride + i mod rowLen]', () => {
  const b0 = Float32Array.from({ length: 400 }, (_, i) => i);
  const b1 = new Float32Array(400);
  vectorOp({ b0, b1, b2: new Float32Array(1) }, { tasks: 2, length: 6, lo: 0, hi: 6, a: 1, b: 0, x: { buf: 0, off: 1, taskStride: 100, rowLen: 2, rowStride: 4 }, out: { buf: 1, off: 0, taskStride: 6 } });
  assert.equal(Array.from(b1.subarray(0, 12)), [1, 2, 5, 6, 9, 10, 101, 102, 105, 106, 109, 110]);
});

/** `a` with 0 where both `a` and `b` hold NaN (an untouched NaN-filled Y), so that assertClose can compare them. */
const withoutNaN = (a: Float32Array, b: Float32Array) => a.map((v, i) => (Number.isNaN(v) && Number.isNaN(b[i]) ? 0 : v));

VECTOR_CASES.forEach((c, i) => {
  test(`vector op matches its twin: ${c.name}`, () =>
    withGpu(async (acq) => {
      const n = c.spec.tasks * 400 + 10;
      const host = [0, 1, 2].map((b) => randomArray(n, 300 + i, b));
      if (c.spec.b === 0 && c.spec.y) host[c.spec.y.buf].fill(NaN);
      const gpu = host.map((a, b) => upload(acq, `b${b}`, a));
      const bound = new VectorKernel(acq.device, c.kernel).bind({ b0: gpu[0], b1: gpu[1], b2: gpu[2] }, c.spec, 'test');
      submit(acq, (pass) => bound.encode(pass));
      const got = await readAll(acq, gpu, host.map((a) => a.length));
      const twin = { b0: host[0].slice(), b1: host[1].slice(), b2: host[2].slice() };
      vectorOp(twin, c.spec);
      const out = c.spec.out;
      for (let t = 0; t < c.spec.tasks; t++) {
        for (let k = c.spec.lo; k < c.spec.hi; k++) assert.ok(Number.isFinite(got[out.buf][out.off + t * out.taskStride + k]), 'Y is not read when b = 0');
      }
      [twin.b0, twin.b1, twin.b2].forEach((e, b) => assertClose(`vector b${b}`, withoutNaN(got[b], e), withoutNaN(e, got[b]), ATOL, RTOL));
      for (const b of gpu) b.destroy();
    }));
});

// ------------------------------------------------------------------------------------- norm-clip

/** pert = base + Δ with ‖Δ‖ on tensor k alternately 0.5·radius (kept) and 3·radius (projected). */
function clipInputs(spec: NormClipSpec, size: number, seed: number) {
  const base = randomArray(spec.baseOff + spec.tasks * Math.max(spec.baseTaskStride, 1) + size, seed, 1);
  const pert = randomArray(spec.pertOff + spec.tasks * spec.pertTaskStride + 7, seed, 2);
  let inside = 0, outside = 0;
  for (let t = 0; t < spec.tasks; t++) {
    spec.tensors.forEach(([start, end], k) => {
      if (end === start) return;
      const delta = randomArray(end - start, seed, 3 + t * 100 + k);
      const norm = Math.hypot(...delta);
      const target = ((t + k) % 2 === 0 ? 0.5 : 3) * spec.radius;
      for (let i = start; i < end; i++) {
        pert[spec.pertOff + t * spec.pertTaskStride + i] = base[spec.baseOff + t * spec.baseTaskStride + i] + (target / norm) * delta[i - start];
      }
      if (target < spec.radius) inside++; else outside++;
    });
  }
  return { pert, base, inside, outside };
}

const CLIP_CASES: Array<{ name: string; spec: NormClipSpec; size: number; kernel?: MlpKernelOptions }> = [
  {
    name: 'tensors of 300, 10, 690, 1 and 0 floats, one shared base',
    spec: { tasks: 3, tensors: [[0, 300], [300, 310], [310, 1000], [1000, 1001], [1001, 1001]], radius: 0.2, pertOff: 4, pertTaskStride: 1004, baseOff: 2, baseTaskStride: 0 },
    size: 1004,
  },
  {
    name: `${MAX_CLIP_TENSORS} tensors, per-task base, grid folded (4 per dimension)`,
    spec: {
      tasks: 2, tensors: Array.from({ length: MAX_CLIP_TENSORS }, (_, k) => [5 * k, 5 * k + 5] as [number, number]), radius: 0.05,
      pertOff: 0, pertTaskStride: 5 * MAX_CLIP_TENSORS, baseOff: 1, baseTaskStride: 5 * MAX_CLIP_TENSORS + 1,
    },
    size: 5 * MAX_CLIP_TENSORS + 1,
    kernel: { maxWorkgroupsPerDimension: 6 },
  },
];

// Both workgroup sizes: 256 (GPUs) and 32 (software adapters).
CLIP_CASES.forEach((c, i) => [false, true].forEach((software) => {
  test(`norm-clip matches its twin (${software ? 'software' : 'GPU'} workgroups): ${c.name}`, () =>
    withGpu(async (acq) => {
      const host = clipInputs(c.spec, c.size, 400 + i);
      assert.ok(host.inside > 0 && host.outside > 0, 'tensors both inside and outside the ball');
      const gpu = [upload(acq, 'pert', host.pert), upload(acq, 'base', host.base)];
      const bound = new NormClipKernel(acq.device, { ...c.kernel, software }).bind({ pert: gpu[0], base: gpu[1] }, c.spec, 'test');
      submit(acq, (pass) => bound.encode(pass));
      const [pert, base] = await readAll(acq, gpu, [host.pert.length, host.base.length]);
      const twin = { pert: host.pert.slice(), base: host.base.slice() };
      normClipTensors(twin, c.spec);
      assertClose('norm-clip pert', pert, twin.pert, ATOL, RTOL);
      assertClose('norm-clip base (unchanged)', base, host.base, 0, 0);
      for (const b of gpu) b.destroy();
    }));
}));

test('norm-clip rejects more tensors than one dispatch holds', () =>
  withGpu(async (acq) => {
    const spec: NormClipSpec = { tasks: 1, tensors: Array.from({ length: MAX_CLIP_TENSORS + 1 }, () => [0, 1] as [number, number]), radius: 1, pertOff: 0, pertTaskStride: 1, baseOff: 0, baseTaskStride: 0 };
    const err = await thrown(() => new NormClipKernel(acq.device).bind({ pert: dummyBuffer(acq.device, 0), base: dummyBuffer(acq.device, 1) }, spec, 'bad'));
    assert.instance(err, ShapeError);
  }));

// ------------------------------------------------------------------------------------- sign-step

function signInputs(spec: SignStepSpec, seed: number) {
  const n = spec.tasks * spec.rows * spec.rowStride;
  const clean = randomArray(spec.cleanOff + n + 3, seed, 1, 0, 1);
  const adv = randomArray(spec.advOff + n + 3, seed, 2, 0, 1);
  if (!spec.readClean) for (let i = 0; i < n; i++) adv[spec.advOff + i] = clean[spec.cleanOff + i] + 0.03 * (uniform01(seed, 3, i) - 0.5);
  const tape = randomArray(spec.gOff + spec.tasks * spec.gTaskStride + 3, seed, 4);
  for (let i = 0; i < tape.length; i += 5) tape[i] = 0;
  return { clean, adv, tape };
}

const SIGN_CASES: Array<{ name: string; spec: SignStepSpec; kernel?: MlpKernelOptions }> = [
  {
    name: 'first step from the clean rows, ε and [0, 1] clipping, g = 0 entries',
    spec: { tasks: 2, rows: 3, dim: 37, rowStride: 40, cleanOff: 8, advOff: 4, readClean: true, gOff: 3, gTaskStride: 3 * 42, gRowStride: 42, stepSize: 0.1, epsilon: 0.05, lo: 0, hi: 1 },
  },
  {
    name: 'later step from the adversarial rows, clip [0.1, 0.9]',
    spec: { tasks: 3, rows: 2, dim: 10, rowStride: 12, cleanOff: 0, advOff: 0, readClean: false, gOff: 0, gTaskStride: 2 * 15, gRowStride: 15, stepSize: 0.03, epsilon: 0.04, lo: 0.1, hi: 0.9 },
  },
  {
    name: 'rows over several workgroups, grid folded (4 per dimension)',
    spec: { tasks: 3, rows: 2, dim: 300, rowStride: 300, cleanOff: 0, advOff: 0, readClean: true, gOff: 0, gTaskStride: 600, gRowStride: 300, stepSize: 0.2, epsilon: 0.1, lo: 0, hi: 1 },
    kernel: { maxWorkgroupsPerDimension: 4 },
  },
];

SIGN_CASES.forEach((c, i) => {
  test(`sign-step matches its twin: ${c.name}`, () =>
    withGpu(async (acq) => {
      const host = signInputs(c.spec, 500 + i);
      const gpu = [upload(acq, 'clean', host.clean), upload(acq, 'adv', host.adv), upload(acq, 'tape', host.tape)];
      const bound = new SignStepKernel(acq.device, c.kernel).bind({ clean: gpu[0], adv: gpu[1], tape: gpu[2] }, c.spec, 'test');
      submit(acq, (pass) => bound.encode(pass));
      const [adv] = await readAll(acq, [gpu[1]], [host.adv.length]);
      const twin = { clean: host.clean, adv: host.adv.slice(), tape: host.tape };
      signStep(twin, c.spec);
      // Both round every step to float32 the same way: they agree to an ulp (the attacks' 1e-6).
      assertClose('sign-step adv', adv, twin.adv, 1e-6, 0);
      const s = c.spec;
      let clipped = 0, atEps = 0, unmoved = 0;
      for (let t = 0; t < s.tasks; t++) {
        for (let r = 0; r < s.rows; r++) {
          for (let d = 0; d < s.dim; d++) {
            const x = (t * s.rows + r) * s.rowStride + d;
            const v = adv[s.advOff + x], x0 = host.clean[s.cleanOff + x];
            const g = host.tape[s.gOff + t * s.gTaskStride + r * s.gRowStride + d];
            if (v === Math.fround(s.lo) || v === Math.fround(s.hi)) clipped++;
            if (Math.abs(Math.abs(v - x0) - s.epsilon) < 1e-6) atEps++;
            if (g === 0 && s.readClean && v === x0) unmoved++;
          }
        }
      }
      assert.ok(clipped > 0 && atEps > 0, `clipping exercised (${clipped} at [lo, hi], ${atEps} at ε)`);
      if (s.readClean) assert.ok(unmoved > 0, 'sign(0) = 0 leaves the clean value');
      for (const b of gpu) b.destroy();
    }));
});

// ------------------------------------------------------------------------------------- task-norm

/** Per task: z (n written over it), a, g, δ, R(z) (R(n) over it), R(a), R(g) (R(δ) over it), then s, κ, ρ. */
function taskNormChain(tasks: number, rows: number, units: number): { specs: TaskNormSpec[]; size: number; stride: number } {
  const block = rows * units;
  const first = 2;  // arrays start past two floats that must come back unchanged
  const [z, a, g, d, rz, ra, rg] = [0, 1, 2, 3, 4, 5, 6].map((k) => first + k * block);
  const [sd, kappa, rho] = [0, 1, 2].map((k) => first + 7 * block + k * units);
  const stride = 7 * block + 3 * units + 3;
  const common = { tasks, rows, units, tapeTaskStride: stride, sOff: sd };
  return {
    stride,
    size: first + tasks * stride + 4,
    specs: [
      { ...common, mode: 'forward', inOff: z, outOff: z, reluOff: a },
      { ...common, mode: 'backward', inOff: g, outOff: d, nOff: z, kappaOff: kappa },
      { ...common, mode: 'r-forward', inOff: rz, outOff: rz, reluOff: ra, nOff: z, rhoOff: rho },
      { ...common, mode: 'r-backward', inOff: rg, outOff: rg, nOff: z, kappaOff: kappa, rhoOff: rho, deltaOff: d, rnOff: rz },
    ],
  };
}

/** Rows of z with per-unit offsets (so that μ matters) and g, R(z), R(g) in [−1, 1]. */
function taskNormTape(size: number, seed: number): Float32Array {
  const tape = randomArray(size, seed, 1);
  for (let i = 0; i < size; i += 3) tape[i] += 2 * uniform01(seed, 2, i) - 1;
  return tape;
}

const TASK_NORM_CASES: Array<{ name: string; tasks: number; rows: number; units: number; kernel?: MlpKernelOptions }> = [
  { name: 'T=3 rows=5 units=6', tasks: 3, rows: 5, units: 6 },
  { name: 'one row (n = 0, δ = 0), units=70 over two workgroups', tasks: 2, rows: 1, units: 70 },
  { name: 'T=4 rows=7 units=65', tasks: 4, rows: 7, units: 65 },
  { name: 'rows=25 units=130 (three workgroups per task)', tasks: 2, rows: 25, units: 130 },
  { name: 'rows=2, grid folded into x/y/z (5 tasks, 2 per dimension)', tasks: 5, rows: 2, units: 10, kernel: { maxWorkgroupsPerDimension: 2 } },
];

// Each case records the four modes in one pass, as the MLP pass does: forward (n over z in place), backward
// (δ into its own array), R-forward (R(n) over R(z)), R-backward (R(δ) over R(g)); the whole tape is compared.
TASK_NORM_CASES.forEach((c, i) => {
  test(`task-norm matches its twin (forward, backward, R-forward, R-backward): ${c.name}`, () =>
    withGpu(async (acq) => {
      const chain = taskNormChain(c.tasks, c.rows, c.units);
      const host = taskNormTape(chain.size, 600 + i);
      const tape = upload(acq, 'tape', host);
      const kernel = new TaskNormKernel(acq.device, c.kernel);
      const bound = chain.specs.map((spec) => kernel.bind({ tape }, spec, `test.${spec.mode}`));
      submit(acq, (pass) => { for (const b of bound) b.encode(pass); });
      const [got] = await readAll(acq, [tape], [chain.size]);
      const twin = host.slice();
      for (const spec of chain.specs) taskNorm({ tape: twin }, spec);
      // R(δ) has seven terms of size up to ~|u|/s (s ≈ 0.6 here): float32 sums agree to a few 1e-6.
      assertClose('task-norm tape', got, twin, 2 * ATOL, RTOL);
      tape.destroy();
    }));
});

test('task-norm rejects an unknown mode and a mode without the offsets it reads', () =>
  withGpu(async (acq) => {
    const [, backward] = taskNormChain(1, 2, 3).specs;
    const kernel = new TaskNormKernel(acq.device);
    assert.instance(await thrown(() => kernel.bind({ tape: dummyBuffer(acq.device) }, { ...backward, kappaOff: undefined }, 'bad')), ShapeError);
    assert.instance(await thrown(() => kernel.bind({ tape: dummyBuffer(acq.device) }, { ...backward, mode: 'sideways' as never }, 'bad')), ShapeError);
  }));

// The twin against the definitions, in float64: the backward is the transpose of the forward's Jacobian,
// the R-forward its directional derivative, the R-backward the directional derivative of the backward —
// each by central differences of the twin's own forward, so the R-backward's extra terms (and the
// τ computed without g) are checked against calculus, not against the same formula.
test('task-norm twin: backward = Jᵀg, R-forward = dn·R(z), R-backward = d(δ)·(R(z), R(g)) by central differences (float64)', () => {
  for (const [tasks, rows, units] of [[2, 5, 3], [1, 7, 4], [1, 2, 2]]) {
    const chain = taskNormChain(tasks, rows, units);
    const [fwd, bwd, rfwd, rbwd] = chain.specs;
    const start = Float64Array.from(taskNormTape(chain.size, 700 + rows));
    const run = (tape: Float64Array, upTo: number) => { for (const spec of chain.specs.slice(0, upTo)) taskNorm({ tape }, spec); return tape; };
    const exact = run(start.slice(), 4);
    const h = 1e-6;
    // Moves z by ±h·R(z) and g by ±h·R(g), then forward + backward.
    const moved = (sign: number) => {
      const tape = start.slice();
      for (let t = 0; t < tasks; t++) {
        for (let k = 0; k < rows * units; k++) {
          const o = t * chain.stride + k;
          tape[fwd.inOff + o] += sign * h * start[rfwd.inOff + o];
          tape[bwd.inOff + o] += sign * h * start[rbwd.inOff + o];
        }
      }
      return run(tape, 2);
    };
    const [plus, minus] = [moved(1), moved(-1)];
    const expectedRn = new Float64Array(tasks * rows * units), gotRn = expectedRn.slice();
    const expectedRd = expectedRn.slice(), gotRd = expectedRn.slice();
    const expectedD = expectedRn.slice(), gotD = expectedRn.slice();
    for (let t = 0; t < tasks; t++) {
      for (let k = 0; k < rows * units; k++) {
        const o = t * chain.stride + k;
        const q = t * rows * units + k;
        gotRn[q] = exact[rfwd.outOff + o];
        expectedRn[q] = (plus[fwd.outOff + o] - minus[fwd.outOff + o]) / (2 * h);
        gotRd[q] = exact[rbwd.outOff + o];
        expectedRd[q] = (plus[bwd.outOff + o] - minus[bwd.outOff + o]) / (2 * h);
        // δ[r, j] = ∂(Σ g·n)/∂z[r, j]: move z[r, j] alone.
        const sum = (sign: number) => {
          const tape = start.slice();
          tape[fwd.inOff + o] += sign * h;
          run(tape, 1);
          let f = 0;
          for (let e = 0; e < rows * units; e++) f += start[bwd.inOff + t * chain.stride + e] * tape[fwd.outOff + t * chain.stride + e];
          return f;
        };
        expectedD[q] = (sum(1) - sum(-1)) / (2 * h);
        gotD[q] = exact[bwd.outOff + o];
      }
    }
    const what = `T=${tasks} rows=${rows} units=${units}`;
    assertClose(`δ = Jᵀg, ${what}`, gotD, expectedD, 1e-6, 1e-5);
    assertClose(`R(n), ${what}`, gotRn, expectedRn, 1e-6, 1e-5);
    assertClose(`R(δ), ${what}`, gotRd, expectedRd, 1e-6, 1e-5);
    // The forward itself: per unit, mean(n) = 0 and mean(n²) = σ²/(σ² + ε).
    for (let t = 0; t < tasks; t++) {
      for (let j = 0; j < units; j++) {
        let mean = 0, sq = 0, zMean = 0, zSq = 0;
        for (let r = 0; r < rows; r++) {
          const o = t * chain.stride + r * units + j;
          mean += exact[fwd.outOff + o] / rows;
          sq += exact[fwd.outOff + o] ** 2 / rows;
          zMean += start[fwd.inOff + o] / rows;
        }
        for (let r = 0; r < rows; r++) zSq += (start[fwd.inOff + t * chain.stride + r * units + j] - zMean) ** 2 / rows;
        assert.ok(Math.abs(mean) < 1e-12 && Math.abs(sq - zSq / (zSq + TASK_NORM_EPS)) < 1e-12, `${what}: moments of n (unit ${j})`);
      }
    }
  }
});

test.run();
