// CPU twin of shaders/ga-weights.wgsl: gradient-agreement task weights from the task updates
// u_t = θ − θ'_t (paper or notebook normalisation; 1/T when the denominator is 0).

export function gaWeights(out: Float32Array, theta: Float32Array, adapted: Float32Array, tasks: number, dim: number, normalization: 'paper' | 'notebook'): void {
  const u = (t: number, d: number) => theta[d] - adapted[t * dim + d];
  const s = new Float64Array(dim);
  for (let t = 0; t < tasks; t++) for (let d = 0; d < dim; d++) s[d] += u(t, d);
  const a = new Float64Array(tasks);
  for (let t = 0; t < tasks; t++) for (let d = 0; d < dim; d++) a[t] += u(t, d) * s[d];
  let denom = 0;
  if (normalization === 'paper') {
    for (let t = 0; t < tasks; t++) denom += Math.abs(a[t]);
  } else {
    for (let t = 0; t < tasks; t++) {
      for (let j = 0; j < tasks; j++) {
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += u(t, d) * u(j, d);
        denom += Math.abs(dot);
      }
    }
  }
  for (let t = 0; t < tasks; t++) out[t] = denom > 0 ? a[t] / denom : 1 / tasks;
}
