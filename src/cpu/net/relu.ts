// ReLU, float64 oracle: y = max(x, 0), relu'(x) = [x > 0] (as the GPU masks it). Piecewise linear, so
// its R passes apply the same mask.
import type { LayerOps } from './layer.js';

const masked = (X: Float64Array, a: Float64Array) => a.map((v, i) => (X[i] > 0 ? v : 0));

export const relu: LayerOps = {
  forward: (_l, _p, X) => X.map((v) => (v > 0 ? v : 0)),
  backward: (_l, _p, X, dY) => masked(X, dY),
  weightGrad() { /* no parameters */ },
  rForward: (_l, _p, _v, X, RX) => masked(X, RX),
  rBackward: (_l, _p, _v, X, _RX, _dY, RdY) => masked(X, RdY),
};
