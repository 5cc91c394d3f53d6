// CPU twins of the MLP model's GPU kernels (shaders/mlp-*.wgsl, hosts in src/kernels/mlp-*.ts): plain
// loops that sum in float64 and store float32, the oracle of test/mlp-kernels.test.ts. The spec types
// live here (the host files re-export them) so that the CPU worker bundle never pulls in WGSL text.
// Every twin reads all the inputs of one output element before it writes that element, which is what
// one GPU invocation does; aliasing across elements (out overlapping an input) is the caller's bug on
// both backends.
import { ShapeError } from '../errors.js';
import { TASK_NORM_EPS } from '../models/mlp.js';

// ---------------------------------------------------------------------------------------------------
// mlp-gemm

/** Where an operand's floats come from: a bound buffer, or the constants 1 (ONE) and 0 (NONE). */
export const SRC = { DATA: 0, TAPE: 1, P0: 2, P1: 3, P2: 4, ONE: 5, NONE: 6 } as const;

/** X(t, i, j) = buffer_of(src)[off + t·taskStride + i·strideI + j·strideJ] (offsets in floats). */
export interface Operand { src: number; off: number; taskStride: number; strideI: number; strideJ: number }
/** bias(t, n) = buffer_of(src)[off + t·taskStride + n]. */
export interface BiasOperand { src: number; off: number; taskStride: number }

export type GemmMode = 'write' | 'accumulate' | 'from';

/**
 * For t < tasks, m < M, n < N:
 *   acc = Σ_{k<K1} A1(t,m,k)·B1(t,k,n) [+ Σ_{k<K2} A2(t,m,k)·B2(t,k,n)] [+ bias1(t,n)] [+ bias2(t,n)]
 *   acc ·= (mask(t,m,n) > 0 ? 1 : 0)                                  (when mask is given, not NONE)
 *   out = scale·acc | out += scale·acc | out = from + scale·acc        (mode write | accumulate | from)
 *   out2 = acc·(ref(t,m,n) > 0 ? 1 : 0), ref = out2Mask, or acc itself (relu) when out2Mask is absent/NONE
 * @example forward of a layer, Z = A·W + b and relu(Z) in one dispatch:
 *   { tasks, M: rows, N: h, K1: inputs, A1: rowsOperand, B1: { src: SRC.P0, off: w, taskStride: V, strideI: h, strideJ: 1 },
 *     bias1: { src: SRC.P0, off: b, taskStride: V }, mode: 'write', scale: 1, out: z, out2: a }
 */
export interface GemmSpec {
  tasks: number; M: number; N: number;
  K1: number; A1: Operand; B1: Operand;
  K2?: number; A2?: Operand; B2?: Operand;
  bias1?: BiasOperand; bias2?: BiasOperand;
  mask?: Operand;
  mode: GemmMode;
  scale: number;
  out: Operand; from?: Operand;
  out2?: Operand; out2Mask?: Operand;
}

export interface GemmArrays { data: Float32Array; tape: Float32Array; p0: Float32Array; p1: Float32Array; p2: Float32Array }

const NONE_OPERAND: Operand = { src: SRC.NONE, off: 0, taskStride: 0, strideI: 0, strideJ: 0 };
const isCount = (n: number) => Number.isInteger(n) && n >= 0 && n < 2 ** 32;

function checkOperand(name: string, op: Operand | BiasOperand, writable: boolean): void {
  const fields: number[] = [op.off, op.taskStride, 'strideI' in op ? op.strideI : 0, 'strideJ' in op ? op.strideJ : 0];
  if (!Number.isInteger(op.src) || op.src < SRC.DATA || op.src > SRC.NONE || fields.some((f) => !isCount(f))) {
    throw new ShapeError(`gemm operand ${name} is invalid: ${JSON.stringify(op)}.`,
      'src must be one of SRC (0…6); off, taskStride and strides non-negative integers below 2^32.');
  }
  if (writable && (op.src === SRC.DATA || op.src === SRC.ONE || op.src === SRC.NONE)) {
    throw new ShapeError(`gemm output ${name} has src ${op.src}: only TAPE, P0, P1, P2 can be written.`,
      'Write outputs to the tape or a parameter-sized buffer; DATA is bound read-only.');
  }
}

/** Throws ShapeError on a spec that neither backend can run (shared by the twin and GemmKernel.bind). */
export function checkGemmSpec(spec: GemmSpec): void {
  const counts: [string, number][] = [['tasks', spec.tasks], ['M', spec.M], ['N', spec.N], ['K1', spec.K1], ['K2', spec.K2 ?? 0]];
  for (const [name, n] of counts) {
    if (!isCount(n)) throw new ShapeError(`gemm ${name} = ${n} is not a non-negative integer.`, 'Pass sizes as integers ≥ 0.');
  }
  if ((spec.K2 ?? 0) > 0 && (!spec.A2 || !spec.B2)) throw new ShapeError(`gemm K2 = ${spec.K2} without A2/B2.`, 'Give both operands of the second term, or K2 = 0.');
  if (spec.mode !== 'write' && spec.mode !== 'accumulate' && spec.mode !== 'from') {
    throw new ShapeError(`gemm mode '${String(spec.mode)}' is unknown.`, "Use 'write', 'accumulate' or 'from'.");
  }
  if (spec.mode === 'from' && !spec.from) throw new ShapeError("gemm mode 'from' without a from operand.", 'Give spec.from.');
  if (!Number.isFinite(spec.scale)) throw new ShapeError(`gemm scale ${spec.scale} is not finite.`, 'Pass a finite scale.');
  const reads: [string, Operand | BiasOperand | undefined][] = [
    ['A1', spec.A1], ['B1', spec.B1], ['A2', spec.A2], ['B2', spec.B2], ['bias1', spec.bias1], ['bias2', spec.bias2],
    ['mask', spec.mask], ['from', spec.from], ['out2Mask', spec.out2Mask],
  ];
  for (const [name, op] of reads) if (op) checkOperand(name, op, false);
  checkOperand('out', spec.out, true);
  if (spec.out2 && spec.out2.src !== SRC.NONE) checkOperand('out2', spec.out2, true);
}

function reader(arrays: GemmArrays): (src: number, index: number) => number {
  const bufs = [arrays.data, arrays.tape, arrays.p0, arrays.p1, arrays.p2];
  return (src, index) => (src === SRC.ONE ? 1 : src === SRC.NONE ? 0 : bufs[src][index]);
}

const at = (op: Operand, t: number, i: number, j: number) => op.off + t * op.taskStride + i * op.strideI + j * op.strideJ;

/** Twin of shaders/mlp-gemm.wgsl. */
export function gemm(arrays: GemmArrays, spec: GemmSpec): void {
  checkGemmSpec(spec);
  const read = reader(arrays);
  const bufs = [arrays.data, arrays.tape, arrays.p0, arrays.p1, arrays.p2];
  const { tasks, M, N, K1 } = spec;
  const K2 = spec.K2 ?? 0;
  const A2 = spec.A2 ?? NONE_OPERAND;
  const B2 = spec.B2 ?? NONE_OPERAND;
  const mask = spec.mask ?? NONE_OPERAND;
  const out2 = spec.out2 ?? NONE_OPERAND;
  const out2Mask = spec.out2Mask ?? NONE_OPERAND;
  const biases = [spec.bias1, spec.bias2].filter((b): b is BiasOperand => !!b && b.src !== SRC.NONE);
  for (let t = 0; t < tasks; t++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K1; k++) acc += read(spec.A1.src, at(spec.A1, t, m, k)) * read(spec.B1.src, at(spec.B1, t, k, n));
        for (let k = 0; k < K2; k++) acc += read(A2.src, at(A2, t, m, k)) * read(B2.src, at(B2, t, k, n));
        for (const b of biases) acc += read(b.src, b.off + t * b.taskStride + n);
        if (mask.src !== SRC.NONE && !(read(mask.src, at(mask, t, m, n)) > 0)) acc = 0;
        const o = at(spec.out, t, m, n);
        const base = spec.mode === 'write' ? 0 : spec.mode === 'accumulate' ? bufs[spec.out.src][o] : read(spec.from!.src, at(spec.from!, t, m, n));
        let second = 0;
        if (out2.src !== SRC.NONE) {
          const ref = out2Mask.src === SRC.NONE ? acc : read(out2Mask.src, at(out2Mask, t, m, n));
          second = ref > 0 ? acc : 0;
        }
        bufs[spec.out.src][o] = base + spec.scale * acc;
        if (out2.src !== SRC.NONE) bufs[out2.src][at(out2, t, m, n)] = second;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// mlp-softmax

/**
 * Softmax cross-entropy of each task's rows. Tape arrays are rows×classes per task, task t at
 * off + t·tapeTaskStride; labels (class indices as floats) at data[yOff + t·rows + r].
 *   mode 'loss': p = softmax(z) → pOff; scale·(p − onehot(y)) → dOff; when wantStats:
 *                stats[statsOff + 2t] = mean_r (logsumexp(z) − z_y), stats[statsOff + 2t + 1] = mean_r [argmax z = y]
 *   mode 'r':    scale·p_c·(Rz_c − Σ_k p_k Rz_k) → dOff, with p at pOff and Rz at rzOff.
 * pOff and dOff may equal zOff (each row reads all its logits before writing).
 */
export interface SoftmaxSpec {
  tasks: number; rows: number; classes: number;
  /** Softmax cross-entropy ('loss', its R pass 'r'), or squared error on one output per row ('mse',
   * its R pass 'mse-r': classes 1, p unused). */
  mode: 'loss' | 'r' | 'mse' | 'mse-r';
  yOff: number; zOff: number; pOff: number; dOff: number; rzOff: number;
  tapeTaskStride: number;
  scale: number;
  wantStats: boolean;
  statsOff: number;
}

export interface SoftmaxArrays { data: Float32Array; tape: Float32Array; stats: Float32Array }

export function checkSoftmaxSpec(spec: SoftmaxSpec): void {
  const counts = { tasks: spec.tasks, rows: spec.rows, classes: spec.classes, yOff: spec.yOff, zOff: spec.zOff, pOff: spec.pOff,
    dOff: spec.dOff, rzOff: spec.rzOff, tapeTaskStride: spec.tapeTaskStride, statsOff: spec.statsOff };
  for (const [name, n] of Object.entries(counts)) {
    if (!isCount(n)) throw new ShapeError(`softmax ${name} = ${n} is not a non-negative integer.`, 'Pass sizes and offsets as integers ≥ 0.');
  }
  if (!['loss', 'r', 'mse', 'mse-r'].includes(spec.mode)) throw new ShapeError(`softmax mode '${String(spec.mode)}' is unknown.`, "Use 'loss', 'r', 'mse' or 'mse-r'.");
  if ((spec.mode === 'mse' || spec.mode === 'mse-r') && spec.classes !== 1) throw new ShapeError(`squared error regresses one output per row, got classes = ${spec.classes}.`, 'Pass classes: 1 with modes mse and mse-r.');
  if (!Number.isFinite(spec.scale)) throw new ShapeError(`softmax scale ${spec.scale} is not finite.`, 'Pass a finite scale.');
}

/** Twin of shaders/mlp-softmax.wgsl. */
export function softmaxXent(arrays: SoftmaxArrays, spec: SoftmaxSpec): void {
  checkSoftmaxSpec(spec);
  const { tasks, rows, classes: C, scale } = spec;
  const { data, tape, stats } = arrays;
  const p = new Float64Array(C);
  for (let t = 0; t < tasks; t++) {
    let loss = 0;
    let hits = 0;
    for (let r = 0; r < rows; r++) {
      const row = t * spec.tapeTaskStride + r * C;
      if (spec.mode === 'mse') {
        // Squared error: loss and metric (y − z)², δ = scale·2(z − y).
        const e = tape[spec.zOff + row] - data[spec.yOff + t * rows + r];
        loss += e * e;
        hits += e * e;
        tape[spec.dOff + row] = scale * 2 * e;
      } else if (spec.mode === 'mse-r') {
        tape[spec.dOff + row] = scale * 2 * tape[spec.rzOff + row];
      } else if (spec.mode === 'loss') {
        const z = spec.zOff + row;
        const y = data[spec.yOff + t * rows + r];
        let max = -Infinity;
        let arg = 0;
        for (let c = 0; c < C; c++) if (tape[z + c] > max) { max = tape[z + c]; arg = c; }
        let sum = 0;
        for (let c = 0; c < C; c++) sum += (p[c] = Math.exp(tape[z + c] - max));
        loss += Math.log(sum) + max - tape[z + y];
        hits += arg === y ? 1 : 0;
        for (let c = 0; c < C; c++) {
          const pc = Math.fround(p[c] / sum);
          tape[spec.pOff + row + c] = pc;
          tape[spec.dOff + row + c] = scale * (pc - (c === y ? 1 : 0));
        }
      } else {
        let dot = 0;
        for (let c = 0; c < C; c++) dot += tape[spec.pOff + row + c] * tape[spec.rzOff + row + c];
        for (let c = 0; c < C; c++) p[c] = scale * tape[spec.pOff + row + c] * (tape[spec.rzOff + row + c] - dot);
        for (let c = 0; c < C; c++) tape[spec.dOff + row + c] = p[c];
      }
    }
    if ((spec.mode === 'loss' || spec.mode === 'mse') && spec.wantStats) {
      stats[spec.statsOff + 2 * t] = rows > 0 ? loss / rows : 0;
      stats[spec.statsOff + 2 * t + 1] = rows > 0 ? hits / rows : 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// mlp-vector

/** A per-task vector in one of the three bound buffers: element (t, i) at b{buf}[off + t·taskStride + i], buf ∈ {0, 1, 2}. */
/** Element i of task t is buf[off + t·taskStride + i]; with rowLen > 0 (a gather of strided rows, e.g.
 * the data's rows of D floats padded to rowStride = ⌈D/4⌉·4) buf[off + t·taskStride + ⌊i/rowLen⌋·rowStride
 * + i mod rowLen]. */
export interface VectorOperand { buf: number; off: number; taskStride: number; rowLen?: number; rowStride?: number }

const operandIndex = (v: VectorOperand, t: number, i: number): number =>
  v.off + t * v.taskStride + (v.rowLen ? Math.floor(i / v.rowLen) * v.rowStride! + (i % v.rowLen) : i);

/**
 * out(t, i) = a·X(t, i) + b·Y(t, i), or with a `z` operand a·X(t, i) + b·Y(t, i)·Z(t, i) (elementwise
 * product: Meta-SGD's α ⊙ g), for t < tasks, lo ≤ i < hi. X is never read when a = 0, Y and Z never when
 * b = 0 (so they may hold anything, NaN included; y may be absent). out may be X itself (in-place
 * accumulation, e.g. g_α += −g ⊙ v). With zeroOutside, out(t, i) = 0 for i in [0, length) outside
 * [lo, hi); else those are left alone.
 * @example copy θ (b0, shared) into every task's θ' (b1): { tasks, length: V, lo: 0, hi: V, a: 1, b: 0,
 *   x: { buf: 0, off: 0, taskStride: 0 }, out: { buf: 1, off: 0, taskStride: V } }
 * @example θ' = θ − α ⊙ g, θ at b0[0, V), α at b0[V, 2V) (shared), g per task in b1, θ' in b2:
 *   { tasks, length: V, lo: 0, hi: P, a: 1, b: −1, x: { buf: 0, off: 0, taskStride: 0 }, y: { buf: 0, off: V, taskStride: 0 },
 *     z: { buf: 1, off: 0, taskStride: V }, out: { buf: 2, off: 0, taskStride: V }, zeroOutside: true }
 */
export interface VectorSpec {
  tasks: number;
  length: number;
  lo: number; hi: number;
  a: number; b: number;
  x: VectorOperand; y?: VectorOperand; out: VectorOperand;
  /** When given, the b term is b·Y ⊙ Z. */
  z?: VectorOperand;
  zeroOutside?: boolean;
}

export interface VectorArrays { b0: Float32Array; b1: Float32Array; b2: Float32Array }

export function checkVectorSpec(spec: VectorSpec): void {
  for (const [name, n] of Object.entries({ tasks: spec.tasks, length: spec.length, lo: spec.lo, hi: spec.hi })) {
    if (!isCount(n)) throw new ShapeError(`vector ${name} = ${n} is not a non-negative integer.`, 'Pass sizes as integers ≥ 0.');
  }
  if (spec.lo > spec.hi || spec.hi > spec.length) {
    throw new ShapeError(`vector range [${spec.lo}, ${spec.hi}) is not inside [0, ${spec.length}).`, 'Need 0 ≤ lo ≤ hi ≤ length.');
  }
  if (!Number.isFinite(spec.a) || !Number.isFinite(spec.b)) throw new ShapeError(`vector a = ${spec.a}, b = ${spec.b}: not finite.`, 'Pass finite coefficients.');
  if (spec.b !== 0 && !spec.y) throw new ShapeError(`vector b = ${spec.b} without a y operand.`, 'Give spec.y, or b = 0.');
  for (const [name, op] of [['x', spec.x], ['y', spec.y], ['z', spec.z], ['out', spec.out]] as const) {
    if (op && (![0, 1, 2].includes(op.buf) || !isCount(op.off) || !isCount(op.taskStride) || !isCount(op.rowLen ?? 0) || (op.rowLen ? !isCount(op.rowStride ?? -1) || op.rowStride! < op.rowLen : op.rowStride !== undefined && op.rowStride !== 0))) {
      throw new ShapeError(`vector operand ${name} is invalid: ${JSON.stringify(op)}.`, 'buf ∈ {0, 1, 2}; off and taskStride integers ≥ 0; rowStride ≥ rowLen when rowLen > 0.');
    }
  }
}

/** Twin of shaders/mlp-vector.wgsl. */
export function vectorOp(arrays: VectorArrays, spec: VectorSpec): void {
  checkVectorSpec(spec);
  const bufs = [arrays.b0, arrays.b1, arrays.b2];
  const { x, z, out } = spec;
  const y = spec.y;
  const first = spec.zeroOutside ? 0 : spec.lo;
  const end = spec.zeroOutside ? spec.length : spec.hi;
  for (let t = 0; t < spec.tasks; t++) {
    for (let i = first; i < end; i++) {
      let v = 0;
      if (i >= spec.lo && i < spec.hi) {
        if (spec.a !== 0) v = spec.a * bufs[x.buf][operandIndex(x, t, i)];
        if (spec.b !== 0) {
          let term = bufs[y!.buf][operandIndex(y!, t, i)];
          if (z) term *= bufs[z.buf][operandIndex(z, t, i)];
          v += spec.b * term;
        }
      }
      bufs[out.buf][operandIndex(out, t, i)] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// mlp-norm-clip

/** Most tensors one NormClipKernel dispatch clips (the uniform holds their ranges). */
export const MAX_CLIP_TENSORS = 64;

/**
 * AMP's per-tensor projection: for t < tasks and each [start, end) in tensors, Δ = pert − base on the
 * range; if ‖Δ‖₂ > radius, pert = base + radius·Δ/‖Δ‖₂. pert(t, i) at pertOff + t·pertTaskStride + i,
 * base(t, i) at baseOff + t·baseTaskStride + i (baseTaskStride 0: one θ for all tasks).
 */
export interface NormClipSpec {
  tasks: number;
  tensors: [number, number][];
  radius: number;
  pertOff: number; pertTaskStride: number;
  baseOff: number; baseTaskStride: number;
}

export interface NormClipArrays { pert: Float32Array; base: Float32Array }

export function checkNormClipSpec(spec: NormClipSpec): void {
  for (const [name, n] of Object.entries({ tasks: spec.tasks, pertOff: spec.pertOff, pertTaskStride: spec.pertTaskStride, baseOff: spec.baseOff, baseTaskStride: spec.baseTaskStride })) {
    if (!isCount(n)) throw new ShapeError(`norm-clip ${name} = ${n} is not a non-negative integer.`, 'Pass sizes and offsets as integers ≥ 0.');
  }
  if (spec.tensors.length > MAX_CLIP_TENSORS) {
    throw new ShapeError(`norm-clip got ${spec.tensors.length} tensors, at most ${MAX_CLIP_TENSORS} fit one dispatch.`, 'Split the tensors over several dispatches.');
  }
  for (const [s, e] of spec.tensors) {
    if (!isCount(s) || !isCount(e) || s > e) throw new ShapeError(`norm-clip tensor range [${s}, ${e}) is invalid.`, 'Ranges are [start, end) with 0 ≤ start ≤ end.');
  }
  if (!(spec.radius >= 0) || !Number.isFinite(spec.radius)) throw new ShapeError(`norm-clip radius ${spec.radius} is not finite ≥ 0.`, 'Pass ε ≥ 0.');
}

/** Twin of shaders/mlp-norm-clip.wgsl. */
export function normClipTensors(arrays: NormClipArrays, spec: NormClipSpec): void {
  checkNormClipSpec(spec);
  const { pert, base } = arrays;
  for (let t = 0; t < spec.tasks; t++) {
    const p = spec.pertOff + t * spec.pertTaskStride;
    const b = spec.baseOff + t * spec.baseTaskStride;
    for (const [start, end] of spec.tensors) {
      let sq = 0;
      for (let i = start; i < end; i++) sq += (pert[p + i] - base[b + i]) ** 2;
      const norm = Math.sqrt(sq);
      if (norm > spec.radius) {
        const s = spec.radius / norm;
        for (let i = start; i < end; i++) pert[p + i] = base[b + i] + s * (pert[p + i] - base[b + i]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// mlp-sign-step

/**
 * One FGSM/PGD step on input rows: for t < tasks, r < rows, d < dim (row (t, r) at (t·rows + r)·rowStride):
 *   x_adv = clip(clean + clamp(x_cur + stepSize·sign(g) − clean, −ε, ε), lo, hi),  sign(0) = 0,
 * x_cur = clean (readClean, the first step) or the adv buffer itself; g(t, r, d) at gOff + t·gTaskStride
 * + r·gRowStride + d; written to adv[advOff + (t·rows + r)·rowStride + d].
 */
export interface SignStepSpec {
  tasks: number; rows: number; dim: number;
  rowStride: number;
  cleanOff: number; advOff: number;
  readClean: boolean;
  gOff: number; gTaskStride: number; gRowStride: number;
  stepSize: number; epsilon: number; lo: number; hi: number;
}

export interface SignStepArrays { clean: Float32Array; adv: Float32Array; tape: Float32Array }

export function checkSignStepSpec(spec: SignStepSpec): void {
  const counts = { tasks: spec.tasks, rows: spec.rows, dim: spec.dim, rowStride: spec.rowStride, cleanOff: spec.cleanOff, advOff: spec.advOff,
    gOff: spec.gOff, gTaskStride: spec.gTaskStride, gRowStride: spec.gRowStride };
  for (const [name, n] of Object.entries(counts)) {
    if (!isCount(n)) throw new ShapeError(`sign-step ${name} = ${n} is not a non-negative integer.`, 'Pass sizes and offsets as integers ≥ 0.');
  }
  if (spec.rowStride < spec.dim) throw new ShapeError(`sign-step rowStride ${spec.rowStride} < dim ${spec.dim}.`, 'rowStride is the padded row length Dp ≥ D.');
  const reals = [spec.stepSize, spec.epsilon, spec.lo, spec.hi];
  if (reals.some((v) => !Number.isFinite(v)) || spec.epsilon < 0 || !(spec.lo < spec.hi)) {
    throw new ShapeError(`sign-step stepSize ${spec.stepSize}, ε ${spec.epsilon}, clip [${spec.lo}, ${spec.hi}] are invalid.`, 'Need finite values, ε ≥ 0 and lo < hi.');
  }
}

/** Twin of shaders/mlp-sign-step.wgsl; rounds every step to float32 as the GPU does, so both agree to ~1 ulp. */
export function signStep(arrays: SignStepArrays, spec: SignStepSpec): void {
  checkSignStepSpec(spec);
  const f = Math.fround;
  const { clean, adv, tape } = arrays;
  const s = f(spec.stepSize), eps = f(spec.epsilon), lo = f(spec.lo), hi = f(spec.hi);
  for (let t = 0; t < spec.tasks; t++) {
    for (let r = 0; r < spec.rows; r++) {
      const row = (t * spec.rows + r) * spec.rowStride;
      const g = spec.gOff + t * spec.gTaskStride + r * spec.gRowStride;
      for (let d = 0; d < spec.dim; d++) {
        const x0 = clean[spec.cleanOff + row + d];
        const cur = spec.readClean ? x0 : adv[spec.advOff + row + d];
        const moved = f(cur + s * Math.sign(tape[g + d]));
        const delta = Math.min(Math.max(f(moved - x0), -eps), eps);
        adv[spec.advOff + row + d] = Math.min(Math.max(f(x0 + delta), lo), hi);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// mlp-task-norm

export type TaskNormMode = 'forward' | 'backward' | 'r-forward' | 'r-backward';

/**
 * Per-task normalisation of a hidden layer over the `rows` rows of each task's set, per unit j < units
 * (s = √(σ² + ε), J = (I − 11ᵀ/m − n nᵀ/m)/s; the math of src/cpu/mlp.ts's header). All arrays are in
 * the tape: a rows × units array of task t at off + t·tapeTaskStride + r·units + j, a per-unit array
 * (s, κ, ρ) at off + t·tapeTaskStride + j.
 *   'forward':    in = z → out = n = (z − μ)/s, relu = a = max(n, 0); writes s.
 *   'backward':   in = g (= ∂/∂n) → out = δ = J g; reads n, s; writes κ = mean(g n).
 *   'r-forward':  in = R(z) → out = R(n) = J R(z), relu = R(a) = [n > 0] R(n); reads n, s; writes ρ = mean(n R(z)).
 *   'r-backward': in = R(g) → out = R(δ) = J R(g) − (ρ/s) δ − (R(n) κ + n τ)/s, τ = s·mean(δ R(n)) + κ·mean(n R(n));
 *                 reads n, s, κ, ρ, δ, R(n).
 * `out` may equal `in`; every other array must not overlap an array the mode writes.
 * @example forward of hidden layer l, n over z in place: { mode: 'forward', tasks, rows, units: h_l, tapeTaskStride,
 *   inOff: z, outOff: z, reluOff: a, sOff: s }
 */
export interface TaskNormSpec {
  mode: TaskNormMode;
  tasks: number; rows: number; units: number;
  tapeTaskStride: number;
  inOff: number; outOff: number;
  sOff: number;
  reluOff?: number; nOff?: number; kappaOff?: number; rhoOff?: number; deltaOff?: number; rnOff?: number;
}

export interface TaskNormArrays { tape: Float32Array | Float64Array }

/** The offsets each mode reads or writes beyond in, out and s. */
const TASK_NORM_FIELDS: Record<TaskNormMode, (keyof TaskNormSpec)[]> = {
  forward: ['reluOff'],
  backward: ['nOff', 'kappaOff'],
  'r-forward': ['reluOff', 'nOff', 'rhoOff'],
  'r-backward': ['nOff', 'kappaOff', 'rhoOff', 'deltaOff', 'rnOff'],
};

export function checkTaskNormSpec(spec: TaskNormSpec): void {
  const fields = TASK_NORM_FIELDS[spec.mode];
  if (!fields) throw new ShapeError(`task-norm mode '${String(spec.mode)}' is unknown.`, "Use 'forward', 'backward', 'r-forward' or 'r-backward'.");
  const counts = { tasks: spec.tasks, rows: spec.rows, units: spec.units, tapeTaskStride: spec.tapeTaskStride, inOff: spec.inOff, outOff: spec.outOff, sOff: spec.sOff };
  for (const [name, n] of Object.entries(counts)) {
    if (!isCount(n)) throw new ShapeError(`task-norm ${name} = ${n} is not a non-negative integer.`, 'Pass sizes and offsets as integers ≥ 0.');
  }
  for (const name of fields) {
    const n = spec[name] as number | undefined;
    if (n === undefined || !isCount(n)) {
      throw new ShapeError(`task-norm mode '${spec.mode}' needs ${name}, got ${n}.`, `Mode '${spec.mode}' uses ${fields.join(', ')} besides inOff, outOff and sOff.`);
    }
  }
}

/** Twin of shaders/mlp-task-norm.wgsl: sums in float64, stores in the tape's precision. */
export function taskNorm(arrays: TaskNormArrays, spec: TaskNormSpec): void {
  checkTaskNormSpec(spec);
  const { tape } = arrays;
  const { rows: m, units: h } = spec;
  if (m === 0) return;
  for (let t = 0; t < spec.tasks; t++) {
    const base = t * spec.tapeTaskStride;
    for (let j = 0; j < h; j++) {
      const x = spec.inOff + base + j;
      const y = spec.outOff + base + j;
      const unit = base + j;
      if (spec.mode === 'forward') {
        let mean = 0;
        for (let r = 0; r < m; r++) mean += tape[x + r * h];
        mean /= m;
        let variance = 0;
        for (let r = 0; r < m; r++) variance += (tape[x + r * h] - mean) ** 2;
        const s = Math.sqrt(variance / m + TASK_NORM_EPS);
        tape[spec.sOff + unit] = s;
        const a = spec.reluOff! + base + j;
        for (let r = 0; r < m; r++) {
          const n = (tape[x + r * h] - mean) / s;
          tape[y + r * h] = n;
          tape[a + r * h] = n > 0 ? n : 0;
        }
        continue;
      }
      const s = tape[spec.sOff + unit];
      const nAt = spec.nOff! + base + j;
      let mean = 0;
      let un = 0;
      for (let r = 0; r < m; r++) {
        mean += tape[x + r * h];
        un += tape[x + r * h] * tape[nAt + r * h];
      }
      mean /= m;
      un /= m;
      if (spec.mode === 'backward' || spec.mode === 'r-forward') {
        tape[(spec.mode === 'backward' ? spec.kappaOff! : spec.rhoOff!) + unit] = un;
        for (let r = 0; r < m; r++) {
          const n = tape[nAt + r * h];
          const v = (tape[x + r * h] - mean - n * un) / s;
          tape[y + r * h] = v;
          if (spec.mode === 'r-forward') tape[spec.reluOff! + base + j + r * h] = n > 0 ? tape[y + r * h] : 0;
        }
        continue;
      }
      // r-backward
      const kappa = tape[spec.kappaOff! + unit];
      const rho = tape[spec.rhoOff! + unit];
      const dAt = spec.deltaOff! + base + j;
      const rnAt = spec.rnOff! + base + j;
      let deltaRn = 0;
      let nRn = 0;
      for (let r = 0; r < m; r++) {
        deltaRn += tape[dAt + r * h] * tape[rnAt + r * h];
        nRn += tape[nAt + r * h] * tape[rnAt + r * h];
      }
      const tau = (s * deltaRn + kappa * nRn) / m;
      for (let r = 0; r < m; r++) {
        const n = tape[nAt + r * h];
        tape[y + r * h] = (tape[x + r * h] - mean - n * un - rho * tape[dAt + r * h] - tape[rnAt + r * h] * kappa - n * tau) / s;
      }
    }
  }
}
