// Per-task normalisation, float64 oracle (SPEC "Layers and losses"): per channel c, over the m = rows ×
// positions values of the task's set, n = (z − μ)/s with s = √(σ² + ε) (biased variance), no affine.
// Its Jacobian per channel, J = (I − 11ᵀ/m − n nᵀ/m)/s, is symmetric, so
//   backward:   δ = J g = (g − mean(g) − n·κ)/s,   κ = mean(g n)
//   R-forward:  R(n) = J R(z),                      ρ = mean(n R(z)) = R(s)
//   R-backward: R(δ) = J R(g) − (ρ/s) δ − (R(n) κ + n τ)/s,   τ = mean(g R(n))
// (the same algebra as the MLP's norm in src/cpu/mlp.ts, here per channel over rows and positions).
import { NORM_EPS, type LayerLayout } from '../../models/layers.js';
import type { LayerContext, LayerOps } from './layer.js';

/** Per channel: the mean of a·b over the channel's m values. */
function channelMeans(l: LayerLayout, rows: number, a: Float64Array, b: Float64Array | null): Float64Array {
  const C = l.input.c;
  const m = rows * l.input.h * l.input.w;
  const out = new Float64Array(C);
  for (let i = 0; i < m; i++) for (let c = 0; c < C; c++) out[c] += a[i * C + c] * (b ? b[i * C + c] : 1);
  for (let c = 0; c < C; c++) out[c] /= m;
  return out;
}

/** J·a per channel: (a − mean(a) − n·mean(n a))/s. */
function applyJ(l: LayerLayout, rows: number, n: Float64Array, s: Float64Array, a: Float64Array): Float64Array {
  const C = l.input.c;
  const mean = channelMeans(l, rows, a, null);
  const proj = channelMeans(l, rows, n, a);
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const c = i % C;
    out[i] = (a[i] - mean[c] - n[i] * proj[c]) / s[c];
  }
  return out;
}

export const norm: LayerOps = {
  forward(l, _p, X, rows, ctx) {
    const C = l.input.c;
    const mean = channelMeans(l, rows, X, null);
    const centred = X.map((v, i) => v - mean[i % C]);
    const variance = channelMeans(l, rows, centred, centred);
    const s = variance.map((v) => Math.sqrt(v + NORM_EPS));
    const n = centred.map((v, i) => v / s[i % C]);
    ctx.n = n;
    ctx.s = s;
    return n;
  },
  backward(l, _p, _X, dY, rows, ctx) {
    return applyJ(l, rows, ctx.n as Float64Array, ctx.s as Float64Array, dY);
  },
  weightGrad() { /* no parameters */ },
  rForward(l, _p, _v, _X, RX, rows, ctx) {
    const n = ctx.n as Float64Array;
    const Rn = applyJ(l, rows, n, ctx.s as Float64Array, RX);
    ctx.Rn = Rn;
    ctx.rho = channelMeans(l, rows, n, RX);
    return Rn;
  },
  rBackward(l, _p, _v, _X, _RX, dY, RdY, rows, ctx) {
    const C = l.input.c;
    const n = ctx.n as Float64Array;
    const s = ctx.s as Float64Array;
    const Rn = ctx.Rn as Float64Array;
    const rho = ctx.rho as Float64Array;
    const kappa = channelMeans(l, rows, dY, n);
    const tau = channelMeans(l, rows, dY, Rn);
    const delta = applyJ(l, rows, n, s, dY);
    const out = applyJ(l, rows, n, s, RdY);
    for (let i = 0; i < out.length; i++) {
      const c = i % C;
      out[i] -= (rho[c] / s[c]) * delta[i] + (Rn[i] * kappa[c] + n[i] * tau[c]) / s[c];
    }
    return out;
  },
};

export type { LayerContext };
