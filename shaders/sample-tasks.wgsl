// Samples a whole batch of tasks on the device, straight into the packed data buffer that the task
// kernels read (layout.ts dataLayout), so that training needs no upload per iteration. One workgroup
// per task, one invocation per row. The iteration number lives in sampleState[0] on the device and
// `advance` bumps it, so that many iterations recorded into one command buffer each get fresh tasks.
// Streams: task t of iteration i (split s) draws from stream pcgHash(pcgHash(i ^ s·2³¹) ^ t); rows
// are r = 0 … Ks−1 (support) then Ks … Ks+Kq−1 (query). Sources (CPU twin: src/cpu/sample-tasks.ts):
//   0 seed     x ~ U[0,1)^D, y ~ Bernoulli(0.5)            (the seed notebooks' random labels)
//   1 linear   w_t = μ + σ z, μ_d = meanScale·N(0,1) fixed by the seed; x ~ U[−1,1)^(D−1) and a
//              constant-1 bias feature; y ~ Bernoulli(σ(x·w_t))
//   2 images   two distinct classes c1, c0 of the split's range [classBase, classBase + classCount),
//              row label y = row mod 2 (balanced shots), image drawn from class (y ? c1 : c0),
//              x = pixels / 255 then a constant-1 bias feature. Images are resident, 4 pixels per u32.
// Data is written as floats (not vec4): the labels of neighbouring tasks share vec4s, and a partial
// vec4 write from two workgroups would race.

struct SampleParams {
  tasks: u32,
  supportRows: u32,
  queryRows: u32,
  dim: u32,            // D, bias included
  dimPadded: u32,      // floats per row in the data buffer
  seed: u32,
  kind: u32,
  split: u32,          // 0 = meta-train, 1 = meta-test
  supportXOff: u32,    // float offsets in data
  supportYOff: u32,
  queryXOff: u32,
  queryYOff: u32,
  groupsPerRow: u32,
  classBase: u32,
  classCount: u32,
  pixelsPerImage: u32, // images: D − 1
  taskSpread: f32,     // linear: σ
  meanScale: f32,      // linear: scale of μ
  taskBase: u32,       // chunked batches: this dispatch's first task in the whole batch (keys the streams)
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> sp: SampleParams;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<storage, read_write> sampleState: array<u32>;  // [iteration]
// images: [classStart(16) | classCount(16) | pixels, 4 per u32, images of one class contiguous]
@group(0) @binding(3) var<storage, read> images: array<u32>;
// The adversarial copy of the batch (ADML, robust evaluation) reads its labels from its own buffer.
@group(0) @binding(4) var<storage, read_write> advLabels: array<f32>;

const WG_SAMPLE: u32 = 64u;
const MEAN_STREAM: u32 = 2u;   // STREAM.tasks of src/rng.ts
const IMAGE_HEADER: u32 = 32u;

fn sigmoidOf(a: f32) -> f32 {
  if (a >= 0.0) { return 1.0 / (1.0 + exp(-a)); }
  let e = exp(a);
  return e / (1.0 + e);
}

@compute @workgroup_size(WG_SAMPLE)
fn sample_tasks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.y * sp.groupsPerRow + wid.x;
  if (t >= sp.tasks) { return; }
  let iteration = sampleState[0];
  let stream = pcgHash(pcgHash(iteration ^ (sp.split << 31u)) ^ (sp.taskBase + t));
  let Ks = sp.supportRows;
  let D = sp.dim;
  var c1 = 0u;
  var c0 = 0u;
  if (sp.kind == 2u) {
    let n = sp.classCount;
    let first = randomBelow(sp.seed, stream, 0u, n);
    c1 = sp.classBase + first;
    c0 = sp.classBase + (first + 1u + randomBelow(sp.seed, stream, 1u, n - 1u)) % n;
  }
  for (var r = lid; r < Ks + sp.queryRows; r += WG_SAMPLE) {
    let isSupport = r < Ks;
    let k = select(r - Ks, r, isSupport);
    let rows = select(sp.queryRows, Ks, isSupport);
    let xOff = select(sp.queryXOff, sp.supportXOff, isSupport) + (t * rows + k) * sp.dimPadded;
    let yAt = select(sp.queryYOff, sp.supportYOff, isSupport) + t * rows + k;
    var label = 0.0;
    if (sp.kind == 0u) {
      for (var d = 0u; d < D; d++) { data[xOff + d] = uniform01(sp.seed, stream, r * D + d); }
      label = select(0.0, 1.0, uniform01(sp.seed + 1u, stream, r) >= 0.5);
    } else if (sp.kind == 1u) {
      var a = 0.0;
      for (var d = 0u; d < D; d++) {
        var x = 1.0;
        if (d + 1u < D) { x = 2.0 * uniform01(sp.seed + 1u, stream, r * D + d) - 1.0; }
        data[xOff + d] = x;
        a += x * (sp.meanScale * normal(sp.seed, MEAN_STREAM, d) + sp.taskSpread * normal(sp.seed + 3u, stream, d));
      }
      label = select(0.0, 1.0, uniform01(sp.seed + 2u, stream, r) < sigmoidOf(a));
    } else {
      let y = k % 2u;
      let c = select(c0, c1, y == 1u);
      let image = images[c] + randomBelow(sp.seed + 1u, stream, r, images[16u + c]);
      let words = sp.pixelsPerImage / 4u;
      let base = IMAGE_HEADER + image * words;
      for (var w = 0u; w < words; w++) {
        let packed = images[base + w];
        for (var b = 0u; b < 4u; b++) {
          data[xOff + 4u * w + b] = f32((packed >> (8u * b)) & 255u) * (1.0 / 255.0);
        }
      }
      data[xOff + sp.pixelsPerImage] = 1.0;
      label = f32(y);
    }
    for (var d = D; d < sp.dimPadded; d++) { data[xOff + d] = 0.0; }
    data[yAt] = label;
    advLabels[yAt] = label;
  }
}

@compute @workgroup_size(1)
fn advance() { sampleState[0] += 1u; }
