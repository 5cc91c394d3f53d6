// Shared pieces of every logistic-model kernel; src/kernels/shader-source.ts puts this file in front of
// each shader that uses it.
//
// Model: logits a = X·θ, p = σ(a), loss = mean[softplus(a) − y·a] (the stable form of BCE).
//
// Data layout: rows and parameter vectors are arrays of vec4 (D padded with zeros to D4 = ⌈D/4⌉
// vec4s, see src/kernels/layout.ts): one 16-byte load per four features, four times fewer load
// instructions and bounds checks than scalar loads (the dominant cost on software adapters, and the
// widest coalesced load on GPUs). Label arrays are vec4 arrays too, read one component at a time.
//
// Thread mapping, used by every kernel that includes this file: one workgroup per task; its WG
// invocations split the D4 feature quads (invocation j owns quads j, j+WG, j+2·WG, …). Consecutive
// invocations therefore read consecutive 16-byte words of a row (coalesced on a GPU), and each
// invocation owns the same features of every parameter-sized vector, so per-feature updates (inner SGD
// step, Hessian-vector accumulation) need no synchronisation at all. The only cross-invocation work is
// the row dot product X[r,:]·v, done for ROWS rows at a time with one pair of barriers per block
// (barriers are expensive on software adapters, where each one is a thread switch).

override WG: u32 = 64u;
const ROWS: u32 = 16u;       // rows whose dot products share one pair of barriers
const MAX_ROWS: u32 = 256u;  // support or query rows per task; the host rejects larger batches

var<workgroup> partial: array<f32, WG * ROWS>;  // partial[j * ROWS + r]: invocation j's share of row r
var<workgroup> rowVal: array<f32, MAX_ROWS>;    // one value per row: a dot product, then a residual
var<workgroup> rowAux: array<f32, MAX_ROWS>;    // per-row loss, or per-row σ'(a) for Hessian products
var<workgroup> rowHit: array<f32, MAX_ROWS>;    // per-row 1 if the prediction is right

fn softplus(a: f32) -> f32 {
  // log(1 + e^a) without overflow: max(a, 0) + log(1 + e^−|a|); finite for |a| = 1e30.
  return max(a, 0.0) + log(1.0 + exp(-abs(a)));
}

fn sigmoid(a: f32) -> f32 {
  // Both branches only ever exponentiate a non-positive number.
  if (a >= 0.0) { return 1.0 / (1.0 + exp(-a)); }
  let e = exp(a);
  return e / (1.0 + e);
}

// Element i of a float array stored as vec4s.
fn scalarAt(a: ptr<storage, array<vec4<f32>>, read>, i: u32) -> f32 { return a[i / 4u][i % 4u]; }

// rowVal[r] = X[r, :] · v[vOff : vOff + dim4] for r < rows, where row r of X starts at x[xOff + r·dim4]
// (offsets and dim4 in vec4s). Every invocation of the workgroup must call it (it holds barriers); each
// reads only the quads it owns from v. Ends with a barrier, so rowVal is complete on return.
fn rowDots(x: ptr<storage, array<vec4<f32>>, read>, xOff: u32, rows: u32,
           v: ptr<storage, array<vec4<f32>>, read_write>, vOff: u32, dim4: u32, lid: u32) {
  for (var r0 = 0u; r0 < rows; r0 += ROWS) {
    let blockRows = min(ROWS, rows - r0);
    for (var r = 0u; r < blockRows; r++) {
      let rowOff = xOff + (r0 + r) * dim4;
      var acc = 0.0;
      for (var c = lid; c < dim4; c += WG) { acc += dot(x[rowOff + c], v[vOff + c]); }
      partial[lid * ROWS + r] = acc;
    }
    workgroupBarrier();
    if (lid < blockRows) {
      var sum = 0.0;
      // Invocation r reads partial[j * ROWS + r]: neighbouring invocations hit neighbouring banks.
      for (var j = 0u; j < WG; j++) { sum += partial[j * ROWS + lid]; }
      rowVal[r0 + lid] = sum;
    }
    workgroupBarrier();
  }
}

// out[outOff + c] (+)= scale · Σ_r X[r, c] · rowVal[r] for the quads this invocation owns: the
// transpose product Xᵀ·rowVal, with no barrier. accumulate = false overwrites.
fn rowsTransposeTimes(x: ptr<storage, array<vec4<f32>>, read>, xOff: u32, rows: u32,
                      out: ptr<storage, array<vec4<f32>>, read_write>, outOff: u32, dim4: u32, lid: u32,
                      scale: f32, accumulate: bool) {
  for (var c = lid; c < dim4; c += WG) {
    var acc = vec4<f32>(0.0);
    for (var r = 0u; r < rows; r++) { acc += x[xOff + r * dim4 + c] * rowVal[r]; }
    if (accumulate) { out[outOff + c] += scale * acc; } else { out[outOff + c] = scale * acc; }
  }
}

// With rowVal holding logits a_r: rowVal[r] ← p_r − y_r (the BCE residual), rowAux[r] ← the row's
// loss, rowHit[r] ← 1 if (p ≥ 0.5) == y. Labels are floats yOff… of y. Ends with a barrier.
fn logitsToResidual(y: ptr<storage, array<vec4<f32>>, read>, yOff: u32, rows: u32, lid: u32) {
  for (var r = lid; r < rows; r += WG) {
    let a = rowVal[r];
    let label = scalarAt(y, yOff + r);
    rowAux[r] = softplus(a) - label * a;
    rowHit[r] = select(0.0, 1.0, (a >= 0.0) == (label > 0.5));
    rowVal[r] = sigmoid(a) - label;
  }
  workgroupBarrier();
}

// Mean loss and accuracy over the rows left in rowAux / rowHit by logitsToResidual; for invocation 0.
fn meanLossAndAccuracy(rows: u32) -> vec2<f32> {
  var loss = 0.0;
  var hits = 0.0;
  for (var r = 0u; r < rows; r++) { loss += rowAux[r]; hits += rowHit[r]; }
  return vec2<f32>(loss, hits) / f32(rows);
}

// Task index of a workgroup: dispatches are 2-D when T exceeds maxComputeWorkgroupsPerDimension.
fn taskIndex(wid: vec3<u32>, groupsPerRow: u32) -> u32 { return wid.y * groupsPerRow + wid.x; }
