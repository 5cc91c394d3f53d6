// Issue 20: per-task normalisation of a conv layer on the GPU is the MLP's task-norm kernel
// (shaders/mlp-task-norm.wgsl) with rows × positions as its rows and channels as its units — the H × W × C
// layout (channel fastest) makes a set of conv activations exactly that matrix. Checked here, all four
// modes (forward with the fused ReLU, backward J·g, R-forward, R-backward), against the float64 oracle's
// norm over rows × positions (src/cpu/net/norm.ts) composed with its ReLU.
import { test } from 'uvu';
import { netLayout } from '../src/models/layers.js';
import { norm } from '../src/cpu/net/norm.js';
import { relu } from '../src/cpu/net/relu.js';
import type { LayerContext } from '../src/cpu/net/layer.js';
import { TaskNormKernel } from '../src/kernels/mlp-task-norm.js';
import { readFloats } from '../src/gpu/resources.js';
import { assertClose, randomArray, submit, upload, withGpu } from './helpers.js';

test('conv norm on the GPU (task-norm kernel over rows × positions) = the float64 oracle, all four modes', () => withGpu(async (acq) => {
  // A 5 × 4 × 3 activation (after a conv): per channel over 6 rows × 20 positions = 120 values.
  const layout = netLayout({ h: 5, w: 4, c: 3 }, [{ kind: 'norm' }, { kind: 'relu' }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' });
  const [T, rows] = [2, 6];
  const C = 3;
  const m = rows * 5 * 4;
  const mC = m * C;
  // Per task: z, n, a, g, δ, R(z), R(n), R(a), R(g), R(δ) (m × C each), then s, κ, ρ (C each).
  const at = { z: 0, n: mC, a: 2 * mC, g: 3 * mC, delta: 4 * mC, rz: 5 * mC, rn: 6 * mC, ra: 7 * mC, rg: 8 * mC, rdelta: 9 * mC, s: 10 * mC, kappa: 10 * mC + C, rho: 10 * mC + 2 * C };
  const stride = 10 * mC + 3 * C;
  const tape = new Float32Array(T * stride);
  for (let t = 0; t < T; t++) {
    tape.set(randomArray(mC, 8 + t, 1, -2, 3), t * stride + at.z);
    tape.set(randomArray(mC, 8 + t, 2), t * stride + at.g);
    tape.set(randomArray(mC, 8 + t, 3), t * stride + at.rz);
    tape.set(randomArray(mC, 8 + t, 4), t * stride + at.rg);
  }
  const buffer = upload(acq, 'tape', tape);
  const kernel = new TaskNormKernel(acq.device);
  const common = { tasks: T, rows: m, units: C, tapeTaskStride: stride, sOff: at.s };
  submit(acq, (pass) => {
    kernel.bind({ tape: buffer }, { ...common, mode: 'forward', inOff: at.z, outOff: at.n, reluOff: at.a }, 'forward').encode(pass);
    kernel.bind({ tape: buffer }, { ...common, mode: 'backward', inOff: at.g, outOff: at.delta, nOff: at.n, kappaOff: at.kappa }, 'backward').encode(pass);
    kernel.bind({ tape: buffer }, { ...common, mode: 'r-forward', inOff: at.rz, outOff: at.rn, reluOff: at.ra, nOff: at.n, rhoOff: at.rho }, 'r-forward').encode(pass);
    kernel.bind({ tape: buffer }, { ...common, mode: 'r-backward', inOff: at.rg, outOff: at.rdelta, nOff: at.n, kappaOff: at.kappa, rhoOff: at.rho, deltaOff: at.delta, rnOff: at.rn }, 'r-backward').encode(pass);
  });
  const out = await readFloats(acq.device, buffer, T * stride);
  const normLayer = layout.layers[0];
  const reluLayer = layout.layers[1];
  const none = new Float64Array(0);
  for (let t = 0; t < T; t++) {
    const part = (off: number) => Float64Array.from(tape.subarray(t * stride + off, t * stride + off + mC));
    const got = (off: number, n = mC) => out.subarray(t * stride + off, t * stride + off + n);
    const ctx: LayerContext = {};
    const n = norm.forward(normLayer, none, part(at.z), rows, ctx);
    assertClose(`task ${t}: n`, got(at.n), n, 1e-5, 1e-4);
    assertClose(`task ${t}: relu(n)`, got(at.a), relu.forward(reluLayer, none, n, rows, {}), 1e-5, 1e-4);
    assertClose(`task ${t}: s per channel`, got(at.s, C), ctx.s as Float64Array, 1e-5, 1e-4);
    const g = part(at.g);
    assertClose(`task ${t}: δ = J g`, got(at.delta), norm.backward(normLayer, none, part(at.z), g, rows, ctx), 1e-5, 1e-4);
    const Rn = norm.rForward(normLayer, none, none, part(at.z), part(at.rz), rows, ctx);
    assertClose(`task ${t}: R(n)`, got(at.rn), Rn, 1e-5, 1e-4);
    assertClose(`task ${t}: R(relu(n))`, got(at.ra), relu.rForward(reluLayer, none, none, n, Rn, rows, {}), 1e-5, 1e-4);
    assertClose(`task ${t}: R(δ)`, got(at.rdelta), norm.rBackward(normLayer, none, none, part(at.z), part(at.rz), g, part(at.rg), rows, ctx, new Float64Array(0)), 1e-5, 1e-4);
  }
  buffer.destroy();
}));

test.run();
