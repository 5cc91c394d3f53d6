// CPU twin of shaders/norm-clip.wgsl: projection of point_m onto the L2 ball of radius ε around centre_m.

export function clipToBall(points: Float32Array, centres: Float32Array, off: number, dim: number, radius: number): void {
  let sq = 0;
  for (let d = 0; d < dim; d++) sq += (points[off + d] - centres[off + d]) ** 2;
  const norm = Math.sqrt(sq);
  if (norm > radius) {
    const scale = radius / norm;
    for (let d = 0; d < dim; d++) points[off + d] = centres[off + d] + scale * (points[off + d] - centres[off + d]);
  }
}

/** Twin of norm-clip-entry.wgsl `clip_to_ball`: every model m of M. */
export function clipModelsToBall(points: Float32Array, centres: Float32Array, models: number, dim: number, radius: number): void {
  for (let m = 0; m < models; m++) clipToBall(points, centres, m * dim, dim, radius);
}
