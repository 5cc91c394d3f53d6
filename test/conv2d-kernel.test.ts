// Issue 20: the conv2d kernel (shaders/conv2d.wgsl) against its twin, the float64 oracle's conv2d
// (src/cpu/net/conv2d.ts), on the software adapter: forward (with and without bias, accumulating),
// input gradient and weight gradient, batched over tasks with per-task weights and with one shared θ,
// over strides, paddings and channel counts. Tolerance: abs 1e-5 + rel 1e-4 (float32 sums of ≤ a few
// hundred products against float64).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { netLayout, type LayerLayout } from '../src/models/layers.js';
import { conv2d as oracle } from '../src/cpu/net/conv2d.js';
import { Conv2dKernel } from '../src/kernels/conv2d.js';
import { createBuffer, readFloats } from '../src/gpu/resources.js';
import { assertClose, randomArray, submit, upload, withGpu } from './helpers.js';

const CASES = [
  { name: '6×6×2 → 3 filters, 3×3, stride 2, padding 1', input: { h: 6, w: 6, c: 2 }, conv: { filters: 3, size: 3, stride: 2, padding: 1 } },
  { name: '5×4×3 → 4 filters, 3×3, stride 1, padding 1', input: { h: 5, w: 4, c: 3 }, conv: { filters: 4, size: 3, stride: 1, padding: 1 } },
  { name: '7×7×1 → 2 filters, 2×2, stride 2, no padding', input: { h: 7, w: 7, c: 1 }, conv: { filters: 2, size: 2, stride: 2, padding: 0 } },
  { name: "28×28×1 → 8 filters, Conv-4's first layer", input: { h: 28, w: 28, c: 1 }, conv: { filters: 8, size: 3, stride: 2, padding: 1 } },
];

for (const c of CASES) {
  test(`conv2d kernel = float64 twin: ${c.name}; per-task and shared weights; forward, input gradient, weight gradient`, () => withGpu(async (acq) => {
    // A dense head after the conv so that the layer sits at a non-zero offset of nothing else: the conv
    // is layer 0 at offset 0 here; the per-task vector carries the head's floats after it (stride > count).
    const layout = netLayout(c.input, [{ kind: 'conv2d', ...c.conv }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' });
    const layer: LayerLayout = layout.layers[0];
    const [T, rows] = [3, 4];
    const inF = c.input.h * c.input.w * c.input.c;
    const outF = layer.output.h * layer.output.w * layer.output.c;
    const stride = layout.params;
    const x = randomArray(T * rows * inF, 3, 1);
    const params = randomArray(T * stride, 3, 2, -0.5, 0.5);
    const dy = randomArray(T * rows * outF, 3, 3);
    const kernel = new Conv2dKernel(acq.device);
    for (const shared of [false, true]) {
      const paramStride = shared ? 0 : stride;
      const xb = upload(acq, 'x', x);
      const pb = upload(acq, 'params', params);
      const dyb = upload(acq, 'dy', dy);
      const yb = createBuffer(acq.device, 'y', T * rows * outF);
      const ya = upload(acq, 'y-acc', new Float32Array(T * rows * outF).fill(1));
      const dxb = createBuffer(acq.device, 'dx', T * rows * inF);
      const gb = createBuffer(acq.device, 'grad', T * stride);
      const shape = { tasks: T, rows, layer };
      submit(acq, (pass) => {
        kernel.forward({ x: xb, params: pb, y: yb }, shape, { paramStride }, 'y').encode(pass);
        kernel.forward({ x: xb, params: pb, y: ya }, shape, { paramStride, accumulate: true, bias: false }, 'y-acc').encode(pass);
        kernel.inputGrad({ dy: dyb, params: pb, dx: dxb }, shape, { paramStride }, 'dx').encode(pass);
        kernel.weightGrad({ x: xb, dy: dyb, grad: gb }, shape, { paramStride, gradStride: stride }, 'grad').encode(pass);
      });
      const [y, yAcc, dx, grad] = await Promise.all([
        readFloats(acq.device, yb, T * rows * outF), readFloats(acq.device, ya, T * rows * outF),
        readFloats(acq.device, dxb, T * rows * inF), readFloats(acq.device, gb, T * stride),
      ]);
      for (let t = 0; t < T; t++) {
        const what = `${shared ? 'shared θ' : 'per-task θ'}, task ${t}`;
        const p = Float64Array.from(params.subarray(t * paramStride, t * paramStride + stride));
        const X = Float64Array.from(x.subarray(t * rows * inF, (t + 1) * rows * inF));
        const dY = Float64Array.from(dy.subarray(t * rows * outF, (t + 1) * rows * outF));
        const Y = oracle.forward(layer, p, X, rows, {});
        assertClose(`${what}: forward`, y.subarray(t * rows * outF, (t + 1) * rows * outF), Y, 1e-5, 1e-4);
        // Accumulating without bias onto ones: 1 + (Y − b).
        const noBias = Y.map((v, i) => 1 + v - p[layer.offset + layer.weights + (i % layer.output.c)]);
        assertClose(`${what}: forward, accumulate, no bias`, yAcc.subarray(t * rows * outF, (t + 1) * rows * outF), noBias, 1e-5, 1e-4);
        assertClose(`${what}: input gradient`, dx.subarray(t * rows * inF, (t + 1) * rows * inF), oracle.backward(layer, p, X, dY, rows, {}), 1e-5, 1e-4);
        const g = new Float64Array(layout.params);
        oracle.weightGrad(layer, X, dY, rows, g);
        assertClose(`${what}: weight and bias gradient`, grad.subarray(t * stride + layer.offset, t * stride + layer.offset + layer.count), g.subarray(layer.offset, layer.offset + layer.count), 1e-5, 1e-4);
      }
      for (const b of [xb, pb, dyb, yb, ya, dxb, gb]) b.destroy();
    }
  }));
}

test('conv2d kernel: a grid folded into y and z covers every output once', () => withGpu(async (acq) => {
  const layout = netLayout({ h: 9, w: 9, c: 2 }, [{ kind: 'conv2d', filters: 5, size: 3, stride: 1, padding: 1 }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' });
  const layer = layout.layers[0];
  const [T, rows] = [2, 3];
  const x = randomArray(T * rows * 162, 4, 1);
  const params = randomArray(T * layout.params, 4, 2);
  const kernel = new Conv2dKernel(acq.device, { maxWorkgroupsPerDimension: 4 });
  const xb = upload(acq, 'x', x);
  const pb = upload(acq, 'params', params);
  const yb = createBuffer(acq.device, 'y', T * rows * 405);
  submit(acq, (pass) => kernel.forward({ x: xb, params: pb, y: yb }, { tasks: T, rows, layer }, { paramStride: layout.params }, 'folded').encode(pass));
  const y = await readFloats(acq.device, yb, T * rows * 405);
  for (let t = 0; t < T; t++) {
    const expected = oracle.forward(layer, Float64Array.from(params.subarray(t * layout.params, (t + 1) * layout.params)), Float64Array.from(x.subarray(t * rows * 162, (t + 1) * rows * 162)), rows, {});
    assertClose(`folded grid, task ${t}`, y.subarray(t * rows * 405, (t + 1) * rows * 405), expected, 1e-5, 1e-4);
  }
  assert.ok(Math.ceil((T * rows * 405) / 64) > 16, 'the grid needed the fold into z (more than 4 × 4 workgroups)');
  for (const b of [xb, pb, yb]) b.destroy();
}));

test.run();
