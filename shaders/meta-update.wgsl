// The across-task half of a meta-iteration, in two dispatches so that a GPU has enough threads even
// when D is small and T large (one thread per parameter summing 8192 tasks would leave an H100 idle):
//   partial_sums  workgroup (x, y, b): 64 parameters, tasks of block b (TASK_BLOCK tasks):
//                 partial[b, d] = Σ_{t in block b} w_t · metaGrad[t, d]     (w_t = 1/T for MAML;
//                 GA-MAML's agreement weights; ADML's β2/β1-scaled second set)
//   update        one invocation per parameter: g_d = Σ_b partial[b, d], then
//                 θ_d ← θ_d − β g_d (sgd), or Adam (Kingma & Ba 2015) with bias correction, the step
//                 count kept on the GPU in optState[2D] so that several meta-iterations can share one
//                 command buffer; rule none only writes meanGrad.
// Reads of metaGrad[t, d] and partial[b, d] for consecutive d are coalesced.

struct UpdateParams {
  tasks: u32,         // tasks summed by this dispatch of partial_sums (a chunk of the batch, or all of it)
  dim: u32,
  rule: u32,          // 0 = sgd, 1 = adam, 2 = none (only write meanGrad)
  blocks: u32,        // blocks of partial sums that update adds (all chunks together)
  outerLr: f32,       // β
  beta1: f32,
  beta2: f32,
  epsilon: f32,
  taskBase: u32,      // index of this dispatch's first task in the batch (its weight is taskWeight[taskBase])
  blockBase: u32,     // first block row of partial that this dispatch writes
  groupsX: u32,       // workgroups along x: parameters are split over a 2-D grid (x, y) when dim/64 is
                      // over the adapter's per-dimension limit (65,535 on most)
  gradOff: u32,       // float offset of this dispatch's first task in metaGrad (ADML's second set)
}

@group(0) @binding(0) var<uniform> up: UpdateParams;
@group(0) @binding(1) var<storage, read> metaGrad: array<f32>;      // tasks×D (this chunk's tasks)
@group(0) @binding(2) var<storage, read> taskWeight: array<f32>;    // the whole batch's weights
@group(0) @binding(3) var<storage, read_write> theta: array<f32>;   // D
@group(0) @binding(4) var<storage, read_write> optState: array<f32>; // Adam m (D) | v (D) | step count
@group(0) @binding(5) var<storage, read_write> meanGrad: array<f32>; // D, the applied meta-gradient
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;  // blocks×D

override WG_UPDATE: u32 = 64u;
override TASK_BLOCK: u32 = 64u;

fn paramIndex(wid: vec3<u32>, lid: u32) -> u32 { return (wid.y * up.groupsX + wid.x) * WG_UPDATE + lid; }

@compute @workgroup_size(WG_UPDATE)
fn partial_sums(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let d = paramIndex(wid, lid);
  let D = up.dim;
  if (d >= D) { return; }
  let first = wid.z * TASK_BLOCK;
  let end = min(first + TASK_BLOCK, up.tasks);
  var g = 0.0;
  for (var t = first; t < end; t++) { g += taskWeight[up.taskBase + t] * metaGrad[up.gradOff + t * D + d]; }
  partial[(up.blockBase + wid.z) * D + d] = g;
}

@compute @workgroup_size(WG_UPDATE)
fn update(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let d = paramIndex(wid, lid);
  let D = up.dim;
  if (d >= D) { return; }
  var g = 0.0;
  for (var b = 0u; b < up.blocks; b++) { g += partial[b * D + d]; }
  meanGrad[d] = g;
  if (up.rule == 0u) {
    theta[d] -= up.outerLr * g;
  } else if (up.rule == 1u) {
    let step = optState[2u * D];
    let m = up.beta1 * optState[d] + (1.0 - up.beta1) * g;
    let v = up.beta2 * optState[D + d] + (1.0 - up.beta2) * g * g;
    optState[d] = m;
    optState[D + d] = v;
    let mHat = m / (1.0 - pow(up.beta1, step));
    let vHat = v / (1.0 - pow(up.beta2, step));
    theta[d] -= up.outerLr * mHat / (sqrt(vHat) + up.epsilon);
  }
}

// Adam's step counter, bumped by a single invocation before `update` in the same command buffer.
@compute @workgroup_size(1)
fn count_step() { optState[2u * up.dim] += 1.0; }
