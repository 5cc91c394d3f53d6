// Samples a whole batch of tasks on the device, straight into the packed data buffer that the task
// kernels read (layout.ts dataLayout), so that training needs no upload per iteration. One workgroup
// per task, one invocation per row. The iteration number lives in sampleState[0] on the device and
// `advance` bumps it, so that many iterations recorded into one command buffer each get fresh tasks.
// Streams: task t of iteration i draws from stream pcgHash(pcgHash(i ^ key) ^ t), key of the split
// (source.ts SPLIT_STREAM_KEY: 0 meta-train, 2³¹ meta-test, 2³⁰ validation); rows
// are r = 0 … Ks−1 (support) then Ks … Ks+Kq−1 (query). Sources (CPU twin: src/cpu/sample-tasks.ts):
//   0 seed     x ~ U[0,1)^D, y ~ Bernoulli(0.5)            (the seed notebooks' random labels)
//   1 linear   w_t = μ + σ z, μ_d = meanScale·N(0,1) fixed by the seed; x ~ U[−1,1)^(D−1) and a
//              constant-1 bias feature; y ~ Bernoulli(σ(x·w_t))
//   2 images   two distinct classes c1, c0 of the split's range [classBase, classBase + classCount),
//              row label y = row mod 2 (balanced shots), image drawn from class (y ? c1 : c0),
//              x = pixels / 255 then a constant-1 bias feature. Images are resident, 4 pixels per u32.
//   3 omniglot N-way episodes (src/tasks/source.ts OmniglotSource): classes = omniglotDistinct(seed,
//              stream, 0, N, pool·R), class = poolIndex·R + rotation (R = 4 meta-train, 1 meta-test);
//              label ℓ's images = omniglotDistinct(seed + 1, stream, 128ℓ, K + Q, drawers); support row
//              i is label i mod N, image shot ⌊i/N⌋; query row i: label i mod N, shot K + ⌊i/N⌋; x =
//              the 28×28 image turned clockwise by rotation·90°, / 255 (no bias feature). Images buffer:
//              [32-word header | train pool: first image (P), image count (P) | test pool: same | pixels].
//   4 sinusoid (src/tasks/sinusoid.ts) A = (ampLo + randomBelow(seed, stream, 0, ampCount))·2⁻¹², phase
//              index p = phaseLo + randomBelow(seed, stream, 1, phaseCount); row r: x index
//              i = xLo + randomBelow(seed + 1, stream, r, xCount), x = i·2⁻¹², y = A·table[i − p −
//              tableLo], the sine table (float32 bits) in the images buffer. Every value but y is exact;
//              y is one float32 product, so the CPU twin gets the same bits (no GPU sin, no FMA).
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
  splitKey: u32,       // stream key of the split: 0 meta-train, 2³¹ meta-test, 2³⁰ validation
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
  ways: u32,           // omniglot: N
  shots: u32,          // omniglot: K (support images per class)
  rotations: u32,      // omniglot: R
  poolOff: u32,        // omniglot: word offset of the split's first-image list (counts follow, poolCount on)
  poolCount: u32,      // omniglot: characters in the split's pool
  pixelBase: u32,      // omniglot: word offset of the pixels
  sinAmpLo: i32,       // sinusoid: grid indices (value = index·2⁻¹²) and counts
  sinAmpCount: u32,
  sinPhaseLo: i32,
  sinPhaseCount: u32,
  sinXLo: i32,
  sinXCount: u32,
  sinTableLo: i32,     // sinusoid: grid index of table[0]
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

const OMNI_MAX: u32 = 64u;   // OMNIGLOT_MAX_WAYS, OMNIGLOT_MAX_IMAGES_PER_CLASS of src/tasks/source.ts
const OMNI_SIDE: u32 = 28u;

// n distinct integers of [0, m), in a random order: Floyd's algorithm then a Fisher–Yates shuffle
// (CPU twin: distinctBelow in src/cpu/sample-tasks.ts). Draw i uses counter + i, swap i counter + n + i.
fn omniglotDistinct(seed: u32, stream: u32, counter: u32, n: u32, m: u32) -> array<u32, OMNI_MAX> {
  var out: array<u32, OMNI_MAX>;
  for (var i = 0u; i < n; i++) {
    let j = m - n + i;
    let t = randomBelow(seed, stream, counter + i, j + 1u);
    var seen = false;
    for (var k = 0u; k < i; k++) { if (out[k] == t) { seen = true; } }
    out[i] = select(t, j, seen);
  }
  for (var i = n - 1u; i >= 1u; i--) {
    let k = randomBelow(seed, stream, counter + n + i, i + 1u);
    let v = out[i];
    out[i] = out[k];
    out[k] = v;
  }
  return out;
}

// Index into a 28×28 image of the pixel that lands at (y, x) when it is turned clockwise by rot·90°.
fn rotatedSource(y: u32, x: u32, rot: u32) -> u32 {
  let S = OMNI_SIDE;
  if (rot == 1u) { return (S - 1u - x) * S + y; }
  if (rot == 2u) { return (S - 1u - y) * S + (S - 1u - x); }
  if (rot == 3u) { return x * S + (S - 1u - y); }
  return y * S + x;
}

// Row r of task t's support rows then query rows: where its features and its label go.
struct RowAt { isSupport: bool, k: u32, xOff: u32, yAt: u32 }
fn rowAt(t: u32, r: u32) -> RowAt {
  let Ks = sp.supportRows;
  let isSupport = r < Ks;
  let k = select(r - Ks, r, isSupport);
  let rows = select(sp.queryRows, Ks, isSupport);
  let xOff = select(sp.queryXOff, sp.supportXOff, isSupport) + (t * rows + k) * sp.dimPadded;
  let yAt = select(sp.queryYOff, sp.supportYOff, isSupport) + t * rows + k;
  return RowAt(isSupport, k, xOff, yAt);
}

fn sampleOmniglot(t: u32, lid: u32, stream: u32) {
  let N = sp.ways;
  let R = sp.rotations;
  let classes = omniglotDistinct(sp.seed, stream, 0u, N, sp.poolCount * R);
  let Ks = sp.supportRows;
  let m = sp.shots + sp.queryRows / N;
  for (var r = lid; r < Ks + sp.queryRows; r += WG_SAMPLE) {
    let at = rowAt(t, r);
    let isSupport = at.isSupport;
    let k = at.k;
    let xOff = at.xOff;
    let yAt = at.yAt;
    let label = k % N;
    let shot = select(sp.shots, 0u, isSupport) + k / N;
    let c = classes[label] / R;
    let rot = classes[label] % R;
    let drawers = images[sp.poolOff + sp.poolCount + c];
    let picks = omniglotDistinct(sp.seed + 1u, stream, 128u * label, m, drawers);
    let base = (images[sp.poolOff + c] + picks[shot]) * OMNI_SIDE * OMNI_SIDE;
    for (var y = 0u; y < OMNI_SIDE; y++) {
      for (var x = 0u; x < OMNI_SIDE; x++) {
        let p = base + rotatedSource(y, x, rot);
        let byte = (images[sp.pixelBase + p / 4u] >> (8u * (p % 4u))) & 255u;
        data[xOff + y * OMNI_SIDE + x] = f32(byte) * (1.0 / 255.0);
      }
    }
    for (var d = sp.dim; d < sp.dimPadded; d++) { data[xOff + d] = 0.0; }
    data[yAt] = f32(label);
    advLabels[yAt] = f32(label);
  }
}

const SIN_STEP: f32 = 1.0 / 4096.0;   // 2⁻¹², SINUSOID_GRID_BITS of src/tasks/sinusoid.ts

fn sampleSinusoid(t: u32, lid: u32, stream: u32) {
  let amplitude = f32(sp.sinAmpLo + i32(randomBelow(sp.seed, stream, 0u, sp.sinAmpCount))) * SIN_STEP;
  let phase = sp.sinPhaseLo + i32(randomBelow(sp.seed, stream, 1u, sp.sinPhaseCount));
  for (var r = lid; r < sp.supportRows + sp.queryRows; r += WG_SAMPLE) {
    let at = rowAt(t, r);
    let ix = sp.sinXLo + i32(randomBelow(sp.seed + 1u, stream, r, sp.sinXCount));
    data[at.xOff] = f32(ix) * SIN_STEP;
    for (var d = 1u; d < sp.dimPadded; d++) { data[at.xOff + d] = 0.0; }
    let y = amplitude * bitcast<f32>(images[u32(ix - phase - sp.sinTableLo)]);
    data[at.yAt] = y;
    advLabels[at.yAt] = y;
  }
}

@compute @workgroup_size(WG_SAMPLE)
fn sample_tasks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.y * sp.groupsPerRow + wid.x;
  if (t >= sp.tasks) { return; }
  let iteration = sampleState[0];
  let stream = pcgHash(pcgHash(iteration ^ sp.splitKey) ^ (sp.taskBase + t));
  if (sp.kind == 3u) {
    sampleOmniglot(t, lid, stream);
    return;
  }
  if (sp.kind == 4u) {
    sampleSinusoid(t, lid, stream);
    return;
  }
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
    let at = rowAt(t, r);
    let isSupport = at.isSupport;
    let k = at.k;
    let xOff = at.xOff;
    let yAt = at.yAt;
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
