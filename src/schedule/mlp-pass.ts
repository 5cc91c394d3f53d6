// The MAML core over the MLP on the GPU (docs/neural-models.md "The seam"): the plan steps `tasks`,
// `attack` and `score-attacked` recorded as sequences of per-layer kernels (mlp-gemm, mlp-softmax,
// mlp-vector, mlp-norm-clip, mlp-sign-step), batched over the tasks of one chunk, with per-task fast
// weights. Nothing here submits: every method returns bound dispatches that the engine records into its
// one compute pass per meta-iteration.
//
// Per chunk of Tc tasks the scratch is: `adapted` and `metaGrad` (sets×Tc vectors of layout.vector
// floats), `points` (the parameters at which each inner gradient was taken, kept for the order-2
// backward: θ'⁽ˢ⁾ for s ≥ 1, θ'⁽ˢ⁾+Δ with AMP), and the `tape` of activations: one section per inner
// step (Z, A = relu(Z), δ for every layer, softmax p), one for the query pass, one for the R-operator
// (R(Z), R(A), R(δ)) and one for input gradients. Within a backward sweep δ_{l−1} is computed before
// the gradient of layer l is written, so a gradient may be accumulated in place into the very vector
// whose weights it differentiates (AMP's ascent), and the direction of a Hessian-vector product may be
// the meta-gradient buffer itself (order 2: v ← v − α H v).
//
// Per-task normalisation (layout.norm; math in src/cpu/mlp.ts): a hidden layer's gemm writes z without
// the ReLU epilogue and mlp-task-norm writes n over z, with a = relu(n) and s per unit. Since Z's slot
// then holds n, every mask that reads it (the backward's, the R-forward's) is [n > 0] as it must be. The
// backward gemm writes g = ∂/∂n into δ's slot and the norm kernel turns it into δ = J g in place (κ kept);
// likewise R(z) → R(n) (ρ kept) and R(g) → R(δ). Without norm none of this is recorded and the tape
// layout is unchanged (the norm slots come after a section's p).
//
// ANIL (adapt 'head'): only W_L, b_L adapt. The body's activations on the support rows do not depend on
// the head, so they are computed once per task pass from θ's shared body (taskStride 0) into primal
// section 0, and each inner step only redoes the head: its gemm (reading A_{L−1} from section 0),
// softmax and head gradient, in the step's section. The order-2 products H·(M ⊙ v) have a head-only
// direction: R(Z_l) = 0 below the head, so the R-forward is the head's gemm alone and the R-backward
// is a plain backward of R(δ_L) (with normalisation R(n) = ρ = τ = 0: R(δ_z) = J R(g)).
//
// Meta-SGD (stepSizes α, a vector like θ): θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ⊙ g_s, written as θ − α ⊙ Σ_{k≤s} g_k
// (one product from θ per step; the sum is order 1's g_α). The metaGrad slots hold [g_θ | g_α] (2V).
// Order 2 takes g_s again from step s's tape (its forward and δs are kept) instead of storing n of them.
// Its scratch per task: `scratch` = [Σ g (or g_s) | α ⊙ v], mlpPassScratchFloats.
import type { MlpLayout } from '../models/mlp.js';
import { GemmKernel, SRC, dummyBuffer, type GemmSpec, type Operand } from '../kernels/mlp-gemm.js';
import { SoftmaxKernel } from '../kernels/mlp-softmax.js';
import { TaskNormKernel } from '../kernels/mlp-task-norm.js';
import type { BoundDispatch } from '../gpu/resources.js';
import { TaskPass, type Ref, type GradMode, type PassBuffers, type PassOptions, type Params, type Rows, type TaskStep } from './task-pass.js';
export type { Params, Rows } from './task-pass.js';
import type { TaskNormSpec } from '../cpu/mlp-kernels.js';

/** Floats of the tape per task for `sections` primal sections of `rows` rows. */
export function mlpTapeFloats(layout: MlpLayout, rows: number, sections: number): number {
  return tapeLayout(layout, rows, sections).floats;
}

/**
 * Floats per task of MlpPassBuffers.scratch (the pass uses `tasks` times this): Meta-SGD's gradient
 * sum Σ_{k≤s} g_k (g_s in the order-2 backward), V floats, and for order 2 the direction α ⊙ v, V more.
 * 0 without stepSizes: ANIL needs nothing beyond `points` and the tape, which keep their sizes
 * (points: innerSteps·V for order 2; tape: innerSteps + 1 sections for order 2, else 1).
 */
export function mlpPassScratchFloats(layout: { vector: number }, o: { innerSteps: number; order: 1 | 2; stepSizes: boolean; head: boolean }): number {
  if (!o.stepSizes) return 0;
  return layout.vector * (o.order === 2 ? 2 : 1);
}

/** Offsets of one section's arrays, index l = 1 … L. With normalisation, Z holds n (R section: R(n))
 * after the norm kernel, and the per-unit arrays of hidden layers l < L are allocated: s and κ in primal
 * sections, ρ in the R section (empty otherwise). */
interface Section { z: number[]; a: number[]; d: number[]; p: number; s: number[]; kappa: number[]; rho: number[] }

/** Offsets (per task, in floats) of the tape's arrays; index l = 1 … L (index 0 unused). */
function tapeLayout(layout: MlpLayout, rows: number, sections: number) {
  let off = 0;
  const take = (n: number) => { const o = off; off += n; return o; };
  const L = layout.layers.length;
  const section = (kind: 'primal' | 'r'): Section => {
    const s: Section = { z: [0], a: [0], d: [0], p: 0, s: [], kappa: [], rho: [] };
    for (let l = 1; l <= L; l++) {
      const w = layout.widths[l];
      s.z.push(take(rows * w));
      s.a.push(take(rows * w));
      s.d.push(take(rows * w));
    }
    s.p = take(rows * layout.classes);
    // After p, so that a tape without normalisation keeps its layout.
    if (layout.norm) {
      for (let l = 1; l < L; l++) {
        const w = layout.widths[l];
        if (kind === 'primal') {
          s.s[l] = take(w);
          s.kappa[l] = take(w);
        } else {
          s.rho[l] = take(w);
        }
      }
    }
    return s;
  };
  const primal = Array.from({ length: sections }, () => section('primal'));
  const r = section('r');  // R(Z), R(A), R(δ) of the Hessian-vector product
  const inputGrad = take(rows * Math.max(layout.dim, layout.context));
  return { primal, r, inputGrad, floats: off + (off % 4 === 0 ? 0 : 4 - (off % 4)) };
}

export type MlpPassBuffers = PassBuffers;
export type MlpPassOptions = PassOptions;
export type MlpTaskStep = TaskStep;

export class MlpPass extends TaskPass<Section> {
  private readonly softmaxKernel: SoftmaxKernel;
  private readonly taskNormKernel: TaskNormKernel;
  /** Per-task floats of the tape, and its sections. */
  readonly tapeFloats: number;
  private readonly tape: ReturnType<typeof tapeLayout>;
  protected readonly writesFrom = true;
  protected declare readonly layout: MlpLayout;

  constructor(
    device: GPUDevice,
    layout: MlpLayout,
    /** Tasks of the chunk this pass runs on. */
    tasks: number,
    /** The most rows of a set (max of support and query shots). */
    private readonly rows: number,
    /** Primal tape sections: one per inner step kept for order 2 (at least 1), plus the query's. */
    sections: number,
    buffers: MlpPassBuffers,
    label: string,
    options: MlpPassOptions = {},
  ) {
    super(device, layout, tasks, buffers, label, options);
    this.softmaxKernel = new SoftmaxKernel(device);
    this.taskNormKernel = new TaskNormKernel(device);
    this.tape = tapeLayout(layout, rows, sections);
    this.tapeFloats = this.tape.floats;
  }

  // ---------------------------------------------------------------- kernels with named buffers

  /** W_l of parameters P as the right operand (inputs × outputs), rows from `firstRow`. */
  private weights(P: Params, l: number, firstRow = 0): Ref {
    const layer = this.layout.layers[l - 1];
    return { home: P.buffer, off: P.off + layer.w + firstRow * layer.outputs, taskStride: P.taskStride, strideI: layer.outputs, strideJ: 1 };
  }

  /** W_lᵀ (outputs × inputs) from row `firstRow` of W_l: for backward products δ·Wᵀ. */
  private weightsT(P: Params, l: number, firstRow = 0): Ref {
    const layer = this.layout.layers[l - 1];
    return { home: P.buffer, off: P.off + layer.w + firstRow * layer.outputs, taskStride: P.taskStride, strideI: 1, strideJ: layer.outputs };
  }

  private biasOf(P: Params, l: number): Ref {
    return { home: P.buffer, off: P.off + this.layout.layers[l - 1].b, taskStride: P.taskStride, strideI: 0, strideJ: 1 };
  }

  /** φ of parameters P broadcast to every row (strideI 0): CAML's context inputs. */
  private context(P: Params, transposed = false): Ref {
    const off = P.off + this.layout.contextOffset;
    return transposed
      ? { home: P.buffer, off, taskStride: P.taskStride, strideI: 1, strideJ: 0 }   // C × rows: φ_c for every row
      : { home: P.buffer, off, taskStride: P.taskStride, strideI: 0, strideJ: 1 };  // rows × C
  }

  private rowsRef(rows: Rows, transposed = false): Ref {
    const Dp = this.Dp;
    return transposed
      ? { home: 'data', off: rows.xOff, taskStride: rows.rows * Dp, strideI: 1, strideJ: Dp }
      : { home: 'data', off: rows.xOff, taskStride: rows.rows * Dp, strideI: Dp, strideJ: 1 };
  }

  // ---------------------------------------------------------------- model operations

  /** Forward of `rows` through the net at parameters P into primal section `sec`, layers 1 … upTo
   * (ANIL's body: upTo = L − 1). */
  protected forward(P: Params, rows: Rows, sec: Section, what: string, upTo = this.layout.layers.length): BoundDispatch[] {
    const { layout } = this;
    const L = layout.layers.length;
    const out: BoundDispatch[] = [];
    for (let l = 1; l <= upTo; l++) {
      const w = layout.widths[l];
      const first = l === 1;
      const context = first && layout.context > 0;
      const norm = layout.norm && l < L;
      out.push(this.gemm(rows.buffer, {
        M: rows.rows, N: w,
        K1: first ? layout.dim : layout.widths[l - 1],
        A1: first ? this.rowsRef(rows) : this.tapeRef(sec.a[l - 1], layout.widths[l - 1]),
        B1: this.weights(P, l),
        // CAML: the context inputs [x | φ] as a second term, φ broadcast to every row.
        K2: context ? layout.context : 0,
        A2: context ? this.context(P) : undefined,
        B2: context ? this.weights(P, 1, layout.dim) : undefined,
        bias1: this.biasOf(P, l),
        mode: 'write', scale: 1,
        out: this.tapeRef(sec.z[l], w),
        // With normalisation the ReLU acts on n, not z: the norm kernel writes A.
        out2: l < L && !norm ? this.tapeRef(sec.a[l], w) : undefined,
      }, `${what}.forward${l}`));
      if (norm) {
        out.push(this.norm(rows, {
          mode: 'forward', units: w, inOff: sec.z[l], outOff: sec.z[l], reluOff: sec.a[l], sOff: sec.s[l],
        }, `${what}.forward${l}`));
      }
    }
    return out;
  }

  /** The norm kernel over the tape for one set's rows (spec without the per-chunk fields). */
  private norm(rows: Rows, spec: Omit<TaskNormSpec, 'tasks' | 'rows' | 'tapeTaskStride'>, what: string): BoundDispatch {
    return this.taskNormKernel.bind({ tape: this.buffers.tape }, { ...spec, tasks: this.tasks, rows: rows.rows, tapeTaskStride: this.tapeFloats },
      `${this.label}.${what}.norm`);
  }

  /** Softmax cross-entropy of the logits of section `sec`: δ_L = scale·(p − onehot), optional stats. */
  protected loss(rows: Rows, sec: Section, scale: number, stats: { buffer: GPUBuffer; base: number } | null, what: string): BoundDispatch {
    const L = this.layout.layers.length;
    return this.softmaxKernel.bind({ data: rows.buffer, tape: this.buffers.tape, stats: stats?.buffer ?? dummyBuffer(this.device, 2) }, {
      tasks: this.tasks, rows: rows.rows, classes: this.layout.classes, mode: 'loss', yOff: rows.yOff,
      zOff: sec.z[L], pOff: sec.p, dOff: sec.d[L], rzOff: 0, tapeTaskStride: this.tapeFloats, scale,
      wantStats: stats !== null, statsOff: 2 * (stats?.base ?? 0),
    }, `${this.label}.${what}.softmax`);
  }

  /** δ_{l−1} = (δ_l·W_lᵀ) ⊙ relu'(Z_{l−1}) at parameters P (l ≥ 2); with normalisation that product
   * is g = ∂/∂n (masked by [n > 0], n in Z's slot) and δ_{l−1} = J g. */
  private backDelta(P: Params, rows: Rows, sec: Section, l: number, what: string): BoundDispatch[] {
    const { layout } = this;
    const w = layout.widths[l - 1];
    const out = [this.gemm(rows.buffer, {
      M: rows.rows, N: w, K1: layout.widths[l],
      A1: this.tapeRef(sec.d[l], layout.widths[l]), B1: this.weightsT(P, l),
      mask: this.tapeRef(sec.z[l - 1], w),
      mode: 'write', scale: 1, out: this.tapeRef(sec.d[l - 1], w),
    }, `${what}.delta${l - 1}`)];
    if (layout.norm) {
      out.push(this.norm(rows, {
        mode: 'backward', units: w, inOff: sec.d[l - 1], outOff: sec.d[l - 1], nOff: sec.z[l - 1], sOff: sec.s[l - 1], kappaOff: sec.kappa[l - 1],
      }, `${what}.delta${l - 1}`));
    }
    return out;
  }

  /** G (+)= scale·(∂L/∂W_l, ∂L/∂b_l) from the tape of `sec` (A_{l−1}ᵀ·δ_l and 1ᵀ·δ_l); A_{l−1} from
   * section `inputSec` (ANIL's head: the body's section). */
  private layerGrad(P: Params, rows: Rows, sec: Section, l: number, G: Params, mode: GradMode, scale: number, what: string, from?: Params, inputSec: Section = sec): BoundDispatch[] {
    const { layout } = this;
    const layer = layout.layers[l - 1];
    const w = layer.outputs;
    const delta = this.tapeRef(sec.d[l], w);
    const out: BoundDispatch[] = [];
    const inputs = l === 1 ? layout.dim : layer.inputs;
    // mode 'from': G = from + scale·g, e.g. θ'⁽¹⁾ = θ − α g written without first copying θ.
    const fromRef = (off: number, strideI: number): Ref | undefined => (from ? { home: from.buffer, off: from.off + off, taskStride: from.taskStride, strideI, strideJ: 1 } : undefined);
    out.push(this.gemm(rows.buffer, {
      M: inputs, N: w, K1: rows.rows,
      A1: l === 1 ? this.rowsRef(rows, true) : { ...this.tapeRef(inputSec.a[l - 1], layout.widths[l - 1]), strideI: 1, strideJ: layout.widths[l - 1] },
      B1: delta, mode, scale,
      out: { home: G.buffer, off: G.off + layer.w, taskStride: G.taskStride, strideI: w, strideJ: 1 },
      from: fromRef(layer.w, w),
    }, `${what}.dW${l}`));
    if (l === 1 && layout.context > 0) {
      // Context rows of W_1: ∂L/∂W_1[D + c, j] = Σ_r φ_c δ_1[r, j].
      out.push(this.gemm(rows.buffer, {
        M: layout.context, N: w, K1: rows.rows, A1: this.context(P, true), B1: delta, mode, scale,
        out: { home: G.buffer, off: G.off + layer.w + layout.dim * w, taskStride: G.taskStride, strideI: w, strideJ: 1 },
      }, `${what}.dWctx`));
    }
    out.push(this.gemm(rows.buffer, {
      M: 1, N: w, K1: rows.rows, A1: { home: 'one', off: 0, taskStride: 0, strideI: 0, strideJ: 0 }, B1: delta, mode, scale,
      out: { home: G.buffer, off: G.off + layer.b, taskStride: G.taskStride, strideI: 0, strideJ: 1 },
      from: fromRef(layer.b, 0),
    }, `${what}.db${l}`));
    return out;
  }

  /** G[φ] (+)= scale·Σ_r (D·W_1[ctx rows]ᵀ)[r, ·] for D = the δ_1-like array at `deltaOff`: the
   * gradient (or R-operator) with respect to CAML's context, through the input-gradient scratch. */
  private contextGrad(P: Params, rows: Rows, deltaOff: number, G: Params, mode: 'write' | 'accumulate', scale: number, what: string): BoundDispatch[] {
    const { layout } = this;
    const h1 = layout.widths[1];
    const C = layout.context;
    return [
      this.gemm(rows.buffer, {
        M: rows.rows, N: C, K1: h1, A1: this.tapeRef(deltaOff, h1), B1: this.weightsT(P, 1, layout.dim),
        mode: 'write', scale: 1, out: this.tapeRef(this.tape.inputGrad, C),
      }, `${what}.dctx.rows`),
      this.gemm(rows.buffer, {
        M: 1, N: C, K1: rows.rows, A1: { home: 'one', off: 0, taskStride: 0, strideI: 0, strideJ: 0 }, B1: this.tapeRef(this.tape.inputGrad, C),
        mode, scale, out: { home: G.buffer, off: G.off + layout.contextOffset, taskStride: G.taskStride, strideI: 0, strideJ: 1 },
      }, `${what}.dctx`),
    ];
  }

  /**
   * Gradient of the mean loss on `rows` at P, written into G with `scale` (mode): forward, softmax,
   * then the backward sweep. adapt 'context' only produces the context's gradient (CAML's inner step).
   */
  protected gradient(P: Params, rows: Rows, sec: Section, G: Params, mode: GradMode, scale: number, adapt: 'all' | 'context',
    stats: { buffer: GPUBuffer; base: number } | null, what: string, from?: Params): BoundDispatch[] {
    const L = this.layout.layers.length;
    const out = [...this.forward(P, rows, sec, what), this.loss(rows, sec, 1 / rows.rows, stats, what)];
    for (let l = L; l >= 1; l--) {
      // δ_{l−1} first: it reads W_l, which the gradient of layer l may overwrite in place.
      if (l > 1) out.push(...this.backDelta(P, rows, sec, l, what));
      if (adapt === 'all') out.push(...this.layerGrad(P, rows, sec, l, G, mode, scale, what, from));
    }
    if (this.layout.context > 0) {
      if (mode === 'from') throw new Error('MlpPass: a gradient written from another vector cannot include a context');
      out.push(...this.contextGrad(P, rows, sec.d[1], G, mode, scale, what));
    }
    return out;
  }

  /**
   * G += scale·H(P; rows)·dir with the primal tape of `sec` (made at P). dir's W/b part is used only
   * when adapt = 'all' (MAML); CAML's direction is (0, v_φ). Order of the sweep: R(δ_{l−1}) before the
   * Hv of layer l, so dir may be G itself.
   */
  protected hvp(P: Params, dir: Params, rows: Rows, sec: Section, G: Params, scale: number, adapt: 'all' | 'context', what: string): BoundDispatch[] {
    const { layout } = this;
    const L = layout.layers.length;
    const R = this.tape.r;
    const withV = adapt === 'all';
    const out: BoundDispatch[] = [];
    // R-forward: R(Z_l) = R(A_{l−1})·W_l + A_{l−1}·V_l + c_l; R(A_l) = R(Z_l) ⊙ relu'(Z_l). With
    // normalisation the norm kernel makes R(n) = J R(Z_l) over R(Z_l) and R(A_l) = [n > 0] R(n).
    for (let l = 1; l <= L; l++) {
      const w = layout.widths[l];
      const prev = layout.widths[l - 1];
      const norm = layout.norm && l < L;
      const mask = l < L && !norm ? { out2: this.tapeRef(R.a[l], w), out2Mask: this.tapeRef(sec.z[l], w) } : {};
      if (l === 1) {
        if (withV) {
          out.push(this.gemm(rows.buffer, {
            M: rows.rows, N: w, K1: layout.dim, A1: this.rowsRef(rows), B1: this.weights(dir, 1), bias1: this.biasOf(dir, 1),
            mode: 'write', scale: 1, out: this.tapeRef(R.z[1], w), ...mask,
          }, `${what}.Rforward1`));
        } else {
          // CAML: R(input) = [0 | v_φ]: R(Z_1) = v_φ·W_1[ctx rows].
          out.push(this.gemm(rows.buffer, {
            M: rows.rows, N: w, K1: layout.context, A1: this.context(dir), B1: this.weights(P, 1, layout.dim),
            mode: 'write', scale: 1, out: this.tapeRef(R.z[1], w), ...mask,
          }, `${what}.Rforward1`));
        }
      } else {
        out.push(this.gemm(rows.buffer, {
          M: rows.rows, N: w, K1: prev, A1: this.tapeRef(R.a[l - 1], prev), B1: this.weights(P, l),
          K2: withV ? prev : 0, A2: withV ? this.tapeRef(sec.a[l - 1], prev) : undefined, B2: withV ? this.weights(dir, l) : undefined,
          bias1: withV ? this.biasOf(dir, l) : undefined,
          mode: 'write', scale: 1, out: this.tapeRef(R.z[l], w), ...mask,
        }, `${what}.Rforward${l}`));
      }
      if (norm) {
        out.push(this.norm(rows, {
          mode: 'r-forward', units: w, inOff: R.z[l], outOff: R.z[l], reluOff: R.a[l], nOff: sec.z[l], sOff: sec.s[l], rhoOff: R.rho[l],
        }, `${what}.Rforward${l}`));
      }
    }
    out.push(this.rSoftmax(rows, sec, what));
    for (let l = L; l >= 1; l--) {
      const layer = layout.layers[l - 1];
      const w = layer.outputs;
      const prev = layout.widths[l - 1];
      if (l > 1) {
        // R(δ_{l−1}) = (R(δ_l)·W_lᵀ + δ_l·V_lᵀ) ⊙ relu'(Z_{l−1})
        out.push(this.gemm(rows.buffer, {
          M: rows.rows, N: prev, K1: w, A1: this.tapeRef(R.d[l], w), B1: this.weightsT(P, l),
          K2: withV ? w : 0, A2: withV ? this.tapeRef(sec.d[l], w) : undefined, B2: withV ? this.weightsT(dir, l) : undefined,
          mask: this.tapeRef(sec.z[l - 1], prev), mode: 'write', scale: 1, out: this.tapeRef(R.d[l - 1], prev),
        }, `${what}.Rdelta${l - 1}`));
        if (layout.norm) {
          // That product is R(g); R(δ_{l−1}) = J R(g) − (ρ/s) δ − (R(n) κ + n τ)/s, R(n) in R(Z)'s slot.
          const k = l - 1;
          out.push(this.norm(rows, {
            mode: 'r-backward', units: prev, inOff: R.d[k], outOff: R.d[k], nOff: sec.z[k], sOff: sec.s[k], kappaOff: sec.kappa[k],
            rhoOff: R.rho[k], deltaOff: sec.d[k], rnOff: R.z[k],
          }, `${what}.Rdelta${k}`));
        }
      }
      // (Hv)_{W_l} = R(A_{l−1})ᵀ·δ_l + A_{l−1}ᵀ·R(δ_l)   (R(A_0) = 0 for the data columns)
      const Aprev: Ref = l === 1 ? this.rowsRef(rows, true) : { ...this.tapeRef(sec.a[l - 1], prev), strideI: 1, strideJ: prev };
      const RAprev: Ref | undefined = l === 1 ? undefined : { ...this.tapeRef(R.a[l - 1], prev), strideI: 1, strideJ: prev };
      const inputs = l === 1 ? layout.dim : prev;
      out.push(this.gemm(rows.buffer, {
        M: inputs, N: w, K1: rows.rows, A1: Aprev, B1: this.tapeRef(R.d[l], w),
        K2: RAprev ? rows.rows : 0, A2: RAprev, B2: RAprev ? this.tapeRef(sec.d[l], w) : undefined,
        mode: 'accumulate', scale, out: { home: G.buffer, off: G.off + layer.w, taskStride: G.taskStride, strideI: w, strideJ: 1 },
      }, `${what}.HvW${l}`));
      if (l === 1 && layout.context > 0) {
        // Context rows: Σ_r φ_c R(δ_1)[r, j] + Σ_r v_φc δ_1[r, j].
        out.push(this.gemm(rows.buffer, {
          M: layout.context, N: w, K1: rows.rows, A1: this.context(P, true), B1: this.tapeRef(R.d[1], w),
          K2: rows.rows, A2: this.context(dir, true), B2: this.tapeRef(sec.d[1], w),
          mode: 'accumulate', scale, out: { home: G.buffer, off: G.off + layer.w + layout.dim * w, taskStride: G.taskStride, strideI: w, strideJ: 1 },
        }, `${what}.HvWctx`));
      }
      out.push(this.hvBias(rows, l, G, scale, what));
    }
    // (Hv)_φ = Σ_r (R(δ_1)·W_1[ctx]ᵀ + δ_1·V_1[ctx]ᵀ); CAML's V_1 = 0, so only the first term. Last, since
    // it overwrites v_φ, which the products above read as the direction.
    if (layout.context > 0) out.push(...this.contextGrad(P, rows, R.d[1], G, 'accumulate', scale, `${what}.Hvctx`));
    return out;
  }

  /** R(δ_L) = (diag p − p pᵀ)·R(Z_L) / rows, p from section `sec`, R(Z_L) from the R section. */
  private rSoftmax(rows: Rows, sec: Section, what: string): BoundDispatch {
    const L = this.layout.layers.length;
    const R = this.tape.r;
    return this.softmaxKernel.bind({ data: rows.buffer, tape: this.buffers.tape, stats: dummyBuffer(this.device, 2) }, {
      tasks: this.tasks, rows: rows.rows, classes: this.layout.classes, mode: 'r', yOff: rows.yOff,
      zOff: sec.z[L], pOff: sec.p, dOff: R.d[L], rzOff: R.z[L], tapeTaskStride: this.tapeFloats, scale: 1 / rows.rows,
      wantStats: false, statsOff: 0,
    }, `${this.label}.${what}.Rsoftmax`);
  }

  /** (Hv)_{b_l} += scale·1ᵀ·R(δ_l). */
  private hvBias(rows: Rows, l: number, G: Params, scale: number, what: string): BoundDispatch {
    const layer = this.layout.layers[l - 1];
    return this.gemm(rows.buffer, {
      M: 1, N: layer.outputs, K1: rows.rows, A1: { home: 'one', off: 0, taskStride: 0, strideI: 0, strideJ: 0 }, B1: this.tapeRef(this.tape.r.d[l], layer.outputs),
      mode: 'accumulate', scale, out: { home: G.buffer, off: G.off + layer.b, taskStride: G.taskStride, strideI: 0, strideJ: 1 },
    }, `${what}.Hvb${l}`);
  }

  /** ANIL's head layer: Z_L = A_{L−1}·W_L + b_L, A_{L−1} from the body's section (the rows for L = 1),
   * W_L and b_L from P, Z_L into `head`'s section. */
  protected headForward(P: Params, rows: Rows, body: Section, head: Section, what: string): BoundDispatch {
    const { layout } = this;
    const L = layout.layers.length;
    return this.gemm(rows.buffer, {
      M: rows.rows, N: layout.classes, K1: layout.widths[L - 1],
      A1: L === 1 ? this.rowsRef(rows) : this.tapeRef(body.a[L - 1], layout.widths[L - 1]),
      B1: this.weights(P, L), bias1: this.biasOf(P, L),
      mode: 'write', scale: 1, out: this.tapeRef(head.z[L], layout.classes),
    }, `${what}.forward${L}`);
  }

  /**
   * ANIL's G += scale·H(P; rows)·dir for a head-only direction (dir's W_L, b_L; its other entries are
   * never read), P = θ's body (`theta`) under the head of `point`. The body's activations are those of
   * `body` (made at θ's body), the head's logits, p and δ_L those of `head` (made at `point`). Since
   * R(Z_l) = 0 for l < L: R(Z_L) = A_{L−1}·V_L + c_L; R(δ_{L−1}) = (R(δ_L)·W_Lᵀ + δ_L·V_Lᵀ) ⊙ relu';
   * below, R(δ_{l−1}) = R(δ_l)·W_lᵀ ⊙ relu'; (Hv)_{W_l} = A_{l−1}ᵀ·R(δ_l) (R(A) = 0). With normalisation
   * R(n) = ρ = τ = 0, so R(δ_z) = J R(g): the norm kernel's plain backward (its κ output goes to the
   * unused ρ slot of the R section). dir may be G: dir's head is read before G's head is written.
   */
  protected headHvp(theta: Params, point: Params, dir: Params, rows: Rows, body: Section, head: Section, G: Params, scale: number, what: string): BoundDispatch[] {
    const { layout } = this;
    const L = layout.layers.length;
    const R = this.tape.r;
    const out: BoundDispatch[] = [];
    const inputsOf = (l: number): Ref => (l === 1 ? this.rowsRef(rows) : this.tapeRef(body.a[l - 1], layout.widths[l - 1]));
    out.push(this.gemm(rows.buffer, {
      M: rows.rows, N: layout.classes, K1: layout.widths[L - 1], A1: inputsOf(L), B1: this.weights(dir, L), bias1: this.biasOf(dir, L),
      mode: 'write', scale: 1, out: this.tapeRef(R.z[L], layout.classes),
    }, `${what}.Rforward${L}`));
    out.push(this.rSoftmax(rows, head, what));
    for (let l = L; l >= 1; l--) {
      const layer = layout.layers[l - 1];
      const w = layer.outputs;
      const prev = layout.widths[l - 1];
      const atHead = l === L;
      if (l > 1) {
        out.push(this.gemm(rows.buffer, {
          M: rows.rows, N: prev, K1: w, A1: this.tapeRef(R.d[l], w), B1: this.weightsT(atHead ? point : theta, l),
          K2: atHead ? w : 0, A2: atHead ? this.tapeRef(head.d[L], w) : undefined, B2: atHead ? this.weightsT(dir, L) : undefined,
          mask: this.tapeRef(body.z[l - 1], prev), mode: 'write', scale: 1, out: this.tapeRef(R.d[l - 1], prev),
        }, `${what}.Rdelta${l - 1}`));
        if (layout.norm) {
          const k = l - 1;
          out.push(this.norm(rows, {
            mode: 'backward', units: prev, inOff: R.d[k], outOff: R.d[k], nOff: body.z[k], sOff: body.s[k], kappaOff: R.rho[k],
          }, `${what}.Rdelta${k}`));
        }
      }
      const Aprev: Ref = l === 1 ? this.rowsRef(rows, true) : { ...this.tapeRef(body.a[l - 1], prev), strideI: 1, strideJ: prev };
      out.push(this.gemm(rows.buffer, {
        M: l === 1 ? layout.dim : prev, N: w, K1: rows.rows, A1: Aprev, B1: this.tapeRef(R.d[l], w),
        mode: 'accumulate', scale, out: { home: G.buffer, off: G.off + layer.w, taskStride: G.taskStride, strideI: w, strideJ: 1 },
      }, `${what}.HvW${l}`));
      out.push(this.hvBias(rows, l, G, scale, what));
    }
    return out;
  }

  // ---------------------------------------------------------------- plan steps


  // ---------------------------------------------------------------- the core's model operations

  protected section(s: number): Section {
    return this.tape.primal[s];
  }

  protected forwardBody(P: Params, rows: Rows, sec: Section, what: string): BoundDispatch[] {
    return this.forward(P, rows, sec, what, this.layout.layers.length - 1);
  }

  protected headGradient(P: Params, rows: Rows, sec: Section, G: Params, mode: GradMode, scale: number, what: string, body: Section): BoundDispatch[] {
    return this.layerGrad(P, rows, sec, this.layout.layers.length, G, mode, scale, what, undefined, body);
  }

  protected headRange(): [number, number] {
    const head = this.layout.layers[this.layout.layers.length - 1];
    return [head.w, head.b + head.outputs];
  }

  protected weightGradients(P: Params, rows: Rows, sec: Section, G: Params, what: string): BoundDispatch[] {
    const out: BoundDispatch[] = [];
    for (let l = this.layout.layers.length; l >= 1; l--) out.push(...this.layerGrad(P, rows, sec, l, G, 'write', 1, what));
    return out;
  }

  protected inputGradient(P: Params, rows: Rows, sec: Section, what: string): BoundDispatch[] {
    const { layout } = this;
    const out = [...this.forward(P, rows, sec, what), this.loss(rows, sec, 1, null, what)];
    for (let l = layout.layers.length; l >= 2; l--) out.push(...this.backDelta(P, rows, sec, l, what));
    out.push(this.gemm(rows.buffer, {
      M: rows.rows, N: layout.dim, K1: layout.widths[1], A1: this.tapeRef(sec.d[1], layout.widths[1]), B1: this.weightsT(P, 1),
      mode: 'write', scale: 1, out: this.tapeRef(this.tape.inputGrad, layout.dim),
    }, `${what}.inputGrad`));
    return out;
  }

  protected inputGradAt(): { off: number; rowStride: number } {
    return { off: this.tape.inputGrad, rowStride: this.layout.dim };
  }
}
