// conv2d batched over tasks with per-task weights (CPU twin: src/cpu/net/conv2d.ts, the float64
// oracle; layouts in docs/math.md "Layers and losses"): for task t, row r,
//   out(t, r, oy, ox, co) = b_t(co) + Σ_{ky, kx, ci} W_t(ky, kx, ci, co) · in(t, r, oy·s + ky − p, ox·s + kx − p, ci)
// with images H × W × C row-major (channel fastest) and W_t at params[pOff + t·paramStride + wOff] laid
// out k × k × C_in × C_out (then b_t, C_out floats, at bOff). paramStride 0: one θ shared by every task
// (the first inner step, evaluation from θ). Activations and their δ live in one `tape` buffer, as the
// MLP kernels' do: the input side (x, or δ of x) of task t, row r at inOff + t·inTaskStride + r·(H·W·C),
// the output side (y, or δ of y) likewise at outOff, outTaskStride; so one buffer holds every layer's
// arrays and a pass reads and writes it through one binding. Three entry points, each a plain gather
// with no atomics:
//   conv_forward      one invocation per output value (the implicit GEMM's row × column, direct form)
//   conv_input_grad   one per input value: the transposed convolution of δ (the taps that reach it)
//   conv_weight_grad  one per (task, weight or bias): the correlation of the input with δ over the set,
//                     into grad[gOff + t·gradStride + j]
// The direct family (no workgroup tiles) is what software adapters run best (DEVELOPERS.md, mlp-gemm);
// the tiled family for GPUs is the next step. `accumulate` adds to the output (the R-operator's sums of
// two products), `bias` adds b (forward) or writes its gradient (weight grad), `scale` multiplies what
// is written or added (a gradient step's −α, a Hessian-vector product's scale).

struct ConvParams {
  tasks: u32,
  rows: u32,          // rows per task
  inH: u32, inW: u32, inC: u32,
  outH: u32, outW: u32, outC: u32,
  size: u32, stride: u32, padding: u32,
  paramStride: u32,   // floats between tasks' weights (0: shared)
  pOff: u32,          // first float of task 0's parameter vector
  wOff: u32,
  bOff: u32,
  inOff: u32, inTaskStride: u32,     // the input side in the tape
  outOff: u32, outTaskStride: u32,   // the output side in the tape
  gradStride: u32,    // conv_weight_grad: floats between tasks' gradients
  gOff: u32,
  accumulate: u32,
  bias: u32,
  scale: f32,         // every output is scale·(the sum): a weight gradient's −α, an R-operator's products
  total: u32,         // invocations that do work
  gridX: u32,
  gridY: u32,
}

@group(0) @binding(0) var<uniform> cp: ConvParams;
@group(0) @binding(1) var<storage, read_write> tape: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;    // forward, input grad (weight grad: unused)
@group(0) @binding(3) var<storage, read_write> grad: array<f32>; // weight grad (forward, input grad: unused)

override WG: u32 = 64u;

fn invocation(wid: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + cp.gridX * (wid.y + cp.gridY * wid.z)) * WG + lid;
}

fn storeTape(i: u32, v: f32) {
  if (cp.accumulate != 0u) { tape[i] = tape[i] + cp.scale * v; } else { tape[i] = cp.scale * v; }
}

fn storeGrad(i: u32, v: f32) {
  if (cp.accumulate != 0u) { grad[i] = grad[i] + cp.scale * v; } else { grad[i] = cp.scale * v; }
}

/** First float of row r of task t on the input side, and on the output side. */
fn inRowAt(t: u32, r: u32) -> u32 { return cp.inOff + t * cp.inTaskStride + r * cp.inH * cp.inW * cp.inC; }
fn outRowAt(t: u32, r: u32) -> u32 { return cp.outOff + t * cp.outTaskStride + r * cp.outH * cp.outW * cp.outC; }

@compute @workgroup_size(WG)
fn conv_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= cp.total) { return; }
  // i = ((t·rows + r)·outH + oy)·outW·outC + ox·outC + co
  let co = i % cp.outC;
  let pos = i / cp.outC;
  let ox = pos % cp.outW;
  let oy = (pos / cp.outW) % cp.outH;
  let row = pos / (cp.outW * cp.outH);   // t·rows + r
  let t = row / cp.rows;
  let r = row % cp.rows;
  let p = cp.pOff + t * cp.paramStride;
  var acc = 0.0;
  if (cp.bias != 0u) { acc = params[p + cp.bOff + co]; }
  let inRow = inRowAt(t, r);
  for (var ky = 0u; ky < cp.size; ky++) {
    let iy = i32(oy * cp.stride + ky) - i32(cp.padding);
    if (iy < 0 || iy >= i32(cp.inH)) { continue; }
    for (var kx = 0u; kx < cp.size; kx++) {
      let ix = i32(ox * cp.stride + kx) - i32(cp.padding);
      if (ix < 0 || ix >= i32(cp.inW)) { continue; }
      let inBase = inRow + (u32(iy) * cp.inW + u32(ix)) * cp.inC;
      let wBase = p + cp.wOff + (ky * cp.size + kx) * cp.inC * cp.outC + co;
      for (var ci = 0u; ci < cp.inC; ci++) {
        acc += tape[inBase + ci] * params[wBase + ci * cp.outC];
      }
    }
  }
  storeTape(outRowAt(t, r) + (oy * cp.outW + ox) * cp.outC + co, acc);
}

@compute @workgroup_size(WG)
fn conv_input_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= cp.total) { return; }
  // i = ((t·rows + r)·inH + iy)·inW·inC + ix·inC + ci; the outputs whose taps reach (iy, ix):
  // oy·s + ky − p = iy for some ky in [0, k), i.e. oy = (iy + p − ky)/s when that divides.
  let ci = i % cp.inC;
  let pos = i / cp.inC;
  let ix = pos % cp.inW;
  let iy = (pos / cp.inW) % cp.inH;
  let row = pos / (cp.inW * cp.inH);
  let t = row / cp.rows;
  let r = row % cp.rows;
  let p = cp.pOff + t * cp.paramStride;
  let outRow = outRowAt(t, r);
  var acc = 0.0;
  for (var ky = 0u; ky < cp.size; ky++) {
    let ny = i32(iy + cp.padding) - i32(ky);
    if (ny < 0 || (u32(ny) % cp.stride) != 0u) { continue; }
    let oy = u32(ny) / cp.stride;
    if (oy >= cp.outH) { continue; }
    for (var kx = 0u; kx < cp.size; kx++) {
      let nx = i32(ix + cp.padding) - i32(kx);
      if (nx < 0 || (u32(nx) % cp.stride) != 0u) { continue; }
      let ox = u32(nx) / cp.stride;
      if (ox >= cp.outW) { continue; }
      let dBase = outRow + (oy * cp.outW + ox) * cp.outC;
      let wBase = p + cp.wOff + ((ky * cp.size + kx) * cp.inC + ci) * cp.outC;
      for (var co = 0u; co < cp.outC; co++) {
        acc += tape[dBase + co] * params[wBase + co];
      }
    }
  }
  storeTape(inRowAt(t, r) + (iy * cp.inW + ix) * cp.inC + ci, acc);
}

@compute @workgroup_size(WG)
fn conv_weight_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= cp.total) { return; }
  // i = t·(weights + outC) + j: j < weights is W(ky, kx, ci, co), then the bias co.
  let weights = cp.size * cp.size * cp.inC * cp.outC;
  let perTask = weights + cp.outC;
  let t = i / perTask;
  let j = i % perTask;
  let g = cp.gOff + t * cp.gradStride + j;
  let positions = cp.outH * cp.outW;
  var acc = 0.0;
  if (j >= weights) {
    if (cp.bias == 0u) { return; }
    let co = j - weights;
    for (var r = 0u; r < cp.rows; r++) {
      let outRow = outRowAt(t, r);
      var rowAcc = 0.0;
      for (var q = 0u; q < positions; q++) { rowAcc += tape[outRow + q * cp.outC + co]; }
      acc += rowAcc;
    }
    storeGrad(g, acc);
    return;
  }
  let co = j % cp.outC;
  let ci = (j / cp.outC) % cp.inC;
  let tap = j / (cp.outC * cp.inC);
  let kx = tap % cp.size;
  let ky = tap / cp.size;
  // Summed per row, then over rows (a sum of rows × positions terms loses less in float32 that way).
  for (var r = 0u; r < cp.rows; r++) {
    let inRow = inRowAt(t, r);
    let outRow = outRowAt(t, r);
    var rowAcc = 0.0;
    for (var oy = 0u; oy < cp.outH; oy++) {
      let iy = i32(oy * cp.stride + ky) - i32(cp.padding);
      if (iy < 0 || iy >= i32(cp.inH)) { continue; }
      var lineAcc = 0.0;
      for (var ox = 0u; ox < cp.outW; ox++) {
        let ix = i32(ox * cp.stride + kx) - i32(cp.padding);
        if (ix < 0 || ix >= i32(cp.inW)) { continue; }
        lineAcc += tape[inRow + (u32(iy) * cp.inW + u32(ix)) * cp.inC + ci] * tape[outRow + (oy * cp.outW + ox) * cp.outC + co];
      }
      rowAcc += lineAcc;
    }
    acc += rowAcc;
  }
  storeGrad(g, acc);
}
