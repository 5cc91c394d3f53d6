// Issue 20: the pooling kernels (shaders/pool.wgsl) against their twin, the float64 oracle's max-pool
// and mean-pool (src/cpu/net/pool.ts): forward, R(x) through the forward's argmax, the scatter / spread
// of δ, over odd and even image sizes (floor), several channels and every row of every task at once.
// Ties go to the first maximum on both (inputs with repeated values test it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { netLayout } from '../src/models/layers.js';
import { maxpool, meanpool } from '../src/cpu/net/pool.js';
import { PoolKernel } from '../src/kernels/pool.js';
import { createBuffer, readFloats } from '../src/gpu/resources.js';
import { assertClose, randomArray, submit, upload, withGpu } from './helpers.js';

for (const input of [{ h: 4, w: 6, c: 3 }, { h: 5, w: 7, c: 2 }]) {
  test(`pool kernels = float64 twin on ${input.h}×${input.w}×${input.c} images: max-pool forward, R gather, δ scatter; mean-pool forward and spread`, () => withGpu(async (acq) => {
    const images = 2 * 3;  // tasks × rows
    const inF = input.h * input.w * input.c;
    // Values on a coarse grid, so that windows hold equal maxima.
    const x = randomArray(images * inF, 5, 1).map((v) => Math.round(v * 3) / 3);
    const rx = randomArray(images * inF, 5, 2);
    const max = netLayout(input, [{ kind: 'maxpool' }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' }).layers[0];
    const mean = netLayout(input, [{ kind: 'meanpool' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' }).layers[0];
    const maxF = max.output.h * max.output.w * max.output.c;
    const dy = randomArray(images * maxF, 5, 3);
    const dMean = randomArray(images * input.c, 5, 4);
    const kernel = new PoolKernel(acq.device);
    const [xb, rxb, dyb, dmb] = [upload(acq, 'x', x), upload(acq, 'rx', rx), upload(acq, 'dy', dy), upload(acq, 'dmean', dMean)];
    const arg = createBuffer(acq.device, 'arg', images * maxF);
    const unused = createBuffer(acq.device, 'unused', 4);
    const [y, ry, dx, ym, dxm] = [images * maxF, images * maxF, images * inF, images * input.c, images * inF].map((n, i) => createBuffer(acq.device, `out${i}`, n));
    submit(acq, (pass) => {
      kernel.bind('max_forward', { src: xb, arg, dst: y }, max, images, 'max').encode(pass);
      kernel.bind('max_gather', { src: rxb, arg, dst: ry }, max, images, 'max-r').encode(pass);
      kernel.bind('max_scatter', { src: dyb, arg, dst: dx }, max, images, 'max-back').encode(pass);
      kernel.bind('mean_forward', { src: xb, arg: unused, dst: ym }, mean, images, 'mean').encode(pass);
      kernel.bind('mean_spread', { src: dmb, arg: unused, dst: dxm }, mean, images, 'mean-back').encode(pass);
    });
    const read = (b: GPUBuffer, n: number) => readFloats(acq.device, b, n);
    const X = Float64Array.from(x);
    const ctx = {};
    const none = new Float64Array(0);
    assertClose('max-pool forward', await read(y, images * maxF), maxpool.forward(max, none, X, images, ctx), 0, 0);
    assertClose('max-pool R(y) through the argmax', await read(ry, images * maxF), maxpool.rForward(max, none, none, X, Float64Array.from(rx), images, ctx), 0, 0);
    const scattered = maxpool.backward(max, none, X, Float64Array.from(dy), images, ctx);
    assertClose('max-pool δ scattered to the argmax', await read(dx, images * inF), scattered, 0, 0);
    if (input.h % 2 === 1) assert.ok(scattered.some((v) => v === 0), 'the odd last row gets nothing');
    assertClose('mean-pool forward', await read(ym, images * input.c), meanpool.forward(mean, none, X, images, {}), 1e-6, 1e-5);
    assertClose('mean-pool δ spread', await read(dxm, images * inF), meanpool.backward(mean, none, X, Float64Array.from(dMean), images, {}), 1e-7, 1e-6);
    for (const b of [xb, rxb, dyb, dmb, arg, unused, y, ry, dx, ym, dxm]) b.destroy();
  }));
}

test.run();
