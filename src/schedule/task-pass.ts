// The MAML core over a model on the GPU (docs/neural-models.md "The seam"): the plan steps `tasks`,
// `attack` and `score-attacked` recorded as sequences of kernels batched over the tasks of one chunk,
// with per-task fast weights. It knows no layer: the model's operations (forward, loss, gradient,
// Hessian-vector product, the head-only passes of ANIL, the input gradient of attacks) are the abstract
// methods a model's pass implements — the MLP's in src/schedule/mlp-pass.ts. Nothing here submits:
// every method returns bound dispatches that the engine records into its one compute pass per
// meta-iteration.
//
// Per chunk of Tc tasks the scratch is: `adapted` and `metaGrad` (sets×Tc vectors of layout.vector
// floats), `points` (the parameters at which each inner gradient was taken, kept for the order-2
// backward: θ'⁽ˢ⁾ for s ≥ 1, θ'⁽ˢ⁾+Δ with AMP), and the model's `tape` of activations, one primal
// section per inner step kept for order 2 plus the query's (the model's own layout).
//
// ANIL (adapt 'head'): only the head adapts. The body's activations on the support rows do not depend on
// the head, so they are computed once per task pass from θ's shared body (taskStride 0) into primal
// section 0, and each inner step only redoes the head.
//
// Meta-SGD (stepSizes α, a vector like θ): θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ⊙ g_s, written as θ − α ⊙ Σ_{k≤s} g_k
// (one product from θ per step; the sum is order 1's g_α). The metaGrad slots hold [g_θ | g_α] (2V).
// Order 2 takes g_s again from step s's tape (its forward and δs are kept) instead of storing n of them.
// Its scratch per task: `scratch` = [Σ g (or g_s) | α ⊙ v], mlpPassScratchFloats.
import type { ModelLayout } from '../models/model.js';
import { dummyBuffer } from '../kernels/mlp-common.js';
import { GemmKernel, SRC, type GemmSpec, type Operand } from '../kernels/mlp-gemm.js';
import { VectorKernel } from '../kernels/mlp-vector.js';
import { NormClipKernel } from '../kernels/mlp-norm-clip.js';
import { SignStepKernel } from '../kernels/mlp-sign-step.js';
import type { BoundDispatch } from '../gpu/resources.js';
import type { AttackParams } from '../cpu/fgsm.js';
import type { PerturbParams } from '../cpu/maml-task.js';

/** A parameter vector per task: `buffer` at off + t·taskStride (taskStride 0: one θ for all tasks). */
/** A per-task operand: element i of task t at off + t·taskStride + i (with rowLen: rows of rowLen floats
 * gathered from rows rowStride apart, VectorOperand in src/cpu/mlp-kernels.ts). */
export interface Params { buffer: GPUBuffer; off: number; taskStride: number; rowLen?: number; rowStride?: number }

/** Rows of one set (support or query) of a chunk: X at xOff (rows of Dp floats), labels at yOff.
 * episodeSupport (a protonet's episode): the first rows are the support rows, scored against the rest. */
export interface Rows { buffer: GPUBuffer; xOff: number; yOff: number; rows: number; episodeSupport?: number }

/** A protonet's attack or score: the episode rows (support then query, in the chunk's joint buffer) and
 * the dispatches that refill their query part from the clean rows or from the adversarial copy. */
export interface EpisodeRows { rows: Rows; refill(fromAdv: boolean): BoundDispatch[] }

/** Where an operand lives: the chunk's packed rows, the tape, a parameter-sized buffer, or constant 1. */
export type Home = 'data' | 'tape' | 'one' | GPUBuffer;

/** An operand with its buffer named directly; `bind` maps the buffers onto the kernel's bindings. */
export interface Ref { home: Home; off: number; taskStride: number; strideI: number; strideJ: number }


/** How a gradient is written: G = s·g, G += s·g, or G = from + s·g. */
export type GradMode = 'write' | 'accumulate' | 'from';

export interface PassBuffers {
  tape: GPUBuffer;
  adapted: GPUBuffer;
  /** sets×Tc slots of `metaGradWidth` floats (PassOptions): V, or 2V = [g_θ | g_α] for Meta-SGD. */
  metaGrad: GPUBuffer;
  points: GPUBuffer;
  /** Meta-SGD only: Tc × mlpPassScratchFloats floats (Σ g at [0, Tc·V), α ⊙ v at [Tc·V, 2·Tc·V)). */
  scratch?: GPUBuffer;
  /** Buffers of the model's own (a layer list's max-pool choices). */
  extra?: GPUBuffer;
}

export interface PassOptions {
  /** Floats of one metaGrad slot: layout.vector (default), or 2·layout.vector when the pass serves
   * Meta-SGD (slot of task t, set s at (s·Tc + t)·2V: [g_θ | g_α]). A step without stepSizes then
   * writes g_α = 0. */
  metaGradWidth?: number;
}

export interface TaskStep {
  support: Rows;
  query: Rows;
  /** θ: one vector for all tasks (taskStride 0), or each task's own model (AMP's trainer). */
  theta: Params;
  innerLr: number;
  innerSteps: number;
  order: 1 | 2;
  wantMetaGrad: boolean;
  /** 'all' (MAML family), 'context' (CAML: only φ adapts) or 'head' (ANIL: only W_L, b_L adapt; no
   * context, no perturbation). */
  adapt: 'all' | 'context' | 'head';
  /** Meta-SGD's per-parameter step sizes α (a vector like θ; the engine's { buffer: params, off: V,
   * taskStride: 0 }): θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ⊙ g_s, innerLr unused. Only with adapt 'all', no perturbation
   * and no context; needs buffers.scratch and metaGradWidth 2V. Absent or null: the scalar innerLr. */
  stepSizes?: Params | null;
  perturb: PerturbParams | null;
  /** θ_t ← θ'_t after the inner loop (AMP's plain training). */
  writeBack: boolean;
  /** Output set: adapted / metaGrad vectors of set s start at s·Tc. */
  outSet: number;
  /** Stats of task t go to taskStats[2·(statsBase + t)]. */
  stats: { buffer: GPUBuffer; base: number };
}

export abstract class TaskPass<Sec> {
  protected readonly gemmKernel: GemmKernel;
  protected readonly vectorKernel: VectorKernel;
  protected readonly normClipKernel: NormClipKernel;
  protected readonly signStepKernel: SignStepKernel;
  protected readonly V: number;
  /** Floats of one metaGrad slot (V, or 2V with Meta-SGD's g_α). */
  protected readonly metaGradWidth: number;
  /** Padded row length of the data buffers (vec4 layout of layout.ts). */
  protected readonly Dp: number;
  /** Per-task floats of the tape. */
  abstract readonly tapeFloats: number;
  /** Whether gradient() takes mode 'from' (θ'⁽¹⁾ = θ − α g written without a copy of θ first). */
  protected abstract readonly writesFrom: boolean;

  constructor(
    protected readonly device: GPUDevice,
    protected readonly layout: ModelLayout,
    /** Tasks of the chunk this pass runs on. */
    protected readonly tasks: number,
    protected readonly buffers: PassBuffers,
    protected readonly label: string,
    options: PassOptions = {},
  ) {
    this.gemmKernel = new GemmKernel(device);
    this.vectorKernel = new VectorKernel(device);
    this.normClipKernel = new NormClipKernel(device);
    this.signStepKernel = new SignStepKernel(device);
    this.V = layout.vector;
    this.metaGradWidth = options.metaGradWidth ?? layout.vector;
    if (this.metaGradWidth !== this.V && this.metaGradWidth !== 2 * this.V) {
      throw new Error(`${this.constructor.name}: metaGradWidth ${this.metaGradWidth} is neither the vector (${this.V}) nor twice it`);
    }
    this.Dp = 4 * Math.ceil(layout.dim / 4);
  }

  // ---------------------------------------------------------------- the model's operations

  /** Primal tape section s (one per kept inner step, then the query's). */
  protected abstract section(s: number): Sec;
  /** Forward of `rows` at parameters P into `sec`. */
  protected abstract forward(P: Params, rows: Rows, sec: Sec, what: string): BoundDispatch[];
  /** ANIL: the forward below the head only. */
  protected abstract forwardBody(P: Params, rows: Rows, sec: Sec, what: string): BoundDispatch[];
  /** The loss of the outputs in `sec`: δ of the outputs = scale·∂/∂outputs; stats (loss, metric) when asked. */
  protected abstract loss(rows: Rows, sec: Sec, scale: number, stats: { buffer: GPUBuffer; base: number } | null, what: string): BoundDispatch;
  /** Gradient of the mean loss on `rows` at P into G (mode, scale): forward, loss, backward. adapt
   * 'context': the context's entries only (CAML's inner step). */
  protected abstract gradient(P: Params, rows: Rows, sec: Sec, G: Params, mode: GradMode, scale: number, adapt: 'all' | 'context',
    stats: { buffer: GPUBuffer; base: number } | null, what: string, from?: Params): BoundDispatch[];
  /** G += scale·H(P; rows)·dir with the tape of `sec` (made at P); dir may be G. adapt 'context': dir = (0, v_φ). */
  protected abstract hvp(P: Params, dir: Params, rows: Rows, sec: Sec, G: Params, scale: number, adapt: 'all' | 'context', what: string): BoundDispatch[];
  /** ANIL: the head's forward at P from the body's activations of `body` into `head`. */
  protected abstract headForward(P: Params, rows: Rows, body: Sec, head: Sec, what: string): BoundDispatch;
  /** ANIL: the head's gradient (from `sec`'s head δ and `body`'s activations) into G. */
  protected abstract headGradient(P: Params, rows: Rows, sec: Sec, G: Params, mode: GradMode, scale: number, what: string, body: Sec): BoundDispatch[];
  /** ANIL: G += scale·H·dir for a head-only direction (see MlpPass.headHvp). */
  protected abstract headHvp(theta: Params, point: Params, dir: Params, rows: Rows, body: Sec, head: Sec, G: Params, scale: number, what: string): BoundDispatch[];
  /** The head's index range [start, end) of the per-task vector. */
  protected abstract headRange(): [number, number];
  /** Meta-SGD's order 2: the weight gradients again from `sec`'s kept forward and δs, written into G. */
  protected abstract weightGradients(P: Params, rows: Rows, sec: Sec, G: Params, what: string): BoundDispatch[];
  /** Each row's own loss gradient in its inputs (scale 1; only the signs are used) into the tape. */
  protected abstract inputGradient(P: Params, rows: Rows, sec: Sec, what: string): BoundDispatch[];
  /** Where inputGradient leaves ∂ℓ_r/∂x: the tape offset of task 0's row 0 and the row stride. */
  protected abstract inputGradAt(sec: Sec): { off: number; rowStride: number };

  // ---------------------------------------------------------------- kernels with named buffers

  /** Binds a gemm whose operands name their buffers; distinct parameter buffers go to p0, p1, p2. */
  protected gemm(data: GPUBuffer, s: Omit<GemmSpec, 'A1' | 'B1' | 'A2' | 'B2' | 'out' | 'from' | 'mask' | 'out2' | 'out2Mask' | 'bias1' | 'bias2' | 'tasks'> & {
    A1: Ref; B1: Ref; A2?: Ref; B2?: Ref; out: Ref; from?: Ref; mask?: Ref; out2?: Ref; out2Mask?: Ref; bias1?: Ref; bias2?: Ref;
  }, what: string): BoundDispatch {
    const params: GPUBuffer[] = [];
    const srcOf = (home: Home): number => {
      if (home === 'data') return SRC.DATA;
      if (home === 'tape') return SRC.TAPE;
      if (home === 'one') return SRC.ONE;
      let i = params.indexOf(home);
      if (i < 0) {
        if (params.length === 3) throw new Error(`${this.constructor.name}.${what}: more than three parameter buffers in one gemm`);
        i = params.push(home) - 1;
      }
      return SRC.P0 + i;
    };
    const op = (r: Ref | undefined): Operand | undefined => (r ? { src: srcOf(r.home), off: r.off, taskStride: r.taskStride, strideI: r.strideI, strideJ: r.strideJ } : undefined);
    const bias = (r: Ref | undefined) => (r ? { src: srcOf(r.home), off: r.off, taskStride: r.taskStride } : undefined);
    const spec: GemmSpec = {
      tasks: this.tasks, M: s.M, N: s.N, K1: s.K1, K2: s.K2, mode: s.mode, scale: s.scale,
      A1: op(s.A1)!, B1: op(s.B1)!, A2: op(s.A2), B2: op(s.B2), out: op(s.out)!, from: op(s.from), mask: op(s.mask),
      out2: op(s.out2), out2Mask: op(s.out2Mask), bias1: bias(s.bias1), bias2: bias(s.bias2),
    };
    const p = [0, 1, 2].map((i) => params[i] ?? dummyBuffer(this.device, i));
    return this.gemmKernel.bind({ data, tape: this.buffers.tape, p0: p[0], p1: p[1], p2: p[2] }, spec, `${this.label}.${what}`);
  }

  protected tapeRef(off: number, width: number): Ref {
    return { home: 'tape', off, taskStride: this.tapeFloats, strideI: width, strideJ: 1 };
  }


  /** out = a·x + b·y (or a·x + b·y ⊙ z) on `range` of each task's vector; x is not read when a = 0, y
   * and z not when b = 0, so their buffers are only bound when read (at most three distinct). */
  protected vector(x: Params, a: number, out: Params, range: [number, number], what: string, zeroOutside = false, y?: Params, b = 0, z?: Params): BoundDispatch {
    const bufs: GPUBuffer[] = [];
    const idx = (buf: GPUBuffer) => { let i = bufs.indexOf(buf); if (i < 0) i = bufs.push(buf) - 1; return i; };
    const unused = { buf: 0, off: 0, taskStride: 0 };
    const operand = (p: Params) => ({ buf: idx(p.buffer), off: p.off, taskStride: p.taskStride, ...(p.rowLen ? { rowLen: p.rowLen, rowStride: p.rowStride } : {}) });
    const useY = y !== undefined && b !== 0;
    const xs = a !== 0 ? operand(x) : unused;
    const ys = useY ? operand(y) : unused;
    const zs = useY && z ? operand(z) : undefined;
    const os = operand(out);
    const b3 = [0, 1, 2].map((i) => bufs[i] ?? dummyBuffer(this.device, i));
    return this.vectorKernel.bind({ b0: b3[0], b1: b3[1], b2: b3[2] }, {
      tasks: this.tasks, lo: range[0], hi: range[1], a, x: xs, b: useY ? b : 0, y: ys, z: zs, out: os, zeroOutside,
      // A per-task vector's length (what zeroOutside clears); a longer range (rows copied into the tape) is its own.
      length: Math.max(this.V, range[1]),
    }, `${this.label}.${what}`);
  }

  // ---------------------------------------------------------------- plan steps

  private set(buffer: GPUBuffer, outSet: number): Params {
    return { buffer, off: outSet * this.tasks * this.V, taskStride: this.V };
  }

  private point(s: number): Params {
    return { buffer: this.buffers.points, off: s * this.tasks * this.V, taskStride: this.V };
  }

  /** Task t's metaGrad slot of set `outSet` (metaGradWidth floats; g_θ first). */
  private metaGradSet(outSet: number): Params {
    return { buffer: this.buffers.metaGrad, off: outSet * this.tasks * this.metaGradWidth, taskStride: this.metaGradWidth };
  }

  /** With 2V-wide metaGrad slots and no step sizes, g_α = 0 (padding included). */
  private zeroStepSizeGrad(metaGrad: Params): BoundDispatch[] {
    if (this.metaGradWidth === this.V) return [];
    const gAlpha = { ...metaGrad, off: metaGrad.off + this.V };
    return [this.vector(gAlpha, 0, gAlpha, [0, this.V], 'zeroStepSizeGrad')];
  }

  /** Throws on combinations the pass does not run (the engine refuses them earlier, with user-facing errors). */
  private checkStep(step: TaskStep): void {
    const perturbs = step.perturb !== null && step.perturb.steps > 0;
    if (step.adapt === 'head') {
      if (this.layout.context > 0) throw new Error(`${this.constructor.name}: ANIL (adapt 'head') with a context`);
      if (perturbs) throw new Error(`${this.constructor.name}: ANIL (adapt 'head') with a perturbation`);
      if (step.stepSizes) throw new Error(`${this.constructor.name}: step sizes with adapt 'head'`);
    }
    if (step.stepSizes) {
      if (step.adapt !== 'all') throw new Error(`${this.constructor.name}: step sizes with adapt '${step.adapt}'`);
      if (perturbs) throw new Error(`${this.constructor.name}: step sizes with a perturbation`);
      if (this.layout.context > 0) throw new Error(`${this.constructor.name}: step sizes with a context`);
      if (this.metaGradWidth !== 2 * this.V) throw new Error(`${this.constructor.name}: step sizes need metaGrad slots of 2V floats (options.metaGradWidth)`);
      if (!this.buffers.scratch) throw new Error(`${this.constructor.name}: step sizes need buffers.scratch (mlpPassScratchFloats)`);
    }
  }

  /** The per-task pass: inner loop, query stats, meta-gradient (docs/neural-models.md). */
  tasksStep(step: TaskStep): BoundDispatch[] {
    this.checkStep(step);
    if (step.adapt === 'head') return this.headTasksStep(step);
    if (step.stepSizes) return this.stepSizesTasksStep(step, step.stepSizes);
    const { layout } = this;
    const n = step.innerSteps;
    const adapt = step.adapt;
    const adapted = this.set(this.buffers.adapted, step.outSet);
    const metaGrad = this.metaGradSet(step.outSet);
    const keep = step.wantMetaGrad && step.order === 2;  // order 2 needs each step's point and tape
    const amp = step.perturb !== null && step.perturb.steps > 0;
    const out: BoundDispatch[] = [];
    const all: [number, number] = [0, this.V];
    // The first plain MAML step writes θ'⁽¹⁾ = θ − α g straight from θ (every W and b entry; the padding
    // is never written and stays 0): no copy of θ into each task's vector. Otherwise θ'⁽⁰⁾ = θ is copied
    // (its context entries are 0, the init of φ).
    const direct = n >= 1 && !amp && adapt === 'all' && layout.context === 0 && this.writesFrom;
    if (!direct) out.push(this.vector(step.theta, 1, adapted, all, 'init'));
    const points: Params[] = [];
    for (let s = 0; s < n; s++) {
      const sec = this.section(keep ? s : 0);
      let point: Params;
      if (amp) {
        // Δ from 0: ascend on the gradient at θ'+Δ, each step projected per tensor onto the L2 ball.
        point = this.point(s);
        out.push(this.vector(adapted, 1, point, all, `ampStart${s}`));
        for (let i = 0; i < step.perturb!.steps; i++) {
          out.push(...this.gradient(point, step.support, sec, point, 'accumulate', step.perturb!.lr, 'all', null, `amp${s}.${i}`));
          out.push(this.normClipKernel.bind({ pert: point.buffer, base: adapted.buffer }, {
            tasks: this.tasks, tensors: layout.tensors, radius: step.perturb!.radius,
            pertOff: point.off, pertTaskStride: point.taskStride, baseOff: adapted.off, baseTaskStride: adapted.taskStride,
          }, `${this.label}.amp${s}.${i}.clip`));
        }
      } else {
        point = this.innerPoint(s, step.theta, adapted, keep, all, out);
      }
      points.push(point);
      const first = direct && s === 0;
      out.push(...this.gradient(point, step.support, sec, adapted, first ? 'from' : 'accumulate', -step.innerLr, adapt, null, `inner${s}`, first ? step.theta : undefined));
    }
    out.push(...this.queryStep(step, adapted, metaGrad, keep));
    if (!step.wantMetaGrad) return out;
    if (step.order === 2) {
      for (let s = n - 1; s >= 0; s--) {
        out.push(...this.hvp(points[s], metaGrad, step.support, this.section(s), metaGrad, -step.innerLr, adapt, `hvp${s}`));
      }
    }
    // φ starts at 0 and is not meta-learned: its meta-gradient is dropped.
    if (layout.context > 0) out.push(this.vector(metaGrad, 0, metaGrad, [layout.contextOffset, layout.contextOffset + layout.context], 'dropContext'));
    out.push(...this.zeroStepSizeGrad(metaGrad));
    return out;
  }

  /** The point of inner step s: θ itself for s = 0 (no copy to read from); with order 2 (`keep`) a copy of
   * θ'⁽ˢ⁾'s `range` into points[s], kept for the backward; else θ'⁽ˢ⁾ in `adapted` (order 1: the gradient
   * is accumulated into the very vector it is taken at). */
  private innerPoint(s: number, theta: Params, adapted: Params, keep: boolean, range: [number, number], out: BoundDispatch[]): Params {
    if (s === 0) return theta;
    if (!keep) return adapted;
    const point = this.point(s);
    out.push(this.vector(adapted, 1, point, range, `keep${s}`));
    return point;
  }

  /** After the inner loop: θ_t ← θ'_t (writeBack); then the query pass at θ'⁽ⁿ⁾ (stats), with its
   * gradient into G when the step wants a meta-gradient. */
  private queryStep(step: TaskStep, adapted: Params, G: Params, keep: boolean): BoundDispatch[] {
    const out: BoundDispatch[] = [];
    if (step.writeBack) out.push(this.vector(adapted, 1, step.theta, [0, this.V], 'writeBack'));
    const query = this.section(keep ? step.innerSteps : 0);
    if (!step.wantMetaGrad) {
      out.push(...this.forward(adapted, step.query, query, 'query'), this.loss(step.query, query, 1 / step.query.rows, step.stats, 'query'));
    } else {
      out.push(...this.gradient(adapted, step.query, query, G, 'write', 1, 'all', step.stats, 'query'));
    }
    return out;
  }

  /**
   * ANIL: the inner loop adapts W_L, b_L only. θ is copied whole into the adapted vectors (their body
   * stays θ's: attacks, scores and evaluation read whole vectors); the body's forward on the support
   * rows runs once, from θ (taskStride 0) into section 0; each inner step is the head's gemm, softmax
   * and head gradient (4 dispatches). Meta-gradient: order 1 the full query gradient at θ'⁽ⁿ⁾; order 2
   * v ← v − α H(θ'⁽ˢ⁾)(M ⊙ v), M the head, through headHvp. Order 2 keeps each step's head (only) in
   * `points` and each step's head activations in section s (the body's stay in section 0).
   */
  private headTasksStep(step: TaskStep): BoundDispatch[] {
    const headRange = this.headRange();
    const n = step.innerSteps;
    const adapted = this.set(this.buffers.adapted, step.outSet);
    const metaGrad = this.metaGradSet(step.outSet);
    const keep = step.wantMetaGrad && step.order === 2;
    const out: BoundDispatch[] = [this.vector(step.theta, 1, adapted, [0, this.V], 'init')];
    const body = this.section(0);
    if (n > 0) out.push(...this.forwardBody(step.theta, step.support, body, 'body'));
    const points: Params[] = [];
    for (let s = 0; s < n; s++) {
      const sec = this.section(keep ? s : 0);
      // Only a kept point's head is ever read.
      const point = this.innerPoint(s, step.theta, adapted, keep, headRange, out);
      points.push(point);
      out.push(this.headForward(point, step.support, body, sec, `inner${s}`));
      out.push(this.loss(step.support, sec, 1 / step.support.rows, null, `inner${s}`));
      out.push(...this.headGradient(point, step.support, sec, adapted, 'accumulate', -step.innerLr, `inner${s}`, body));
    }
    out.push(...this.queryStep(step, adapted, metaGrad, keep));
    if (!step.wantMetaGrad) return out;
    if (step.order === 2) {
      for (let s = n - 1; s >= 0; s--) {
        out.push(...this.headHvp(step.theta, points[s], metaGrad, step.support, body, this.section(s), metaGrad, -step.innerLr, `hvp${s}`));
      }
    }
    out.push(...this.zeroStepSizeGrad(metaGrad));
    return out;
  }

  /**
   * Meta-SGD: θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ⊙ g_s = θ − α ⊙ Σ_{k≤s} g_k: each inner gradient is summed into the
   * scratch, and one product from θ writes θ'⁽ˢ⁺¹⁾ whole (its padding zeroed), so no copy of θ is made.
   * metaGrad slots [g_θ | g_α]: order 1 g_θ = v_n, g_α = −(Σ_{s<n} g_s) ⊙ v_n; order 2 v = v_n, for
   * s = n−1 … 0: g_α += −g_s ⊙ v (g_s again from step s's kept tape: the weight gradients only), v ← v −
   * H_s(α ⊙ v); g_θ = v. n = 0: θ' = θ, g_θ = the query gradient at θ, g_α = 0.
   */
  private stepSizesTasksStep(step: TaskStep, alpha: Params): BoundDispatch[] {
    const { layout } = this;
    const V = this.V;
    const n = step.innerSteps;
    const all: [number, number] = [0, V];
    const params: [number, number] = [0, layout.params];
    const adapted = this.set(this.buffers.adapted, step.outSet);
    const gTheta = this.metaGradSet(step.outSet);
    const gAlpha: Params = { ...gTheta, off: gTheta.off + V };
    const scratch = this.buffers.scratch!;
    const gradSum: Params = { buffer: scratch, off: 0, taskStride: V };            // Σ_{k≤s} g_k; g_s in the backward
    const direction: Params = { buffer: scratch, off: this.tasks * V, taskStride: V }; // α ⊙ v
    const keep = step.wantMetaGrad && step.order === 2;
    const out: BoundDispatch[] = [];
    if (n === 0) out.push(this.vector(step.theta, 1, adapted, all, 'init'));
    const points: Params[] = [];
    for (let s = 0; s < n; s++) {
      const sec = this.section(keep ? s : 0);
      const point = this.innerPoint(s, step.theta, adapted, keep, all, out);
      points.push(point);
      out.push(...this.gradient(point, step.support, sec, gradSum, s === 0 ? 'write' : 'accumulate', 1, 'all', null, `inner${s}`));
      out.push(this.vector(step.theta, 1, adapted, params, `step${s}`, true, alpha, -1, gradSum));
    }
    out.push(...this.queryStep(step, adapted, gTheta, keep));
    if (!step.wantMetaGrad) return out;
    if (n === 0) {
      out.push(this.vector(gAlpha, 0, gAlpha, all, 'stepSizeGrad'));
    } else if (step.order === 1) {
      out.push(this.vector(gAlpha, 0, gAlpha, params, 'stepSizeGrad', true, gradSum, -1, gTheta));
    } else {
      for (let s = n - 1; s >= 0; s--) {
        const sec = this.section(s);
        out.push(...this.weightGradients(points[s], step.support, sec, gradSum, `regrad${s}`));
        const first = s === n - 1;  // writes g_α whole (padding zeroed); the later ones accumulate
        out.push(this.vector(gAlpha, first ? 0 : 1, gAlpha, params, `stepSizeGrad${s}`, first, gradSum, -1, gTheta));
        out.push(this.vector(gTheta, 0, direction, params, `direction${s}`, false, alpha, 1, gTheta));
        out.push(...this.hvp(points[s], direction, step.support, sec, gTheta, -1, 'all', `hvp${s}`));
      }
    }
    return out;
  }

  /**
   * FGSM / PGD on `rows` against P (θ: taskStride 0; θ'_t: the adapted set 0), written into `adv`
   * (same layout as the clean buffer; its labels are already there).
   */
  attackStep(P: Params, clean: Rows, adv: GPUBuffer, attack: AttackParams, episode?: EpisodeRows): BoundDispatch[] {
    const { layout } = this;
    const sec = this.section(0);
    const out: BoundDispatch[] = [];
    const grad = this.inputGradAt(sec);
    // A protonet's queries are attacked through the prototypes: the input gradient is the episode's,
    // and its support rows' part (the first ones) is skipped.
    const skip = episode ? (episode.rows.episodeSupport ?? 0) * grad.rowStride : 0;
    for (let k = 0; k < attack.steps; k++) {
      const current: Rows = { ...clean, buffer: k === 0 ? clean.buffer : adv };
      if (episode) out.push(...episode.refill(k > 0));
      out.push(...this.inputGradient(P, episode ? episode.rows : current, sec, `attack${k}`));
      out.push(this.signStepKernel.bind({ clean: clean.buffer, adv, tape: this.buffers.tape }, {
        tasks: this.tasks, rows: clean.rows, dim: layout.dim, rowStride: this.Dp, cleanOff: clean.xOff, advOff: clean.xOff, readClean: k === 0,
        gOff: grad.off + skip, gTaskStride: this.tapeFloats, gRowStride: grad.rowStride,
        stepSize: attack.stepSize, epsilon: attack.epsilon, lo: attack.lo, hi: attack.hi,
      }, `${this.label}.attack${k}.step`));
    }
    return out;
  }

  /** Query loss/accuracy of θ'_t (adapted set 0) on the attacked rows → stats (episode: the attacked
   * queries after the clean support rows). */
  scoreStep(rows: Rows, stats: { buffer: GPUBuffer; base: number }, episode?: EpisodeRows): BoundDispatch[] {
    const sec = this.section(0);
    const adapted = this.set(this.buffers.adapted, 0);
    const scored = episode ? episode.rows : rows;
    return [...(episode ? episode.refill(true) : []), ...this.forward(adapted, scored, sec, 'score'), this.loss(scored, sec, 1 / scored.rows, stats, 'score')];
  }

  /** to = from over [0, floats) of each task (rows copied between data buffers). */
  copyRows(from: Params, to: Params, floats: number, what: string): BoundDispatch {
    return this.vector(from, 1, to, [0, floats], what);
  }

  /** Parameters of set 0 of the adapted vectors (for attacks against θ'_t). */
  adaptedSet0(): Params {
    return this.set(this.buffers.adapted, 0);
  }
}
