// The prototypical loss of each task's episode (protonet; CPU twin: protoEpisode in src/cpu/proto.ts;
// the float64 oracle: protoLoss in src/cpu/net/losses.ts). Task t's episode is `rows` embeddings of F
// floats, z_r = tape[zOff + t·tapeTaskStride + r·F …], labels y_r = data[yOff + t·rows + r]; rows
// 0 … support−1 are its support rows, the rest its queries (Q = rows − support).
//   prototypes c_k = mean of the support z with label k (classes k < N without support rows take no part)
//   logits of query q: −‖z_q − c_k‖²; loss: cross-entropy, accuracy: argmax (the smallest index of the max)
//   g_qk = scale·(p_qk − [k = y_q]); δz_q = 2 Σ_k g_qk (c_k − z_q); δc_k = 2 Σ_q g_qk (z_q − c_k);
//   δz_s = δc_{y_s} / count_{y_s} — written to tape[dOff …] (the layout of z). scale 1/Q: the mean loss.
//   stats[statsOff + 2t], [… + 1] = the mean loss and accuracy over the queries (wantStats).
// Scratch per task at scratchOff + t·tapeTaskStride: c (N·F), count (N), δc (N·F), g (Q·N).
// Thread mapping: one workgroup per task (grid folded into x/y/z), phases separated by barriers; no
// atomics: each (k, f) or (q) or (s, f) is one invocation's, and the per-task sums are summed by
// invocation 0 in a fixed order.

struct ProtoParams {
  tasks: u32,
  rows: u32,
  support: u32,
  features: u32,
  classes: u32,
  yOff: u32,
  zOff: u32,
  dOff: u32,
  scratchOff: u32,
  tapeTaskStride: u32,
  wantStats: u32,
  statsOff: u32,
  gridX: u32,
  gridY: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> pp: ProtoParams;
@group(0) @binding(1) var<storage, read> data: array<f32>;         // labels
@group(0) @binding(2) var<storage, read_write> tape: array<f32>;   // z, δ, scratch
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;  // (mean loss, accuracy) per task

override WG: u32 = 64u;

var<workgroup> lossPart: array<f32, WG>;
var<workgroup> hitPart: array<f32, WG>;

fn sync() {
  storageBarrier();
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn proto_loss(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + pp.gridX * (wid.y + pp.gridY * wid.z);
  // No early return: every invocation of a workgroup reaches its barriers; the tail's work is masked.
  let live = t < pp.tasks;
  let tt = select(0u, t, live);
  let F = pp.features;
  let N = pp.classes;
  let S = pp.support;
  let Q = pp.rows - S;
  let base = tt * pp.tapeTaskStride;
  let z = pp.zOff + base;
  let d = pp.dOff + base;
  let protos = pp.scratchOff + base;
  let counts = protos + N * F;
  let dProtos = counts + N;
  let g = dProtos + N * F;
  let labels = pp.yOff + tt * pp.rows;
  // 1. Counts and prototypes: invocation i owns (k, f) = (i / F, i mod F), and count k at f = 0.
  if (live) {
    for (var i = lid; i < N * F; i += WG) {
      let k = i / F;
      let f = i % F;
      var sum = 0.0;
      var n = 0.0;
      for (var s = 0u; s < S; s++) {
        if (u32(data[labels + s]) == k) {
          sum += tape[z + s * F + f];
          n += 1.0;
        }
      }
      tape[protos + i] = select(0.0, sum / n, n > 0.0);
      if (f == 0u) { tape[counts + k] = n; }
    }
  }
  sync();
  // 2. Each query's logits, softmax, loss and accuracy; g_q·; its δ.
  var loss = 0.0;
  var hits = 0.0;
  if (live) {
    for (var q = lid; q < Q; q += WG) {
      let zq = z + (S + q) * F;
      let y = u32(data[labels + S + q]);
      var top = 0.0;
      var arg = N;
      for (var k = 0u; k < N; k++) {
        if (tape[counts + k] == 0.0) { continue; }
        var d2 = 0.0;
        for (var f = 0u; f < F; f++) {
          let e = tape[zq + f] - tape[protos + k * F + f];
          d2 += e * e;
        }
        tape[g + q * N + k] = -d2;   // the logit, for now
        if (arg == N || -d2 > top) { top = -d2; arg = k; }
      }
      var sum = 0.0;
      for (var k = 0u; k < N; k++) {
        if (tape[counts + k] > 0.0) { sum += exp(tape[g + q * N + k] - top); }
      }
      loss += log(sum) + top - tape[g + q * N + y];
      hits += select(0.0, 1.0, arg == y);
      for (var k = 0u; k < N; k++) {
        var gk = 0.0;
        if (tape[counts + k] > 0.0) { gk = pp.scale * (exp(tape[g + q * N + k] - top) / sum - select(0.0, 1.0, k == y)); }
        tape[g + q * N + k] = gk;
      }
      for (var f = 0u; f < F; f++) {
        var acc = 0.0;
        for (var k = 0u; k < N; k++) { acc += tape[g + q * N + k] * (tape[protos + k * F + f] - tape[zq + f]); }
        tape[d + (S + q) * F + f] = 2.0 * acc;
      }
    }
  }
  lossPart[lid] = loss;
  hitPart[lid] = hits;
  sync();
  // 3. δc_k, then the support rows' δ.
  if (live) {
    for (var i = lid; i < N * F; i += WG) {
      let k = i / F;
      let f = i % F;
      var acc = 0.0;
      for (var q = 0u; q < Q; q++) { acc += tape[g + q * N + k] * (tape[z + (S + q) * F + f] - tape[protos + i]); }
      tape[dProtos + i] = 2.0 * acc;
    }
  }
  sync();
  if (live) {
    for (var i = lid; i < S * F; i += WG) {
      let s = i / F;
      let k = u32(data[labels + s]);
      tape[d + i] = tape[dProtos + k * F + i % F] / tape[counts + k];
    }
    if (lid == 0u && pp.wantStats != 0u) {
      var totalLoss = 0.0;
      var totalHits = 0.0;
      for (var i = 0u; i < WG; i++) {
        totalLoss += lossPart[i];
        totalHits += hitPart[i];
      }
      stats[pp.statsOff + 2u * t] = totalLoss / f32(Q);
      stats[pp.statsOff + 2u * t + 1u] = totalHits / f32(Q);
    }
  }
}
