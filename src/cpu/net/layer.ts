// The operations every layer kind gives the float64 oracle (src/cpu/net/oracle.ts), on the activations
// of one task's set: rows × features, row-major (features in the H × W × C order of src/models/layers.ts).
// Parameters and Hessian-vector directions are whole per-task vectors; a layer reads its own floats at
// `layout.offset`. The R-operator (Pearlmutter 1994) gives exact Hessian-vector products: R(·) is the
// directional derivative along v of everything the forward and backward passes compute.
import type { LayerLayout } from '../../models/layers.js';

export type Floats = Float32Array | Float64Array;

/** What a layer's forward kept for its backward and R passes (max-pool's argmax, norm's n and s, …). */
export type LayerContext = Record<string, Float64Array | Int32Array | number>;

export interface LayerOps {
  /** Y = f(X; θ). */
  forward(l: LayerLayout, p: Floats, X: Float64Array, rows: number, ctx: LayerContext): Float64Array;
  /** ∂/∂X of ⟨dY, Y⟩: the δ handed to the layer below (or the input gradient). */
  backward(l: LayerLayout, p: Floats, X: Float64Array, dY: Float64Array, rows: number, ctx: LayerContext): Float64Array;
  /** Adds ∂/∂θ of ⟨dY, Y⟩ to g[l.offset …] (layers without parameters: nothing). */
  weightGrad(l: LayerLayout, X: Float64Array, dY: Float64Array, rows: number, g: Float64Array): void;
  /** R(Y) = ∂Y/∂X · R(X) + ∂Y/∂θ · v. */
  rForward(l: LayerLayout, p: Floats, v: Floats, X: Float64Array, RX: Float64Array, rows: number, ctx: LayerContext): Float64Array;
  /** R(dX) from R(dY); adds R(∂/∂θ ⟨dY, Y⟩) — the layer's part of H·v — to Hv[l.offset …]. */
  rBackward(l: LayerLayout, p: Floats, v: Floats, X: Float64Array, RX: Float64Array, dY: Float64Array, RdY: Float64Array, rows: number, ctx: LayerContext, Hv: Float64Array): Float64Array;
}

/**
 * A layer whose output is bilinear in (X, θ) plus a bias: dense and conv2d. Given its three linear maps
 * (apply, its transpose in X, its transpose in W), every pass follows from the product rule:
 *   R(Y) = f(R(X); W) + f(X; v_W) + v_b,  R(dX) = fᵀ(R(dY); W) + fᵀ(dY; v_W),
 *   R(g) = g(R(X), dY) + g(X, R(dY)).
 */
export interface Bilinear {
  /** Y (+)= f(X; W at wOff) (+ b at bOff when bOff ≥ 0). */
  apply(l: LayerLayout, X: Float64Array, w: Floats, wOff: number, bOff: number, rows: number, Y: Float64Array): void;
  /** dX += fᵀ(dY; W at wOff). */
  applyT(l: LayerLayout, dY: Float64Array, w: Floats, wOff: number, rows: number, dX: Float64Array): void;
  /** g[wOff …] += ∂/∂W ⟨dY, f(X; W)⟩, g[bOff …] += ∂/∂b. */
  grad(l: LayerLayout, X: Float64Array, dY: Float64Array, rows: number, g: Float64Array, wOff: number, bOff: number): void;
}

export function bilinearLayer(f: Bilinear): LayerOps {
  const size = (l: LayerLayout, rows: number, which: 'input' | 'output') => rows * l[which].h * l[which].w * l[which].c;
  return {
    forward(l, p, X, rows) {
      const Y = new Float64Array(size(l, rows, 'output'));
      f.apply(l, X, p, l.offset, l.offset + l.weights, rows, Y);
      return Y;
    },
    backward(l, p, _X, dY, rows) {
      const dX = new Float64Array(size(l, rows, 'input'));
      f.applyT(l, dY, p, l.offset, rows, dX);
      return dX;
    },
    weightGrad(l, X, dY, rows, g) {
      f.grad(l, X, dY, rows, g, l.offset, l.offset + l.weights);
    },
    rForward(l, p, v, X, RX, rows) {
      const RY = new Float64Array(size(l, rows, 'output'));
      f.apply(l, RX, p, l.offset, -1, rows, RY);
      f.apply(l, X, v, l.offset, l.offset + l.weights, rows, RY);
      return RY;
    },
    rBackward(l, p, v, X, RX, dY, RdY, rows, _ctx, Hv) {
      const RdX = new Float64Array(size(l, rows, 'input'));
      f.applyT(l, RdY, p, l.offset, rows, RdX);
      f.applyT(l, dY, v, l.offset, rows, RdX);
      f.grad(l, RX, dY, rows, Hv, l.offset, -1);
      f.grad(l, X, RdY, rows, Hv, l.offset, l.offset + l.weights);
      return RdX;
    },
  };
}
