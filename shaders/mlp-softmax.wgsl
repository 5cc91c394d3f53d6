// The losses of each task's rows (docs/neural-models.md "mlp-softmax"; CPU twin: softmaxXent in
// src/cpu/mlp-kernels.ts): softmax cross-entropy, and squared error for regression (a layer list under
// MSE). Row r of task t: outputs z_c = tape[zOff + t·tapeTaskStride + r·C + c], label
// y = data[yOff + t·rows + r] (a class index held in a float, or the real target), C = classes.
//   mode 0 (loss): p = softmax(z) with the max subtracted (finite for any finite logits);
//                  tape[pOff…] = p, tape[dOff…] = scale·(p − onehot(y)); when wantStats:
//                  stats[statsOff + 2t] = mean_r (log Σ_c e^{z_c − max} + max − z_y),
//                  stats[statsOff + 2t + 1] = mean_r [argmax z = y]   (argmax: the smallest index of the max)
//   mode 1 (R):    tape[dOff…] = scale·p_c·(Rz_c − Σ_k p_k Rz_k), p at pOff, Rz at rzOff
//                  (the R-operator of the softmax gradient: R(p) = p ⊙ (Rz − pᵀRz)).
//   mode 2 (mse):  C = 1: tape[dOff…] = scale·2(z − y); stats: mean_r (z − y)² as loss and as metric
//   mode 3 (mse R): tape[dOff…] = scale·2·Rz
// Thread mapping: one workgroup per task (the grid is folded into x/y/z by the host), one invocation per
// row (rows beyond WG loop). A row reads all its logits before writing p or d, so pOff/dOff may equal
// zOff. The per-task means take one barrier: invocation 0 sums the WG partials in a fixed order.

struct SoftmaxParams {
  tasks: u32,
  rows: u32,
  classes: u32,
  mode: u32,            // 0 loss, 1 R, 2 squared error, 3 its R
  yOff: u32,
  zOff: u32,
  pOff: u32,
  dOff: u32,
  rzOff: u32,
  tapeTaskStride: u32,
  wantStats: u32,
  statsOff: u32,
  gridX: u32,           // workgroups along x and y of the folded grid
  gridY: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> sp: SoftmaxParams;
@group(0) @binding(1) var<storage, read> data: array<f32>;         // labels
@group(0) @binding(2) var<storage, read_write> tape: array<f32>;   // logits, p, d, Rz
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;  // (mean loss, accuracy) per task

override WG: u32 = 32u;

var<workgroup> lossPart: array<f32, WG>;
var<workgroup> hitPart: array<f32, WG>;

@compute @workgroup_size(WG)
fn softmax_xent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + sp.gridX * (wid.y + sp.gridY * wid.z);
  if (t >= sp.tasks) { return; }  // the folded grid's tail: a whole workgroup leaves
  let C = sp.classes;
  var loss = 0.0;
  var hits = 0.0;
  for (var r = lid; r < sp.rows; r += WG) {
    let row = t * sp.tapeTaskStride + r * C;
    if (sp.mode == 2u) {
      let e = tape[sp.zOff + row] - data[sp.yOff + t * sp.rows + r];
      loss += e * e;
      hits += e * e;
      tape[sp.dOff + row] = sp.scale * 2.0 * e;
    } else if (sp.mode == 3u) {
      tape[sp.dOff + row] = sp.scale * 2.0 * tape[sp.rzOff + row];
    } else if (sp.mode == 0u) {
      let z = sp.zOff + row;
      let y = u32(data[sp.yOff + t * sp.rows + r]);
      var top = tape[z];
      var arg = 0u;
      for (var c = 1u; c < C; c++) {
        let v = tape[z + c];
        if (v > top) { top = v; arg = c; }
      }
      var sum = 0.0;
      for (var c = 0u; c < C; c++) { sum += exp(tape[z + c] - top); }
      loss += log(sum) + top - tape[z + y];
      hits += select(0.0, 1.0, arg == y);
      for (var c = 0u; c < C; c++) {
        let p = exp(tape[z + c] - top) / sum;
        tape[sp.pOff + row + c] = p;
        tape[sp.dOff + row + c] = sp.scale * (p - select(0.0, 1.0, c == y));
      }
    } else {
      var dot = 0.0;
      for (var c = 0u; c < C; c++) { dot += tape[sp.pOff + row + c] * tape[sp.rzOff + row + c]; }
      for (var c = 0u; c < C; c++) {
        tape[sp.dOff + row + c] = sp.scale * tape[sp.pOff + row + c] * (tape[sp.rzOff + row + c] - dot);
      }
    }
  }
  if ((sp.mode != 0u && sp.mode != 2u) || sp.wantStats == 0u) { return; }
  lossPart[lid] = loss;
  hitPart[lid] = hits;
  workgroupBarrier();
  if (lid == 0u) {
    var totalLoss = 0.0;
    var totalHits = 0.0;
    for (var i = 0u; i < WG; i++) {
      totalLoss += lossPart[i];
      totalHits += hitPart[i];
    }
    let perRow = select(1.0 / f32(sp.rows), 0.0, sp.rows == 0u);
    stats[sp.statsOff + 2u * t] = totalLoss * perRow;
    stats[sp.statsOff + 2u * t + 1u] = totalHits * perRow;
  }
}
