// Issue 20: the fast CPU path of layer-list models (src/cpu/net/fast.ts) and the MAML core over it
// (src/cpu/model-task.ts through src/cpu/task-model.ts). Checked against independent references: the
// float64 oracle (src/cpu/net/oracle.ts) for losses, gradients, Hessian-vector products and input
// gradients; finite differences of the query loss after adaptation (computed with the oracle alone) for
// the order-2 meta-gradients of every variant (all parameters, ANIL's head, CAML's context channels,
// Meta-SGD's step sizes); the identity "order 1 = the query gradient at the adapted point".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NetLayout } from '../src/models/layers.js';
import { NETS as ALL_NETS } from './nets.js';
import { netModelLayout, type NetModelLayout } from '../src/models/model.js';
import { netHvp, netInputGrad, netLossGrad, type NetRows } from '../src/cpu/net/oracle.js';
import { netWorkspace } from '../src/cpu/net/fast.js';
import { modelAdaptAndMetaGrad, modelAttack, modelTaskScratchSizes, type ModelTaskOutputs, type ModelTaskParams } from '../src/cpu/model-task.js';
import { randomArray } from './helpers.js';

// The oracle test's first three nets (the fourth, a strided conv without padding, adds nothing here).
const NETS = ALL_NETS.slice(0, 3);

const modelOf = (net: (typeof NETS)[number], context = 0): NetModelLayout =>
  netModelLayout({ kind: 'layers', input: net.input, layers: net.layers, loss: net.loss }, net.input.h * net.input.w * net.input.c, context)!;

/** T tasks of `rows` rows: features in [−1, 1], labels class indices (or real targets). */
function setsFor(m: NetModelLayout, tasks: number, rows: number, seed: number): { x: Float32Array; y: Float32Array } {
  const x = randomArray(tasks * rows * m.dim, seed, 1);
  const y = m.classes > 0
    ? Float32Array.from({ length: tasks * rows }, (_, r) => (r * 7 + seed) % m.classes)
    : randomArray(tasks * rows, seed, 2, -2, 2);
  return { x, y };
}

const thetaFor = (m: NetModelLayout, seed: number, scale = 0.5) => {
  const t = new Float32Array(m.vector);
  t.set(randomArray(m.params, seed, 3, -scale, scale));
  return t;
};

/** The oracle's rows of task t: with a context, each position gets the C channels of φ after its data. */
function oracleRows(m: NetModelLayout, set: { x: Float32Array; y: Float32Array }, t: number, rows: number, phi: ArrayLike<number> = []): NetRows {
  const C = m.context;
  if (C === 0) return { x: Float64Array.from(set.x.subarray(t * rows * m.dim, (t + 1) * rows * m.dim)), xOff: 0, y: set.y, yOff: t * rows, rows };
  const positions = m.net.input.h * m.net.input.w;
  const dataC = m.net.input.c - C;
  const x = new Float64Array(rows * positions * m.net.input.c);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < positions; q++) {
      for (let c = 0; c < dataC; c++) x[(r * positions + q) * m.net.input.c + c] = set.x[(t * rows + r) * m.dim + q * dataC + c];
      for (let c = 0; c < C; c++) x[(r * positions + q) * m.net.input.c + dataC + c] = phi[c];
    }
  }
  return { x, xOff: 0, y: set.y, yOff: t * rows, rows };
}

function near(what: string, a: number, b: number, tol: number): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b} (tol ${tol})`);
}

for (const net of NETS) {
  test(`fast path vs the float64 oracle, ${net.name}: loss, metric, gradient, H·v, input gradient`, () => {
    const m = modelOf(net);
    const ws = netWorkspace(m);
    const rows = 7;
    const set = setsFor(m, 1, rows, 4);
    const theta = thetaFor(m, 9);
    const oracle: NetLayout = m.net;
    const ref = oracleRows(m, set, 0, rows);
    const g = new Float64Array(m.vector);
    const ours = ws.lossGrad(theta, 0, { x: set.x, xOff: 0, xStride: m.dim, y: set.y, yOff: 0, rows }, g);
    const gRef = new Float64Array(m.params);
    const refStats = netLossGrad(oracle, theta.subarray(0, m.params), ref, gRef);
    near('loss', ours.loss, refStats.loss, 1e-12);
    near('metric', ours.metric, refStats.metric, 1e-12);
    for (let i = 0; i < m.params; i++) near(`grad[${i}]`, g[i], gRef[i], 1e-12);
    for (let i = m.params; i < m.vector; i++) assert.is(g[i], 0, 'pad entries 0');
    const v = new Float64Array(m.vector);
    v.set(randomArray(m.params, 3, 7));
    const hv = new Float64Array(m.vector);
    ws.hvp(theta, 0, { x: set.x, xOff: 0, xStride: m.dim, y: set.y, yOff: 0, rows }, v, hv);
    const hvRef = netHvp(oracle, theta.subarray(0, m.params), ref, v.subarray(0, m.params));
    for (let i = 0; i < m.params; i++) near(`(H·v)[${i}]`, hv[i], hvRef[i], 1e-11);
    const gx = new Float64Array(rows * m.dim);
    ws.inputGrad(theta, 0, { x: set.x, xOff: 0, xStride: m.dim, y: set.y, yOff: 0, rows }, gx);
    const gxRef = netInputGrad(oracle, theta.subarray(0, m.params), ref);
    // Ours is each row's own loss; the oracle's of the mean over rows.
    for (let i = 0; i < gx.length; i++) near(`∂ℓ/∂x[${i}]`, gx[i], gxRef[i] * rows, 1e-11);
  });
}

type Variant = { adapt: 'all' | 'head' | 'context'; stepSizes?: boolean; context?: number };
const VARIANTS: Array<{ name: string; v: Variant }> = [
  { name: 'MAML (every parameter)', v: { adapt: 'all' } },
  { name: 'ANIL (the head)', v: { adapt: 'head' } },
  { name: 'CAML (2 context channels)', v: { adapt: 'context', context: 2 } },
  { name: 'Meta-SGD (learned step sizes)', v: { adapt: 'all', stepSizes: true } },
];

/** The core on T tasks; θ (with α after it for Meta-SGD). */
function runCore(m: NetModelLayout, theta: Float32Array, support: { x: Float32Array; y: Float32Array }, query: { x: Float32Array; y: Float32Array }, T: number, Ks: number, Kq: number, order: 1 | 2, v: Variant, n: number, alpha: number): ModelTaskOutputs {
  const p: ModelTaskParams = {
    tasks: T, supportRows: Ks, queryRows: Kq, dim: m.dim, innerSteps: n, order, wantMetaGrad: true, innerLr: alpha, outSet: 0,
    layout: m, adapt: v.adapt, thetaPerTask: false, perturb: null, stepSizes: !!v.stepSizes,
  };
  const sizes = modelTaskScratchSizes({ tasks: T, layout: m, stepSizes: !!v.stepSizes });
  const out: ModelTaskOutputs = { adapted: new Float32Array(sizes.adapted), metaGrad: new Float32Array(sizes.metaGrad), taskStats: new Float32Array(sizes.taskStats) };
  modelAdaptAndMetaGrad(out, support, query, theta, p);
  return out;
}

/** The query loss after n inner steps from θ (float64, the oracle alone): what the order-2
 * meta-gradient differentiates. Meta-SGD: α = alphas; CAML: φ from 0; ANIL: the head alone moves. */
function adaptedQueryLoss(m: NetModelLayout, theta: Float64Array, alphas: Float64Array | null, support: NetRows, query: (phi: number[]) => NetRows, supportAt: (phi: number[]) => NetRows, v: Variant, n: number, alpha: number): number {
  const P = m.params;
  let p = theta.slice(0, P);
  let phi = new Array(m.context).fill(0);
  const head = m.net.layers[m.net.layers.length - 1];
  for (let s = 0; s < n; s++) {
    const rows = m.context ? supportAt(phi) : support;
    if (v.adapt === 'context') {
      // ∂L/∂φ_c = Σ over rows and positions of ∂L/∂x on context channel c.
      const gx = netInputGrad(m.net, p, rows);
      const Cin = m.net.input.c;
      phi = phi.map((f, c) => { let sum = 0; for (let j = c + Cin - m.context; j < gx.length; j += Cin) sum += gx[j]; return f - alpha * sum; });
      continue;
    }
    const g = new Float64Array(P);
    netLossGrad(m.net, p, rows, g);
    p = p.map((w, k) => (v.adapt === 'head' && (k < head.offset || k >= head.offset + head.count) ? w : w - (alphas ? alphas[k] : alpha) * g[k]));
  }
  return netLossGrad(m.net, p, query(phi), null).loss;
}

for (const net of NETS.slice(0, 2)) {
  for (const { name, v } of VARIANTS) {
    test(`meta-gradients through the core, ${name}, ${net.name}: order 2 against finite differences of the oracle's adapted query loss, order 1 = the query gradient at θ'`, () => {
      const m = modelOf(net, v.context ?? 0);
      const [T, Ks, Kq, n, alpha] = [2, 4, 5, 2, 0.3];
      const support = setsFor(m, T, Ks, 21);
      const query = setsFor(m, T, Kq, 22);
      const theta = new Float32Array((v.stepSizes ? 2 : 1) * m.vector);
      theta.set(thetaFor(m, 5));
      if (v.stepSizes) for (let k = 0; k < m.params; k++) theta[m.vector + k] = alpha * (0.5 + ((k * 37) % 11) / 10);
      const o2 = runCore(m, theta, support, query, T, Ks, Kq, 2, v, n, alpha);
      const o1 = runCore(m, theta, support, query, T, Ks, Kq, 1, v, n, alpha);
      assert.equal(Array.from(o1.adapted), Array.from(o2.adapted), 'the same adapted parameters at both orders');
      assert.equal(Array.from(o1.taskStats), Array.from(o2.taskStats), 'the same query statistics at both orders');
      const stride = (v.stepSizes ? 2 : 1) * m.vector;
      const alphas = v.stepSizes ? Float64Array.from(theta.subarray(m.vector, m.vector + m.params)) : null;
      for (let t = 0; t < T; t++) {
        const sRows = oracleRows(m, support, t, Ks);
        const f = (th: Float64Array, al: Float64Array | null = alphas) => adaptedQueryLoss(m, th, al, sRows,
          (phi) => oracleRows(m, query, t, Kq, phi), (phi) => oracleRows(m, support, t, Ks, phi), v, n, alpha);
        const base = Float64Array.from(theta.subarray(0, m.params));
        near(`task ${t}: query loss`, o2.taskStats[2 * t], f(base), 1e-5);
        const h = 1e-4;
        for (let k = 0; k < 3; k++) {
          const u = Float64Array.from(randomArray(m.params, 50 + k, 9));
          const fd = (f(base.map((w, i) => w + h * u[i])) - f(base.map((w, i) => w - h * u[i]))) / (2 * h);
          let ours = 0;
          for (let i = 0; i < m.params; i++) ours += o2.metaGrad[t * stride + i] * u[i];
          near(`task ${t}: order-2 meta-gradient · u (direction ${k})`, ours, fd, 2e-4);
          if (alphas) {
            const fdA = (f(base, alphas.map((a, i) => a + h * u[i])) - f(base, alphas.map((a, i) => a - h * u[i]))) / (2 * h);
            let oursA = 0;
            for (let i = 0; i < m.params; i++) oursA += o2.metaGrad[t * stride + m.vector + i] * u[i];
            near(`task ${t}: Meta-SGD's α meta-gradient · u (direction ${k})`, oursA, fdA, 2e-4);
          }
        }
        // Order 1: the query gradient at the adapted point (φ and pad entries 0).
        const qRows = oracleRows(m, query, t, Kq, Array.from(o1.adapted.subarray(t * m.vector + m.params, t * m.vector + m.params + m.context)));
        const gq = new Float64Array(m.params);
        netLossGrad(m.net, o1.adapted.subarray(t * m.vector, t * m.vector + m.params), qRows, gq);
        for (let i = 0; i < m.params; i++) near(`task ${t}: order-1 meta-gradient[${i}]`, o1.metaGrad[t * stride + i], gq[i], 1e-5);
        for (let i = m.params; i < m.vector; i++) assert.is(o1.metaGrad[t * stride + i], 0);
      }
    });
  }
}

test('FGSM through a conv net: every step moves each pixel by the sign of the oracle\'s input gradient, inside the ε-ball and [lo, hi]', () => {
  const m = modelOf(NETS[0]);
  const [T, K] = [2, 3];
  const set = setsFor(m, T, K, 31);
  const theta = thetaFor(m, 32);
  const out = new Float32Array(set.x.length);
  const attack = { kind: 'fgsm' as const, epsilon: 0.1, stepSize: 0.1, steps: 1, lo: -1, hi: 1 };
  modelAttack(out, set, theta, { tasks: T, rows: K, dim: m.dim, paramStride: 0 }, attack, m);
  for (let t = 0; t < T; t++) {
    const gx = netInputGrad(m.net, theta.subarray(0, m.params), oracleRows(m, set, t, K));
    for (let i = 0; i < K * m.dim; i++) {
      const x0 = set.x[t * K * m.dim + i];
      const expected = Math.min(1, Math.max(-1, Math.fround(x0 + 0.1 * Math.sign(gx[i]))));
      assert.ok(Math.abs(out[t * K * m.dim + i] - expected) < 1e-6, `task ${t}, feature ${i}: ${out[t * K * m.dim + i]} vs ${expected}`);
    }
  }
});

test.run();
