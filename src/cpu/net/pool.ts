// Max-pooling (2 × 2, stride 2, floor), global mean-pooling and flatten, float64 oracle. All three are
// linear in their input once max-pool's choice is fixed: max-pool routes δ, R(x) and R(δ) through the
// forward's argmax (the first of equal maxima), mean-pool spreads δ evenly, flatten is the identity on
// the H × W × C row.
import type { LayerLayout } from '../../models/layers.js';
import type { LayerOps } from './layer.js';

const inSize = (l: LayerLayout, rows: number) => rows * l.input.h * l.input.w * l.input.c;

/** The input index each output of a 2 × 2 max-pool takes (forward's choice). */
function argmax(l: LayerLayout, X: Float64Array, rows: number): Int32Array {
  const { h: H, w: W, c: C } = l.input;
  const { h: Ho, w: Wo } = l.output;
  const idx = new Int32Array(rows * Ho * Wo * C);
  for (let r = 0; r < rows; r++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        for (let c = 0; c < C; c++) {
          let best = -1;
          for (let dy = 0; dy < 2; dy++) {
            for (let dx = 0; dx < 2; dx++) {
              const i = r * H * W * C + ((2 * oy + dy) * W + (2 * ox + dx)) * C + c;
              if (best < 0 || X[i] > X[best]) best = i;
            }
          }
          idx[((r * Ho + oy) * Wo + ox) * C + c] = best;
        }
      }
    }
  }
  return idx;
}

const gather = (idx: Int32Array, a: Float64Array) => Float64Array.from(idx, (i) => a[i]);
function scatter(idx: Int32Array, d: Float64Array, size: number): Float64Array {
  const out = new Float64Array(size);
  idx.forEach((i, o) => { out[i] += d[o]; });
  return out;
}

export const maxpool: LayerOps = {
  forward(l, _p, X, rows, ctx) {
    const idx = argmax(l, X, rows);
    ctx.argmax = idx;
    return gather(idx, X);
  },
  backward: (l, _p, _X, dY, rows, ctx) => scatter(ctx.argmax as Int32Array, dY, inSize(l, rows)),
  weightGrad() { /* no parameters */ },
  rForward: (_l, _p, _v, _X, RX, _rows, ctx) => gather(ctx.argmax as Int32Array, RX),
  rBackward: (l, _p, _v, _X, _RX, _dY, RdY, rows, ctx) => scatter(ctx.argmax as Int32Array, RdY, inSize(l, rows)),
};

function mean(l: LayerLayout, X: Float64Array, rows: number): Float64Array {
  const P = l.input.h * l.input.w;
  const C = l.input.c;
  const Y = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) for (let q = 0; q < P; q++) for (let c = 0; c < C; c++) Y[r * C + c] += X[(r * P + q) * C + c] / P;
  return Y;
}

function spread(l: LayerLayout, dY: Float64Array, rows: number): Float64Array {
  const P = l.input.h * l.input.w;
  const C = l.input.c;
  const dX = new Float64Array(rows * P * C);
  for (let r = 0; r < rows; r++) for (let q = 0; q < P; q++) for (let c = 0; c < C; c++) dX[(r * P + q) * C + c] = dY[r * C + c] / P;
  return dX;
}

export const meanpool: LayerOps = {
  forward: (l, _p, X, rows) => mean(l, X, rows),
  backward: (l, _p, _X, dY, rows) => spread(l, dY, rows),
  weightGrad() { /* no parameters */ },
  rForward: (l, _p, _v, _X, RX, rows) => mean(l, RX, rows),
  rBackward: (l, _p, _v, _X, _RX, _dY, RdY, rows) => spread(l, RdY, rows),
};

export const flatten: LayerOps = {
  forward: (_l, _p, X) => X.slice(),
  backward: (_l, _p, _X, dY) => dY.slice(),
  weightGrad() { /* no parameters */ },
  rForward: (_l, _p, _v, _X, RX) => RX.slice(),
  rBackward: (_l, _p, _v, _X, _RX, _dY, RdY) => RdY.slice(),
};
