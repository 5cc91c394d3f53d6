// CPU twin of shaders/norm-clip.wgsl: projection of a point onto the L2 ball of radius ε around a centre
// (AMP's perturbation, inside maml-task's twin).

export function clipToBall(points: Float32Array, centres: Float32Array, off: number, dim: number, radius: number): void {
  let sq = 0;
  for (let d = 0; d < dim; d++) sq += (points[off + d] - centres[off + d]) ** 2;
  const norm = Math.sqrt(sq);
  if (norm > radius) {
    const scale = radius / norm;
    for (let d = 0; d < dim; d++) points[off + d] = centres[off + d] + scale * (points[off + d] - centres[off + d]);
  }
}
