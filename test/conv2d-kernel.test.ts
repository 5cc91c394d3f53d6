// Issue 20: the conv2d kernel (shaders/conv2d.wgsl) against its twin, the float64 oracle's conv2d
// (src/cpu/net/conv2d.ts), on the software adapter: forward (with and without bias, accumulating),
// input gradient and weight gradient, batched over tasks with per-task weights and with one shared θ,
// over strides, paddings and channel counts. Every array lives in one tape buffer at its own offset,
// tasks a stride apart with a gap, parameters and gradients at non-zero offsets: what the layer-list
// pass will address. Tolerance: abs 1e-5 + rel 1e-4 (float32 sums of ≤ a few hundred products against
// float64).
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
    // The tape, per task: [x | y | y-acc | dy | dx | 3 floats of gap], from float 5 on.
    const [X0, Y0] = [5, 5 + rows * inF];
    const [YA0, DY0] = [Y0 + rows * outF, Y0 + 2 * rows * outF];
    const DX0 = DY0 + rows * outF;
    const taskStride = DX0 - 5 + rows * inF + 3;
    const tape = new Float32Array(5 + T * taskStride);
    for (let t = 0; t < T; t++) {
      tape.set(x.subarray(t * rows * inF, (t + 1) * rows * inF), X0 + t * taskStride);
      tape.fill(1, YA0 + t * taskStride, YA0 + t * taskStride + rows * outF);
      tape.set(dy.subarray(t * rows * outF, (t + 1) * rows * outF), DY0 + t * taskStride);
    }
    const at = (off: number) => ({ off, taskStride });
    const [P0, G0] = [7, 11];  // parameters and gradients after a few floats of something else
    for (const shared of [false, true]) {
      const paramStride = shared ? 0 : stride;
      const tb = upload(acq, 'tape', tape);
      const pb = upload(acq, 'params', Float32Array.from([...new Float32Array(P0), ...params]));
      const gb = createBuffer(acq.device, 'grad', G0 + T * stride);
      const shape = { tasks: T, rows, layer };
      const p = { paramStride, paramOff: P0 };
      submit(acq, (pass) => {
        kernel.forward({ tape: tb, params: pb }, shape, { ...p, x: at(X0), y: at(Y0) }, 'y').encode(pass);
        kernel.forward({ tape: tb, params: pb }, shape, { ...p, accumulate: true, bias: false, x: at(X0), y: at(YA0) }, 'y-acc').encode(pass);
        kernel.inputGrad({ tape: tb, params: pb }, shape, { ...p, dy: at(DY0), dx: at(DX0) }, 'dx').encode(pass);
        kernel.weightGrad({ tape: tb, grad: gb }, shape, { x: at(X0), dy: at(DY0), gradStride: stride, gradOff: G0 }, 'grad').encode(pass);
      });
      const [out, gradAll] = await Promise.all([readFloats(acq.device, tb, tape.length), readFloats(acq.device, gb, G0 + T * stride)]);
      const grad = gradAll.subarray(G0);
      const slice = (off: number, t: number, n: number) => out.subarray(off + t * taskStride, off + t * taskStride + n);
      for (let t = 0; t < T; t++) {
        const what = `${shared ? 'shared θ' : 'per-task θ'}, task ${t}`;
        const pt = Float64Array.from(params.subarray(t * paramStride, t * paramStride + stride));
        const Xt = Float64Array.from(x.subarray(t * rows * inF, (t + 1) * rows * inF));
        const dYt = Float64Array.from(dy.subarray(t * rows * outF, (t + 1) * rows * outF));
        const Y = oracle.forward(layer, pt, Xt, rows, {});
        assertClose(`${what}: forward`, slice(Y0, t, rows * outF), Y, 1e-5, 1e-4);
        // Accumulating without bias onto ones: 1 + (Y − b).
        const noBias = Y.map((v, i) => 1 + v - pt[layer.offset + layer.weights + (i % layer.output.c)]);
        assertClose(`${what}: forward, accumulate, no bias`, slice(YA0, t, rows * outF), noBias, 1e-5, 1e-4);
        assertClose(`${what}: input gradient`, slice(DX0, t, rows * inF), oracle.backward(layer, pt, Xt, dYt, rows, {}), 1e-5, 1e-4);
        const g = new Float64Array(layout.params);
        oracle.weightGrad(layer, Xt, dYt, rows, g);
        assertClose(`${what}: weight and bias gradient`, grad.subarray(t * stride + layer.offset, t * stride + layer.offset + layer.count), g.subarray(layer.offset, layer.offset + layer.count), 1e-5, 1e-4);
        // Nothing outside the written arrays moved: x, dy and the gap are as uploaded.
        assertClose(`${what}: x untouched`, slice(X0, t, rows * inF), tape.subarray(X0 + t * taskStride, X0 + t * taskStride + rows * inF), 0, 0);
        assertClose(`${what}: dy untouched`, slice(DY0, t, rows * outF), tape.subarray(DY0 + t * taskStride, DY0 + t * taskStride + rows * outF), 0, 0);
        assertClose(`${what}: gap untouched`, slice(DX0 + rows * inF, t, 3), [0, 0, 0], 0, 0);
      }
      assertClose('the floats before the tape\'s arrays untouched', out.subarray(0, 5), [0, 0, 0, 0, 0], 0, 0);
      for (const b of [tb, pb, gb]) b.destroy();
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
  // The tape: all tasks' x, then all tasks' y.
  const tb = upload(acq, 'tape', Float32Array.from([...x, ...new Float32Array(T * rows * 405)]));
  const pb = upload(acq, 'params', params);
  submit(acq, (pass) => kernel.forward({ tape: tb, params: pb }, { tasks: T, rows, layer },
    { paramStride: layout.params, x: { off: 0, taskStride: rows * 162 }, y: { off: x.length, taskStride: rows * 405 } }, 'folded').encode(pass));
  const y = (await readFloats(acq.device, tb, x.length + T * rows * 405)).subarray(x.length);
  for (let t = 0; t < T; t++) {
    const expected = oracle.forward(layer, Float64Array.from(params.subarray(t * layout.params, (t + 1) * layout.params)), Float64Array.from(x.subarray(t * rows * 162, (t + 1) * rows * 162)), rows, {});
    assertClose(`folded grid, task ${t}`, y.subarray(t * rows * 405, (t + 1) * rows * 405), expected, 1e-5, 1e-4);
  }
  assert.ok(Math.ceil((T * rows * 405) / 64) > 16, 'the grid needed the fold into z (more than 4 × 4 workgroups)');
  for (const b of [tb, pb]) b.destroy();
}));

test.run();
