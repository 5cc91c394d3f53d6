// CPU twin of shaders/fgsm.wgsl: one L∞ attack step on the logistic loss, and the FGSM / PGD loops
// built from it (the GPU engine records the same loop as a chain of dispatches).
import { sigmoid } from './logistic.js';

export interface AttackStepParams {
  tasks: number;
  rows: number;
  dim: number;
  /** 0: one θ for every task; dim: θ'_t per task. */
  paramStride: number;
  epsilon: number;
  stepSize: number;
  lo: number;
  hi: number;
}

/** next = clip(Π_ε(current + s·sign(∇x ℓ(current; θ_t))), lo, hi), rows of all tasks. */
export function attackStep(
  next: Float32Array, clean: Float32Array, current: Float32Array, labels: Float32Array, params: Float32Array, p: AttackStepParams,
  taskRange?: [number, number],
): void {
  const { rows: K, dim: D, stepSize, epsilon, lo, hi } = p;
  const direction = new Float32Array(D);  // sign(θ_t), once per task (hot loop below stays branch-free)
  const fround = Math.fround;
  const [first, end] = taskRange ?? [0, p.tasks];
  for (let t = first; t < end; t++) {
    const pOff = t * p.paramStride;
    if (t === first || p.paramStride !== 0) for (let d = 0; d < D; d++) direction[d] = Math.sign(params[pOff + d]);
    for (let r = 0; r < K; r++) {
      const off = (t * K + r) * D;
      let a = 0;
      for (let d = 0; d < D; d++) a += current[off + d] * params[pOff + d];
      // float32 σ, as on the GPU: a row whose σ rounds to its label gets sign 0 on both backends.
      const step = stepSize * Math.sign(fround(sigmoid(a)) - labels[t * K + r]);
      for (let d = 0; d < D; d++) {
        const x0 = clean[off + d];
        // Each bound and the stepped value round to float32 exactly where the WGSL does.
        let v = fround(current[off + d] + step * direction[d]);
        const below = fround(x0 - epsilon);
        const above = fround(x0 + epsilon);
        v = v < below ? below : v > above ? above : v;
        next[off + d] = v < lo ? lo : v > hi ? hi : v;
      }
    }
  }
}

export interface AttackParams {
  kind: 'fgsm' | 'pgd';
  epsilon: number;
  /** PGD steps k (FGSM: 1). */
  steps: number;
  /** PGD step s (FGSM: ε). */
  stepSize: number;
  lo: number;
  hi: number;
}

/** The whole attack: FGSM is one step of size ε from the clean rows; PGD is k chained steps. */
export function attack(
  out: Float32Array, clean: Float32Array, labels: Float32Array, params: Float32Array,
  shape: { tasks: number; rows: number; dim: number; paramStride: number }, a: AttackParams, taskRange?: [number, number],
): void {
  const step: AttackStepParams = { ...shape, epsilon: a.epsilon, stepSize: a.stepSize, lo: a.lo, hi: a.hi };
  let current = clean;
  const scratch = a.steps > 1 ? new Float32Array(out.length) : out;
  for (let i = 0; i < a.steps; i++) {
    // Ping-pong between two buffers so that the last step lands in `out`.
    const target = (a.steps - 1 - i) % 2 === 0 ? out : scratch;
    attackStep(target, clean, current, labels, params, step, taskRange);
    current = target;
  }
}
