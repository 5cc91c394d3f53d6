// The parameter-free layers batched over tasks (CPU twins: src/cpu/net/pool.ts and relu.ts, the float64
// oracle): max- and mean-pooling and ReLU's mask. Every row of every task is an image H × W × C (channel
// fastest). Activations and their δ live in one `tape` buffer, as the other layer kernels' do: the input
// side (x, R(x), δ or R(δ) of x) of task t, row r at inOff + t·inTaskStride + r·(H·W·C), the output side
// at outOff + t·outTaskStride + r·(outH·outW·C); max-pool's choice in `arg`, at argOff + t·argTaskStride
// + r·(outH·outW·C).
//   max_forward   2 × 2, stride 2, floor: y = the window's maximum, `arg` = its input index within the
//                 image (the first of equal maxima, as the twin), kept for the other passes
//   max_gather    y = x[arg]: R(y) from R(x) with the forward's choice
//   max_scatter   dx[i] = dy[window of i] where arg chose i, else 0: δ and R(δ). The 2 × 2 windows do not
//                 overlap, so each input has at most one window and the scatter is a gather (no atomics)
//   mean_forward  global mean over positions → C per image (y and R(y))
//   mean_spread   dx = dy / positions (δ and R(δ))
//   relu_mask     out = src ⊙ [gate > 0] elementwise (inH·inW·C per row): the forward (src = gate = x),
//                 R(y), δ and R(δ), all through the input's mask. src at outOff (its strides), gate at
//                 argOff (as floats of the tape: argTaskStride), out at inOff
//   context_join   CAML's input: out (inOff; rows of H·W positions × C channels) = the data channel
//                  values (src at outOff, rows of H·W·split floats) then the context φ (at argOff, as
//                  floats of the tape: C − split per task) at every position; srcZero: data channels 0
//                  (the R pass, where only φ moves)
//   context_sum    out (inOff, C − split floats per task) = Σ over rows and positions of the context
//                  channels of src (outOff, rows of H·W·C): φ's gradient or its Hessian-vector entries
//   context_split  out (inOff, rows of H·W·split floats) = the data channels of src (outOff, rows of
//                  H·W·C): the input gradient an attack steps along
// One invocation per output value (per input value for the scatters and the mask); `accumulate` adds.

struct PoolParams {
  tasks: u32, rows: u32,
  inH: u32, inW: u32, channels: u32,
  outH: u32, outW: u32,
  inOff: u32, inTaskStride: u32,
  outOff: u32, outTaskStride: u32,
  argOff: u32, argTaskStride: u32,
  split: u32,           // context passes: the data channels per position (the rest are φ)
  srcZero: u32,         // context_join: data channels read as 0
  accumulate: u32,
  total: u32,
  gridX: u32,
  gridY: u32,
}

@group(0) @binding(0) var<uniform> pp: PoolParams;
@group(0) @binding(1) var<storage, read_write> tape: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg: array<u32>;

override WG: u32 = 64u;

fn invocation(wid: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + pp.gridX * (wid.y + pp.gridY * wid.z)) * WG + lid;
}

fn store(i: u32, v: f32) {
  if (pp.accumulate != 0u) { tape[i] = tape[i] + v; } else { tape[i] = v; }
}

/** Floats per image on each side. */
fn inImage() -> u32 { return pp.inH * pp.inW * pp.channels; }
fn outImage() -> u32 { return pp.outH * pp.outW * pp.channels; }

/** Invocation i over `per` values per image: (task t, row r, the value's index in the image). */
fn imageOf(i: u32, per: u32) -> vec3<u32> {
  let image = i / per;
  return vec3<u32>(image / pp.rows, image % pp.rows, i % per);
}

/** First float (or u32 of arg) of image `image` = t·rows + r on each side. */
fn inAt(image: u32) -> u32 { return pp.inOff + (image / pp.rows) * pp.inTaskStride + (image % pp.rows) * inImage(); }
fn outAt(image: u32) -> u32 { return pp.outOff + (image / pp.rows) * pp.outTaskStride + (image % pp.rows) * outImage(); }
fn argAt(image: u32) -> u32 { return pp.argOff + (image / pp.rows) * pp.argTaskStride + (image % pp.rows) * outImage(); }

@compute @workgroup_size(WG)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let o = i % outImage();
  let image = i / outImage();
  let c = o % pp.channels;
  let ox = (o / pp.channels) % pp.outW;
  let oy = o / (pp.channels * pp.outW);
  let base = inAt(image);
  var best = 0u;
  var value = 0.0;
  for (var d = 0u; d < 4u; d++) {
    let at = ((2u * oy + d / 2u) * pp.inW + 2u * ox + d % 2u) * pp.channels + c;
    let v = tape[base + at];
    if (d == 0u || v > value) { best = at; value = v; }
  }
  arg[argAt(image) + o] = best;
  store(outAt(image) + o, value);
}

@compute @workgroup_size(WG)
fn max_gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let o = i % outImage();
  let image = i / outImage();
  store(outAt(image) + o, tape[inAt(image) + arg[argAt(image) + o]]);
}

@compute @workgroup_size(WG)
fn max_scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let at = i % inImage();
  let image = i / inImage();
  let c = at % pp.channels;
  let x = (at / pp.channels) % pp.inW;
  let y = at / (pp.channels * pp.inW);
  var v = 0.0;
  // Inputs past the last whole window (odd H or W) belong to none.
  if (y / 2u < pp.outH && x / 2u < pp.outW) {
    let o = ((y / 2u) * pp.outW + x / 2u) * pp.channels + c;
    if (arg[argAt(image) + o] == at) { v = tape[outAt(image) + o]; }
  }
  store(inAt(image) + at, v);
}

@compute @workgroup_size(WG)
fn mean_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let c = i % pp.channels;
  let image = i / pp.channels;
  let positions = pp.inH * pp.inW;
  let base = inAt(image);
  var acc = 0.0;
  for (var q = 0u; q < positions; q++) { acc += tape[base + q * pp.channels + c]; }
  store(outAt(image) + c, acc / f32(positions));
}

@compute @workgroup_size(WG)
fn mean_spread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let positions = pp.inH * pp.inW;
  let at = i % inImage();
  let image = i / inImage();
  store(inAt(image) + at, tape[outAt(image) + at % pp.channels] / f32(positions));
}

@compute @workgroup_size(WG)
fn relu_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let p = imageOf(i, inImage());
  let t = p.x;
  let r = p.y;
  let at = p.z;
  let image = i / inImage();
  let src = tape[pp.outOff + t * pp.outTaskStride + r * inImage() + at];
  let gate = tape[pp.argOff + t * pp.argTaskStride + r * inImage() + at];
  var v = 0.0;
  if (gate > 0.0) { v = src; }
  store(inAt(image) + at, v);
}

@compute @workgroup_size(WG)
fn context_join(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let p = imageOf(i, inImage());
  let t = p.x;
  let r = p.y;
  let at = p.z;
  let image = i / inImage();
  let c = at % pp.channels;
  let q = at / pp.channels;
  var v = 0.0;
  if (c < pp.split) {
    if (pp.srcZero == 0u) { v = tape[pp.outOff + t * pp.outTaskStride + (r * pp.inH * pp.inW + q) * pp.split + c]; }
  } else {
    v = tape[pp.argOff + t * pp.argTaskStride + c - pp.split];
  }
  store(inAt(image) + at, v);
}

@compute @workgroup_size(WG)
fn context_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let contexts = pp.channels - pp.split;
  let t = i / contexts;
  let c = pp.split + i % contexts;
  let m = pp.rows * pp.inH * pp.inW;
  var acc = 0.0;
  for (var j = 0u; j < m; j++) { acc += tape[pp.outOff + t * pp.outTaskStride + j * pp.channels + c]; }
  let o = pp.inOff + t * pp.inTaskStride + i % contexts;
  if (pp.accumulate != 0u) { tape[o] = tape[o] + acc; } else { tape[o] = acc; }
}

@compute @workgroup_size(WG)
fn context_split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= pp.total) { return; }
  let perRow = pp.inH * pp.inW * pp.split;
  let p = imageOf(i, perRow);
  let t = p.x;
  let r = p.y;
  let at = p.z;
  let q = at / pp.split;
  let c = at % pp.split;
  let v = tape[pp.outOff + t * pp.outTaskStride + (r * pp.inH * pp.inW + q) * pp.channels + c];
  store(pp.inOff + t * pp.inTaskStride + r * perRow + at, v);
}
