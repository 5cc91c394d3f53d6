// The per-task half of a CAML (CAVIA, Zintgraf et al. 2019) meta-iteration, fused into one dispatch
// (one workgroup per task; mapping and vec4 layout: logistic-common.wgsl).
// Parameters θ = (w ∈ R^D, W ∈ R^{D×C}); stored as C+1 parameter vectors [w | W_0 | … | W_{C−1}] where
// W_c is column c of W, so every per-feature loop below is a plain vec4 loop and Wᵀv is C row dots.
// The task's model is w + Wφ; only the context φ ∈ R^C adapts, from φ⁽⁰⁾ = 0:
//   forward    θ_s = w + Wφ_s,  g_s = ∇L(θ_s; S),  φ_{s+1} = φ_s − α Wᵀ g_s,  s < n
//   query      loss and accuracy of θ_n on Q                                        → taskStats
//   order 1    dw = g_q,  dW = g_q φ_nᵀ   (φ_n held constant), g_q = ∇L(θ_n; Q)     → metaGrad
//   order 2    additionally back-propagate λ = dL/dφ through the inner steps: λ = Wᵀ g_q, then for
//              s = n−1 … 0 with z = Wλ and H_s the support Hessian at θ_s:
//                dw −= α H_s z,  dW −= α (g_s λᵀ + (H_s z) φ_sᵀ),  λ ← λ − α Wᵀ H_s z
// The tape keeps σ of every support row at every step and every φ_s; g_s is recomputed from the tape
// in the backward pass instead of being stored (one extra pass over S beats T·n·D floats of memory).

struct CamlParams {
  tasks: u32,
  supportRows: u32,
  queryRows: u32,
  dim4: u32,
  innerSteps: u32,
  order: u32,
  wantMetaGrad: u32,
  groupsPerRow: u32,
  innerLr: f32,
  supportXOff: u32,
  supportYOff: u32,
  queryXOff: u32,
  queryYOff: u32,
  context: u32,        // C ≤ MAX_CONTEXT
  outSet: u32,
  taskBase: u32,       // chunked batches: first task of this dispatch in the whole batch (maml-task.wgsl)
  slotTasks: u32,      // tasks of the whole batch
  _pad0: u32, _pad1: u32, _pad2: u32,
}

const MAX_CONTEXT: u32 = 64u;

@group(0) @binding(0) var<uniform> cp: CamlParams;
@group(0) @binding(1) var<storage, read> supportData: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> queryData: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> params: array<vec4<f32>>;          // (C+1)×D4: w, W_0 … W_{C−1}
@group(0) @binding(4) var<storage, read_write> adapted: array<vec4<f32>>;   // sets×T×D4: θ_n = w + Wφ_n
@group(0) @binding(5) var<storage, read_write> metaGrad: array<vec4<f32>>;  // sets×T×(C+1)×D4
@group(0) @binding(6) var<storage, read_write> tape: array<f32>;            // sets×T×(max(n,1)·Ks + (n+1)·C)
@group(0) @binding(7) var<storage, read_write> taskStats: array<f32>;       // sets×T×2
@group(0) @binding(8) var<storage, read_write> scratch: array<vec4<f32>>;   // sets×T×3×D4: g_s | z | H z

var<workgroup> phi: array<f32, MAX_CONTEXT>;     // the current context φ_s (forward), φ_s (backward)
var<workgroup> lambda: array<f32, MAX_CONTEXT>;  // dL/dφ_{s+1} in the backward pass

@compute @workgroup_size(WG)
fn caml_adapt_and_meta_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = taskIndex(wid, cp.groupsPerRow);
  if (t >= cp.tasks) { return; }
  let D4 = cp.dim4;
  let C = cp.context;
  let Ks = cp.supportRows;
  let Kq = cp.queryRows;
  let n = cp.innerSteps;
  let alpha = cp.innerLr;
  let slot = cp.outSet * cp.slotTasks + cp.taskBase + t;
  let own = slot * D4;
  let gradOff = slot * (C + 1u) * D4;
  let gS = slot * 3u * D4;   // g_s
  let zS = gS + D4;          // z = Wλ
  let hzS = zS + D4;         // H z
  let probOff = slot * (max(n, 1u) * Ks + (n + 1u) * C);
  let ctxOff = probOff + max(n, 1u) * Ks;
  let sx = cp.supportXOff + t * Ks * D4;
  let sy = cp.supportYOff + t * Ks;
  let qx = cp.queryXOff + t * Kq * D4;
  let qy = cp.queryYOff + t * Kq;

  // Tape entries are written and read back by the same invocation (same loop mapping), so no storage
  // barrier is needed between the forward and the backward pass.
  for (var c = lid; c < C; c += WG) { phi[c] = 0.0; tape[ctxOff + c] = 0.0; }
  workgroupBarrier();
  for (var s = 0u; s <= n; s++) {
    for (var q = lid; q < D4; q += WG) {
      var v = params[q];
      for (var c = 0u; c < C; c++) { v += phi[c] * params[(1u + c) * D4 + q]; }
      adapted[own + q] = v;
    }
    if (s == n) { break; }
    rowDots(&supportData, sx, Ks, &adapted, own, D4, lid);
    for (var r = lid; r < Ks; r += WG) {
      let p = sigmoid(rowVal[r]);
      tape[probOff + s * Ks + r] = p;
      rowVal[r] = p - scalarAt(&supportData, sy + r);
    }
    workgroupBarrier();
    rowsTransposeTimes(&supportData, sx, Ks, &scratch, gS, D4, lid, 1.0 / f32(Ks), false);
    rowDots(&params, D4, C, &scratch, gS, D4, lid);  // rowVal[c] = W_c · g_s
    for (var c = lid; c < C; c += WG) {
      phi[c] -= alpha * rowVal[c];
      tape[ctxOff + (s + 1u) * C + c] = phi[c];
    }
    workgroupBarrier();
  }

  rowDots(&queryData, qx, Kq, &adapted, own, D4, lid);
  logitsToResidual(&queryData, qy, Kq, lid);
  if (lid == 0u) {
    let stats = meanLossAndAccuracy(Kq);
    taskStats[2u * slot] = stats.x;
    taskStats[2u * slot + 1u] = stats.y;
  }
  if (cp.wantMetaGrad == 0u) { return; }
  rowsTransposeTimes(&queryData, qx, Kq, &metaGrad, gradOff, D4, lid, 1.0 / f32(Kq), false);  // dw = g_q
  for (var q = lid; q < D4; q += WG) {
    let gq = metaGrad[gradOff + q];
    for (var c = 0u; c < C; c++) { metaGrad[gradOff + (1u + c) * D4 + q] = phi[c] * gq; }
  }
  if (cp.order != 2u || n == 0u) { return; }

  rowDots(&params, D4, C, &metaGrad, gradOff, D4, lid);  // λ = Wᵀ g_q
  for (var c = lid; c < C; c += WG) { lambda[c] = rowVal[c]; }
  workgroupBarrier();
  for (var s = n; s > 0u; s--) {
    let step = s - 1u;
    for (var c = lid; c < C; c += WG) { phi[c] = tape[ctxOff + step * C + c]; }
    for (var q = lid; q < D4; q += WG) {
      var z = vec4<f32>(0.0);
      for (var c = 0u; c < C; c++) { z += lambda[c] * params[(1u + c) * D4 + q]; }
      scratch[zS + q] = z;
    }
    // H_s z = Xᵀ(σ'⊙Xz)/Ks, σ' from the tape. rowDots' first barrier also publishes phi.
    rowDots(&supportData, sx, Ks, &scratch, zS, D4, lid);
    for (var r = lid; r < Ks; r += WG) {
      let p = tape[probOff + step * Ks + r];
      rowVal[r] *= p * (1.0 - p);
    }
    workgroupBarrier();
    rowsTransposeTimes(&supportData, sx, Ks, &scratch, hzS, D4, lid, 1.0 / f32(Ks), false);
    workgroupBarrier();  // everyone has read rowVal before it is overwritten with residuals
    for (var r = lid; r < Ks; r += WG) { rowVal[r] = tape[probOff + step * Ks + r] - scalarAt(&supportData, sy + r); }
    workgroupBarrier();
    rowsTransposeTimes(&supportData, sx, Ks, &scratch, gS, D4, lid, 1.0 / f32(Ks), false);  // g_s
    for (var q = lid; q < D4; q += WG) {
      let g = scratch[gS + q];
      let hz = scratch[hzS + q];
      metaGrad[gradOff + q] -= alpha * hz;
      for (var c = 0u; c < C; c++) {
        metaGrad[gradOff + (1u + c) * D4 + q] -= alpha * (g * lambda[c] + hz * phi[c]);
      }
    }
    rowDots(&params, D4, C, &scratch, hzS, D4, lid);  // rowVal[c] = W_c · H z
    for (var c = lid; c < C; c += WG) { lambda[c] -= alpha * rowVal[c]; }
    workgroupBarrier();
  }
}
