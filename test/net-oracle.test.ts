// Issue 20 (first part): the float64 oracle of models given as a list of layers and a loss
// (src/models/layers.ts, src/cpu/net/). Checked against independent references: the existing MLP
// oracle (src/cpu/mlp.ts, written layer by layer without this code) for dense nets with and without
// per-task norm, and finite differences for everything else — gradients, Hessian-vector products, input
// gradients and MAML's order-1 and order-2 meta-gradients of small conv nets with norm, max-pool and
// mean-pool, under both losses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conv4MiniImagenet, conv4Omniglot, mlpLayers, netLayout, type LayerSpec, type LossSpec, type NetLayout } from '../src/models/layers.js';
import { netForward, netHvp, netInputGrad, netLossGrad, netMetaGradient, netOutputs, type NetRows } from '../src/cpu/net/oracle.js';
import { mlpLayout } from '../src/models/mlp.js';
import { mlpHvp, mlpInputGrad, mlpLossGrad } from '../src/cpu/mlp.js';
import { InvalidOptionError } from '../src/errors.js';
import { randomArray, thrown } from './helpers.js';
import { NETS } from './nets.js';

/** A deterministic set: rows of `F` features in [−1, 1], labels (class indices, or real targets). */
function rowsFor(layout: NetLayout, rows: number, seed: number): NetRows {
  const F = layout.input.h * layout.input.w * layout.input.c;
  const x = Float64Array.from(randomArray(rows * F, seed, 1));
  const y = layout.loss.kind === 'softmax-ce'
    ? Float64Array.from({ length: rows }, (_, r) => (r * 7 + seed) % layout.outputs)
    : Float64Array.from(randomArray(rows, seed, 2, -2, 2));
  return { x, xOff: 0, y, yOff: 0, rows };
}

const params = (layout: NetLayout, seed: number, scale = 0.5) => Float64Array.from(randomArray(layout.params, seed, 3, -scale, scale));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
const axpy = (x: Float64Array, a: number, u: ArrayLike<number>) => x.map((v, i) => v + a * u[i]);

/** |a − b| ≤ tol·max(1, |b|), naming the check. */
function near(what: string, a: number, b: number, tol: number): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b} (tol ${tol})`);
}


test('layouts: the papers\' Conv-4 shapes and parameter counts; bad specs are refused with the fix', async () => {
  const omniglot = netLayout({ h: 28, w: 28, c: 1 }, conv4Omniglot(5), { kind: 'softmax-ce' });
  // SPEC: 'SAME' 3 × 3 stride 2 (padding 1) takes 28 → 14 → 7 → 4 → 2.
  assert.equal(omniglot.layers.filter((l) => l.spec.kind === 'conv2d').map((l) => l.output.h), [14, 7, 4, 2]);
  // (9·1 + 1)·64 + 3·(9·64 + 1)·64 + (64 + 1)·5, by hand.
  assert.is(omniglot.params, 640 + 3 * 36928 + 325);
  const mini = netLayout({ h: 84, w: 84, c: 3 }, conv4MiniImagenet(5), { kind: 'softmax-ce' });
  const flat = mini.layers.find((l) => l.spec.kind === 'flatten')!;
  assert.equal(flat.output, { h: 1, w: 1, c: 5 * 5 * 32 }, 'mini-ImageNet: 84 → 42 → 21 → 10 → 5, 800 features');
  for (const [input, layers, loss, message] of [
    [{ h: 2, w: 2, c: 1 }, [{ kind: 'conv2d', filters: 2, size: 3, stride: 1, padding: 0 }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' }, /does not fit/],
    [{ h: 1, w: 1, c: 3 }, [{ kind: 'dense', units: 5 }], { kind: 'mse' }, /one real output/],
    [{ h: 1, w: 1, c: 3 }, [{ kind: 'dense', units: 1 }], { kind: 'softmax-ce' }, /at least 2 outputs/],
    [{ h: 1, w: 1, c: 3 }, [{ kind: 'attention' }], { kind: 'mse' }, /unknown layer kind/],
    [{ h: 0, w: 1, c: 3 }, [{ kind: 'dense', units: 1 }], { kind: 'mse' }, /input shape/],
  ] as const) {
    const e = await thrown(() => netLayout(input, layers as unknown as LayerSpec[], loss as LossSpec));
    assert.instance(e, InvalidOptionError);
    assert.match(e.message, message);
  }
});

test('dense nets: the same loss, gradient, Hessian-vector product and input gradient as the MLP oracle (with and without per-task norm)', () => {
  for (const norm of [false, true]) {
    const [D, hidden, N, rows] = [7, [6, 5], 4, 9];
    const layout = netLayout({ h: 1, w: 1, c: D }, mlpLayers(hidden, N, norm), { kind: 'softmax-ce' });
    const mlp = mlpLayout(D, hidden, N, 0, norm);
    assert.is(layout.params, mlp.params, 'the same parameter count (and layout: W row-major, then b, per layer)');
    const theta = params(layout, 11);
    const v = params(layout, 12);
    const set = rowsFor(layout, rows, 5);
    const mlpRows = { x: set.x, xOff: 0, xStride: D, y: set.y, yOff: 0, rows };
    const pad = (a: Float64Array) => { const out = new Float64Array(mlp.vector); out.set(a); return out; };
    const g = new Float64Array(layout.params);
    const ours = netLossGrad(layout, theta, set, g);
    const gRef = new Float64Array(mlp.vector);
    const ref = mlpLossGrad(mlp, pad(theta), 0, mlpRows, gRef);
    near(`norm ${norm}: loss`, ours.loss, ref.loss, 1e-12);
    assert.is(ours.metric, ref.accuracy);
    for (let i = 0; i < layout.params; i++) near(`norm ${norm}: grad[${i}]`, g[i], gRef[i], 1e-11);
    const Hv = netHvp(layout, theta, set, v);
    const HvRef = new Float64Array(mlp.vector);
    mlpHvp(mlp, pad(theta), 0, mlpRows, pad(v), 0, HvRef);
    for (let i = 0; i < layout.params; i++) near(`norm ${norm}: Hv[${i}]`, Hv[i], HvRef[i], 1e-10);
    const gx = netInputGrad(layout, theta, set);
    const gxRef = new Float64Array(rows * D);
    mlpInputGrad(mlp, pad(theta), 0, mlpRows, gxRef);
    // The MLP oracle's input gradient is of the summed loss; ours of the mean.
    for (let i = 0; i < gx.length; i++) near(`norm ${norm}: ∂L/∂x[${i}]`, gx[i] * rows, gxRef[i], 1e-10);
  }
});

for (const net of NETS) {
  test(`finite differences, ${net.name}: gradient, Hessian-vector product, input gradient`, () => {
    const layout = netLayout(net.input, net.layers, net.loss);
    const theta = params(layout, 21);
    const set = rowsFor(layout, 6, 3);
    const lossAt = (p: Float64Array, rows = set) => netLossGrad(layout, p, rows, null).loss;
    const g = new Float64Array(layout.params);
    netLossGrad(layout, theta, set, g);
    const h = 1e-5;
    // Directional derivatives along random directions (every coordinate at once), and a few coordinates.
    for (let k = 0; k < 4; k++) {
      const u = Float64Array.from(randomArray(layout.params, 30 + k, 4));
      const fd = (lossAt(axpy(theta, h, u)) - lossAt(axpy(theta, -h, u))) / (2 * h);
      near(`∇L·u (direction ${k})`, dot(g, u), fd, 1e-6);
      // H·v against the change of the gradient: (∇L(θ + hu) − ∇L(θ − hu)) / 2h.
      const [gp, gm] = [new Float64Array(layout.params), new Float64Array(layout.params)];
      netLossGrad(layout, axpy(theta, h, u), set, gp);
      netLossGrad(layout, axpy(theta, -h, u), set, gm);
      const Hu = netHvp(layout, theta, set, u);
      for (let i = 0; i < layout.params; i += Math.max(1, Math.floor(layout.params / 17))) near(`(H·u)[${i}] (direction ${k})`, Hu[i], (gp[i] - gm[i]) / (2 * h), 1e-5);
    }
    // The Hessian is symmetric: u·(H w) = w·(H u).
    const [u, w] = [Float64Array.from(randomArray(layout.params, 40, 5)), Float64Array.from(randomArray(layout.params, 41, 5))];
    near('u·Hw = w·Hu', dot(u, netHvp(layout, theta, set, w)), dot(w, netHvp(layout, theta, set, u)), 1e-10);
    // ∂L/∂x along a direction in input space.
    const gx = netInputGrad(layout, theta, set);
    const e = Float64Array.from(randomArray(set.x.length, 50, 6));
    const shifted = (a: number): NetRows => ({ ...set, x: axpy(set.x as Float64Array, a, e) });
    near('∂L/∂x · e', dot(gx, e), (lossAt(theta, shifted(h)) - lossAt(theta, shifted(-h))) / (2 * h), 1e-6);
  });
}

test('MAML meta-gradients of a conv net with norm and max-pool: order 2 is the derivative of the query loss after adaptation; order 1 is the query gradient at θ′', () => {
  for (const net of [NETS[1], NETS[0], NETS[2]]) {
    const layout = netLayout(net.input, net.layers, net.loss);
    const theta = params(layout, 61, 0.4);
    const support = rowsFor(layout, 5, 7);
    const query = rowsFor(layout, 6, 8);
    const options = { lr: 0.3, steps: 2, order: 2 as const };
    const meta = netMetaGradient(layout, theta, support, query, options);
    const after = (p: Float64Array) => netMetaGradient(layout, p, support, query, { ...options, order: 1 }).queryLoss;
    // A small h: after two steps of 0.3 some ReLU input sits within ~1e-5·|u| of its kink, where a
    // wider central difference averages the two sides (seen: h = 1e-5 off by 2e-4, 1e-6 agrees to 1e-10).
    const h = 1e-6;
    for (let k = 0; k < 3; k++) {
      const u = Float64Array.from(randomArray(layout.params, 70 + k, 7));
      near(`${net.name}: order-2 meta-gradient · u (direction ${k})`, dot(meta.grad, u), (after(axpy(theta, h, u)) - after(axpy(theta, -h, u))) / (2 * h), 1e-6);
    }
    const first = netMetaGradient(layout, theta, support, query, { ...options, order: 1 });
    const atAdapted = new Float64Array(layout.params);
    netLossGrad(layout, first.adapted, query, atAdapted);
    assert.equal(Array.from(first.grad), Array.from(atAdapted), 'FOMAML: the plain query gradient at the adapted parameters');
    // A small enough inner step lowers the support loss.
    const small = netMetaGradient(layout, theta, support, support, { lr: 1e-3, steps: 1, order: 1 });
    assert.ok(small.queryLoss < netLossGrad(layout, theta, support, null).loss, `${net.name}: one inner step lowers the support loss`);
  }
});

test('conv2d by hand (window sums, stride, padding, channels); norm makes each channel mean 0, variance σ²/(σ² + ε) over rows × positions', () => {
  // One 3 × 3 × 1 image 1…9, a 2 × 2 filter of ones and bias 0.5, stride 1, no padding: window sums + 0.5.
  const sums = netLayout({ h: 3, w: 3, c: 1 }, [{ kind: 'conv2d', filters: 1, size: 2, stride: 1, padding: 0 }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' });
  const x = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const p = new Float64Array(sums.params);
  p.set([1, 1, 1, 1, 0.5]);
  assert.equal(Array.from(netForward(sums, p, x, 0, 1).acts[1]), [12.5, 16.5, 24.5, 28.5]);
  // Stride 2, padding 1, two input channels (channel 1 = −channel 0), filter taps only on the centre:
  // output (oy, ox) = in(2oy, 2ox, 0)·1 + in(2oy, 2ox, 1)·3 = −2·in(2oy, 2ox, 0).
  const strided = netLayout({ h: 3, w: 3, c: 2 }, [{ kind: 'conv2d', filters: 1, size: 3, stride: 2, padding: 1 }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' });
  const x2 = Float64Array.from(Array.from(x).flatMap((v) => [v, -v]));
  const q = new Float64Array(strided.params);
  q[(1 * 3 + 1) * 2 + 0] = 1;
  q[(1 * 3 + 1) * 2 + 1] = 3;
  assert.equal(Array.from(netForward(strided, q, x2, 0, 1).acts[1]), [-2, -6, -14, -18]);
  // Norm over rows × positions per channel.
  const normed = netLayout({ h: 4, w: 3, c: 3 }, [{ kind: 'norm' }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' });
  const rows = 5;
  const xs = Float64Array.from(randomArray(rows * 36, 9, 1, -3, 5));
  const n = netForward(normed, new Float64Array(normed.params), xs, 0, rows).acts[1];
  for (let c = 0; c < 3; c++) {
    const values = Array.from({ length: rows * 12 }, (_, i) => xs[i * 3 + c]);
    const mean = values.reduce((a, v) => a + v, 0) / values.length;
    const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
    const out = Array.from({ length: rows * 12 }, (_, i) => n[i * 3 + c]);
    near(`channel ${c}: mean`, out.reduce((a, v) => a + v, 0) / out.length, 0, 1e-12);
    near(`channel ${c}: variance`, out.reduce((a, v) => a + v * v, 0) / out.length, variance / (variance + 1e-3), 1e-12);
  }
});

test('max-pool routes through the first of equal maxima; softmax cross-entropy stays finite for huge logits', () => {
  const layout = netLayout({ h: 2, w: 2, c: 1 }, [{ kind: 'maxpool' }, { kind: 'flatten' }, { kind: 'dense', units: 2 }], { kind: 'softmax-ce' });
  // W = [1, −1] (one input → two logits), b = 0: logits (m, −m) for the pooled maximum m.
  const p = Float64Array.from([1, -1, 0, 0]);
  const x = Float64Array.from([0.5, 2, 2, -1]);
  assert.equal(Array.from(netOutputs(layout, p, x, 0, 1)), [2, -2]);
  const gx = netInputGrad(layout, p, { x, xOff: 0, y: Float64Array.from([1]), yOff: 0, rows: 1 });
  assert.is(gx[2], 0, 'the tie goes to the first maximum: the third input gets no gradient');
  assert.ok(gx[1] !== 0 && gx[0] === 0 && gx[3] === 0);
  const huge = Float64Array.from([1e4, -1e4, 0, 0]);
  const r = netLossGrad(layout, huge, { x, xOff: 0, y: Float64Array.from([1]), yOff: 0, rows: 1 }, new Float64Array(4));
  near('loss of a confidently wrong prediction (log-sum-exp form)', r.loss, 4e4, 1e-12);
});

test.run();
