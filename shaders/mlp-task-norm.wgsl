// Per-task normalisation of a hidden layer (docs/neural-models.md; CPU twin: taskNorm in
// src/cpu/mlp-kernels.ts; the float64 reference's normalise / normJacobian in src/cpu/mlp.ts). Over the
// m rows of one task's set, per unit j, with s = √(σ² + ε) and J = (I − 11ᵀ/m − n nᵀ/m)/s (symmetric):
//   MODE 0 forward:    n = (z − μ)/s (two-pass mean and variance), a = relu(n); s → sOff.
//   MODE 1 backward:   δ = J g = (g − mean g − n κ)/s, κ = mean(g n) → kappaOff   (g = ∂/∂n, masked by [n > 0]).
//   MODE 2 R-forward:  R(n) = J R(z) = (R(z) − mean R(z) − n ρ)/s, ρ = mean(n R(z)) → rhoOff; R(a) = [n > 0] R(n).
//   MODE 3 R-backward: R(δ) = J R(g) − (ρ/s) δ − (R(n) κ + n τ)/s, τ = mean(g R(n)). g is not kept: since
//                      mean R(n) = 0 and g = s δ + mean g + n κ, τ = s·mean(δ R(n)) + κ·mean(n R(n)).
// Every array lives in the tape: a rows × units array of task t at off + t·tapeTaskStride (element (r, j)
// at + r·units + j), a per-unit array (s, κ, ρ) at off + t·tapeTaskStride + j. `in` (z, g, R(z), R(g)) and
// `out` (n, δ, R(n), R(δ)) may be the same array: each element is read before the same invocation writes it.
// Thread mapping: one invocation per (task, unit), looping over the rows (an MLP set's rows; a conv layer's
// rows × positions, thousands); at a fixed row consecutive
// invocations read consecutive units (coalesced). No workgroup memory, no barriers. A workgroup covers
// WG units of one task (`blocks` workgroups per task); the grid is folded into x/y/z by the host.

struct TaskNormParams {
  tasks: u32,
  rows: u32,
  units: u32,
  tapeTaskStride: u32,
  inOff: u32,
  outOff: u32,
  reluOff: u32,         // a (forward), R(a) (R-forward)
  nOff: u32,            // n, read by modes 1–3
  sOff: u32,            // written by mode 0, read by modes 1–3
  kappaOff: u32,        // written by mode 1, read by mode 3
  rhoOff: u32,          // written by mode 2, read by mode 3
  deltaOff: u32,        // δ (mode 3)
  rnOff: u32,           // R(n) (mode 3)
  blocks: u32,          // workgroups per task: ⌈units / WG⌉
  gridX: u32,
  gridY: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> np: TaskNormParams;
@group(0) @binding(1) var<storage, read_write> tape: array<f32>;

override WG: u32 = 64u;
override MODE: u32 = 0u;

@compute @workgroup_size(WG)
fn task_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + np.gridX * (wid.y + np.gridY * wid.z);
  let t = linear / np.blocks;
  let j = (linear % np.blocks) * WG + lid;
  if (t >= np.tasks || j >= np.units) { return; }
  let h = np.units;
  let m = np.rows;
  let perRow = 1.0 / f32(m);
  let base = t * np.tapeTaskStride;
  let unit = base + j;        // index of unit j in a per-unit array (add its offset)
  let x = np.inOff + base + j;  // element (r, j) of `in` is at x + r·h
  let y = np.outOff + base + j;
  let nAt = np.nOff + base + j;

  if (MODE == 0u) {
    var mean = 0.0;
    for (var r = 0u; r < m; r++) { mean += tape[x + r * h]; }
    mean *= perRow;
    var variance = 0.0;
    for (var r = 0u; r < m; r++) {
      let c = tape[x + r * h] - mean;
      variance += c * c;
    }
    let s = sqrt(variance * perRow + np.eps);
    tape[np.sOff + unit] = s;
    let a = np.reluOff + base + j;
    for (var r = 0u; r < m; r++) {
      let n = (tape[x + r * h] - mean) / s;
      tape[y + r * h] = n;
      tape[a + r * h] = max(n, 0.0);
    }
    return;
  }

  let s = tape[np.sOff + unit];
  if (MODE == 1u || MODE == 2u) {
    // Both are J·u; they differ in what the dot mean(u n) is kept as, and in R(a).
    var mean = 0.0;
    var un = 0.0;
    for (var r = 0u; r < m; r++) {
      let u = tape[x + r * h];
      mean += u;
      un += u * tape[nAt + r * h];
    }
    mean *= perRow;
    un *= perRow;
    if (MODE == 1u) {
      tape[np.kappaOff + unit] = un;
    } else {
      tape[np.rhoOff + unit] = un;
    }
    let ra = np.reluOff + base + j;
    for (var r = 0u; r < m; r++) {
      let n = tape[nAt + r * h];
      let v = (tape[x + r * h] - mean - n * un) / s;
      tape[y + r * h] = v;
      if (MODE == 2u) { tape[ra + r * h] = select(0.0, v, n > 0.0); }
    }
    return;
  }

  // MODE 3: R-backward.
  let kappa = tape[np.kappaOff + unit];
  let rho = tape[np.rhoOff + unit];
  let dAt = np.deltaOff + base + j;
  let rnAt = np.rnOff + base + j;
  var mean = 0.0;
  var un = 0.0;
  var deltaRn = 0.0;
  var nRn = 0.0;
  for (var r = 0u; r < m; r++) {
    let u = tape[x + r * h];
    let n = tape[nAt + r * h];
    let rn = tape[rnAt + r * h];
    mean += u;
    un += u * n;
    deltaRn += tape[dAt + r * h] * rn;
    nRn += n * rn;
  }
  mean *= perRow;
  un *= perRow;
  let tau = s * deltaRn * perRow + kappa * nRn * perRow;
  for (var r = 0u; r < m; r++) {
    let n = tape[nAt + r * h];
    let jrg = tape[x + r * h] - mean - n * un;
    tape[y + r * h] = (jrg - rho * tape[dAt + r * h] - tape[rnAt + r * h] * kappa - n * tau) / s;
  }
}
