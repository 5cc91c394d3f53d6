// dense(units), float64 oracle: Y[r, j] = b[j] + Σ_i X[r, i] W[i·units + j] (the input row flattened).
import { features } from '../../models/layers.js';
import { bilinearLayer } from './layer.js';

export const dense = bilinearLayer({
  apply(l, X, w, wOff, bOff, rows, Y) {
    const n = features(l.input);
    const m = l.output.c;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < m; j++) {
        let a = bOff >= 0 ? w[bOff + j] : 0;
        for (let i = 0; i < n; i++) a += X[r * n + i] * w[wOff + i * m + j];
        Y[r * m + j] += a;
      }
    }
  },
  applyT(l, dY, w, wOff, rows, dX) {
    const n = features(l.input);
    const m = l.output.c;
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < n; i++) {
        let a = 0;
        for (let j = 0; j < m; j++) a += dY[r * m + j] * w[wOff + i * m + j];
        dX[r * n + i] += a;
      }
    }
  },
  grad(l, X, dY, rows, g, wOff, bOff) {
    const n = features(l.input);
    const m = l.output.c;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < m; j++) {
        const d = dY[r * m + j];
        if (bOff >= 0) g[bOff + j] += d;
        for (let i = 0; i < n; i++) g[wOff + i * m + j] += X[r * n + i] * d;
      }
    }
  },
});
