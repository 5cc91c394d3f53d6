// The model operations of a layer list (src/models/layers.ts) on the GPU, for the MAML core of
// src/schedule/task-pass.ts: forward, loss, backward, weight gradients, Hessian-vector products by the
// R-operator, ANIL's head passes and the input gradient of attacks, each a sequence of layer kernels
// batched over the tasks of one chunk with per-task fast weights — conv2d.wgsl (forward, input and
// weight gradients), pool.wgsl (max- and mean-pooling, ReLU's mask), mlp-task-norm.wgsl (a conv layer's
// norm: rows × positions as its rows, channels as its units), mlp-gemm.wgsl (dense layers) and
// mlp-softmax.wgsl (the loss). The math is the float64 oracle's (src/cpu/net/), on float32.
//
// The tape, per task: one primal section per kept inner step and the query's, each holding every
// layer's input and output (acts[i], i = 0 … L: acts[0] the rows, copied from the data buffer) and
// their δ (deltas[i]), a norm's s and κ per channel, the softmax's p; a flatten's output is its input
// (the same offsets). A norm followed by a ReLU writes relu(n) straight into the ReLU's output (the norm
// kernel's fused epilogue), so that ReLU's forward costs nothing. One R section (R(acts), R(δ), ρ per
// norm). Max-pool's choices live in their own u32 buffer (buffers.extra), per section likewise.
// Within a backward sweep every δ is computed before any weight gradient is written, and within the
// R-backward a layer's R(δ) (which reads the direction's weights) before its Hv (which may write them):
// a gradient may be accumulated into the very vector it differentiates (AMP, order-1 inner steps) and the
// direction of a Hessian-vector product may be the meta-gradient itself (order 2).
// The loss: softmax cross-entropy, or squared error (the loss kernel's regression modes). CAML's context
// φ enters as extra input channels: the rows are copied to a scratch, φ beside them, and pool.wgsl's
// context_join interleaves them per position; φ's gradient (and its Hessian-vector entries) is
// context_sum of δ_0 (R(δ_0)); an attack's input gradient is context_split of δ_0. Rows of any length:
// the data's rows are padded to vec4s, and the copy into acts[0] gathers them.
import { features, type LayerLayout } from '../models/layers.js';
import type { NetModelLayout } from '../models/model.js';
import { Conv2dKernel, type TapeArray } from '../kernels/conv2d.js';
import { PoolKernel } from '../kernels/pool.js';
import { SoftmaxKernel } from '../kernels/mlp-softmax.js';
import { ProtoKernel } from '../kernels/proto.js';
import { TaskNormKernel } from '../kernels/mlp-task-norm.js';
import { dummyBuffer } from '../kernels/mlp-common.js';
import type { TaskNormSpec } from '../cpu/mlp-kernels.js';
import type { BoundDispatch } from '../gpu/resources.js';
import { TaskPass, type GradMode, type Params, type PassBuffers, type PassOptions, type Ref, type Rows } from './task-pass.js';

/** Offsets (per task, in floats of the tape; argmax: in u32s of buffers.extra) of one section. */
interface NetSection {
  acts: number[];
  deltas: number[];
  /** Norm layers: s and κ (primal), ρ (R section), per channel; -1 elsewhere. */
  s: number[];
  kappa: number[];
  rho: number[];
  /** A norm's relu(n) when no ReLU follows it (the norm kernel always writes it); -1 elsewhere. */
  normRelu: number[];
  /** Max-pool layers: their choices in buffers.extra; -1 elsewhere. */
  arg: number[];
  p: number;
  /** CAML (context C > 0; else -1): the data rows (rows × D: copied in before the join, and an attack's
   * input gradient after the split), φ (C floats) and Σ of the context channels' δ (C floats). */
  rows: number;
  phi: number;
  contextSum: number;
}

/** The tape's sections for `rows` rows: `sections` primal ones, then the R section. */
function tapeLayout(layout: NetModelLayout, rows: number, sections: number) {
  const { layers } = layout.net;
  const L = layers.length;
  let off = 0;
  let argOff = 0;
  const take = (n: number) => { const o = off; off += n; return o; };
  const section = (kind: 'primal' | 'r'): NetSection => {
    const sec: NetSection = { acts: [], deltas: [], s: [], kappa: [], rho: [], normRelu: [], arg: [], p: 0, rows: -1, phi: -1, contextSum: -1 };
    sec.acts[0] = take(rows * features(layout.net.input));
    sec.deltas[0] = take(rows * features(layout.net.input));
    for (let i = 0; i < L; i++) {
      const l = layers[i];
      const n = rows * features(l.output);
      // A flatten's output is its input; a ReLU after a norm gets its output from the norm kernel.
      sec.acts[i + 1] = l.spec.kind === 'flatten' ? sec.acts[i] : take(n);
      sec.deltas[i + 1] = l.spec.kind === 'flatten' ? sec.deltas[i] : take(n);
      const norm = l.spec.kind === 'norm';
      sec.s[i] = norm && kind === 'primal' ? take(l.input.c) : -1;
      sec.kappa[i] = norm && kind === 'primal' ? take(l.input.c) : -1;
      sec.rho[i] = norm && kind === 'r' ? take(l.input.c) : -1;
      sec.normRelu[i] = norm && layers[i + 1]?.spec.kind !== 'relu' ? take(n) : -1;
      sec.arg[i] = l.spec.kind === 'maxpool' && kind === 'primal' ? (argOff += n) - n : -1;
    }
    // Softmax probabilities; a protonet's prototypes, counts, their gradient and g (≤ rows × N) instead.
    const loss = layout.net.loss;
    sec.p = take(loss.kind === 'proto' ? 2 * loss.classes * layout.net.outputs + loss.classes + rows * loss.classes : rows * layout.net.outputs);
    if (layout.context > 0) {
      sec.rows = take(rows * layout.dim);
      sec.phi = take(layout.context);
      sec.contextSum = take(layout.context);
    }
    return sec;
  };
  const primal = Array.from({ length: sections }, () => section('primal'));
  const r = section('r');
  return { primal, r, floats: off + (off % 4 === 0 ? 0 : 4 - (off % 4)), argFloats: Math.max(1, argOff) };
}

/** Floats of the tape and u32s of the max-pool choices per task, for `sections` primal sections. */
export function netTapeFloats(layout: NetModelLayout, rows: number, sections: number): { tape: number; arg: number } {
  const t = tapeLayout(layout, rows, sections);
  return { tape: t.floats, arg: t.argFloats };
}

export class NetPass extends TaskPass<NetSection> {
  private readonly conv: Conv2dKernel;
  private readonly pool: PoolKernel;
  private readonly softmaxKernel: SoftmaxKernel;
  /** A protonet's loss (made when the model's loss is the prototypical one). */
  private readonly protoKernel: ProtoKernel | null;
  private readonly taskNormKernel: TaskNormKernel;
  readonly tapeFloats: number;
  private readonly argFloats: number;
  private readonly tape: ReturnType<typeof tapeLayout>;
  protected readonly writesFrom = false;
  protected declare readonly layout: NetModelLayout;

  constructor(device: GPUDevice, layout: NetModelLayout, tasks: number, rows: number, sections: number, buffers: PassBuffers, label: string, options: PassOptions = {}) {
    super(device, layout, tasks, buffers, label, options);
    if (!buffers.extra) throw new Error('NetPass: needs buffers.extra (the max-pool choices)');
    this.conv = new Conv2dKernel(device);
    this.pool = new PoolKernel(device);
    this.softmaxKernel = new SoftmaxKernel(device);
    this.protoKernel = layout.net.loss.kind === 'proto' ? new ProtoKernel(device) : null;
    this.taskNormKernel = new TaskNormKernel(device);
    this.tape = tapeLayout(layout, rows, sections);
    this.tapeFloats = this.tape.floats;
    this.argFloats = this.tape.argFloats;
  }

  // ---------------------------------------------------------------- addressing

  /** Regression: the loss kernel's squared-error modes. */
  private get mse(): boolean {
    return this.layout.net.loss.kind === 'mse';
  }

  private get layers(): LayerLayout[] {
    return this.layout.net.layers;
  }

  private at(off: number): TapeArray {
    return { off, taskStride: this.tapeFloats };
  }

  private argAt(off: number): TapeArray {
    return { off, taskStride: this.argFloats };
  }

  private poolBuffers() {
    return { tape: this.buffers.tape, arg: this.buffers.extra! };
  }

  /** W of layer l of P as a gemm operand (inputs × units), or its transpose. */
  private denseW(P: Params, l: LayerLayout, transposed = false): Ref {
    const units = l.output.c;
    return transposed
      ? { home: P.buffer, off: P.off + l.offset, taskStride: P.taskStride, strideI: 1, strideJ: units }
      : { home: P.buffer, off: P.off + l.offset, taskStride: P.taskStride, strideI: units, strideJ: 1 };
  }

  private denseB(P: Params, l: LayerLayout): Ref {
    return { home: P.buffer, off: P.off + l.offset + l.weights, taskStride: P.taskStride, strideI: 0, strideJ: 1 };
  }

  private convOptions(P: Params) {
    return { paramStride: P.taskStride, paramOff: P.off };
  }

  private norm(rows: Rows, l: LayerLayout, spec: Omit<TaskNormSpec, 'tasks' | 'rows' | 'tapeTaskStride' | 'units'>, what: string): BoundDispatch {
    const positions = l.input.h * l.input.w;
    return this.taskNormKernel.bind({ tape: this.buffers.tape }, { ...spec, units: l.input.c, tasks: this.tasks, rows: rows.rows * positions, tapeTaskStride: this.tapeFloats },
      `${this.label}.${what}.norm`);
  }

  /** Where a norm at layer i writes relu(n): the next ReLU's output, or its own scratch. */
  private normReluOf(sec: NetSection, i: number): number {
    return sec.normRelu[i] >= 0 ? sec.normRelu[i] : sec.acts[i + 2];
  }

  /** CAML: φ of `phiFrom` into `into`'s φ slot, then `into`'s acts[0] = [rows of `sec` | φ] per position
   * (dataZero: the data channels 0 — the R pass, where only φ moves). */
  private joinContext(phiFrom: Params, rows: Rows, sec: NetSection, into: NetSection, dataZero: boolean, what: string): BoundDispatch[] {
    const { context: C, dim: D, contextOffset } = this.layout;
    const input = this.layout.net.input;
    return [
      this.vector({ ...phiFrom, off: phiFrom.off + contextOffset }, 1, { buffer: this.buffers.tape, off: into.phi, taskStride: this.tapeFloats }, [0, C], `${what}.phi`),
      this.pool.context('join', this.poolBuffers(), { tasks: this.tasks, rows: rows.rows }, { h: input.h, w: input.w, channels: input.c, data: D / (input.h * input.w) },
        { out: this.at(into.acts[0]), src: this.at(sec.rows), phi: this.at(into.phi) }, `${this.label}.${what}.join`, { srcZero: dataZero }),
    ];
  }

  /** CAML: G[φ] (+)= scale·Σ over rows and positions of the context channels of the δ-like array at
   * `deltaOff` (through `sum`'s context-sum slot). */
  private contextInto(rows: Rows, deltaOff: number, sum: NetSection, G: Params, mode: 'write' | 'accumulate', scale: number, what: string): BoundDispatch[] {
    const { context: C, dim: D, contextOffset } = this.layout;
    const input = this.layout.net.input;
    const Gphi: Params = { ...G, off: G.off + contextOffset };
    const sumAt: Params = { buffer: this.buffers.tape, off: sum.contextSum, taskStride: this.tapeFloats };
    return [
      this.pool.context('sum', this.poolBuffers(), { tasks: this.tasks, rows: rows.rows }, { h: input.h, w: input.w, channels: input.c, data: D / (input.h * input.w) },
        { out: this.at(sum.contextSum), src: this.at(deltaOff) }, `${this.label}.${what}.contextSum`),
      this.vector(Gphi, mode === 'accumulate' ? 1 : 0, Gphi, [0, C], `${what}.context`, false, sumAt, scale),
    ];
  }

  // ---------------------------------------------------------------- passes

  /** Layers first … last−1 forward at P (acts[first] in place); first = 0 copies the rows in. */
  private forwardLayers(P: Params, rows: Rows, sec: NetSection, what: string, first: number, last: number): BoundDispatch[] {
    const out: BoundDispatch[] = [];
    const shape = { tasks: this.tasks, rows: rows.rows };
    const D = this.layout.dim;
    if (first === 0) {
      // acts[0] = the rows (gathered from the data's rows of Dp floats where D is not a multiple of 4);
      // with CAML's context, the rows go to their scratch and φ beside them, then the join interleaves
      // them per position.
      const C = this.layout.context;
      const gather = this.Dp !== D ? { rowLen: D, rowStride: this.Dp } : {};
      out.push(this.vector({ buffer: rows.buffer, off: rows.xOff, taskStride: rows.rows * this.Dp, ...gather }, 1, { buffer: this.buffers.tape, off: C > 0 ? sec.rows : sec.acts[0], taskStride: this.tapeFloats }, [0, rows.rows * D], `${what}.rows`));
      if (C > 0) out.push(...this.joinContext(P, rows, sec, sec, false, what));
    }
    for (let i = first; i < last; i++) {
      const l = this.layers[i];
      const w = `${what}.forward${i}`;
      switch (l.spec.kind) {
        case 'dense':
          out.push(this.gemm(rows.buffer, {
            M: rows.rows, N: l.output.c, K1: features(l.input), A1: this.tapeRef(sec.acts[i], features(l.input)), B1: this.denseW(P, l), bias1: this.denseB(P, l),
            mode: 'write', scale: 1, out: this.tapeRef(sec.acts[i + 1], l.output.c),
          }, w));
          break;
        case 'conv2d':
          out.push(this.conv.forward({ tape: this.buffers.tape, params: P.buffer }, { ...shape, layer: l }, { ...this.convOptions(P), x: this.at(sec.acts[i]), y: this.at(sec.acts[i + 1]) }, `${this.label}.${w}`));
          break;
        case 'norm':
          out.push(this.norm(rows, l, { mode: 'forward', inOff: sec.acts[i], outOff: sec.acts[i + 1], reluOff: this.normReluOf(sec, i), sOff: sec.s[i] }, w));
          break;
        case 'relu':
          // After a norm, the norm kernel wrote it.
          if (i === 0 || this.layers[i - 1].spec.kind !== 'norm') {
            out.push(this.pool.mask(this.poolBuffers(), { ...shape, features: features(l.input) }, { src: this.at(sec.acts[i]), gate: this.at(sec.acts[i]), out: this.at(sec.acts[i + 1]) }, `${this.label}.${w}`));
          }
          break;
        case 'maxpool':
          out.push(this.pool.bind('max_forward', this.poolBuffers(), l, shape, { input: this.at(sec.acts[i]), output: this.at(sec.acts[i + 1]), arg: this.argAt(sec.arg[i]) }, `${this.label}.${w}`));
          break;
        case 'meanpool':
          out.push(this.pool.bind('mean_forward', this.poolBuffers(), l, shape, { input: this.at(sec.acts[i]), output: this.at(sec.acts[i + 1]), arg: this.argAt(0) }, `${this.label}.${w}`));
          break;
        case 'flatten':
          break;
      }
    }
    return out;
  }

  /** δ from deltas[L] down to deltas[stop] at P (stop 0: the input gradient too). */
  private backwardLayers(P: Params, rows: Rows, sec: NetSection, what: string, stop: number): BoundDispatch[] {
    const out: BoundDispatch[] = [];
    const shape = { tasks: this.tasks, rows: rows.rows };
    for (let i = this.layers.length - 1; i >= stop; i--) {
      const l = this.layers[i];
      const w = `${what}.delta${i}`;
      switch (l.spec.kind) {
        case 'dense':
          out.push(this.gemm(rows.buffer, {
            M: rows.rows, N: features(l.input), K1: l.output.c, A1: this.tapeRef(sec.deltas[i + 1], l.output.c), B1: this.denseW(P, l, true),
            mode: 'write', scale: 1, out: this.tapeRef(sec.deltas[i], features(l.input)),
          }, w));
          break;
        case 'conv2d':
          out.push(this.conv.inputGrad({ tape: this.buffers.tape, params: P.buffer }, { ...shape, layer: l }, { ...this.convOptions(P), dy: this.at(sec.deltas[i + 1]), dx: this.at(sec.deltas[i]) }, `${this.label}.${w}`));
          break;
        case 'norm':
          out.push(this.norm(rows, l, { mode: 'backward', inOff: sec.deltas[i + 1], outOff: sec.deltas[i], nOff: sec.acts[i + 1], sOff: sec.s[i], kappaOff: sec.kappa[i] }, w));
          break;
        case 'relu':
          out.push(this.pool.mask(this.poolBuffers(), { ...shape, features: features(l.input) }, { src: this.at(sec.deltas[i + 1]), gate: this.at(sec.acts[i]), out: this.at(sec.deltas[i]) }, `${this.label}.${w}`));
          break;
        case 'maxpool':
          out.push(this.pool.bind('max_scatter', this.poolBuffers(), l, shape, { input: this.at(sec.deltas[i]), output: this.at(sec.deltas[i + 1]), arg: this.argAt(sec.arg[i]) }, `${this.label}.${w}`));
          break;
        case 'meanpool':
          out.push(this.pool.bind('mean_spread', this.poolBuffers(), l, shape, { input: this.at(sec.deltas[i]), output: this.at(sec.deltas[i + 1]), arg: this.argAt(0) }, `${this.label}.${w}`));
          break;
        case 'flatten':
          break;
      }
    }
    return out;
  }

  /** G (mode, scale) = the weight gradient of layer i from acts[i] of `inputs` and δ_{i+1} of `sec`
   * (when `also`, plus the second product of an R-operator: A2ᵀ·D2). */
  private layerGrad(rows: Rows, i: number, inputs: number, delta: number, G: Params, mode: 'write' | 'accumulate', scale: number, what: string, also?: { inputs: number; delta: number }): BoundDispatch[] {
    const l = this.layers[i];
    const units = l.output.c;
    const w = `${what}.grad${i}`;
    if (l.spec.kind === 'dense') {
      const inF = features(l.input);
      const At = (off: number): Ref => ({ ...this.tapeRef(off, inF), strideI: 1, strideJ: inF });
      return [
        this.gemm(rows.buffer, {
          M: inF, N: units, K1: rows.rows, A1: At(inputs), B1: this.tapeRef(delta, units),
          K2: also ? rows.rows : 0, A2: also ? At(also.inputs) : undefined, B2: also ? this.tapeRef(also.delta, units) : undefined,
          mode, scale, out: { home: G.buffer, off: G.off + l.offset, taskStride: G.taskStride, strideI: units, strideJ: 1 },
        }, `${w}.W`),
        this.gemm(rows.buffer, {
          M: 1, N: units, K1: rows.rows, A1: { home: 'one', off: 0, taskStride: 0, strideI: 0, strideJ: 0 }, B1: this.tapeRef(delta, units),
          mode, scale, out: { home: G.buffer, off: G.off + l.offset + l.weights, taskStride: G.taskStride, strideI: 0, strideJ: 1 },
        }, `${w}.b`),
      ];
    }
    const shape = { tasks: this.tasks, rows: rows.rows, layer: l };
    const grad = { gradStride: G.taskStride, gradOff: G.off, scale };
    const out = [this.conv.weightGrad({ tape: this.buffers.tape, grad: G.buffer }, shape, { ...grad, accumulate: mode === 'accumulate', x: this.at(inputs), dy: this.at(delta) }, `${this.label}.${w}`)];
    if (also) out.push(this.conv.weightGrad({ tape: this.buffers.tape, grad: G.buffer }, shape, { ...grad, accumulate: true, bias: false, x: this.at(also.inputs), dy: this.at(also.delta) }, `${this.label}.${w}.R`));
    return out;
  }

  private parameterised(): number[] {
    return this.layers.flatMap((l, i) => (l.count > 0 ? [i] : []));
  }

  // ---------------------------------------------------------------- the core's model operations

  protected section(s: number): NetSection {
    return this.tape.primal[s];
  }

  protected forward(P: Params, rows: Rows, sec: NetSection, what: string): BoundDispatch[] {
    return this.forwardLayers(P, rows, sec, what, 0, this.layers.length);
  }

  protected forwardBody(P: Params, rows: Rows, sec: NetSection, what: string): BoundDispatch[] {
    return this.forwardLayers(P, rows, sec, what, 0, this.layers.length - 1);
  }

  protected loss(rows: Rows, sec: NetSection, scale: number, stats: { buffer: GPUBuffer; base: number } | null, what: string): BoundDispatch {
    const L = this.layers.length;
    const loss = this.layout.net.loss;
    if (loss.kind === 'proto') {
      // A protonet's episode: the mean over its queries (the callers' scale is per row of the pass).
      const S = rows.episodeSupport ?? 0;
      return this.protoKernel!.bind({ data: rows.buffer, tape: this.buffers.tape, stats: stats?.buffer ?? dummyBuffer(this.device, 2) }, {
        tasks: this.tasks, rows: rows.rows, support: S, features: this.layout.net.outputs, classes: loss.classes, yOff: rows.yOff,
        zOff: sec.acts[L], dOff: sec.deltas[L], scratchOff: sec.p, tapeTaskStride: this.tapeFloats, scale: (scale * rows.rows) / (rows.rows - S),
        wantStats: stats !== null, statsOff: 2 * (stats?.base ?? 0),
      }, `${this.label}.${what}.proto`);
    }
    return this.softmaxKernel.bind({ data: rows.buffer, tape: this.buffers.tape, stats: stats?.buffer ?? dummyBuffer(this.device, 2) }, {
      tasks: this.tasks, rows: rows.rows, classes: this.layout.net.outputs, mode: this.mse ? 'mse' : 'loss', yOff: rows.yOff,
      zOff: sec.acts[L], pOff: sec.p, dOff: sec.deltas[L], rzOff: 0, tapeTaskStride: this.tapeFloats, scale,
      wantStats: stats !== null, statsOff: 2 * (stats?.base ?? 0),
    }, `${this.label}.${what}.softmax`);
  }

  protected gradient(P: Params, rows: Rows, sec: NetSection, G: Params, mode: GradMode, scale: number, adapt: 'all' | 'context',
    stats: { buffer: GPUBuffer; base: number } | null, what: string): BoundDispatch[] {
    if (mode === 'from') throw new Error(`NetPass.${what}: mode 'from' is not supported`);
    const contextOnly = adapt === 'context';
    const C = this.layout.context;
    const out = [...this.forward(P, rows, sec, what), this.loss(rows, sec, 1 / rows.rows, stats, what), ...this.backwardLayers(P, rows, sec, what, C > 0 ? 0 : 1)];
    // φ's entries (CAML's inner step takes them alone; the query gradient's φ entries seed CAML's
    // order-2 backward, v = (g_W, g_φ), before the core drops them from the meta-gradient).
    if (C > 0) out.push(...this.contextInto(rows, sec.deltas[0], sec, G, mode, scale, what));
    if (contextOnly) return out;
    // Every δ is computed (reading P's weights) before any gradient is written (G may be P).
    for (const i of this.parameterised()) out.push(...this.layerGrad(rows, i, sec.acts[i], sec.deltas[i + 1], G, mode, scale, what));
    return out;
  }

  protected hvp(P: Params, dir: Params, rows: Rows, sec: NetSection, G: Params, scale: number, adapt: 'all' | 'context', what: string): BoundDispatch[] {
    return this.rPasses(P, P, dir, rows, sec, sec, G, scale, what, adapt === 'context' ? 'context' : 'all');
  }

  /**
   * G += scale·H·dir by the R-operator over the tape of `sec` (primal: acts, δ, s, κ, argmax), weights of
   * P (the head's from `headP`). `how` says which entries of dir are not 0: 'all' (R(rows) = 0);
   * 'head' (ANIL: R(acts) = 0 below the head, whose input is `body`'s activations); 'context' (CAML:
   * only φ, so the weights do not move and R(acts[0]) is φ's channels; down to R(δ_0) for (Hv)_φ).
   */
  private rPasses(P: Params, headP: Params, dir: Params, rows: Rows, body: NetSection, sec: NetSection, G: Params, scale: number, what: string, how: 'all' | 'head' | 'context'): BoundDispatch[] {
    const L = this.layers.length;
    const R = this.tape.r;
    const shape = { tasks: this.tasks, rows: rows.rows };
    const first = how === 'head' ? L - 1 : 0;
    const weightsMove = how !== 'context';
    const rInput = how === 'context';
    const out: BoundDispatch[] = [];
    // Layer inputs: the body's activations (for the full product, body is sec).
    const actsOf = (i: number) => body.acts[i];
    const weightsAt = (i: number) => (i === L - 1 ? headP : P);
    // R(acts[i]) ≠ 0 above `first`, and at the input under CAML.
    const rxAt = (i: number) => i > first || (i === 0 && rInput);
    if (rInput) out.push(...this.joinContext(dir, rows, sec, R, true, `${what}.Rinput`));
    // R-forward from layer `first`.
    for (let i = first; i < L; i++) {
      const l = this.layers[i];
      const w = `${what}.R${i}`;
      const Pw = weightsAt(i);
      const withRX = rxAt(i);
      switch (l.spec.kind) {
        case 'dense': {
          const inF = features(l.input);
          // R(Y) = R(X)·W + X·V + v_b.
          const rx = { A: this.tapeRef(R.acts[i], inF), B: this.denseW(Pw, l) };
          out.push(this.gemm(rows.buffer, weightsMove
            ? {
              M: rows.rows, N: l.output.c, K1: inF, A1: this.tapeRef(actsOf(i), inF), B1: this.denseW(dir, l), bias1: this.denseB(dir, l),
              K2: withRX ? inF : 0, A2: withRX ? rx.A : undefined, B2: withRX ? rx.B : undefined,
              mode: 'write', scale: 1, out: this.tapeRef(R.acts[i + 1], l.output.c),
            }
            : { M: rows.rows, N: l.output.c, K1: inF, A1: rx.A, B1: rx.B, mode: 'write', scale: 1, out: this.tapeRef(R.acts[i + 1], l.output.c) }, w));
          break;
        }
        case 'conv2d': {
          const conv = { tape: this.buffers.tape };
          const sh = { ...shape, layer: l };
          if (weightsMove) out.push(this.conv.forward({ ...conv, params: dir.buffer }, sh, { ...this.convOptions(dir), x: this.at(actsOf(i)), y: this.at(R.acts[i + 1]) }, `${this.label}.${w}.V`));
          if (withRX) out.push(this.conv.forward({ ...conv, params: Pw.buffer }, sh, { ...this.convOptions(Pw), accumulate: weightsMove, bias: false, x: this.at(R.acts[i]), y: this.at(R.acts[i + 1]) }, `${this.label}.${w}.RX`));
          break;
        }
        case 'norm':
          out.push(this.norm(rows, l, { mode: 'r-forward', inOff: R.acts[i], outOff: R.acts[i + 1], reluOff: this.normReluOf(R, i), nOff: sec.acts[i + 1], sOff: sec.s[i], rhoOff: R.rho[i] }, w));
          break;
        case 'relu':
          if (i === 0 || this.layers[i - 1].spec.kind !== 'norm') {
            out.push(this.pool.mask(this.poolBuffers(), { ...shape, features: features(l.input) }, { src: this.at(R.acts[i]), gate: this.at(actsOf(i)), out: this.at(R.acts[i + 1]) }, `${this.label}.${w}`));
          }
          break;
        case 'maxpool':
          out.push(this.pool.bind('max_gather', this.poolBuffers(), l, shape, { input: this.at(R.acts[i]), output: this.at(R.acts[i + 1]), arg: this.argAt(sec.arg[i]) }, `${this.label}.${w}`));
          break;
        case 'meanpool':
          out.push(this.pool.bind('mean_forward', this.poolBuffers(), l, shape, { input: this.at(R.acts[i]), output: this.at(R.acts[i + 1]), arg: this.argAt(0) }, `${this.label}.${w}`));
          break;
        case 'flatten':
          break;
      }
    }
    // R(δ_L) = (diag p − p pᵀ)·R(Z_L) / rows.
    out.push(this.softmaxKernel.bind({ data: rows.buffer, tape: this.buffers.tape, stats: dummyBuffer(this.device, 2) }, {
      tasks: this.tasks, rows: rows.rows, classes: this.layout.net.outputs, mode: this.mse ? 'mse-r' : 'r', yOff: rows.yOff,
      zOff: sec.acts[L], pOff: sec.p, dOff: R.deltas[L], rzOff: R.acts[L], tapeTaskStride: this.tapeFloats, scale: 1 / rows.rows,
      wantStats: false, statsOff: 0,
    }, `${this.label}.${what}.Rsoftmax`));
    // R-backward: each layer's R(δ) (reading dir's weights) before its Hv (which may write them).
    for (let i = L - 1; i >= 0; i--) {
      const l = this.layers[i];
      const w = `${what}.Rback${i}`;
      const rActive = i >= first;                // the R-forward ran here
      const moving = weightsMove && rActive;     // the direction has this layer's weights
      const withRX = rxAt(i);
      const Pw = weightsAt(i);
      const shape2 = { ...shape, layer: l };
      if (i > 0 || rInput) {
        switch (l.spec.kind) {
          case 'dense': {
            const inF = features(l.input);
            out.push(this.gemm(rows.buffer, {
              M: rows.rows, N: inF, K1: l.output.c, A1: this.tapeRef(R.deltas[i + 1], l.output.c), B1: this.denseW(Pw, l, true),
              K2: moving ? l.output.c : 0, A2: moving ? this.tapeRef(sec.deltas[i + 1], l.output.c) : undefined, B2: moving ? this.denseW(dir, l, true) : undefined,
              mode: 'write', scale: 1, out: this.tapeRef(R.deltas[i], inF),
            }, `${w}.RdX`));
            break;
          }
          case 'conv2d':
            out.push(this.conv.inputGrad({ tape: this.buffers.tape, params: Pw.buffer }, shape2, { ...this.convOptions(Pw), dy: this.at(R.deltas[i + 1]), dx: this.at(R.deltas[i]) }, `${this.label}.${w}.RdX`));
            if (moving) out.push(this.conv.inputGrad({ tape: this.buffers.tape, params: dir.buffer }, shape2, { ...this.convOptions(dir), accumulate: true, dy: this.at(sec.deltas[i + 1]), dx: this.at(R.deltas[i]) }, `${this.label}.${w}.dV`));
            break;
          case 'norm':
            out.push(rActive
              ? this.norm(rows, l, { mode: 'r-backward', inOff: R.deltas[i + 1], outOff: R.deltas[i], nOff: sec.acts[i + 1], sOff: sec.s[i], kappaOff: sec.kappa[i], rhoOff: R.rho[i], deltaOff: sec.deltas[i], rnOff: R.acts[i + 1] }, w)
              // Below the head: R(n) = ρ = τ = 0, R(δ) = J R(g) — the plain backward (its κ into the R section's unused ρ).
              : this.norm(rows, l, { mode: 'backward', inOff: R.deltas[i + 1], outOff: R.deltas[i], nOff: body.acts[i + 1], sOff: body.s[i], kappaOff: R.rho[i] }, w));
            break;
          case 'relu':
            out.push(this.pool.mask(this.poolBuffers(), { ...shape, features: features(l.input) }, { src: this.at(R.deltas[i + 1]), gate: this.at(actsOf(i)), out: this.at(R.deltas[i]) }, `${this.label}.${w}`));
            break;
          case 'maxpool':
            out.push(this.pool.bind('max_scatter', this.poolBuffers(), l, shape, { input: this.at(R.deltas[i]), output: this.at(R.deltas[i + 1]), arg: this.argAt((rActive ? sec : body).arg[i]) }, `${this.label}.${w}`));
            break;
          case 'meanpool':
            out.push(this.pool.bind('mean_spread', this.poolBuffers(), l, shape, { input: this.at(R.deltas[i]), output: this.at(R.deltas[i + 1]), arg: this.argAt(0) }, `${this.label}.${w}`));
            break;
          case 'flatten':
            break;
        }
      }
      // (Hv) of this layer: Xᵀ R(δ) (+ R(X)ᵀ δ where R(X) ≠ 0); bias Σ R(δ).
      if (l.count > 0) out.push(...this.layerGrad(rows, i, actsOf(i), R.deltas[i + 1], G, 'accumulate', scale, w, withRX ? { inputs: R.acts[i], delta: sec.deltas[i + 1] } : undefined));
    }
    // CAML: (Hv)_φ = Σ over rows and positions of R(δ_0)'s context channels; last, since G may be dir.
    if (rInput) out.push(...this.contextInto(rows, R.deltas[0], R, G, 'accumulate', scale, `${what}.Hvctx`));
    return out;
  }

  protected headForward(P: Params, rows: Rows, body: NetSection, head: NetSection, what: string): BoundDispatch {
    const L = this.layers.length;
    const l = this.layers[L - 1];
    const inF = features(l.input);
    return this.gemm(rows.buffer, {
      M: rows.rows, N: l.output.c, K1: inF, A1: this.tapeRef(body.acts[L - 1], inF), B1: this.denseW(P, l), bias1: this.denseB(P, l),
      mode: 'write', scale: 1, out: this.tapeRef(head.acts[L], l.output.c),
    }, `${what}.head`);
  }

  protected headGradient(_P: Params, rows: Rows, sec: NetSection, G: Params, mode: GradMode, scale: number, what: string, body: NetSection): BoundDispatch[] {
    if (mode === 'from') throw new Error(`NetPass.${what}: mode 'from' is not supported`);
    const L = this.layers.length;
    return this.layerGrad(rows, L - 1, body.acts[L - 1], sec.deltas[L], G, mode, scale, what);
  }

  protected headHvp(theta: Params, point: Params, dir: Params, rows: Rows, body: NetSection, head: NetSection, G: Params, scale: number, what: string): BoundDispatch[] {
    return this.rPasses(theta, point, dir, rows, body, head, G, scale, what, 'head');
  }

  protected headRange(): [number, number] {
    const head = this.layers[this.layers.length - 1];
    return [head.offset, head.offset + head.count];
  }

  protected weightGradients(_P: Params, rows: Rows, sec: NetSection, G: Params, what: string): BoundDispatch[] {
    return this.parameterised().flatMap((i) => this.layerGrad(rows, i, sec.acts[i], sec.deltas[i + 1], G, 'write', 1, what));
  }

  protected inputGradient(P: Params, rows: Rows, sec: NetSection, what: string): BoundDispatch[] {
    const out = [...this.forward(P, rows, sec, what), this.loss(rows, sec, 1, null, what), ...this.backwardLayers(P, rows, sec, what, 0)];
    if (this.layout.context > 0) {
      // The data channels of δ_0, as rows of D floats (the context channels are not inputs to attack).
      const input = this.layout.net.input;
      out.push(this.pool.context('split', this.poolBuffers(), { tasks: this.tasks, rows: rows.rows }, { h: input.h, w: input.w, channels: input.c, data: this.layout.dim / (input.h * input.w) },
        { out: this.at(sec.rows), src: this.at(sec.deltas[0]) }, `${this.label}.${what}.split`));
    }
    return out;
  }

  protected inputGradAt(sec: NetSection): { off: number; rowStride: number } {
    return { off: this.layout.context > 0 ? sec.rows : sec.deltas[0], rowStride: this.layout.dim };
  }
}
