// Batched logistic-model forward and gradient, one workgroup per task (mapping and vec4 layout:
// logistic-common.wgsl); the engines score attacked queries with it.
//   forward_grad: stats[t] = (mean BCE loss, accuracy) of params_t on (X_t, y_t),
//                 grad_t = X_tᵀ (σ(X_t θ_t) − y_t) / K
// The parameters of task t start at params[paramOff + t · paramStride]: stride 0 shares one θ. A
// chunked batch (rows of tasks taskBase … in x, y) indexes params, out and stats by taskBase + t.
// (The tests add an `hvp` entry over the same bindings: test/shaders/logistic-hvp.wgsl.)

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
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;     // T×D4: the gradient
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;         // T×2: loss, accuracy

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
