// CPU twin of shaders/meta-update.wgsl: weighted sum of per-task meta-gradients and the outer update.

export const UPDATE_RULE = { sgd: 0, adam: 1, none: 2 } as const;

export interface UpdateParams {
  tasks: number;
  dim: number;
  rule: 0 | 1 | 2;
  outerLr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** Twin of `count_step`: Adam's step counter lives at optState[2D]. */
export function countStep(optState: Float32Array, dim: number): void {
  optState[2 * dim] += 1;
}

/** Twin of `update`. optState = Adam m (D) | v (D) | step count. */
export function metaUpdate(
  theta: Float32Array, optState: Float32Array, meanGrad: Float32Array,
  metaGrad: Float32Array, taskWeight: Float32Array, p: UpdateParams,
): void {
  const D = p.dim;
  const g = new Float64Array(D);
  for (let t = 0; t < p.tasks; t++) {
    const w = taskWeight[t];
    const off = t * D;
    for (let d = 0; d < D; d++) g[d] += w * metaGrad[off + d];
  }
  meanGrad.set(g);
  if (p.rule === 0) {
    for (let d = 0; d < D; d++) theta[d] -= p.outerLr * Math.fround(g[d]);
  } else if (p.rule === 1) {
    const step = optState[2 * D];
    const c1 = 1 - Math.pow(p.beta1, step);
    const c2 = 1 - Math.pow(p.beta2, step);
    for (let d = 0; d < D; d++) {
      const gd = Math.fround(g[d]);
      const m = (optState[d] = p.beta1 * optState[d] + (1 - p.beta1) * gd);
      const v = (optState[D + d] = p.beta2 * optState[D + d] + (1 - p.beta2) * gd * gd);
      theta[d] -= (p.outerLr * (m / c1)) / (Math.sqrt(v / c2) + p.epsilon);
    }
  }
}
