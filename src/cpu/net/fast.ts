// The fast CPU path of models given as a list of layers (src/models/layers.ts): the same math as the
// float64 oracle (src/cpu/net/oracle.ts), restructured for speed. Every buffer is preallocated per
// (layout, rows) and kept on tapes; weights and Hessian-vector directions are read as float64 (the
// point's float32 parameters are widened once per pass, so that every loop is monomorphic); a
// convolution is an im2col into a kept column buffer and a row-major GEMM with the inner loop over the
// filters (contiguous in W), its input gradient a GEMM with Wᵀ then a col2im scatter, its weight
// gradient colsᵀ·δ; dense layers are the same GEMMs on the rows themselves. The GEMMs (./gemm.ts) run as
// WebAssembly SIMD where the thread has it, with the same bits as their JavaScript form.
//
// Exactness: float64 sums, in a different order than the oracle's textbook loops, so the two agree to
// rounding (~1e-12 relative), not bit for bit (issue 20: bit-identity with the oracle is not required for
// new layers). Per-task results depend only on the task: any thread count gives the same bits.
//
// CAML's context φ (C floats) enters as C extra input channels, constant over positions: the first
// layer's input is [x | φ] per position (channel fastest), so its gradient is the input gradient of those
// channels summed over rows and positions.
import { features, NORM_EPS, type LayerLayout } from '../../models/layers.js';
import type { NetModelLayout } from '../../models/model.js';
import { scoredRows, type AdaptedSet, type TaskModel, type TaskPoint, type TaskRows } from '../task-model.js';
import { protoLoss } from './losses.js';
import { gemmAcc, gemmAtB, sumRows, transpose } from './gemm.js';

// ---- Convolution as im2col ----------------------------------------------------------------------

/** cols[(r·P + p)·K + (ky·k + kx)·C + c] = X at the tap (0 outside the image), P = Ho·Wo, K = k²·C. */
function im2col(l: LayerLayout, X: Float64Array, rows: number, cols: Float64Array): void {
  if (l.spec.kind !== 'conv2d') return;
  const { size: k, stride: s, padding: p } = l.spec;
  const { h: H, w: W, c: C } = l.input;
  const { h: Ho, w: Wo } = l.output;
  let o = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * H * W * C;
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        for (let ky = 0; ky < k; ky++) {
          const iy = oy * s + ky - p;
          for (let kx = 0; kx < k; kx++) {
            const ix = ox * s + kx - p;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
              for (let c = 0; c < C; c++) cols[o++] = 0;
            } else {
              const i = base + (iy * W + ix) * C;
              for (let c = 0; c < C; c++) cols[o++] = X[i + c];
            }
          }
        }
      }
    }
  }
}

/** dX = 0, then the taps of dcols scattered back (the transpose of im2col). */
function col2im(l: LayerLayout, dcols: Float64Array, rows: number, dX: Float64Array): void {
  if (l.spec.kind !== 'conv2d') return;
  const { size: k, stride: s, padding: p } = l.spec;
  const { h: H, w: W, c: C } = l.input;
  const { h: Ho, w: Wo } = l.output;
  dX.fill(0, 0, rows * H * W * C);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * H * W * C;
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        for (let ky = 0; ky < k; ky++) {
          const iy = oy * s + ky - p;
          for (let kx = 0; kx < k; kx++) {
            const ix = ox * s + kx - p;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
              o += C;
            } else {
              const i = base + (iy * W + ix) * C;
              for (let c = 0; c < C; c++) dX[i + c] += dcols[o++];
            }
          }
        }
      }
    }
  }
}

// ---- Tapes ---------------------------------------------------------------------------------------

const size = (s: { h: number; w: number; c: number }) => features(s);

/** One pass over `rows` rows at one point: every layer's input and δ, and what its backward needs. */
export class NetTape {
  /** acts[i]: the input of layer i (acts[0] = [x | φ] rows); acts[L]: the outputs. */
  readonly acts: Float64Array[];
  /** deltas[i] = ∂loss/∂acts[i]; deltas[0] only when an input gradient was asked. */
  readonly deltas: Float64Array[];
  /** conv2d layers: the im2col of their input. */
  readonly cols: Float64Array[];
  /** maxpool: the input index of every output; norm: s and κ = mean(g n) per channel. */
  readonly argmax: Int32Array[];
  readonly sd: Float64Array[];
  readonly kappa: Float64Array[];
  /** Softmax probabilities of the outputs. */
  readonly prob: Float64Array;
  lossSum = 0;
  /** Σ over rows of the metric: hits (softmax-ce) or squared errors (mse). */
  metricSum = 0;
  constructor(net: NetModelLayout['net'], readonly rows: number) {
    this.acts = [new Float64Array(rows * size(net.input)), ...net.layers.map((l) => new Float64Array(rows * size(l.output)))];
    this.deltas = this.acts.map((a) => new Float64Array(a.length));
    this.cols = net.layers.map((l) => new Float64Array(l.spec.kind === 'conv2d' ? rows * size(l.output) / l.output.c * l.spec.size ** 2 * l.input.c : 0));
    this.argmax = net.layers.map((l) => new Int32Array(l.spec.kind === 'maxpool' ? rows * size(l.output) : 0));
    this.sd = net.layers.map((l) => new Float64Array(l.spec.kind === 'norm' ? l.input.c : 0));
    this.kappa = net.layers.map((l) => new Float64Array(l.spec.kind === 'norm' ? l.input.c : 0));
    this.prob = new Float64Array(rows * net.outputs);
  }
}

/** The R-operator's buffers: R(acts[i]) (a norm's R(n) is its R(acts[i + 1])), R(deltas[i]), R's
 * columns, ρ = mean(n R(z)) per norm channel. */
class NetRTape {
  readonly racts: Float64Array[];
  readonly rdeltas: Float64Array[];
  readonly rcols: Float64Array[];
  readonly rho: Float64Array[];
  constructor(tape: NetTape, net: NetModelLayout['net'], readonly rows: number) {
    this.racts = tape.acts.map((a) => new Float64Array(a.length));
    this.rdeltas = tape.acts.map((a) => new Float64Array(a.length));
    this.rcols = tape.cols.map((c) => new Float64Array(c.length));
    this.rho = net.layers.map((l) => new Float64Array(l.spec.kind === 'norm' ? l.input.c : 0));
  }
}

// ---- Norm over rows × positions, per channel ------------------------------------------------------

/** out[c] = mean over the m values of channel c of a (·b). */
function channelMean(out: Float64Array, a: Float64Array, b: Float64Array | null, m: number, C: number): void {
  out.fill(0, 0, C);
  if (b) for (let i = 0; i < m; i++) for (let c = 0; c < C; c++) out[c] += a[i * C + c] * b[i * C + c];
  else for (let i = 0; i < m; i++) for (let c = 0; c < C; c++) out[c] += a[i * C + c];
  for (let c = 0; c < C; c++) out[c] /= m;
}

/** out = J·u = (u − mean(u) − n·mean(n u))/s per channel; `mean`, `dot`: scratch (C). */
function applyJ(out: Float64Array, u: Float64Array, n: Float64Array, sd: Float64Array, m: number, C: number, mean: Float64Array, dot: Float64Array): void {
  channelMean(mean, u, null, m, C);
  channelMean(dot, n, u, m, C);
  for (let i = 0; i < m; i++) for (let c = 0; c < C; c++) out[i * C + c] = (u[i * C + c] - mean[c] - n[i * C + c] * dot[c]) / sd[c];
}

// ---- The parameter-free layers as linear maps -----------------------------------------------------

/** ReLU, max-pool, mean-pool and flatten are linear once the forward's choices are fixed (ReLU's mask
 * from its input X, max-pool's argmax): `map` applies that map to src (forward, R-forward), or its
 * transpose (backward, R-backward), into dst. */
function linearMap(l: LayerLayout, X: Float64Array, argmax: Int32Array, src: Float64Array, dst: Float64Array, rows: number, transpose: boolean): void {
  const nIn = size(l.input) * rows;
  const nOut = size(l.output) * rows;
  switch (l.spec.kind) {
    case 'relu':
      for (let k = 0; k < nIn; k++) dst[k] = X[k] > 0 ? src[k] : 0;
      break;
    case 'maxpool':
      if (transpose) {
        dst.fill(0, 0, nIn);
        for (let o = 0; o < nOut; o++) dst[argmax[o]] += src[o];
      } else {
        for (let o = 0; o < nOut; o++) dst[o] = src[argmax[o]];
      }
      break;
    case 'meanpool': {
      const C = l.input.c;
      const P = l.input.h * l.input.w;
      if (transpose) {
        for (let r = 0; r < rows; r++) for (let q = 0; q < P; q++) for (let c = 0; c < C; c++) dst[(r * P + q) * C + c] = src[r * C + c] / P;
      } else {
        dst.fill(0, 0, nOut);
        for (let r = 0; r < rows; r++) for (let q = 0; q < P; q++) for (let c = 0; c < C; c++) dst[r * C + c] += src[(r * P + q) * C + c];
        for (let k = 0; k < nOut; k++) dst[k] /= P;
      }
      break;
    }
    case 'flatten':
      dst.set(src.subarray(0, nIn));
      break;
    default:
      throw new Error(`linearMap: ${l.spec.kind} is not a parameter-free linear layer`);
  }
}

// ---- The workspace: one per (layout, thread) ------------------------------------------------------

export class NetWorkspace implements TaskModel<NetTape> {
  readonly net: NetModelLayout['net'];
  private readonly tapes = new Map<string, NetTape>();
  private readonly rtapes = new Map<NetTape, NetRTape>();
  private readonly vectors = new Map<string, Float32Array | Float64Array>();
  /** The current point's parameters as float64 (widened once per pass). */
  private readonly w64: Float64Array;
  /** Scratch: im2col-shaped δ, per-channel means. */
  private dcols = new Float64Array(0);
  /** A layer's Wᵀ (productT). */
  private wT = new Float64Array(0);
  private readonly unit: Float64Array;
  private readonly unit2: Float64Array;
  private readonly unit3: Float64Array;
  /** Hessian-vector product and masked-direction scratch (vector floats). */
  private readonly hv: Float64Array;
  private readonly dir: Float64Array;

  constructor(readonly layout: NetModelLayout) {
    this.net = layout.net;
    this.w64 = new Float64Array(layout.vector);
    const widest = Math.max(this.net.input.c, ...this.net.layers.map((l) => l.output.c));
    this.unit = new Float64Array(widest);
    this.unit2 = new Float64Array(widest);
    this.unit3 = new Float64Array(widest);
    this.hv = new Float64Array(layout.vector);
    this.dir = new Float64Array(layout.vector);
  }

  pointAt(P: Float32Array, pOff: number): TaskPoint {
    return { P, pOff, phi: P, phiOff: pOff + this.layout.contextOffset };
  }

  tape(name: string, rows: number): NetTape {
    let t = this.tapes.get(name);
    if (!t || t.rows !== rows) {
      if (t) this.rtapes.delete(t);
      t = new NetTape(this.net, rows);
      this.tapes.set(name, t);
    }
    return t;
  }

  private rTape(tape: NetTape): NetRTape {
    // One R tape per row count serves every tape of that count (R passes do not overlap).
    for (const [t, r] of this.rtapes) if (t.rows === tape.rows) return r;
    const r = new NetRTape(tape, this.net, tape.rows);
    this.rtapes.set(tape, r);
    return r;
  }

  f32(name: string, length: number): Float32Array {
    let v = this.vectors.get(name);
    if (!(v instanceof Float32Array) || v.length < length) this.vectors.set(name, (v = new Float32Array(length)));
    return v;
  }

  f64(name: string, length: number): Float64Array {
    let v = this.vectors.get(name);
    if (!(v instanceof Float64Array) || v.length < length) this.vectors.set(name, (v = new Float64Array(length)));
    return v;
  }

  /** dA[m·K + k] (+)= Σ_n dY[m·N + n]·W[wOff + k·N + n] (`add`: accumulate): δ·Wᵀ as a gemmAcc on Wᵀ. */
  private productT(dA: Float64Array, dY: Float64Array, M: number, N: number, W: Float64Array, wOff: number, K: number, add: boolean): void {
    if (this.wT.length < K * N) this.wT = new Float64Array(K * N);
    transpose(this.wT, W, wOff, K, N);
    if (!add) dA.fill(0, 0, M * K);
    gemmAcc(dA, dY, M, N, this.wT, 0, K);
  }

  private dcolsFor(n: number): Float64Array {
    if (this.dcols.length < n) this.dcols = new Float64Array(n);
    return this.dcols;
  }

  private load(pt: TaskPoint): void {
    const { params, context: C } = this.layout;
    const w = this.w64;
    for (let k = 0; k < params; k++) w[k] = pt.P[pt.pOff + k];
    for (let c = 0; c < C; c++) w[params + c] = pt.phi[pt.phiOff + c];
  }

  // ---- Forward -----------------------------------------------------------------------------------

  /** acts[0] = [x | φ] per position (φ from the loaded weights). */
  private input(rows: TaskRows, tape: NetTape): void {
    const { dim: D, context: C, params } = this.layout;
    const a0 = tape.acts[0];
    const R = rows.rows;
    if (C === 0) {
      for (let r = 0; r < R; r++) {
        const src = rows.xOff + r * rows.xStride;
        for (let d = 0; d < D; d++) a0[r * D + d] = rows.x[src + d];
      }
      return;
    }
    const positions = this.net.input.h * this.net.input.w;
    const dataC = this.net.input.c - C;
    const Cin = this.net.input.c;
    for (let r = 0; r < R; r++) {
      const src = rows.xOff + r * rows.xStride;
      for (let q = 0; q < positions; q++) {
        const o = (r * positions + q) * Cin;
        for (let c = 0; c < dataC; c++) a0[o + c] = rows.x[src + q * dataC + c];
        for (let c = 0; c < C; c++) a0[o + dataC + c] = this.w64[params + c];
      }
    }
  }

  /** Layers first … last−1 forward (acts[first] given). */
  private forwardLayers(tape: NetTape, first: number, last: number): void {
    const R = tape.rows;
    const w = this.w64;
    for (let i = first; i < last; i++) {
      const l = this.net.layers[i];
      const X = tape.acts[i];
      const Y = tape.acts[i + 1];
      const nIn = size(l.input) * R;
      const nOut = size(l.output) * R;
      switch (l.spec.kind) {
        case 'dense':
        case 'conv2d': {
          const F = l.output.c;
          const M = nOut / F;
          for (let m = 0; m < M; m++) for (let f = 0; f < F; f++) Y[m * F + f] = w[l.offset + l.weights + f];
          if (l.spec.kind === 'conv2d') {
            im2col(l, X, R, tape.cols[i]);
            gemmAcc(Y, tape.cols[i], M, l.weights / F, w, l.offset, F);
          } else {
            gemmAcc(Y, X, M, l.weights / F, w, l.offset, F);
          }
          break;
        }
        case 'norm': {
          const C = l.input.c;
          const m = nIn / C;
          const mean = this.unit;
          const sd = tape.sd[i];
          channelMean(mean, X, null, m, C);
          for (let k = 0; k < nIn; k++) Y[k] = X[k] - mean[k % C];
          channelMean(sd, Y, Y, m, C);
          for (let c = 0; c < C; c++) sd[c] = Math.sqrt(sd[c] + NORM_EPS);
          for (let j = 0; j < m; j++) for (let c = 0; c < C; c++) Y[j * C + c] /= sd[c];
          break;
        }
        case 'maxpool': {
          const { h: H, w: W, c: C } = l.input;
          const { h: Ho, w: Wo } = l.output;
          const idx = tape.argmax[i];
          let o = 0;
          for (let r = 0; r < R; r++) {
            for (let oy = 0; oy < Ho; oy++) {
              for (let ox = 0; ox < Wo; ox++) {
                for (let c = 0; c < C; c++) {
                  let best = r * H * W * C + (2 * oy * W + 2 * ox) * C + c;
                  for (let dy = 0; dy < 2; dy++) {
                    for (let dx = 0; dx < 2; dx++) {
                      const k = r * H * W * C + ((2 * oy + dy) * W + (2 * ox + dx)) * C + c;
                      if (X[k] > X[best]) best = k;
                    }
                  }
                  idx[o++] = best;
                }
              }
            }
          }
          linearMap(l, X, idx, X, Y, R, false);
          break;
        }
        default:
          linearMap(l, X, tape.argmax[i], X, Y, R, false);
      }
    }
  }

  /** The loss over the outputs: lossSum, metricSum, prob and deltas[L] = ∂(loss·scale)/∂Z, loss the sum
   * over the scored rows (every row, or an episode's query rows). */
  private loss(rows: TaskRows, tape: NetTape, scale: number): void {
    const L = this.net.layers.length;
    const Z = tape.acts[L];
    const dZ = tape.deltas[L];
    const R = rows.rows;
    const N = this.net.outputs;
    const y = rows.y;
    let total = 0;
    let metric = 0;
    if (this.net.loss.kind === 'proto') {
      // The episode's loss (a protonet's; no inner loop, so no R pass): the oracle's float64 form. Its
      // δ is of the mean over the Q query rows; scale is per scored row (1/Q: that mean; 1: the sum).
      const r = protoLoss(this.net.loss.classes, Z.subarray(0, R * N), R, y, rows.yOff, rows.episodeSupport ?? 0);
      const Q = scoredRows(rows);
      for (let i = 0; i < R * N; i++) dZ[i] = r.dZ[i] * Q * scale;
      tape.lossSum = r.loss * Q;
      tape.metricSum = r.metric * Q;
      return;
    }
    if (this.net.loss.kind === 'mse') {
      for (let r = 0; r < R; r++) {
        const e = Z[r] - y[rows.yOff + r];
        total += e * e;
        dZ[r] = 2 * e * scale;
      }
      metric = total;
    } else {
      const prob = tape.prob;
      for (let r = 0; r < R; r++) {
        const z = r * N;
        let max = -Infinity;
        let best = 0;
        for (let c = 0; c < N; c++) if (Z[z + c] > max) { max = Z[z + c]; best = c; }
        let sum = 0;
        for (let c = 0; c < N; c++) sum += (prob[z + c] = Math.exp(Z[z + c] - max));
        const label = y[rows.yOff + r];
        total += max + Math.log(sum) - Z[z + label];
        if (best === label) metric++;
        for (let c = 0; c < N; c++) {
          prob[z + c] /= sum;
          dZ[z + c] = (prob[z + c] - (c === label ? 1 : 0)) * scale;
        }
      }
    }
    tape.lossSum = total;
    tape.metricSum = metric;
  }

  // ---- Backward ----------------------------------------------------------------------------------

  /** δ from deltas[last] down to deltas[stop] (stop 0: the input gradient too), layers ≥ stop. */
  private backwardLayers(tape: NetTape, last: number, stop: number): void {
    const R = tape.rows;
    const w = this.w64;
    for (let i = last - 1; i >= stop; i--) {
      const l = this.net.layers[i];
      const X = tape.acts[i];
      const dY = tape.deltas[i + 1];
      const dX = tape.deltas[i];
      const nIn = size(l.input) * R;
      switch (l.spec.kind) {
        case 'dense':
          this.productT(dX, dY, R, l.output.c, w, l.offset, l.weights / l.output.c, false);
          break;
        case 'conv2d': {
          const F = l.output.c;
          const M = (size(l.output) * R) / F;
          const K = l.weights / F;
          const dcols = this.dcolsFor(M * K);
          this.productT(dcols, dY, M, F, w, l.offset, K, false);
          col2im(l, dcols, R, dX);
          break;
        }
        case 'norm': {
          const C = l.input.c;
          const m = nIn / C;
          const n = tape.acts[i + 1];
          // κ = mean(g n) is kept for the R-backward.
          applyJ(dX, dY, n, tape.sd[i], m, C, this.unit, tape.kappa[i]);
          break;
        }
        default:
          linearMap(l, X, tape.argmax[i], dY, dX, R, true);
      }
    }
  }

  /** g[gOff + offset …] = the weight gradients of layers first … L−1 (layers without parameters: none). */
  private weightGrads(tape: NetTape, g: Float64Array, gOff: number, first: number): void {
    const R = tape.rows;
    for (let i = first; i < this.net.layers.length; i++) {
      const l = this.net.layers[i];
      if (l.count === 0) continue;
      const F = l.output.c;
      const M = (size(l.output) * R) / F;
      const A = l.spec.kind === 'conv2d' ? tape.cols[i] : tape.acts[i];
      g.fill(0, gOff + l.offset, gOff + l.offset + l.count);
      gemmAtB(g, gOff + l.offset, A, M, l.weights / F, tape.deltas[i + 1], F);
      sumRows(g, gOff + l.offset + l.weights, tape.deltas[i + 1], M, F);
    }
  }

  /** Stop layer of the backward: 0 when the context needs the input's δ (or a first-layer norm, whose
   * R-backward reads the δ below it), else 1 (the data needs none). */
  private get backStop(): number {
    return this.layout.context > 0 || this.net.layers[0].spec.kind === 'norm' ? 0 : 1;
  }

  /** φ's gradient: Σ over rows and positions of deltas[0]'s context channels, into g[gOff + c]. */
  private contextInto(tape: NetTape, g: Float64Array, gOff: number): void {
    const C = this.layout.context;
    const Cin = this.net.input.c;
    const dataC = Cin - C;
    const m = tape.rows * this.net.input.h * this.net.input.w;
    const d0 = tape.deltas[0];
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += d0[j * Cin + dataC + c];
      g[gOff + c] = s;
    }
  }

  // ---- TaskModel ---------------------------------------------------------------------------------

  forwardBody(pt: TaskPoint, rows: TaskRows, tape: NetTape): void {
    this.load(pt);
    this.input(rows, tape);
    this.forwardLayers(tape, 0, this.headLayer());
  }

  lossAndDeltas(pt: TaskPoint, rows: TaskRows, tape: NetTape, withDeltas: boolean): void {
    this.load(pt);
    this.input(rows, tape);
    const L = this.net.layers.length;
    this.forwardLayers(tape, 0, L);
    this.loss(rows, tape, 1 / scoredRows(rows));
    if (withDeltas) this.backwardLayers(tape, L, this.backStop);
  }

  headLossAndDeltas(pt: TaskPoint, rows: TaskRows, tape: NetTape): void {
    this.load(pt);
    const L = this.net.layers.length;
    this.forwardLayers(tape, this.headLayer(), L);
    this.loss(rows, tape, 1 / scoredRows(rows));
  }

  /** ANIL's head: the last layer, which must be dense. */
  private headLayer(): number {
    const L = this.net.layers.length;
    if (this.net.layers[L - 1].spec.kind !== 'dense') throw new Error('NetWorkspace: ANIL adapts the head, which must be a dense last layer');
    return L - 1;
  }

  gradientInto(_pt: TaskPoint, tape: NetTape, o64: Float64Array, oOff: number): void {
    const { params, vector, context: C } = this.layout;
    this.weightGrads(tape, o64, oOff, 0);
    if (C > 0) this.contextInto(tape, o64, oOff + params);
    o64.fill(0, oOff + params + C, oOff + vector);
  }

  weightGradientInto32(tape: NetTape, o32: Float32Array, oOff: number): void {
    const g = this.f64('weightGrad', this.layout.vector);
    this.weightGrads(tape, g, 0, 0);
    const { params, vector } = this.layout;
    for (let k = 0; k < params; k++) o32[oOff + k] = g[k];
    o32.fill(0, oOff + params, oOff + vector);
  }

  sgdStepAll(pt: TaskPoint, tape: NetTape, alpha: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number): void {
    const g = this.f64('stepGrad', this.layout.vector);
    this.gradientInto(pt, tape, g, 0);
    const { params, context: C, vector } = this.layout;
    for (let k = 0; k < params + C; k++) dst[dOff + k] = src[sOff + k] - alpha * g[k];
    for (let k = params + C; k < vector; k++) dst[dOff + k] = src[sOff + k];
  }

  sgdStepHead(tape: NetTape, alpha: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number): void {
    const head = this.headLayer();
    const l = this.net.layers[head];
    const g = this.f64('stepGrad', this.layout.vector);
    this.weightGrads(tape, g, 0, head);
    dst.set(src.subarray(sOff, sOff + this.layout.vector), dOff);
    for (let k = l.offset; k < l.offset + l.count; k++) dst[dOff + k] = src[sOff + k] - alpha * g[k];
  }

  sgdStepScaled(pt: TaskPoint, tape: NetTape, stepSizes: Float32Array, aOff: number, src: Float32Array, sOff: number, dst: Float32Array, dOff: number, grad: Float64Array, gOff: number): void {
    const { params, vector } = this.layout;
    this.gradientInto(pt, tape, grad, gOff);
    for (let k = 0; k < params; k++) dst[dOff + k] = src[sOff + k] - stepSizes[aOff + k] * grad[gOff + k];
    for (let k = params; k < vector; k++) dst[dOff + k] = src[sOff + k];
  }

  contextGradient(_pt: TaskPoint, tape: NetTape, g: Float64Array): void {
    this.contextInto(tape, g, 0);
  }

  // ---- Hessian-vector products (R-operator) ------------------------------------------------------

  /** hv = H(pt)·d over the whole vector (W, b and φ), d = dir[0 …] (already masked), tape from
   * lossAndDeltas at pt ('head': forwardBody + headLossAndDeltas). R passes start at layer `first`
   * (R(acts) = 0 below it: ANIL's direction is 0 below the head). */
  private hvpOf(pt: TaskPoint, tape: NetTape, d: Float64Array, hv: Float64Array, first: number): void {
    this.load(pt);
    const { params, context: C, vector } = this.layout;
    const L = this.net.layers.length;
    const R = tape.rows;
    const rt = this.rTape(tape);
    const w = this.w64;
    hv.fill(0, 0, vector);
    // R(acts[first]): the data is constant (0); with the context, its channels move with d's φ entries.
    const contextMoves = C > 0 && first === 0;
    const ra = rt.racts[first];
    ra.fill(0);
    if (contextMoves) {
      const Cin = this.net.input.c;
      const m = R * this.net.input.h * this.net.input.w;
      for (let j = 0; j < m; j++) for (let c = 0; c < C; c++) ra[j * Cin + Cin - C + c] = d[params + c];
    }
    const zeroBelow = first; // layers < first: R(acts) = 0
    // R-forward.
    for (let i = first; i < L; i++) {
      const l = this.net.layers[i];
      const X = tape.acts[i];
      const RX = rt.racts[i];
      const RY = rt.racts[i + 1];
      const nIn = size(l.input) * R;
      const rxZero = i === 0 ? !contextMoves : i === zeroBelow && i > 0;
      switch (l.spec.kind) {
        case 'dense':
        case 'conv2d': {
          const F = l.output.c;
          const M = (size(l.output) * R) / F;
          const K = l.weights / F;
          for (let m = 0; m < M; m++) for (let f = 0; f < F; f++) RY[m * F + f] = d[l.offset + l.weights + f];
          const A = l.spec.kind === 'conv2d' ? tape.cols[i] : X;
          gemmAcc(RY, A, M, K, d, l.offset, F);
          if (!rxZero) {
            let RA = RX;
            if (l.spec.kind === 'conv2d') {
              im2col(l, RX, R, rt.rcols[i]);
              RA = rt.rcols[i];
            }
            gemmAcc(RY, RA, M, K, w, l.offset, F);
          } else if (l.spec.kind === 'conv2d') {
            rt.rcols[i].fill(0);
          }
          break;
        }
        case 'norm': {
          const C = l.input.c;
          const m = nIn / C;
          const n = tape.acts[i + 1];
          applyJ(RY, RX, n, tape.sd[i], m, C, this.unit, rt.rho[i]);
          break;
        }
        default:
          linearMap(l, X, tape.argmax[i], RX, RY, R, false);
      }
    }
    // R of the loss's δ.
    const RZ = rt.racts[L];
    const RdZ = rt.rdeltas[L];
    const N = this.net.outputs;
    const scale = 1 / R;
    if (this.net.loss.kind === 'mse') {
      for (let r = 0; r < R; r++) RdZ[r] = 2 * RZ[r] * scale;
    } else {
      const p = tape.prob;
      for (let r = 0; r < R; r++) {
        let pr = 0;
        for (let c = 0; c < N; c++) pr += p[r * N + c] * RZ[r * N + c];
        for (let c = 0; c < N; c++) RdZ[r * N + c] = p[r * N + c] * (RZ[r * N + c] - pr) * scale;
      }
    }
    // R-backward, down to the input when the context needs it.
    const stop = this.backStop;
    for (let i = L - 1; i >= 0; i--) {
      const l = this.net.layers[i];
      const X = tape.acts[i];
      const RX = rt.racts[i];
      const dY = tape.deltas[i + 1];
      const RdY = rt.rdeltas[i + 1];
      const RdX = rt.rdeltas[i];
      const nIn = size(l.input) * R;
      const wantDX = i >= stop;
      const rxZero = i < first || (i === 0 && !contextMoves) || (i === first && i > 0);
      switch (l.spec.kind) {
        case 'dense':
        case 'conv2d': {
          const F = l.output.c;
          const M = (size(l.output) * R) / F;
          const K = l.weights / F;
          const A = l.spec.kind === 'conv2d' ? tape.cols[i] : X;
          // H's entries of this layer: R(A)ᵀ δ + Aᵀ R(δ); the bias: Σ R(δ).
          if (!rxZero) gemmAtB(hv, l.offset, l.spec.kind === 'conv2d' ? rt.rcols[i] : RX, M, K, dY, F);
          gemmAtB(hv, l.offset, A, M, K, RdY, F);
          sumRows(hv, l.offset + l.weights, RdY, M, F);
          if (!wantDX) break;
          if (l.spec.kind === 'dense') {
            this.productT(RdX, RdY, M, F, w, l.offset, K, false);
            if (i >= first) this.productT(RdX, dY, M, F, d, l.offset, K, true);
          } else {
            const dcols = this.dcolsFor(M * K);
            this.productT(dcols, RdY, M, F, w, l.offset, K, false);
            if (i >= first) this.productT(dcols, dY, M, F, d, l.offset, K, true);
            col2im(l, dcols, R, RdX);
          }
          break;
        }
        case 'norm': {
          const Cc = l.input.c;
          const m = nIn / Cc;
          const n = tape.acts[i + 1];
          const sd = tape.sd[i];
          const kappa = tape.kappa[i];
          const delta = tape.deltas[i];
          applyJ(RdX, RdY, n, sd, m, Cc, this.unit, this.unit2);
          if (i >= first) {
            const rn = rt.racts[i + 1];
            const rho = rt.rho[i];
            const tau = this.unit3;
            channelMean(tau, dY, rn, m, Cc);
            for (let j = 0; j < m; j++) {
              for (let c = 0; c < Cc; c++) {
                const k = j * Cc + c;
                RdX[k] -= ((rho[c] * delta[k]) + rn[k] * kappa[c] + n[k] * tau[c]) / sd[c];
              }
            }
          }
          break;
        }
        default:
          linearMap(l, X, tape.argmax[i], RdY, RdX, R, true);
      }
    }
    if (C > 0) {
      // φ's entries: Σ over rows and positions of R(δ_0)'s context channels.
      const Cin = this.net.input.c;
      const m = R * this.net.input.h * this.net.input.w;
      const rd0 = rt.rdeltas[0];
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let j = 0; j < m; j++) s += rd0[j * Cin + Cin - C + c];
        hv[params + c] = s;
      }
    }
  }

  /** v ← v − α·H(pt)·(M ⊙ v) in place, M the adapted set (every entry, φ alone, or the head). */
  hvpStep(pt: TaskPoint, tape: NetTape, v: Float64Array, vOff: number, alpha: number, mask: AdaptedSet): void {
    const { params, context: C, vector } = this.layout;
    const d = this.dir;
    d.fill(0, 0, vector);
    let first = 0;
    if (mask === 'all') {
      for (let k = 0; k < params + C; k++) d[k] = v[vOff + k];
    } else if (mask === 'context') {
      for (let c = 0; c < C; c++) d[params + c] = v[vOff + params + c];
    } else {
      first = this.headLayer();
      const l = this.net.layers[first];
      for (let k = l.offset; k < l.offset + l.count; k++) d[k] = v[vOff + k];
    }
    this.hvpOf(pt, tape, d, this.hv, first);
    for (let k = 0; k < params + C; k++) v[vOff + k] -= alpha * this.hv[k];
  }

  hvpStepScaled(pt: TaskPoint, tape: NetTape, v: Float64Array, vOff: number, stepSizes: Float32Array, aOff: number, direction: Float64Array): void {
    const { params, vector } = this.layout;
    for (let k = 0; k < params; k++) direction[k] = stepSizes[aOff + k] * v[vOff + k];
    direction.fill(0, params, vector);
    this.hvpOf(pt, tape, direction, this.hv, 0);
    for (let k = 0; k < params; k++) v[vOff + k] -= this.hv[k];
  }

  // ---- One-call operations (attacks, scoring, tests) ---------------------------------------------

  /** Mean loss and metric at P[pOff …] on `rows`; with `grad`, the gradient over the whole vector. */
  lossGrad(P: Float32Array, pOff: number, rows: TaskRows, grad: Float64Array | null, gOff = 0): { loss: number; metric: number } {
    const pt = this.pointAt(P, pOff);
    const tape = this.tape('call', rows.rows);
    this.lossAndDeltas(pt, rows, tape, grad !== null);
    if (grad) this.gradientInto(pt, tape, grad, gOff);
    return { loss: tape.lossSum / scoredRows(rows), metric: tape.metricSum / scoredRows(rows) };
  }

  /** out = H·v at P[pOff …] on `rows` (v over the whole vector). */
  hvp(P: Float32Array, pOff: number, rows: TaskRows, v: Float64Array, out: Float64Array): void {
    const pt = this.pointAt(P, pOff);
    const tape = this.tape('call', rows.rows);
    this.lossAndDeltas(pt, rows, tape, true);
    const d = this.dir;
    d.set(v.subarray(0, this.layout.vector));
    this.hvpOf(pt, tape, d, out, 0);
  }

  /** out[r·D + d] = ∂ℓ_r/∂x_r[d], row r's own loss (what FGSM and PGD take the sign of). */
  inputGrad(P: Float32Array, pOff: number, rows: TaskRows, out: Float64Array, _float32 = false): void {
    const pt = this.pointAt(P, pOff);
    const tape = this.tape('call', rows.rows);
    this.load(pt);
    this.input(rows, tape);
    const L = this.net.layers.length;
    this.forwardLayers(tape, 0, L);
    this.loss(rows, tape, 1);
    this.backwardLayers(tape, L, 0);
    const { dim: D, context: C } = this.layout;
    const d0 = tape.deltas[0];
    if (C === 0) {
      out.set(d0.subarray(0, rows.rows * D));
      return;
    }
    const positions = this.net.input.h * this.net.input.w;
    const Cin = this.net.input.c;
    const dataC = Cin - C;
    for (let r = 0; r < rows.rows; r++) {
      for (let q = 0; q < positions; q++) for (let c = 0; c < dataC; c++) out[r * D + q * dataC + c] = d0[(r * positions + q) * Cin + c];
    }
  }
}

let cached: { layout: NetModelLayout; ws: NetWorkspace } | null = null;
let cachedKey = '';

/** This thread's workspace of the layout (rebuilt when the layout changes). */
export function netWorkspace(layout: NetModelLayout): NetWorkspace {
  if (cached?.layout === layout) return cached.ws;
  const key = JSON.stringify([layout.net.input, layout.net.layers.map((l) => l.spec), layout.net.loss, layout.dim, layout.context]);
  if (cachedKey !== key || !cached) {
    cached = { layout, ws: new NetWorkspace(layout) };
    cachedKey = key;
  } else {
    cached.layout = layout;
  }
  return cached.ws;
}
