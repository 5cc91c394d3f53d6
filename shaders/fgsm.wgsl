// One step of an L∞ input attack on the logistic loss, for every row of every task in one dispatch
// (one workgroup per task; mapping and vec4 layout: logistic-common.wgsl):
//   ∇x ℓ = (σ(x·θ) − y) θ, so sign(∇x ℓ) = sign(σ(x·θ) − y) · sign(θ)   (sign(0) = 0)
//   next = clip(Π_ε(current + s · sign(∇x ℓ(current))), lo, hi), Π_ε: the L∞ ball around the clean x
// FGSM is one step from current = clean with s = ε; PGD chains k steps (the host ping-pongs buffers).
// θ is the caller's choice: the meta-parameters (ADML training, stride 0) or each task's adapted θ'
// (robust evaluation, stride D4). Padding features (index ≥ D) are kept at 0.

struct AttackParams {
  tasks: u32,
  rows: u32,
  dim4: u32,
  dim: u32,            // true D: components beyond it are padding
  cleanXOff: u32,      // vec4 offsets of the rows in clean / current / next
  labelOff: u32,       // float offset of the labels in clean
  currentXOff: u32,
  nextXOff: u32,
  paramStride: u32,    // 0 (θ shared) or D4 (θ'_t per task)
  paramOff: u32,       // vec4 offset of task 0's parameters
  groupsPerRow: u32,
  _pad0: u32,
  epsilon: f32,
  stepSize: f32,
  lo: f32,
  hi: f32,
}

@group(0) @binding(0) var<uniform> ap: AttackParams;
@group(0) @binding(1) var<storage, read> clean: array<vec4<f32>>;        // clean rows and their labels
@group(0) @binding(2) var<storage, read> current: array<vec4<f32>>;      // the rows this step starts from
@group(0) @binding(3) var<storage, read_write> params: array<vec4<f32>>; // θ (read only here)
@group(0) @binding(4) var<storage, read_write> next: array<vec4<f32>>;   // the attacked rows

@compute @workgroup_size(WG)
fn attack_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = taskIndex(wid, ap.groupsPerRow);
  if (t >= ap.tasks) { return; }
  let D4 = ap.dim4;
  let K = ap.rows;
  let pOff = ap.paramOff + t * ap.paramStride;
  rowDots(&current, ap.currentXOff + t * K * D4, K, &params, pOff, D4, lid);
  for (var r = lid; r < K; r += WG) {
    rowVal[r] = sign(sigmoid(rowVal[r]) - scalarAt(&clean, ap.labelOff + t * K + r));
  }
  workgroupBarrier();
  for (var c = lid; c < D4; c += WG) {
    let direction = sign(params[pOff + c]);
    let real = vec4<f32>(vec4<u32>(4u * c) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(ap.dim));
    for (var r = 0u; r < K; r++) {
      let row = t * K + r;
      let x0 = clean[ap.cleanXOff + row * D4 + c];
      let stepped = current[ap.currentXOff + row * D4 + c] + ap.stepSize * rowVal[r] * direction;
      let projected = clamp(stepped, x0 - ap.epsilon, x0 + ap.epsilon);
      next[ap.nextXOff + row * D4 + c] = real * clamp(projected, vec4<f32>(ap.lo), vec4<f32>(ap.hi));
    }
  }
}
