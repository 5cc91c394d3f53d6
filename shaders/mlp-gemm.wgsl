// Batched small matmul with per-task operands and fused epilogues (docs/neural-models.md "mlp-gemm";
// CPU twin: gemm in src/cpu/mlp-kernels.ts). For t < tasks, m < M, n < N:
//   acc = Σ_{k<K1} A1(t,m,k)·B1(t,k,n) + Σ_{k<K2} A2(t,m,k)·B2(t,k,n) + bias1(t,n) + bias2(t,n)
//   acc ·= (mask(t,m,n) > 0 ? 1 : 0)
//   dst = scale·acc | dst + scale·acc | addend + scale·acc      (mode 0 write | 1 accumulate | 2 from)
//   dst2 = acc·(ref(t,m,n) > 0 ? 1 : 0),  ref = dst2Mask, or acc itself when dst2Mask is NONE (relu)
// where X(t,i,j) = buffer(src)[off + t·taskStride + i·strideI + j·strideJ]; src ONE reads 1, NONE reads 0
// (a NONE mask / bias / dst2 is skipped). Transposes are stride swaps; strideI = 0 broadcasts a row.
//
// Thread mapping: one workgroup per (task, TM×TN output tile), TM = TY·RM, TN = TX·RN; the grid is
// linearised (n-tile fastest, then m-tile, then task) and folded into x/y/z by the host. Invocation
// (tx, ty) owns the RM×RN block of rows ty + TY·i and columns tx + TX·j: consecutive invocations write
// consecutive columns (coalesced stores). The host (chooseTiles in src/kernels/mlp-gemm.ts) uses one
// row of invocations, TY = 1, and RM = M for M ≤ 32: a task's 5…25 rows are one tile (no padding rows),
// every B (weight) element is read once per task, and all invocations read the same A words.
// Two entry points:
// - gemm (GPUs): each term's K runs through KT-deep tiles: A (TM×KT) and B (KT×TN) are staged in
//   workgroup memory, k-major, one pair of barriers per tile; A reads there are broadcasts. A tile is
//   loaded with k fastest when A.strideJ = 1 (row-major rows) and m fastest otherwise (Aᵀ, strideI = 1);
//   B with n or k fastest: global reads stay coalesced for transposed operands too. The tiles' row
//   pitch is odd (TM + 1, TN + 1) so that k-fastest writes do not all land in one bank.
// - gemm_direct (software adapters such as llvmpipe): no workgroup memory (there every access, to a
//   buffer or to workgroup memory, is a loop over the SIMD lanes, so staging only adds accesses). Each
//   invocation reads its B columns and A rows straight from the buffers; 8 invocations (one SIMD group)
//   with blocks of up to 128 sums keep the A re-reads down. The block shape is read from the uniform,
//   so its loops stay loops: unrolled, llvmpipe took seconds to compile each variant.
// The spec's structure (sources, mode, optional steps) is a set of pipeline constants, so that no load
// or store sits behind a run-time switch (on a software adapter a branch runs masked, lane by lane).

struct Operand { off: u32, taskStride: u32, strideI: u32, strideJ: u32 }

struct GemmParams {
  tasks: u32,
  M: u32,
  N: u32,
  K1: u32,
  K2: u32,
  tilesN: u32,     // ⌈N / TN⌉
  tilesM: u32,     // ⌈M / TM⌉
  gridX: u32,      // workgroups dispatched along x and y (the grid is folded, see header)
  gridY: u32,
  scale: f32,
  blockRows: u32,  // RM and RN (gemm_direct's pipelines do not fix them: its loop bounds)
  blockCols: u32,
  a1: Operand,
  b1: Operand,
  a2: Operand,
  b2: Operand,
  bias1: Operand,  // read at (t, n): off + t·taskStride + n
  bias2: Operand,
  mask: Operand,
  dst: Operand,
  addend: Operand, // mode 2: dst = addend + scale·acc
  dst2: Operand,
  dst2Mask: Operand,
}

@group(0) @binding(0) var<uniform> gp: GemmParams;
@group(0) @binding(1) var<storage, read> data: array<f32>;        // the packed batch
@group(0) @binding(2) var<storage, read_write> tape: array<f32>;  // activations
@group(0) @binding(3) var<storage, read_write> p0: array<f32>;    // parameter-sized per-task buffers
@group(0) @binding(4) var<storage, read_write> p1: array<f32>;
@group(0) @binding(5) var<storage, read_write> p2: array<f32>;

const SRC_ONE = 5u;
const SRC_NONE = 6u;

// Tile shape (see header).
override TX: u32 = 32u;   // invocations along n
override TY: u32 = 1u;    // invocations along m
override RM: u32 = 8u;    // rows per invocation (≤ MAX_RM)
override RN: u32 = 2u;    // columns per invocation (≤ MAX_RN)
override KT: u32 = 32u;   // K-tile depth
override TM: u32 = TY * RM;
override TN: u32 = TX * RN;
override THREADS: u32 = TX * TY;
override PITCH_A: u32 = TM + 1u;
override PITCH_B: u32 = TN + 1u;
// Staging rounds: the last one may run past the tile; those invocations write to THREADS spare words
// after it instead of branching (see stageA).
override ROUNDS_A: u32 = (TM * KT + THREADS - 1u) / THREADS;
override ROUNDS_B: u32 = (KT * TN + THREADS - 1u) / THREADS;
override TILE_A: u32 = KT * PITCH_A + THREADS;
override TILE_B: u32 = KT * PITCH_B + THREADS;
const MAX_RM = 32u;
const MAX_RN = 4u;
const MAX_RN_DIRECT = 16u;
const DIRECT_SUMS = 128u;  // RM·RN ≤ DIRECT_SUMS in gemm_direct

// The spec's structure (see header): each switch on a source and each optional step folds away.
override SRC_A1: u32 = SRC_NONE;
override SRC_B1: u32 = SRC_NONE;
override SRC_A2: u32 = SRC_NONE;
override SRC_B2: u32 = SRC_NONE;
override SRC_BIAS1: u32 = SRC_NONE;
override SRC_BIAS2: u32 = SRC_NONE;
override SRC_MASK: u32 = SRC_NONE;
override SRC_DST: u32 = 1u;
override SRC_ADDEND: u32 = SRC_NONE;
override SRC_DST2: u32 = SRC_NONE;
override SRC_DST2_MASK: u32 = SRC_NONE;
override MODE: u32 = 0u;           // 0 write, 1 accumulate, 2 from (addend)
override K_FAST_A1: bool = true;   // stage A with k fastest (A.strideJ = 1), else m fastest
override K_FAST_B1: bool = false;  // stage B with k fastest (B.strideI = 1 ≠ strideJ), else n fastest
override K_FAST_A2: bool = true;
override K_FAST_B2: bool = false;

var<workgroup> tileA: array<f32, TILE_A>;  // tileA[k·PITCH_A + m]
var<workgroup> tileB: array<f32, TILE_B>;  // tileB[k·PITCH_B + n]

fn load(src: u32, i: u32) -> f32 {
  switch src {
    case 0u: { return data[i]; }
    case 1u: { return tape[i]; }
    case 2u: { return p0[i]; }
    case 3u: { return p1[i]; }
    case 4u: { return p2[i]; }
    case 5u: { return 1.0; }
    default: { return 0.0; }
  }
}

fn store(src: u32, i: u32, v: f32) {
  switch src {
    case 1u: { tape[i] = v; }
    case 2u: { p0[i] = v; }
    case 3u: { p1[i] = v; }
    case 4u: { p2[i] = v; }
    default: {}
  }
}

fn index(op: Operand, t: u32, i: u32, j: u32) -> u32 {
  return op.off + t * op.taskStride + i * op.strideI + j * op.strideJ;
}

// Loads are unconditional and out-of-range entries are zeroed by select: an index past the end of a
// binding is clamped by WebGPU's robust buffer access, and select (unlike a multiply) drops a NaN.
fn stageA(A: Operand, src: u32, kFast: bool, K: u32, t: u32, m0: u32, k0: u32, lid: u32) {
  for (var r = 0u; r < ROUNDS_A; r++) {
    let e = lid + r * THREADS;
    var mi = e % TM;
    var ki = e / TM;
    if (kFast) { mi = e / KT; ki = e % KT; }
    let m = m0 + mi;
    let k = k0 + ki;
    let v = select(0.0, load(src, index(A, t, m, k)), m < gp.M && k < K);
    tileA[select(KT * PITCH_A + lid, ki * PITCH_A + mi, e < TM * KT)] = v;
  }
}

fn stageB(B: Operand, src: u32, kFast: bool, K: u32, t: u32, n0: u32, k0: u32, lid: u32) {
  for (var r = 0u; r < ROUNDS_B; r++) {
    let e = lid + r * THREADS;
    var ni = e % TN;
    var ki = e / TN;
    if (kFast) { ni = e / KT; ki = e % KT; }
    let n = n0 + ni;
    let k = k0 + ki;
    let v = select(0.0, load(src, index(B, t, k, n)), n < gp.N && k < K);
    tileB[select(KT * PITCH_B + lid, ki * PITCH_B + ni, e < KT * TN)] = v;
  }
}

// The output tile of workgroup g: task t, first row m0, first column n0.
struct Tile { t: u32, m0: u32, n0: u32, live: bool }

fn tileOf(wid: vec3<u32>) -> Tile {
  let tilesPerTask = gp.tilesN * gp.tilesM;
  let g = wid.x + gp.gridX * (wid.y + gp.gridY * wid.z);
  let t = g / tilesPerTask;
  let inTask = g - t * tilesPerTask;
  // g ≥ tilesPerTask·tasks: the folded grid's tail, whose workgroups leave at once.
  return Tile(t, (inTask / gp.tilesN) * gp.blockRows * TY, (inTask % gp.tilesN) * gp.blockCols * TX, g < tilesPerTask * gp.tasks);
}

// Bias, mask, mode and out2 of one output element (see header); v is the accumulated sum.
fn finish(t: u32, m: u32, n: u32, acc: f32) {
  var v = acc;
  v += load(SRC_BIAS1, gp.bias1.off + t * gp.bias1.taskStride + n);
  v += load(SRC_BIAS2, gp.bias2.off + t * gp.bias2.taskStride + n);
  if (SRC_MASK != SRC_NONE) { v = select(0.0, v, load(SRC_MASK, index(gp.mask, t, m, n)) > 0.0); }
  let o = index(gp.dst, t, m, n);
  var base = 0.0;
  if (MODE == 1u) { base = load(SRC_DST, o); }
  if (MODE == 2u) { base = load(SRC_ADDEND, index(gp.addend, t, m, n)); }
  var gate = v;
  if (SRC_DST2_MASK != SRC_NONE) { gate = load(SRC_DST2_MASK, index(gp.dst2Mask, t, m, n)); }
  if (m < gp.M && n < gp.N) {
    store(SRC_DST, o, base + gp.scale * v);
    if (SRC_DST2 != SRC_NONE) { store(SRC_DST2, index(gp.dst2, t, m, n), select(0.0, v, gate > 0.0)); }
  }
}

// GPUs: A and B staged through workgroup memory, KT rows of K at a time.
@compute @workgroup_size(TX, TY)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tile = tileOf(wid);
  if (!tile.live) { return; }
  let t = tile.t;
  let tx = local.x;
  // With TY = 1 this folds to 0: every invocation reads the same A words, which a GPU broadcasts.
  let ty = select(local.y, 0u, TY == 1u);

  var acc: array<f32, MAX_RM * MAX_RN>;
  for (var term = 0u; term < 2u; term++) {
    let K = select(gp.K1, gp.K2, term == 1u);
    for (var k0 = 0u; k0 < K; k0 += KT) {
      if (term == 0u) {
        stageA(gp.a1, SRC_A1, K_FAST_A1, K, t, tile.m0, k0, lid);
        stageB(gp.b1, SRC_B1, K_FAST_B1, K, t, tile.n0, k0, lid);
      } else {
        stageA(gp.a2, SRC_A2, K_FAST_A2, K, t, tile.m0, k0, lid);
        stageB(gp.b2, SRC_B2, K_FAST_B2, K, t, tile.n0, k0, lid);
      }
      workgroupBarrier();
      let kLen = min(KT, K - k0);
      for (var kk = 0u; kk < kLen; kk++) {
        var b: array<f32, MAX_RN>;
        for (var j = 0u; j < RN; j++) { b[j] = tileB[kk * PITCH_B + tx + j * TX]; }
        for (var i = 0u; i < RM; i++) {
          let a = tileA[kk * PITCH_A + ty + i * TY];
          for (var j = 0u; j < RN; j++) { acc[i * MAX_RN + j] += a * b[j]; }
        }
      }
      workgroupBarrier();  // the next tile overwrites what slower invocations may still be reading
    }
  }
  for (var i = 0u; i < RM; i++) {
    for (var j = 0u; j < RN; j++) { finish(t, tile.m0 + ty + i * TY, tile.n0 + tx + j * TX, acc[i * MAX_RN + j]); }
  }
}

// Software adapters: operands read straight from their buffers (see header). Rows m ≥ M and columns
// n ≥ N read clamped garbage into sums that finish never stores.
@compute @workgroup_size(TX, TY)
fn gemm_direct(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
  let tile = tileOf(wid);
  if (!tile.live) { return; }
  let t = tile.t;
  let tx = local.x;
  let ty = select(local.y, 0u, TY == 1u);

  var acc: array<f32, DIRECT_SUMS>;   // acc[i·cols + j]
  let rows = gp.blockRows;  // RM and RN, read at run time so that these loops stay loops
  let cols = gp.blockCols;
  for (var term = 0u; term < 2u; term++) {
    let K = select(gp.K1, gp.K2, term == 1u);
    for (var k = 0u; k < K; k++) {
      var b: array<f32, MAX_RN_DIRECT>;
      // Two copies of the loads, so that each reads one buffer chosen by a pipeline constant.
      if (term == 0u) {
        for (var j = 0u; j < cols; j++) { b[j] = load(SRC_B1, index(gp.b1, t, k, tile.n0 + tx + j * TX)); }
        for (var i = 0u; i < rows; i++) {
          let a = load(SRC_A1, index(gp.a1, t, tile.m0 + ty + i * TY, k));
          for (var j = 0u; j < cols; j++) { acc[i * cols + j] += a * b[j]; }
        }
      } else {
        for (var j = 0u; j < cols; j++) { b[j] = load(SRC_B2, index(gp.b2, t, k, tile.n0 + tx + j * TX)); }
        for (var i = 0u; i < rows; i++) {
          let a = load(SRC_A2, index(gp.a2, t, tile.m0 + ty + i * TY, k));
          for (var j = 0u; j < cols; j++) { acc[i * cols + j] += a * b[j]; }
        }
      }
    }
  }
  for (var i = 0u; i < rows; i++) {
    for (var j = 0u; j < cols; j++) { finish(t, tile.m0 + ty + i * TY, tile.n0 + tx + j * TX, acc[i * cols + j]); }
  }
}
