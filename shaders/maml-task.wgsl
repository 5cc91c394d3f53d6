// The per-task half of a MAML-family meta-iteration, fused into one dispatch (one workgroup per task;
// mapping and vec4 layout: logistic-common.wgsl). For task t:
//   inner loop   θ'⁽⁰⁾ = θ,  θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ∇L(θ'⁽ˢ⁾; S_t),  s < n        → adapted_t
//   query        loss and accuracy of θ'⁽ⁿ⁾ on Q_t                          → taskStats_t
//   meta-grad    g = ∇L(θ'⁽ⁿ⁾; Q_t); order 2 back-propagates through the inner steps:
//                for s = n−1 … 0: g ← g − α H(θ'⁽ˢ⁾; S_t) g                   → metaGrad_t
// σ(X_s θ'⁽ˢ⁾) is kept per step in supportProb, so the backward pass costs two passes over S_t per
// step (X g, then Xᵀ(σ'⊙X g)) and no recomputation of the forward trajectory.

struct TaskParams {
  tasks: u32,
  supportRows: u32,    // Ks
  queryRows: u32,      // Kq
  dim4: u32,           // D4 = ⌈D/4⌉ vec4s per row and per parameter vector
  innerSteps: u32,     // n (0 scores θ itself: evaluation before adaptation)
  order: u32,          // 1 or 2
  wantMetaGrad: u32,   // 0 for evaluation: stop after the query statistics
  groupsPerRow: u32,
  innerLr: f32,        // α
  supportXOff: u32,    // offsets of the four arrays inside `data`: X in vec4s, labels in floats
  supportYOff: u32,
  queryXOff: u32,
  queryYOff: u32,
  _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> tp: TaskParams;
@group(0) @binding(1) var<storage, read> data: array<vec4<f32>>;        // supportX | supportY | queryX | queryY
@group(0) @binding(2) var<storage, read_write> theta: array<vec4<f32>>; // D4 meta-parameters (read only here)
@group(0) @binding(3) var<storage, read_write> adapted: array<vec4<f32>>;  // T×D4 θ'_t
@group(0) @binding(4) var<storage, read_write> metaGrad: array<vec4<f32>>; // T×D4 per-task meta-gradient
@group(0) @binding(5) var<storage, read_write> supportProb: array<f32>; // T×max(n,1)×Ks σ(Xs θ'⁽ˢ⁾)
@group(0) @binding(6) var<storage, read_write> taskStats: array<f32>;   // T×2 query loss, accuracy at θ'

@compute @workgroup_size(WG)
fn adapt_and_meta_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = taskIndex(wid, tp.groupsPerRow);
  if (t >= tp.tasks) { return; }
  let D4 = tp.dim4;
  let Ks = tp.supportRows;
  let Kq = tp.queryRows;
  let n = tp.innerSteps;
  let own = t * D4;
  let sx = tp.supportXOff + t * Ks * D4;
  let sy = tp.supportYOff + t * Ks;
  let qx = tp.queryXOff + t * Kq * D4;
  let qy = tp.queryYOff + t * Kq;
  let probOff = t * max(n, 1u) * Ks;

  for (var c = lid; c < D4; c += WG) { adapted[own + c] = theta[c]; }
  for (var s = 0u; s < n; s++) {
    rowDots(&data, sx, Ks, &adapted, own, D4, lid);
    for (var r = lid; r < Ks; r += WG) {
      let p = sigmoid(rowVal[r]);
      supportProb[probOff + s * Ks + r] = p;
      rowVal[r] = p - scalarAt(&data, sy + r);
    }
    workgroupBarrier();
    rowsTransposeTimes(&data, sx, Ks, &adapted, own, D4, lid, -tp.innerLr / f32(Ks), true);
  }

  rowDots(&data, qx, Kq, &adapted, own, D4, lid);
  logitsToResidual(&data, qy, Kq, lid);
  if (lid == 0u) {
    let s = meanLossAndAccuracy(Kq);
    taskStats[2u * t] = s.x;
    taskStats[2u * t + 1u] = s.y;
  }
  if (tp.wantMetaGrad == 0u) { return; }
  rowsTransposeTimes(&data, qx, Kq, &metaGrad, own, D4, lid, 1.0 / f32(Kq), false);

  if (tp.order == 2u) {
    for (var s = n; s > 0u; s--) {
      rowDots(&data, sx, Ks, &metaGrad, own, D4, lid);
      for (var r = lid; r < Ks; r += WG) {
        let p = supportProb[probOff + (s - 1u) * Ks + r];
        rowVal[r] *= p * (1.0 - p);
      }
      workgroupBarrier();
      rowsTransposeTimes(&data, sx, Ks, &metaGrad, own, D4, lid, -tp.innerLr / f32(Ks), true);
    }
  }
}
