// Batched logistic-model primitives, one workgroup per task (mapping and vec4 layout:
// logistic-common.wgsl).
//   forward_grad: stats[t] = (mean BCE loss, accuracy) of params_t on (X_t, y_t),
//                 grad_t = X_tᵀ (σ(X_t θ_t) − y_t) / K
//   hvp:          out_t = X_tᵀ (σ'(X_t θ_t) ⊙ X_t v_t) / K, σ' = p(1 − p): the Hessian-vector product
// The parameters of task t start at params[paramOff + t · paramStride]: stride 0 shares one θ. A
// chunked batch (rows of tasks taskBase … in x, y) indexes params, vec, out and stats by taskBase + t.

struct Shape {
  tasks: u32,
  rows: u32,           // K, rows per task
  dim4: u32,           // D4 = ⌈D/4⌉ vec4s per row and per parameter vector
  paramStride: u32,    // in vec4s: 0 (one shared θ) or D4 (one θ per task)
  groupsPerRow: u32,   // workgroups along x of the dispatch
  xOff: u32,           // vec4 offset of task 0's rows in x
  yOff: u32,           // float offset of task 0's labels in y
  paramOff: u32,       // vec4 offset of task 0's parameters
  taskBase: u32,       // chunked batches: stats, out and vec are indexed by taskBase + t
  _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;         // T×K×D4
@group(0) @binding(2) var<storage, read> y: array<vec4<f32>>;         // T×K labels in {0, 1}, packed
@group(0) @binding(3) var<storage, read_write> params: array<vec4<f32>>;  // D4 or T×D4 (read only here)
@group(0) @binding(4) var<storage, read_write> vecIn: array<vec4<f32>>;   // T×D4: v of hvp
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;     // T×D4: the gradient or H·v
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;         // T×2: loss, accuracy

@compute @workgroup_size(WG)
fn forward_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = taskIndex(wid, shape.groupsPerRow);
  if (t >= shape.tasks) { return; }  // uniform per workgroup, so the barriers below stay uniform
  let K = shape.rows;
  let D4 = shape.dim4;
  let xt = shape.xOff + t * K * D4;
  let g = shape.taskBase + t;
  rowDots(&x, xt, K, &params, shape.paramOff + g * shape.paramStride, D4, lid);
  logitsToResidual(&y, shape.yOff + t * K, K, lid);
  if (lid == 0u) {
    let s = meanLossAndAccuracy(K);
    stats[2u * g] = s.x;
    stats[2u * g + 1u] = s.y;
  }
  rowsTransposeTimes(&x, xt, K, &out, g * D4, D4, lid, 1.0 / f32(K), false);
}

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
