// AMP's projection onto the L2 ball: Δ = point − centre; if ‖Δ‖₂ > ε, point ← centre + ε Δ / ‖Δ‖₂.
// One workgroup per model (mapping: logistic-common.wgsl); the squared norm is summed per invocation
// over the quads it owns, then across the workgroup with one pair of barriers.

var<workgroup> normPartial: array<f32, WG>;

// Every invocation must call it (barriers). point and centre share the offset `off` (in vec4s).
fn clipPerturbation(point: ptr<storage, array<vec4<f32>>, read_write>, centre: ptr<storage, array<vec4<f32>>, read_write>,
                    off: u32, dim4: u32, radius: f32, lid: u32) {
  var sq = 0.0;
  for (var c = lid; c < dim4; c += WG) {
    let delta = point[off + c] - centre[off + c];
    sq += dot(delta, delta);
  }
  normPartial[lid] = sq;
  workgroupBarrier();
  var total = 0.0;
  for (var j = 0u; j < WG; j++) { total += normPartial[j]; }
  workgroupBarrier();  // nobody overwrites normPartial before everyone has read it
  let norm = sqrt(total);
  if (norm > radius) {
    let scale = radius / norm;
    for (var c = lid; c < dim4; c += WG) {
      point[off + c] = centre[off + c] + scale * (point[off + c] - centre[off + c]);
    }
  }
}
