// An independent float64 reference of the SPEC's math, written plainly (arrays of rows, no shared code
// with src/cpu), used for finite-difference and identity checks.

export type Vec = number[];
export type Rows = number[][];

export function rowsOf(flat: Float32Array, task: number, rows: number, dim: number): Rows {
  const out: Rows = [];
  for (let r = 0; r < rows; r++) out.push(Array.from(flat.subarray((task * rows + r) * dim, (task * rows + r + 1) * dim)));
  return out;
}

export function labelsOf(flat: Float32Array, task: number, rows: number): Vec {
  return Array.from(flat.subarray(task * rows, (task + 1) * rows));
}

const dot = (a: Vec, b: Vec) => a.reduce((s, v, i) => s + v * b[i], 0);

/** mean BCE, computed as −[y log p + (1−y) log(1−p)] with p from the logit: the textbook form. */
export function loss(theta: Vec, X: Rows, y: Vec): number {
  let total = 0;
  for (let r = 0; r < X.length; r++) {
    const a = dot(X[r], theta);
    const logP = -Math.log1p(Math.exp(-a));       // log σ(a), fine for the moderate logits used here
    const log1mP = -Math.log1p(Math.exp(a));      // log(1 − σ(a))
    total += -(y[r] * logP + (1 - y[r]) * log1mP);
  }
  return total / X.length;
}

export function grad(theta: Vec, X: Rows, y: Vec): Vec {
  const g = new Array(theta.length).fill(0);
  for (let r = 0; r < X.length; r++) {
    const e = 1 / (1 + Math.exp(-dot(X[r], theta))) - y[r];
    for (let d = 0; d < theta.length; d++) g[d] += (e * X[r][d]) / X.length;
  }
  return g;
}

export function adapt(theta: Vec, X: Rows, y: Vec, lr: number, steps: number): Vec {
  let t = theta.slice();
  for (let s = 0; s < steps; s++) {
    const g = grad(t, X, y);
    t = t.map((v, d) => v - lr * g[d]);
  }
  return t;
}

/** Central finite differences of f at x, step h. */
export function finiteDifference(f: (x: Vec) => number, x: Vec, h: number): Vec {
  return x.map((_, d) => {
    const plus = x.slice();
    const minus = x.slice();
    plus[d] += h;
    minus[d] -= h;
    return (f(plus) - f(minus)) / (2 * h);
  });
}

/** FGSM on each row: x + ε·sign((σ(x·θ) − y)·θ), clipped to [lo, hi]. */
export function fgsm(theta: Vec, X: Rows, y: Vec, eps: number, lo = -Infinity, hi = Infinity): Rows {
  return X.map((row, r) => {
    const e = 1 / (1 + Math.exp(-dot(row, theta))) - y[r];
    return row.map((v, d) => Math.min(hi, Math.max(lo, v + eps * Math.sign(e * theta[d]))));
  });
}

/** CAVIA on the logistic model: φ from 0, n steps φ ← φ − α Wᵀ ∇L(w + Wφ); returns w + Wφ_n and φ_n.
 * W is given row-major D×C, as the public API lays it out. */
export function camlAdapt(w: Vec, W: Vec, C: number, X: Rows, y: Vec, lr: number, steps: number): { theta: Vec; phi: Vec } {
  const D = w.length;
  let phi = new Array(C).fill(0);
  const model = (p: Vec) => w.map((v, d) => v + p.reduce((s, pc, c) => s + W[d * C + c] * pc, 0));
  for (let s = 0; s < steps; s++) {
    const g = grad(model(phi), X, y);
    phi = phi.map((pc, c) => pc - lr * g.reduce((acc, gd, d) => acc + W[d * C + c] * gd, 0));
  }
  void D;
  return { theta: model(phi), phi };
}

/** One AMP step (SPEC): Δ ← 0; N× Δ ← Π_ε(Δ + ζ∇L(θ+Δ)); θ ← θ − η∇L(θ+Δ). */
export function ampStep(theta: Vec, X: Rows, y: Vec, eta: number, zeta: number, eps: number, N: number): Vec {
  let delta = new Array(theta.length).fill(0);
  const at = () => theta.map((v, d) => v + delta[d]);
  for (let i = 0; i < N; i++) {
    const g = grad(at(), X, y);
    delta = delta.map((v, d) => v + zeta * g[d]);
    const norm = Math.sqrt(dot(delta, delta));
    if (norm > eps) delta = delta.map((v) => (v * eps) / norm);
  }
  const g = grad(at(), X, y);
  return theta.map((v, d) => v - eta * g[d]);
}
