// Batched small matmul with per-task operands and fused epilogues (docs/neural-models.md "mlp-gemm";
// CPU twin: gemm in src/cpu/mlp-kernels.ts). For t < tasks, m < M, n < N:
//   acc = Σ_{k<K1} A1(t,m,k)·B1(t,k,n) + Σ_{k<K2} A2(t,m,k)·B2(t,k,n) + bias1(t,n) + bias2(t,n)
//   acc ·= (mask(t,m,n) > 0 ? 1 : 0)
//   dst = scale·acc | dst + scale·acc | addend + scale·acc      (mode 0 write | 1 accumulate | 2 from)
//   dst2 = acc·(ref(t,m,n) > 0 ? 1 : 0),  ref = dst2Mask, or acc itself when dst2Mask is NONE (relu)
// where X(t,i,j) = buffer(src)[off + t·taskStride + i·strideI + j·strideJ]; src ONE reads 1, NONE reads 0
// (a NONE mask / bias / dst2 is skipped). Transposes are stride swaps; strideI = 0 broadcasts a row.
//
// Thread mapping: one workgroup per (task, TM×TN output tile); the grid is linearised (n-tile fastest,
// then m-tile, then task) and folded into x/y/z by the host. The TX×TY invocations each own an RM×RN
// register block: rows ty + TY·i, columns tx + TX·j, so that consecutive invocations write consecutive
// columns (coalesced stores) and read consecutive workgroup words (no bank conflicts). Each term's K
// runs through KT-deep tiles: A (TM×KT) and B (KT×TN) are staged in workgroup memory, k-major, one
// pair of barriers per tile. Every loaded global value is reused TN (A) or TM (B) times.
// A tile is read with k fastest when A.strideJ = 1 (row-major activations) and with m fastest otherwise
// (Aᵀ operands, strideI = 1); B likewise with n or k fastest: global reads stay coalesced for transposed
// operands too. The k-major tiles have an odd row pitch (TM + 1, TN + 1) so that the k-fastest writes
// of a transposed load do not all land in one bank.
// The host picks TY·RM ≈ M for small M (5…25 rows are the common case: no 16-row tile for 5 rows) and
// RN by N; see chooseTiles in src/kernels/mlp-gemm.ts. Sources are chosen by a switch on a uniform
// value, so every invocation takes the same branch.

struct Operand { src: u32, off: u32, taskStride: u32, strideI: u32, strideJ: u32 }

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
  mode: u32,       // 0 write, 1 accumulate, 2 from
  scale: f32,
  a1: Operand,
  b1: Operand,
  a2: Operand,
  b2: Operand,
  bias1: Operand,  // read at (n): strideI = 0, strideJ = 1
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

override TX: u32 = 16u;   // invocations along n
override TY: u32 = 4u;    // invocations along m
override RM: u32 = 2u;    // rows per invocation (≤ MAX_RM)
override RN: u32 = 4u;    // columns per invocation (≤ MAX_RN)
override KT: u32 = 32u;   // K-tile depth
override TM: u32 = TY * RM;
override TN: u32 = TX * RN;
override PITCH_A: u32 = TM + 1u;
override PITCH_B: u32 = TN + 1u;
override TILE_A: u32 = KT * PITCH_A;
override TILE_B: u32 = KT * PITCH_B;
const MAX_RM = 8u;
const MAX_RN = 4u;

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

fn readOp(op: Operand, t: u32, i: u32, j: u32) -> f32 {
  return load(op.src, index(op, t, i, j));
}

// Stages A(t, m0…m0+TM, k0…k0+KT) and B(t, k0…, n0…n0+TN); out-of-range entries become 0.
fn loadTiles(A: Operand, B: Operand, K: u32, t: u32, m0: u32, n0: u32, k0: u32, lid: u32) {
  let threads = TX * TY;
  let kFastA = A.strideJ == 1u;
  for (var e = lid; e < TM * KT; e += threads) {
    var mi = e % TM;
    var ki = e / TM;
    if (kFastA) { mi = e / KT; ki = e % KT; }
    let m = m0 + mi;
    let k = k0 + ki;
    var v = 0.0;
    if (m < gp.M && k < K) { v = readOp(A, t, m, k); }
    tileA[ki * PITCH_A + mi] = v;
  }
  let kFastB = B.strideJ != 1u && B.strideI == 1u;
  for (var e = lid; e < KT * TN; e += threads) {
    var ni = e % TN;
    var ki = e / TN;
    if (kFastB) { ni = e / KT; ki = e % KT; }
    let n = n0 + ni;
    let k = k0 + ki;
    var v = 0.0;
    if (n < gp.N && k < K) { v = readOp(B, t, k, n); }
    tileB[ki * PITCH_B + ni] = v;
  }
}

@compute @workgroup_size(TX, TY)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tilesPerTask = gp.tilesN * gp.tilesM;
  let g = wid.x + gp.gridX * (wid.y + gp.gridY * wid.z);
  if (g >= tilesPerTask * gp.tasks) { return; }  // the folded grid's tail: a whole workgroup leaves
  let t = g / tilesPerTask;
  let inTask = g - t * tilesPerTask;
  let m0 = (inTask / gp.tilesN) * TM;
  let n0 = (inTask % gp.tilesN) * TN;
  let tx = local.x;
  let ty = local.y;

  var acc: array<f32, MAX_RM * MAX_RN>;
  for (var term = 0u; term < 2u; term++) {
    var A = gp.a1;
    var B = gp.b1;
    var K = gp.K1;
    if (term == 1u) { A = gp.a2; B = gp.b2; K = gp.K2; }
    for (var k0 = 0u; k0 < K; k0 += KT) {
      loadTiles(A, B, K, t, m0, n0, k0, lid);
      workgroupBarrier();
      let kLen = min(KT, K - k0);
      for (var kk = 0u; kk < kLen; kk++) {
        var a: array<f32, MAX_RM>;
        var b: array<f32, MAX_RN>;
        for (var i = 0u; i < RM; i++) { a[i] = tileA[kk * PITCH_A + ty + i * TY]; }
        for (var j = 0u; j < RN; j++) { b[j] = tileB[kk * PITCH_B + tx + j * TX]; }
        for (var i = 0u; i < RM; i++) {
          for (var j = 0u; j < RN; j++) { acc[i * MAX_RN + j] += a[i] * b[j]; }
        }
      }
      workgroupBarrier();  // the next tile overwrites what slower invocations may still be reading
    }
  }

  for (var i = 0u; i < RM; i++) {
    let m = m0 + ty + i * TY;
    if (m >= gp.M) { break; }
    for (var j = 0u; j < RN; j++) {
      let n = n0 + tx + j * TX;
      if (n >= gp.N) { break; }
      var v = acc[i * MAX_RN + j];
      if (gp.bias1.src != SRC_NONE) { v += readOp(gp.bias1, t, m, n); }
      if (gp.bias2.src != SRC_NONE) { v += readOp(gp.bias2, t, m, n); }
      if (gp.mask.src != SRC_NONE) { v = select(0.0, v, readOp(gp.mask, t, m, n) > 0.0); }
      let o = index(gp.dst, t, m, n);
      var base = 0.0;
      if (gp.mode == 1u) { base = load(gp.dst.src, o); }
      if (gp.mode == 2u) { base = readOp(gp.addend, t, m, n); }
      var second = 0.0;
      if (gp.dst2.src != SRC_NONE) {
        var gate = v;
        if (gp.dst2Mask.src != SRC_NONE) { gate = readOp(gp.dst2Mask, t, m, n); }
        second = select(0.0, v, gate > 0.0);
      }
      store(gp.dst.src, o, base + gp.scale * v);
      if (gp.dst2.src != SRC_NONE) { store(gp.dst2.src, index(gp.dst2, t, m, n), second); }
    }
  }
}
