// Small nets that exercise every layer kind — conv with stride and padding, norm over rows × positions,
// max-pool, mean-pool, flatten — under both losses: shared by the oracle's and the fast path's tests.
import type { LayerSpec, LossSpec } from '../src/models/layers.js';

export const NETS: Array<{ name: string; input: { h: number; w: number; c: number }; layers: LayerSpec[]; loss: LossSpec }> = [
  {
    name: 'conv(s2,p1) → norm → relu → conv → norm → relu → meanpool → dense(3), softmax-ce',
    input: { h: 6, w: 6, c: 2 },
    layers: [{ kind: 'conv2d', filters: 3, size: 3, stride: 2, padding: 1 }, { kind: 'norm' }, { kind: 'relu' },
      { kind: 'conv2d', filters: 4, size: 3, stride: 1, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'meanpool' }, { kind: 'dense', units: 3 }],
    loss: { kind: 'softmax-ce' },
  },
  {
    name: 'conv(p1) → norm → relu → maxpool → flatten → dense(4), softmax-ce',
    input: { h: 5, w: 5, c: 1 },
    layers: [{ kind: 'conv2d', filters: 3, size: 3, stride: 1, padding: 1 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'maxpool' }, { kind: 'flatten' }, { kind: 'dense', units: 4 }],
    loss: { kind: 'softmax-ce' },
  },
  {
    name: 'dense(6) → relu → dense(5) → norm → relu → dense(1), mse',
    input: { h: 1, w: 1, c: 3 },
    layers: [{ kind: 'dense', units: 6 }, { kind: 'relu' }, { kind: 'dense', units: 5 }, { kind: 'norm' }, { kind: 'relu' }, { kind: 'dense', units: 1 }],
    loss: { kind: 'mse' },
  },
  {
    name: 'conv(s2, no padding) → relu → meanpool → dense(1), mse',
    input: { h: 5, w: 4, c: 2 },
    layers: [{ kind: 'conv2d', filters: 2, size: 2, stride: 2, padding: 0 }, { kind: 'relu' }, { kind: 'meanpool' }, { kind: 'dense', units: 1 }],
    loss: { kind: 'mse' },
  },
];
