// Issue 20: the parameter-free layer kernels (shaders/pool.wgsl) against their twins, the float64
// oracle's max-pool, mean-pool and ReLU (src/cpu/net/pool.ts, relu.ts): forward, R(x) through the
// forward's argmax, the scatter / spread of δ, ReLU's mask, over odd and even image sizes (floor), several
// channels and every row of every task at once. Every array lives in one tape buffer at its own offset,
// tasks a stride apart with a gap (what the layer-list pass addresses); ties go to the first maximum on
// both (inputs with repeated values test it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { netLayout } from '../src/models/layers.js';
import { maxpool, meanpool } from '../src/cpu/net/pool.js';
import { relu } from '../src/cpu/net/relu.js';
import { PoolKernel } from '../src/kernels/pool.js';
import { createBuffer, readFloats } from '../src/gpu/resources.js';
import { assertClose, randomArray, submit, upload, withGpu } from './helpers.js';

for (const input of [{ h: 4, w: 6, c: 3 }, { h: 5, w: 7, c: 2 }]) {
  test(`pool and ReLU kernels = float64 twin on ${input.h}×${input.w}×${input.c} images: max-pool forward, R gather, δ scatter; mean-pool forward and spread; ReLU mask`, () => withGpu(async (acq) => {
    const [T, rows] = [2, 3];
    const images = T * rows;
    const inF = input.h * input.w * input.c;
    // Values on a coarse grid, so that windows hold equal maxima (and ReLU sees exact zeros).
    const x = randomArray(images * inF, 5, 1).map((v) => Math.round(v * 3) / 3);
    const rx = randomArray(images * inF, 5, 2);
    const max = netLayout(input, [{ kind: 'maxpool' }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' }).layers[0];
    const mean = netLayout(input, [{ kind: 'meanpool' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' }).layers[0];
    const maxF = max.output.h * max.output.w * max.output.c;
    const dy = randomArray(images * maxF, 5, 3);
    const dMean = randomArray(images * input.c, 5, 4);
    // The tape, per task: the named arrays in this order, then a gap of 2 floats; from float 3 on.
    const sizes = { x: inF, rx: inF, y: maxF, ry: maxF, dy: maxF, dx: inF, ym: input.c, dm: input.c, dxm: inF, relu: inF, rrelu: inF };
    const off: Record<string, number> = {};
    let cursor = 3;
    for (const [name, n] of Object.entries(sizes)) { off[name] = cursor; cursor += rows * n; }
    const taskStride = cursor - 3 + 2;
    const tape = new Float32Array(3 + T * taskStride);
    const put = (name: string, a: Float32Array, n: number) => { for (let t = 0; t < T; t++) tape.set(a.subarray(t * rows * n, (t + 1) * rows * n), off[name] + t * taskStride); };
    put('x', x, inF);
    put('rx', rx, inF);
    put('dy', dy, maxF);
    put('dm', dMean, input.c);
    const at = (name: string) => ({ off: off[name], taskStride });
    const kernel = new PoolKernel(acq.device);
    const tb = upload(acq, 'tape', tape);
    const argStride = rows * maxF + 1;  // the choices, a task stride apart with a gap too
    const arg = createBuffer(acq.device, 'arg', 1 + T * argStride);
    const argAt = { off: 1, taskStride: argStride };
    const shape = { tasks: T, rows };
    submit(acq, (pass) => {
      kernel.bind('max_forward', { tape: tb, arg }, max, shape, { input: at('x'), output: at('y'), arg: argAt }, 'max').encode(pass);
      kernel.bind('max_gather', { tape: tb, arg }, max, shape, { input: at('rx'), output: at('ry'), arg: argAt }, 'max-r').encode(pass);
      kernel.bind('max_scatter', { tape: tb, arg }, max, shape, { input: at('dx'), output: at('dy'), arg: argAt }, 'max-back').encode(pass);
      kernel.bind('mean_forward', { tape: tb, arg }, mean, shape, { input: at('x'), output: at('ym'), arg: argAt }, 'mean').encode(pass);
      kernel.bind('mean_spread', { tape: tb, arg }, mean, shape, { input: at('dxm'), output: at('dm'), arg: argAt }, 'mean-back').encode(pass);
      kernel.mask({ tape: tb, arg }, { ...shape, features: inF }, { src: at('x'), gate: at('x'), out: at('relu') }, 'relu').encode(pass);
      kernel.mask({ tape: tb, arg }, { ...shape, features: inF }, { src: at('rx'), gate: at('x'), out: at('rrelu') }, 'relu-r').encode(pass);
    });
    const out = await readFloats(acq.device, tb, tape.length);
    const get = (name: string) => {
      const n = sizes[name as keyof typeof sizes];
      const a = new Float32Array(T * rows * n);
      for (let t = 0; t < T; t++) a.set(out.subarray(off[name] + t * taskStride, off[name] + t * taskStride + rows * n), t * rows * n);
      return a;
    };
    const X = Float64Array.from(x);
    const RX = Float64Array.from(rx);
    const ctx = {};
    const none = new Float64Array(0);
    assertClose('max-pool forward', get('y'), maxpool.forward(max, none, X, images, ctx), 0, 0);
    assertClose('max-pool R(y) through the argmax', get('ry'), maxpool.rForward(max, none, none, X, RX, images, ctx), 0, 0);
    const scattered = maxpool.backward(max, none, X, Float64Array.from(dy), images, ctx);
    assertClose('max-pool δ scattered to the argmax', get('dx'), scattered, 0, 0);
    if (input.h % 2 === 1) assert.ok(scattered.some((v) => v === 0), 'the odd last row gets nothing');
    assertClose('mean-pool forward', get('ym'), meanpool.forward(mean, none, X, images, {}), 1e-6, 1e-5);
    assertClose('mean-pool δ spread', get('dxm'), meanpool.backward(mean, none, X, Float64Array.from(dMean), images, {}), 1e-7, 1e-6);
    assertClose('ReLU forward', get('relu'), relu.forward(max, none, X, images, {}), 0, 0);
    assertClose('ReLU R(y) through the mask of x', get('rrelu'), relu.rForward(max, none, none, X, RX, images, {}), 0, 0);
    assertClose('the gaps and the floats before the tape untouched', [0, 1, 2].map((i) => out[i]).concat(...Array.from({ length: T }, (_, t) => [out[3 + t * taskStride + taskStride - 2], out[3 + t * taskStride + taskStride - 1]])), new Array(3 + 2 * T).fill(0), 0, 0);
    for (const b of [tb, arg]) b.destroy();
  }));
}

test.run();
