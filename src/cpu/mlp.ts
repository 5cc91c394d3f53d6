// A plain float64 reference of the MLP model (../shared/SPEC.md "Neural models") for ONE task: forward,
// mean softmax cross-entropy with its gradient, the exact Hessian-vector product (Pearlmutter's
// R-operator) and the per-row input gradient, over the per-task vector of src/models/mlp.ts
// ([W_1 | b_1 | … | W_L | b_L | φ | pad]). It is written layer by layer with clear loops and owes
// nothing to the GPU kernels' decomposition, so that GPU-vs-CPU tests compare two implementations.
//
// Conventions: activations are rows × width, row-major; W_l[i·h_l + j] maps input i to unit j; the
// input of layer 1 is [x_r | φ] (φ = the C context floats of the vector, C may be 0); relu'(z) = [z > 0]
// (as the GPU masks it); labels are class indices stored as floats.
//
// Per-task normalisation (layout.norm, SPEC "Neural models"): a hidden layer's pre-activation z is
// normalised per unit over the rows of the set, n = (z − μ)/s with s = √(σ² + ε), and a = relu(n). Its
// Jacobian J = (I − 11ᵀ/m − n nᵀ/m)/s is symmetric, so the backward is δ_z = J g (g = ∂/∂n) and the
// R-forward R(n) = J R(z). The R-backward adds the derivative of J itself:
//   R(δ_z) = J R(g) − (ρ/s) δ_z − (R(n) κ + n τ)/s,  ρ = mean(n R(z)) = R(s), κ = mean(g n), τ = mean(g R(n)).
// Row-coupled: the loss of one row depends on every row of the set.
import { TASK_NORM_EPS, type MlpLayout } from '../models/mlp.js';

export type Floats = Float32Array | Float64Array;

/** The rows of one task: row r is x[xOff + r·xStride … + D), its label y[yOff + r]. */
export interface MlpRows {
  x: Floats;
  xOff: number;
  xStride: number;
  y: Floats;
  yOff: number;
  rows: number;
}

/** Activations of one forward pass (and the buffers of the backward and R passes), reused across calls
 * of the same shape: the CPU engine calls these functions thousands of times per meta-iteration. */
interface Tape {
  rows: number;
  /** a[0]: the inputs [x | φ] (rows × h_0); a[l]: relu(z_l) for 0 < l < L (a[L] unused). */
  a: Float64Array[];
  /** z[l]: pre-activations of layer l (index 0 unused). */
  z: Float64Array[];
  /** pre[l]: what the ReLU of hidden layer l sees: n[l] with per-task normalisation, else z[l] itself. */
  pre: Float64Array[];
  /** With normalisation: n[l] = (z − μ)/s, g[l] = ∂/∂n, and per unit s, κ = mean(g n), ρ = mean(n R(z)); R(n). */
  n: Float64Array[];
  g: Float64Array[];
  sd: Float64Array[];
  kappa: Float64Array[];
  rho: Float64Array[];
  rn: Float64Array[];
  /** delta[l]: ∂(loss)/∂z_l; delta[0]: ∂/∂(inputs) where wanted. */
  delta: Float64Array[];
  /** R-operator twins of a, z and delta (Hessian-vector products only). */
  ra: Float64Array[];
  rz: Float64Array[];
  rdelta: Float64Array[];
  /** Softmax probabilities of the head (rows × N). */
  prob: Float64Array;
  /** A per-unit accumulator (max width). */
  acc: Float64Array;
}

let cachedTape: { key: string; tape: Tape } | null = null;

function tapeFor(layout: MlpLayout, rows: number): Tape {
  const key = `${layout.widths.join(',')}:${rows}:${layout.norm}`;
  if (cachedTape?.key === key) return cachedTape.tape;
  const make = () => layout.widths.map((h) => new Float64Array(rows * h));
  const perUnit = () => layout.widths.map((h) => new Float64Array(h));
  const z = make();
  const n = make();
  const tape: Tape = {
    rows, a: make(), z, delta: make(), ra: make(), rz: make(), rdelta: make(),
    pre: layout.norm ? n : z, n, g: make(), sd: perUnit(), kappa: perUnit(), rho: perUnit(), rn: make(),
    prob: new Float64Array(rows * layout.classes), acc: new Float64Array(Math.max(...layout.widths)),
  };
  cachedTape = { key, tape };
  return tape;
}

/** Float32 rounding where the GPU stores a value (attack mode), or none. */
const identity = (v: number) => v;

/** z_l = a_{l−1} W_l + b_l and a_l = relu(z_l) for layers 1 … upTo (default: every layer); a_0 = [x_r | φ]. */
function forward(layout: MlpLayout, params: Floats, pOff: number, rows: MlpRows, tape: Tape, round: (v: number) => number, upTo = layout.layers.length): void {
  const { dim: D, context: C, inputs } = layout;
  const L = layout.layers.length;
  const a0 = tape.a[0];
  for (let r = 0; r < rows.rows; r++) {
    for (let d = 0; d < D; d++) a0[r * inputs + d] = rows.x[rows.xOff + r * rows.xStride + d];
    for (let c = 0; c < C; c++) a0[r * inputs + D + c] = params[pOff + layout.contextOffset + c];
  }
  for (let l = 1; l <= upTo; l++) {
    const { inputs: hin, outputs: hout, w, b } = layout.layers[l - 1];
    const input = tape.a[l - 1];
    const z = tape.z[l];
    for (let r = 0; r < rows.rows; r++) {
      for (let j = 0; j < hout; j++) z[r * hout + j] = params[pOff + b + j];
      for (let i = 0; i < hin; i++) {
        const ai = input[r * hin + i];
        if (ai === 0) continue;  // ReLU zeros and blank pixels: exact to skip
        const wRow = pOff + w + i * hout;
        for (let j = 0; j < hout; j++) z[r * hout + j] += ai * params[wRow + j];
      }
      for (let j = 0; j < hout; j++) z[r * hout + j] = round(z[r * hout + j]);
    }
    if (l === L) continue;
    if (layout.norm) normalise(rows.rows, hout, z, tape.n[l], tape.sd[l], round);
    const pre = tape.pre[l];
    for (let k = 0; k < rows.rows * hout; k++) tape.a[l][k] = pre[k] > 0 ? pre[k] : 0;
  }
}

/** n[r, j] = (z[r, j] − μ_j)/s_j over the m rows, s_j = √(σ²_j + ε) (two-pass mean and variance). */
function normalise(m: number, h: number, z: Float64Array, n: Float64Array, sd: Float64Array, round: (v: number) => number): void {
  for (let j = 0; j < h; j++) {
    let mean = 0;
    for (let r = 0; r < m; r++) mean += z[r * h + j];
    mean /= m;
    let variance = 0;
    for (let r = 0; r < m; r++) variance += (z[r * h + j] - mean) ** 2;
    variance /= m;
    const s = Math.sqrt(variance + TASK_NORM_EPS);
    sd[j] = s;
    for (let r = 0; r < m; r++) n[r * h + j] = round((z[r * h + j] - mean) / s);
  }
}

/** out = J u per unit: (u − mean(u) − n·mean(u n))/s over the m rows; returns nothing, writes mean(u n) to dot. */
function normJacobian(m: number, h: number, n: Float64Array, sd: Float64Array, u: Float64Array, out: Float64Array, dot: Float64Array | null, round: (v: number) => number): void {
  for (let j = 0; j < h; j++) {
    let mean = 0;
    let un = 0;
    for (let r = 0; r < m; r++) { mean += u[r * h + j]; un += u[r * h + j] * n[r * h + j]; }
    mean /= m;
    un /= m;
    if (dot) dot[j] = un;
    for (let r = 0; r < m; r++) out[r * h + j] = round((u[r * h + j] - mean - n[r * h + j] * un) / sd[j]);
  }
}

/** Softmax of the head into tape.prob; δ_L = scale·(p − onehot(y)); returns summed loss and hits. */
function softmaxHead(layout: MlpLayout, rows: MlpRows, tape: Tape, scale: number, round: (v: number) => number): { lossSum: number; hits: number } {
  const N = layout.classes;
  const zL = tape.z[layout.layers.length];
  const deltaL = tape.delta[layout.layers.length];
  let lossSum = 0;
  let hits = 0;
  for (let r = 0; r < rows.rows; r++) {
    const label = rows.y[rows.yOff + r];
    let argmax = 0;
    for (let c = 1; c < N; c++) if (zL[r * N + c] > zL[r * N + argmax]) argmax = c;  // strict: smallest index of the max
    const max = zL[r * N + argmax];
    let sum = 0;
    for (let c = 0; c < N; c++) sum += Math.exp(zL[r * N + c] - max);
    // ℓ = logsumexp(z) − z_y with the max subtracted: finite for logits of 1e4.
    lossSum += max + Math.log(sum) - zL[r * N + label];
    if (argmax === label) hits++;
    for (let c = 0; c < N; c++) {
      const p = round(Math.exp(zL[r * N + c] - max) / sum);
      tape.prob[r * N + c] = p;
      deltaL[r * N + c] = round(scale * (p - (c === label ? 1 : 0)));
    }
  }
  return { lossSum, hits };
}

/** δ_{l−1} = (δ_l W_lᵀ) ⊙ relu'(z_{l−1}) for l = L … 2 (into tape.delta). */
function backwardHidden(layout: MlpLayout, params: Floats, pOff: number, n: number, tape: Tape, round: (v: number) => number): void {
  for (let l = layout.layers.length; l >= 2; l--) {
    const { inputs: hin, outputs: hout, w } = layout.layers[l - 1];
    const delta = tape.delta[l];
    // ∂/∂(what the ReLU saw): δ itself without normalisation, g (then δ = J g) with it.
    const below = layout.norm ? tape.g[l - 1] : tape.delta[l - 1];
    const preBelow = tape.pre[l - 1];
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < hin; i++) {
        if (!(preBelow[r * hin + i] > 0)) { below[r * hin + i] = 0; continue; }
        const wRow = pOff + w + i * hout;
        let s = 0;
        for (let j = 0; j < hout; j++) s += delta[r * hout + j] * params[wRow + j];
        below[r * hin + i] = round(s);
      }
    }
    if (layout.norm) normJacobian(n, hin, tape.n[l - 1], tape.sd[l - 1], below, tape.delta[l - 1], tape.kappa[l - 1], round);
  }
}

/** δ_0[r, i] = Σ_j δ_1[r, j] W_1[i, j] for inputs i in [lo, hi) (no mask: the input is not a ReLU). */
function backwardInputs(layout: MlpLayout, params: Floats, pOff: number, n: number, tape: Tape, lo: number, hi: number, round: (v: number) => number): void {
  const { inputs: hin, outputs: hout, w } = layout.layers[0];
  for (let r = 0; r < n; r++) {
    for (let i = lo; i < hi; i++) {
      const wRow = pOff + w + i * hout;
      let s = 0;
      for (let j = 0; j < hout; j++) s += tape.delta[1][r * hout + j] * params[wRow + j];
      tape.delta[0][r * hin + i] = round(s);
    }
  }
}

/** out[w + i·h_l + j] = Σ_r first[r,i]·second[r,j] (+ Σ_r first2[r,i]·second2[r,j]); out[b + j] = Σ_r bias[r,j]. */
function layerGrad(
  out: Floats, outOff: number, layer: { inputs: number; outputs: number; w: number; b: number }, n: number, acc: Float64Array,
  first: Float64Array, second: Float64Array, bias: Float64Array, extra?: { first: Float64Array; second: Float64Array },
): void {
  const { inputs: hin, outputs: hout, w, b } = layer;
  for (let i = 0; i < hin; i++) {
    acc.fill(0, 0, hout);
    for (let r = 0; r < n; r++) {
      const f = first[r * hin + i];
      if (f !== 0) for (let j = 0; j < hout; j++) acc[j] += f * second[r * hout + j];
      if (extra) {
        const f2 = extra.first[r * hin + i];
        if (f2 !== 0) for (let j = 0; j < hout; j++) acc[j] += f2 * extra.second[r * hout + j];
      }
    }
    for (let j = 0; j < hout; j++) out[outOff + w + i * hout + j] = acc[j];
  }
  acc.fill(0, 0, hout);
  for (let r = 0; r < n; r++) for (let j = 0; j < hout; j++) acc[j] += bias[r * hout + j];
  for (let j = 0; j < hout; j++) out[outOff + b + j] = acc[j];
}

/** out[φ_c] = Σ_r rows[r, D + c], and the pad entries 0. */
function contextGrad(layout: MlpLayout, out: Floats, outOff: number, n: number, rowsOfInputs: Float64Array): void {
  const { dim: D, context: C, inputs } = layout;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let r = 0; r < n; r++) s += rowsOfInputs[r * inputs + D + c];
    out[outOff + layout.contextOffset + c] = s;
  }
  out.fill(0, outOff + layout.contextOffset + C, outOff + layout.vector);
}

/** What the head sees: a_{L−1} of every row (rows × h_{L−1}; the inputs [x | φ] without hidden layers),
 * normalised over these rows with layout.norm. */
export function mlpBodyFeatures(layout: MlpLayout, params: Floats, pOff: number, rows: MlpRows): Float64Array {
  const tape = tapeFor(layout, rows.rows);
  const L = layout.layers.length;
  forward(layout, params, pOff, rows, tape, identity, L - 1);
  return tape.a[L - 1].slice(0, rows.rows * layout.widths[L - 1]);
}

/** Softmax probabilities (rows × N) of every row of x: per-row predictions (the engines report only
 * accuracies). With layout.norm the rows are one set. */
export function mlpProbabilities(layout: MlpLayout, params: Floats, pOff: number, x: Floats, xOff: number, rows: number): Float64Array {
  const set: MlpRows = { x, xOff, xStride: layout.dim, y: new Float32Array(rows), yOff: 0, rows };
  const tape = tapeFor(layout, rows);
  forward(layout, params, pOff, set, tape, identity);
  softmaxHead(layout, set, tape, 1 / rows, identity);
  return tape.prob.slice(0, rows * layout.classes);
}

/** Mean softmax cross-entropy and accuracy (argmax = the smallest index of the largest logit) of the
 * params at pOff on `rows`; with `grad`, its gradient over the whole per-task vector (θ and φ; pad
 * entries 0) written to grad[gOff … + vector). */
export function mlpLossGrad(layout: MlpLayout, params: Floats, pOff: number, rows: MlpRows, grad: Floats | null, gOff = 0): { loss: number; accuracy: number } {
  const n = rows.rows;
  const tape = tapeFor(layout, n);
  forward(layout, params, pOff, rows, tape, identity);
  const { lossSum, hits } = softmaxHead(layout, rows, tape, 1 / n, identity);
  if (grad) {
    backwardHidden(layout, params, pOff, n, tape, identity);
    for (let l = 1; l <= layout.layers.length; l++) layerGrad(grad, gOff, layout.layers[l - 1], n, tape.acc, tape.a[l - 1], tape.delta[l], tape.delta[l]);
    backwardInputs(layout, params, pOff, n, tape, layout.dim, layout.inputs, identity);
    contextGrad(layout, grad, gOff, n, tape.delta[0]);
  }
  return { loss: lossSum / n, accuracy: hits / n };
}

/** out[oOff … + vector) = H·v, H the Hessian of the mean loss over the whole per-task vector (θ and φ),
 * v at v[vOff …]: Pearlmutter's R-operator (SPEC.md), with R(inputs) = [0 | v_φ]. Pad entries 0. */
export function mlpHvp(layout: MlpLayout, params: Floats, pOff: number, rows: MlpRows, v: Floats, vOff: number, out: Floats, oOff = 0): void {
  const n = rows.rows;
  const L = layout.layers.length;
  const N = layout.classes;
  const { dim: D, context: C, inputs } = layout;
  const tape = tapeFor(layout, n);
  forward(layout, params, pOff, rows, tape, identity);
  softmaxHead(layout, rows, tape, 1 / n, identity);
  backwardHidden(layout, params, pOff, n, tape, identity);

  // R-forward. R(a_0) = [0 | v_φ]; R(z_l) = R(a_{l−1}) W_l + a_{l−1} V_l + c_l; R(a_l) = relu'(z_l) ⊙ R(z_l).
  const ra0 = tape.ra[0];
  for (let r = 0; r < n; r++) {
    ra0.fill(0, r * inputs, r * inputs + D);
    for (let c = 0; c < C; c++) ra0[r * inputs + D + c] = v[vOff + layout.contextOffset + c];
  }
  for (let l = 1; l <= L; l++) {
    const { inputs: hin, outputs: hout, w, b } = layout.layers[l - 1];
    const input = tape.a[l - 1];
    const rInput = tape.ra[l - 1];
    const rz = tape.rz[l];
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < hout; j++) rz[r * hout + j] = v[vOff + b + j];
      for (let i = 0; i < hin; i++) {
        const ai = input[r * hin + i];
        const rai = rInput[r * hin + i];
        if (ai === 0 && rai === 0) continue;
        for (let j = 0; j < hout; j++) rz[r * hout + j] += rai * params[pOff + w + i * hout + j] + ai * v[vOff + w + i * hout + j];
      }
    }
    if (l === L) continue;
    // R(n) = J R(z) (ρ = mean(n R(z)) kept for the R-backward); R(a) = relu'(pre) ⊙ R(pre).
    if (layout.norm) normJacobian(n, hout, tape.n[l], tape.sd[l], rz, tape.rn[l], tape.rho[l], identity);
    const rPre = layout.norm ? tape.rn[l] : rz;
    for (let k = 0; k < n * hout; k++) tape.ra[l][k] = tape.pre[l][k] > 0 ? rPre[k] : 0;
  }

  // R-backward. R(δ_L) = (diag(p) − p pᵀ) R(z_L) / rows; R(δ_{l−1}) = (R(δ_l) W_lᵀ + δ_l V_lᵀ) ⊙ relu'(z_{l−1}).
  const rzL = tape.rz[L];
  const rdL = tape.rdelta[L];
  for (let r = 0; r < n; r++) {
    let mean = 0;
    for (let c = 0; c < N; c++) mean += tape.prob[r * N + c] * rzL[r * N + c];
    for (let c = 0; c < N; c++) rdL[r * N + c] = (tape.prob[r * N + c] * (rzL[r * N + c] - mean)) / n;
  }
  const rBack = (l: number, i: number, r: number): number => {
    const { outputs: hout, w } = layout.layers[l - 1];
    let s = 0;
    for (let j = 0; j < hout; j++) {
      s += tape.rdelta[l][r * hout + j] * params[pOff + w + i * hout + j] + tape.delta[l][r * hout + j] * v[vOff + w + i * hout + j];
    }
    return s;
  };
  for (let l = L; l >= 2; l--) {
    const hin = layout.layers[l - 1].inputs;
    // R(∂/∂pre); with normalisation that is R(g), and R(δ_z) = J R(g) − (ρ/s) δ_z − (R(n) κ + n τ)/s.
    const rg = layout.norm ? tape.rz[l - 1] : tape.rdelta[l - 1];  // R(z) of layer l−1 is no longer needed
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < hin; i++) rg[r * hin + i] = tape.pre[l - 1][r * hin + i] > 0 ? rBack(l, i, r) : 0;
    }
    if (layout.norm) {
      const k = l - 1;
      const rd = tape.rdelta[k];
      normJacobian(n, hin, tape.n[k], tape.sd[k], rg, rd, null, identity);
      for (let i = 0; i < hin; i++) {
        let tau = 0;
        for (let r = 0; r < n; r++) tau += tape.g[k][r * hin + i] * tape.rn[k][r * hin + i];
        tau /= n;
        const s = tape.sd[k][i];
        for (let r = 0; r < n; r++) {
          const at = r * hin + i;
          rd[at] += -(tape.rho[k][i] / s) * tape.delta[k][at] - (tape.rn[k][at] * tape.kappa[k][i] + tape.n[k][at] * tau) / s;
        }
      }
    }
  }
  // φ's rows of R(δ_0), for (Hv)_φ = Σ_r R(δ_0)[r, D:].
  for (let r = 0; r < n; r++) for (let i = D; i < inputs; i++) tape.rdelta[0][r * inputs + i] = rBack(1, i, r);

  // (Hv)_{W_l} = R(a_{l−1})ᵀ δ_l + a_{l−1}ᵀ R(δ_l); (Hv)_{b_l} = Σ_r R(δ_l).
  for (let l = 1; l <= L; l++) {
    layerGrad(out, oOff, layout.layers[l - 1], n, tape.acc, tape.a[l - 1], tape.rdelta[l], tape.rdelta[l], { first: tape.ra[l - 1], second: tape.delta[l] });
  }
  contextGrad(layout, out, oOff, n, tape.rdelta[0]);
}

/** out[r·D + d] = ∂(Σ_r' ℓ_r')/∂x_r[d], the gradient of the summed loss of the set (not divided by rows)
 * with respect to row r's D data features: row r's own loss alone without normalisation, every row's
 * with it (the rows share μ and s). float32: round every value where the GPU stores one (logits, probabilities, each
 * δ) so that sign decisions agree with it (a row whose probability rounds to its one-hot target gets a
 * gradient of exactly 0 on both backends). */
export function mlpInputGrad(layout: MlpLayout, params: Floats, pOff: number, rows: MlpRows, out: Floats, options: { float32?: boolean } = {}): void {
  const n = rows.rows;
  const round = options.float32 ? Math.fround : identity;
  const tape = tapeFor(layout, n);
  forward(layout, params, pOff, rows, tape, round);
  softmaxHead(layout, rows, tape, 1, round);
  backwardHidden(layout, params, pOff, n, tape, round);
  backwardInputs(layout, params, pOff, n, tape, 0, layout.dim, round);
  const { dim: D, inputs } = layout;
  for (let r = 0; r < n; r++) for (let d = 0; d < D; d++) out[r * D + d] = tape.delta[0][r * inputs + d];
}
