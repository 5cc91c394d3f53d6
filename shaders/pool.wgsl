// Pooling batched over tasks (CPU twin: src/cpu/net/pool.ts, the float64 oracle). Every row of every
// task is an image H × W × C (channel fastest); rows of all tasks are contiguous, so a pool sees
// `images` = tasks × rows images and needs no task index.
//   max_forward   2 × 2, stride 2, floor: y = the window's maximum, `arg` = its input index within the
//                 image (the first of equal maxima, as the twin), kept for the other passes
//   max_gather    y = x[arg]: R(y) from R(x) with the forward's choice
//   max_scatter   dx[i] = dy[window of i] where arg chose i, else 0: δ and R(δ). The 2 × 2 windows do not
//                 overlap, so each input has at most one window and the scatter is a gather (no atomics)
//   mean_forward  global mean over positions → C per image (y and R(y))
//   mean_spread   dx = dy / positions (δ and R(δ))
// One invocation per output value, or per input value for the scatters; `accumulate` adds.

struct PoolParams {
  images: u32,
  inH: u32, inW: u32, channels: u32,
  outH: u32, outW: u32,
  accumulate: u32,
  total: u32,
  gridX: u32,
  gridY: u32,
}

@group(0) @binding(0) var<uniform> pp: PoolParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

override WG: u32 = 64u;

fn invocation(wid: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + pp.gridX * (wid.y + pp.gridY * wid.z)) * WG + lid;
}

fn store(i: u32, v: f32) {
  if (pp.accumulate != 0u) { dst[i] = dst[i] + v; } else { dst[i] = v; }
}

@compute @workgroup_size(WG)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let c = i % pp.channels;
  let ox = (i / pp.channels) % pp.outW;
  let oy = (i / (pp.channels * pp.outW)) % pp.outH;
  let image = i / (pp.channels * pp.outW * pp.outH);
  let base = image * pp.inH * pp.inW * pp.channels;
  var best = 0u;
  var value = 0.0;
  for (var d = 0u; d < 4u; d++) {
    let at = ((2u * oy + d / 2u) * pp.inW + 2u * ox + d % 2u) * pp.channels + c;
    let v = src[base + at];
    if (d == 0u || v > value) { best = at; value = v; }
  }
  arg[i] = best;
  store(i, value);
}

@compute @workgroup_size(WG)
fn max_gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let image = i / (pp.channels * pp.outW * pp.outH);
  store(i, src[image * pp.inH * pp.inW * pp.channels + arg[i]]);
}

@compute @workgroup_size(WG)
fn max_scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let perImage = pp.inH * pp.inW * pp.channels;
  let image = i / perImage;
  let at = i % perImage;
  let c = at % pp.channels;
  let x = (at / pp.channels) % pp.inW;
  let y = at / (pp.channels * pp.inW);
  var v = 0.0;
  // Inputs past the last whole window (odd H or W) belong to none.
  if (y / 2u < pp.outH && x / 2u < pp.outW) {
    let o = ((image * pp.outH + y / 2u) * pp.outW + x / 2u) * pp.channels + c;
    if (arg[o] == at) { v = src[o]; }
  }
  store(i, v);
}

@compute @workgroup_size(WG)
fn mean_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let c = i % pp.channels;
  let image = i / pp.channels;
  let positions = pp.inH * pp.inW;
  var acc = 0.0;
  for (var q = 0u; q < positions; q++) { acc += src[(image * positions + q) * pp.channels + c]; }
  store(i, acc / f32(positions));
}

@compute @workgroup_size(WG)
fn mean_spread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let positions = pp.inH * pp.inW;
  let c = i % pp.channels;
  let image = i / (positions * pp.channels);
  store(i, src[image * pp.channels + c] / f32(positions));
}
