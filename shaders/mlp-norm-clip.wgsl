// AMP's per-tensor projection onto the L2 ball (docs/neural-models.md "mlp-norm-clip"; CPU twin:
// normClipTensors in src/cpu/mlp-kernels.ts). For task t and tensor k = [start, end):
//   Δ = pert − base on the range;  if ‖Δ‖₂ > radius: pert = base + radius·Δ/‖Δ‖₂
// with pert(t, i) = pert[pertOff + t·pertTaskStride + i], base(t, i) = base[baseOff + t·baseTaskStride + i]
// (baseTaskStride 0: one θ for every task).
// Thread mapping: one workgroup per (tensor, task), linearised as tensor + tensors·t and folded into
// x/y/z by the host. Each invocation sums Δ² over the elements i ≡ lid (mod WG) (consecutive invocations,
// consecutive floats), then a tree reduction in workgroup memory (log2 WG barriers) gives ‖Δ‖² to all;
// the same invocations rescale their own elements. WG: 256 on GPUs, 32 on software adapters (the host).

struct ClipParams {
  tasks: u32,
  count: u32,       // tensors in use (≤ 64)
  pertOff: u32,
  pertTaskStride: u32,
  baseOff: u32,
  baseTaskStride: u32,
  gridX: u32,
  gridY: u32,
  radius: f32,
  ranges: array<vec4<u32>, 64>,   // (start, end, –, –): uniform arrays need a 16-byte stride
}

@group(0) @binding(0) var<uniform> cp: ClipParams;
@group(0) @binding(1) var<storage, read_write> pert: array<f32>;
@group(0) @binding(2) var<storage, read_write> base: array<f32>;

override WG: u32 = 256u;   // a power of two (the tree reduction halves it)

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn norm_clip(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + cp.gridX * (wid.y + cp.gridY * wid.z);
  let t = g / cp.count;
  if (t >= cp.tasks) { return; }
  let range = cp.ranges[g - t * cp.count];
  let p = cp.pertOff + t * cp.pertTaskStride;
  let b = cp.baseOff + t * cp.baseTaskStride;
  var sq = 0.0;
  for (var i = range.x + lid; i < range.y; i += WG) {
    let d = pert[p + i] - base[b + i];
    sq += d * d;
  }
  partial[lid] = sq;
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lid < half) { partial[lid] += partial[lid + half]; }
  }
  workgroupBarrier();
  let norm = sqrt(partial[0]);
  if (norm > cp.radius) {
    let s = cp.radius / norm;
    for (var i = range.x + lid; i < range.y; i += WG) {
      pert[p + i] = base[b + i] + s * (pert[p + i] - base[b + i]);
    }
  }
}
