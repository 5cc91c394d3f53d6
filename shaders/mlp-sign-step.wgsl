// One FGSM/PGD step on input rows (docs/neural-models.md "mlp-sign-step"; CPU twin: signStep in
// src/cpu/mlp-kernels.ts). For task t, row r, feature d < dim:
//   x_adv = clip(clean + clamp(x_cur + stepSize·sign(g) − clean, −ε, ε), lo, hi),   sign(0) = 0
// x rows (clean, and x_cur = adv on later steps) at off + (t·rows + r)·rowStride + d (rows padded to
// rowStride = Dp), the input gradient g at tape[gOff + t·gTaskStride + r·gRowStride + d].
// Thread mapping: one invocation per feature; workgroup (feature block, row) linearised as
// block + blocks·(t·rows + r) and folded into x/y/z by the host; consecutive invocations read and
// write consecutive floats. No barriers.

struct SignStepParams {
  tasks: u32,
  rows: u32,
  dim: u32,
  rowStride: u32,
  cleanOff: u32,
  advOff: u32,
  readClean: u32,   // 1: x_cur = clean (the first step); 0: x_cur = adv
  gOff: u32,
  gTaskStride: u32,
  gRowStride: u32,
  blocks: u32,      // ⌈dim / WG⌉ workgroups per row
  gridX: u32,
  gridY: u32,
  stepSize: f32,
  epsilon: f32,
  lo: f32,
  hi: f32,
}

@group(0) @binding(0) var<uniform> sp: SignStepParams;
@group(0) @binding(1) var<storage, read> clean: array<f32>;
@group(0) @binding(2) var<storage, read_write> adv: array<f32>;
@group(0) @binding(3) var<storage, read_write> tape: array<f32>;   // holds g

override WG: u32 = 128u;

@compute @workgroup_size(WG)
fn sign_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + sp.gridX * (wid.y + sp.gridY * wid.z);
  let row = g / sp.blocks;    // t·rows + r
  if (row >= sp.tasks * sp.rows) { return; }
  let d = (g - row * sp.blocks) * WG + lid;
  if (d >= sp.dim) { return; }
  let t = row / sp.rows;
  let r = row - t * sp.rows;
  let x = row * sp.rowStride + d;
  let x0 = clean[sp.cleanOff + x];
  var cur = x0;
  if (sp.readClean == 0u) { cur = adv[sp.advOff + x]; }
  let grad = tape[sp.gOff + t * sp.gTaskStride + r * sp.gRowStride + d];
  let moved = cur + sp.stepSize * sign(grad);
  let delta = clamp(moved - x0, -sp.epsilon, sp.epsilon);
  adv[sp.advOff + x] = clamp(x0 + delta, sp.lo, sp.hi);
}
