// The per-task half of every MAML-family meta-iteration, fused into one dispatch (one workgroup per
// task; mapping and vec4 layout: logistic-common.wgsl). For task t:
//   inner loop   θ'⁽⁰⁾ = θ_t,  θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ∇L(θ'⁽ˢ⁾ + Δ⁽ˢ⁾; S_t),  s < n        → adapted
//                Δ⁽ˢ⁾ = 0 for plain SGD; with the AMP inner optimizer, N ascent steps
//                Δ ← Π_ε(Δ + ζ ∇L(θ'⁽ˢ⁾ + Δ; S_t)) on the L2 ball (norm-clip.wgsl)
//   query        loss and accuracy of θ'⁽ⁿ⁾ on Q_t                                 → taskStats
//   meta-grad    g = ∇L(θ'⁽ⁿ⁾; Q_t); order 2 back-propagates through the inner steps:
//                for s = n−1 … 0: g ← g − α H(θ'⁽ˢ⁾ + Δ⁽ˢ⁾; S_t) g   (Δ held constant)    → metaGrad
// σ at the point of each inner gradient is kept in supportProb, so the backward pass costs two passes
// over S_t per step (X g, then Xᵀ(σ'⊙X g)) and recomputes nothing.
// Support and query come from two bindings (often the same buffer), so that ADML can pair a clean
// support set with an adversarial query set and the other way round. Outputs of task t go to slot
// outSet·T + t, so that two task passes (ADML's clean and adversarial) keep separate results. A batch too
// big for one storage binding is split into chunks of tasks, one dispatch each: rows are read from the
// chunk's data buffer (local t), outputs and θ are indexed by the task's place in the whole batch.
// writeBack turns the dispatch into AMP's plain training step: each task's own model is updated in place.
// stepSizes is Meta-SGD (metaSgdTask below): θ's buffer holds [θ | α] (α at D4), the inner step is
// θ' ← θ' − α ⊙ g, and each metaGrad slot holds [g_θ | g_α] (2·D4 vec4s).

struct TaskParams {
  tasks: u32,
  supportRows: u32,    // Ks
  queryRows: u32,      // Kq
  dim4: u32,           // D4 = ⌈D/4⌉ vec4s per row and per parameter vector
  innerSteps: u32,     // n (0 scores θ itself: evaluation before adaptation)
  order: u32,          // 1 or 2
  wantMetaGrad: u32,   // 0 for evaluation and for AMP's plain training: skip query gradient
  groupsPerRow: u32,
  innerLr: f32,        // α
  supportXOff: u32,    // offsets inside supportData / queryData: X in vec4s, labels in floats
  supportYOff: u32,
  queryXOff: u32,
  queryYOff: u32,
  thetaStride: u32,    // 0: one θ for all tasks (meta-learning); D4: one model per task (AMP)
  outSet: u32,         // outputs of task t go to slot outSet·tasks + t
  perturbSteps: u32,   // N: AMP ascent steps per inner step (0 = plain SGD)
  perturbLr: f32,      // ζ
  perturbRadius: f32,  // ε of the L2 ball
  writeBack: u32,      // 1: θ_t ← θ'_t at the end (AMP's plain training; needs thetaStride = D4)
  taskBase: u32,       // index of this dispatch's first task in the whole batch (batches split in chunks)
  slotTasks: u32,      // tasks of the whole batch: the stride of output sets
  stepSizes: u32,      // 1: Meta-SGD, learned α in theta[D4 …] (needs thetaStride = 0, no AMP)
  _pad0: u32,
}

@group(0) @binding(0) var<uniform> tp: TaskParams;
@group(0) @binding(1) var<storage, read> supportData: array<vec4<f32>>;  // holds supportX and supportY
@group(0) @binding(2) var<storage, read> queryData: array<vec4<f32>>;    // holds queryX and queryY
@group(0) @binding(3) var<storage, read_write> theta: array<vec4<f32>>;     // D4 or T×D4 (read only here)
@group(0) @binding(4) var<storage, read_write> adapted: array<vec4<f32>>;   // sets×T×D4 θ'
@group(0) @binding(5) var<storage, read_write> metaGrad: array<vec4<f32>>;  // sets×T×D4, or sets×T×2·D4 with stepSizes
@group(0) @binding(6) var<storage, read_write> supportProb: array<f32>;     // sets×T×max(n,1)×Ks
@group(0) @binding(7) var<storage, read_write> taskStats: array<f32>;       // sets×T×2 query loss, accuracy
@group(0) @binding(8) var<storage, read_write> perturbed: array<vec4<f32>>; // sets×T×D4: AMP θ'+Δ; Meta-SGD α ⊙ v

@compute @workgroup_size(WG)
fn adapt_and_meta_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = taskIndex(wid, tp.groupsPerRow);
  if (t >= tp.tasks) { return; }
  let D4 = tp.dim4;
  let Ks = tp.supportRows;
  let Kq = tp.queryRows;
  let n = tp.innerSteps;
  let task = tp.taskBase + t;  // index in the whole batch; t indexes this chunk's rows
  let slot = tp.outSet * tp.slotTasks + task;
  let own = slot * D4;
  let sx = tp.supportXOff + t * Ks * D4;
  let sy = tp.supportYOff + t * Ks;
  let qx = tp.queryXOff + t * Kq * D4;
  let qy = tp.queryYOff + t * Kq;
  let probOff = slot * max(n, 1u) * Ks;
  let amp = tp.perturbSteps > 0u;
  if (tp.stepSizes == 1u) {
    metaSgdTask(slot, sx, sy, qx, qy, lid);
    return;
  }

  for (var c = lid; c < D4; c += WG) { adapted[own + c] = theta[task * tp.thetaStride + c]; }
  for (var s = 0u; s < n; s++) {
    if (amp) {
      // Start the ascent at Δ = 0, i.e. at the point θ'⁽ˢ⁾ itself.
      for (var c = lid; c < D4; c += WG) { perturbed[own + c] = adapted[own + c]; }
      for (var i = 0u; i < tp.perturbSteps; i++) {
        rowDots(&supportData, sx, Ks, &perturbed, own, D4, lid);
        for (var r = lid; r < Ks; r += WG) { rowVal[r] = sigmoid(rowVal[r]) - scalarAt(&supportData, sy + r); }
        workgroupBarrier();
        rowsTransposeTimes(&supportData, sx, Ks, &perturbed, own, D4, lid, tp.perturbLr / f32(Ks), true);
        clipPerturbation(&perturbed, &adapted, own, D4, tp.perturbRadius, lid);
      }
      rowDots(&supportData, sx, Ks, &perturbed, own, D4, lid);
    } else {
      rowDots(&supportData, sx, Ks, &adapted, own, D4, lid);
    }
    supportResiduals(probOff + s * Ks, sy, Ks, lid);
    rowsTransposeTimes(&supportData, sx, Ks, &adapted, own, D4, lid, -tp.innerLr / f32(Ks), true);
  }
  if (tp.writeBack == 1u) {
    // Each workgroup owns its model θ_t and nothing else reads it in this dispatch.
    for (var c = lid; c < D4; c += WG) { theta[task * tp.thetaStride + c] = adapted[own + c]; }
  }

  scoreQuery(qx, qy, own, slot, lid);
  if (tp.wantMetaGrad == 0u) { return; }
  rowsTransposeTimes(&queryData, qx, Kq, &metaGrad, own, D4, lid, 1.0 / f32(Kq), false);

  if (tp.order == 2u) {
    for (var s = n; s > 0u; s--) {
      rowDots(&supportData, sx, Ks, &metaGrad, own, D4, lid);
      for (var r = lid; r < Ks; r += WG) {
        let p = supportProb[probOff + (s - 1u) * Ks + r];
        rowVal[r] *= p * (1.0 - p);
      }
      workgroupBarrier();
      rowsTransposeTimes(&supportData, sx, Ks, &metaGrad, own, D4, lid, -tp.innerLr / f32(Ks), true);
    }
  }
}

// rowVal holds the support logits X_S θ' (rowDots): σ into supportProb[probAt …], then rowVal = σ − y.
fn supportResiduals(probAt: u32, sy: u32, Ks: u32, lid: u32) {
  for (var r = lid; r < Ks; r += WG) {
    let p = sigmoid(rowVal[r]);
    supportProb[probAt + r] = p;
    rowVal[r] = p - scalarAt(&supportData, sy + r);
  }
  workgroupBarrier();
}

// Query loss and accuracy of adapted[own …] into taskStats[2·slot …]; leaves σ − y in rowVal.
fn scoreQuery(qx: u32, qy: u32, own: u32, slot: u32, lid: u32) {
  rowDots(&queryData, qx, tp.queryRows, &adapted, own, tp.dim4, lid);
  logitsToResidual(&queryData, qy, tp.queryRows, lid);
  if (lid == 0u) {
    let stats = meanLossAndAccuracy(tp.queryRows);
    taskStats[2u * slot] = stats.x;
    taskStats[2u * slot + 1u] = stats.y;
  }
}

// Meta-SGD's task (CPU twin: adaptWithStepSizes in src/cpu/maml-task.ts), α = theta[D4 …]:
//   inner        θ'⁽ˢ⁺¹⁾ = θ'⁽ˢ⁾ − α ⊙ g_s,  g_s = X_Sᵀ(σ_s − y)/Ks                       → adapted
//   meta-grad    v_n = ∇L(θ'⁽ⁿ⁾; Q);  order 1: g_θ = v_n, g_α = −(Σ_s g_s) ⊙ v_n
//                order 2: for s = n−1 … 0: g_α −= g_s ⊙ v_{s+1}, v_s = v_{s+1} − H_s (α ⊙ v_{s+1});
//                g_θ = v_0                                                              → metaGrad
// Same mapping as the plain path: each invocation owns quads c ≡ lid (mod WG) of every D-vector, so the
// per-feature updates need no barrier. Order 1 sums g_s into g_α's slot during the inner loop; order 2
// rebuilds g_s from the stored σ_s (residuals in rowAux) in the same sweep over the rows as H_s(α ⊙ v).
fn metaSgdTask(slot: u32, sx: u32, sy: u32, qx: u32, qy: u32, lid: u32) {
  let D4 = tp.dim4;
  let Ks = tp.supportRows;
  let Kq = tp.queryRows;
  let n = tp.innerSteps;
  let own = slot * D4;
  let gradTheta = 2u * slot * D4;
  let gradAlpha = gradTheta + D4;
  let probOff = slot * max(n, 1u) * Ks;
  let sumInner = tp.wantMetaGrad == 1u && tp.order == 1u;
  let invKs = 1.0 / f32(Ks);

  for (var c = lid; c < D4; c += WG) {
    adapted[own + c] = theta[c];
    if (tp.wantMetaGrad == 1u) { metaGrad[gradAlpha + c] = vec4<f32>(0.0); }
  }
  for (var s = 0u; s < n; s++) {
    rowDots(&supportData, sx, Ks, &adapted, own, D4, lid);
    supportResiduals(probOff + s * Ks, sy, Ks, lid);
    for (var c = lid; c < D4; c += WG) {
      var acc = vec4<f32>(0.0);
      for (var r = 0u; r < Ks; r++) { acc += supportData[sx + r * D4 + c] * rowVal[r]; }
      let g = invKs * acc;
      adapted[own + c] -= theta[D4 + c] * g;
      if (sumInner) { metaGrad[gradAlpha + c] += g; }
    }
  }

  scoreQuery(qx, qy, own, slot, lid);
  if (tp.wantMetaGrad == 0u) { return; }
  rowsTransposeTimes(&queryData, qx, Kq, &metaGrad, gradTheta, D4, lid, 1.0 / f32(Kq), false);

  if (tp.order == 1u) {
    for (var c = lid; c < D4; c += WG) { metaGrad[gradAlpha + c] = -metaGrad[gradAlpha + c] * metaGrad[gradTheta + c]; }
    return;
  }
  for (var s = n; s > 0u; s--) {
    // metaGrad[gradTheta …] holds v_s; step s − 1 used σ_{s−1}. α ⊙ v goes to the task's `perturbed`
    // vector (AMP's, unused here), written and read by the invocation that owns each quad, so rowDots
    // needs no extra barrier. rowAux is free again: invocation 0 read the query losses before the first
    // barrier of rowDots.
    for (var c = lid; c < D4; c += WG) { perturbed[own + c] = theta[D4 + c] * metaGrad[gradTheta + c]; }
    rowDots(&supportData, sx, Ks, &perturbed, own, D4, lid);
    for (var r = lid; r < Ks; r += WG) {
      let p = supportProb[probOff + (s - 1u) * Ks + r];
      rowAux[r] = p - scalarAt(&supportData, sy + r);
      rowVal[r] *= p * (1.0 - p);
    }
    workgroupBarrier();
    for (var c = lid; c < D4; c += WG) {
      var hessAcc = vec4<f32>(0.0);
      var gradAcc = vec4<f32>(0.0);
      for (var r = 0u; r < Ks; r++) {
        let xr = supportData[sx + r * D4 + c];
        hessAcc += xr * rowVal[r];
        gradAcc += xr * rowAux[r];
      }
      let v = metaGrad[gradTheta + c];
      metaGrad[gradAlpha + c] -= (invKs * gradAcc) * v;
      metaGrad[gradTheta + c] = v - invKs * hessAcc;
    }
  }
}
