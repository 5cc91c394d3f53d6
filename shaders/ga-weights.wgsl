// Gradient-agreement weights (Eshratifar et al. 2018) from the task updates u_t = θ − θ'_t, computed on
// the GPU so that no readback sits between the task pass and the meta-update:
//   paper:     w_t = u_t·s / Σ_k |u_k·s|,            s = Σ_j u_j  (O(T·D), Σ|w| = 1)
//   notebook:  w_t = u_t·s / Σ_k Σ_j |u_k·u_j|       (the seed notebook's denominator, O(T²·D))
// If the denominator is 0 (every update is 0) the weights fall back to MAML's 1/T.
// Four entries, recorded in order: partial_updates (a workgroup per (64 features, block of 64 tasks):
// enough threads for a GPU at large T), sum_updates (one invocation per feature adds the blocks),
// agreement (one workgroup per task: a_t = u_t·s, and for 'notebook' b_t = Σ_j |u_t·u_j|), normalize
// (one workgroup).

// featureGroupsX: workgroups along x of the per-feature entries; features are split over a 2-D grid
// (x, y) when dim/64 is over the adapter's per-dimension limit.
struct GaParams { tasks: u32, dim: u32, notebook: u32, groupsPerRow: u32, blocks: u32, featureGroupsX: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> gp: GaParams;
@group(0) @binding(1) var<storage, read> theta: array<f32>;          // D (padded)
@group(0) @binding(2) var<storage, read> adapted: array<f32>;        // T×D θ'_t (set 0)
@group(0) @binding(3) var<storage, read_write> updateSum: array<f32>; // D: s = Σ_t u_t
@group(0) @binding(4) var<storage, read_write> agree: array<f32>;    // 2T: a_t, then b_t
@group(0) @binding(5) var<storage, read_write> taskWeight: array<f32>; // T: w_t
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;  // blocks×D partial sums of u

override WG_GA: u32 = 64u;
override TASK_BLOCK: u32 = 64u;
var<workgroup> scratchA: array<f32, WG_GA>;
var<workgroup> scratchB: array<f32, WG_GA>;

fn featureIndex(wid: vec3<u32>, lid: u32) -> u32 { return (wid.y * gp.featureGroupsX + wid.x) * WG_GA + lid; }

@compute @workgroup_size(WG_GA)
fn partial_updates(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let d = featureIndex(wid, lid);
  if (d >= gp.dim) { return; }
  let first = wid.z * TASK_BLOCK;
  let end = min(first + TASK_BLOCK, gp.tasks);
  var s = 0.0;
  for (var t = first; t < end; t++) { s += theta[d] - adapted[t * gp.dim + d]; }
  partial[wid.z * gp.dim + d] = s;
}

@compute @workgroup_size(WG_GA)
fn sum_updates(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let d = featureIndex(wid, lid);
  if (d >= gp.dim) { return; }
  var s = 0.0;
  for (var b = 0u; b < gp.blocks; b++) { s += partial[b * gp.dim + d]; }
  updateSum[d] = s;
}

// Sum of scratchA and scratchB over the workgroup, for every invocation (two barriers).
fn workgroupSums(lid: u32, a: f32, b: f32) -> vec2<f32> {
  scratchA[lid] = a;
  scratchB[lid] = b;
  workgroupBarrier();
  var total = vec2<f32>(0.0);
  for (var j = 0u; j < WG_GA; j++) { total += vec2<f32>(scratchA[j], scratchB[j]); }
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG_GA)
fn agreement(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.y * gp.groupsPerRow + wid.x;
  if (t >= gp.tasks) { return; }
  let D = gp.dim;
  var a = 0.0;
  for (var d = lid; d < D; d += WG_GA) { a += (theta[d] - adapted[t * D + d]) * updateSum[d]; }
  var b = 0.0;
  if (gp.notebook == 1u) {
    for (var j = 0u; j < gp.tasks; j++) {
      var dotTJ = 0.0;
      for (var d = lid; d < D; d += WG_GA) { dotTJ += (theta[d] - adapted[t * D + d]) * (theta[d] - adapted[j * D + d]); }
      b += abs(workgroupSums(lid, dotTJ, 0.0).x);
    }
  }
  let sums = workgroupSums(lid, a, 0.0);
  if (lid == 0u) {
    agree[t] = sums.x;
    agree[gp.tasks + t] = b;
  }
}

@compute @workgroup_size(WG_GA)
fn normalize(@builtin(local_invocation_index) lid: u32) {
  let T = gp.tasks;
  var absA = 0.0;
  var sumB = 0.0;
  for (var t = lid; t < T; t += WG_GA) { absA += abs(agree[t]); sumB += agree[T + t]; }
  let sums = workgroupSums(lid, absA, sumB);
  let denom = select(sums.x, sums.y, gp.notebook == 1u);
  for (var t = lid; t < T; t += WG_GA) {
    taskWeight[t] = select(1.0 / f32(T), agree[t] / denom, denom > 0.0);
  }
}
