// Test-only entry of shaders/logistic.wgsl (put after it, with logistic-common.wgsl in front): the
// Hessian-vector product of the logistic loss, checked against its CPU twin and finite differences.
//   hvp: out_t = X_tᵀ (σ'(X_t θ_t) ⊙ X_t v_t) / K, σ' = p(1 − p), at θ_t = params[paramOff + t·paramStride]

@group(0) @binding(6) var<storage, read_write> vecIn: array<vec4<f32>>;   // T×D4: v

@compute @workgroup_size(WG)
fn hvp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = taskIndex(wid, shape.groupsPerRow);
  if (t >= shape.tasks) { return; }
  let K = shape.rows;
  let D4 = shape.dim4;
  let xt = shape.xOff + t * K * D4;
  let g = shape.taskBase + t;
  rowDots(&x, xt, K, &params, shape.paramOff + g * shape.paramStride, D4, lid);
  for (var r = lid; r < K; r += WG) {
    let p = sigmoid(rowVal[r]);
    rowAux[r] = p * (1.0 - p);
  }
  rowDots(&x, xt, K, &vecIn, g * D4, D4, lid);  // its first barrier orders the rowAux writes
  for (var r = lid; r < K; r += WG) { rowVal[r] *= rowAux[r]; }
  workgroupBarrier();
  rowsTransposeTimes(&x, xt, K, &out, g * D4, D4, lid, 1.0 / f32(K), false);
}
