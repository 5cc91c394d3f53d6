// conv2d(filters, size k, stride s, padding p), float64 oracle, written as the textbook loops over
// (row, output position, filter tap): out[oy, ox, co] = b[co] + Σ_{ky, kx, ci} W[ky, kx, ci, co] ·
// in[oy·s + ky − p, ox·s + kx − p, ci], zero outside the image. Its backward in X is the transposed
// convolution (the same taps, scattered); its weight gradient correlates the input with δ.
import type { LayerLayout } from '../../models/layers.js';
import { bilinearLayer, type Floats } from './layer.js';

/** Calls visit(inIndex, wIndex, outIndex) for every tap that lands inside the image, of every row. */
function taps(l: LayerLayout, rows: number, visit: (inIndex: number, wIndex: number, outIndex: number) => void): void {
  if (l.spec.kind !== 'conv2d') throw new Error('conv2d: not a conv2d layer');
  const { size: k, stride: s, padding: p } = l.spec;
  const { h: H, w: W, c: C } = l.input;
  const { h: Ho, w: Wo, c: F } = l.output;
  const inRow = H * W * C;
  const outRow = Ho * Wo * F;
  for (let r = 0; r < rows; r++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        for (let ky = 0; ky < k; ky++) {
          const iy = oy * s + ky - p;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < k; kx++) {
            const ix = ox * s + kx - p;
            if (ix < 0 || ix >= W) continue;
            for (let ci = 0; ci < C; ci++) {
              const inIndex = r * inRow + (iy * W + ix) * C + ci;
              const wBase = ((ky * k + kx) * C + ci) * F;
              const outBase = r * outRow + (oy * Wo + ox) * F;
              for (let co = 0; co < F; co++) visit(inIndex, wBase + co, outBase + co);
            }
          }
        }
      }
    }
  }
}

function addBias(l: LayerLayout, b: Floats, bOff: number, rows: number, Y: Float64Array): void {
  const F = l.output.c;
  for (let i = 0; i < rows * l.output.h * l.output.w; i++) for (let co = 0; co < F; co++) Y[i * F + co] += b[bOff + co];
}

export const conv2d = bilinearLayer({
  apply(l, X, w, wOff, bOff, rows, Y) {
    taps(l, rows, (i, wi, o) => { Y[o] += X[i] * w[wOff + wi]; });
    if (bOff >= 0) addBias(l, w, bOff, rows, Y);
  },
  applyT(l, dY, w, wOff, rows, dX) {
    taps(l, rows, (i, wi, o) => { dX[i] += dY[o] * w[wOff + wi]; });
  },
  grad(l, X, dY, rows, g, wOff, bOff) {
    taps(l, rows, (i, wi, o) => { g[wOff + wi] += X[i] * dY[o]; });
    if (bOff >= 0) {
      const F = l.output.c;
      for (let i = 0; i < rows * l.output.h * l.output.w; i++) for (let co = 0; co < F; co++) g[bOff + co] += dY[i * F + co];
    }
  },
});
