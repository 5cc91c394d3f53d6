// Elementwise per-task vector ops (docs/neural-models.md "mlp-vector"; CPU twin: vectorOp in
// src/cpu/mlp-kernels.ts): out(t, i) = a·X(t, i) + b·Y(t, i) — or, with a Z operand (USE_Z),
// a·X(t, i) + b·Y(t, i)·Z(t, i) — for lo ≤ i < hi, t < tasks, where an operand (buf, off, taskStride)
// is element b{buf}[off + t·taskStride + i] (buf: a pipeline constant), or with rowLen > 0 element
// b{buf}[off + t·taskStride + ⌊i/rowLen⌋·rowStride + i mod rowLen] (the data's padded rows gathered). X is not read when a = 0, Y and
// Z not when b = 0 (so they may hold anything). out may be X (in-place accumulation). With
// zeroOutside, out(t, i) = 0 for the other i < length; else they are untouched.
// Copies θ into each task's θ', scales or masks a direction to the adapted indices, zeroes φ; with
// the product, Meta-SGD's θ' = θ − α ⊙ g, its direction α ⊙ v and its g_α += −g ⊙ v.
// Thread mapping: one invocation per element; workgroup (x-block, task) linearised as
// block + blocks·t and folded into x/y/z by the host. Consecutive invocations touch consecutive floats.

struct Vec { off: u32, taskStride: u32, rowLen: u32, rowStride: u32 }

fn at(v: Vec, t: u32, i: u32) -> u32 {
  if (v.rowLen == 0u) { return v.off + t * v.taskStride + i; }
  return v.off + t * v.taskStride + (i / v.rowLen) * v.rowStride + i % v.rowLen;
}

struct VectorParams {
  tasks: u32,
  first: u32,       // the elements covered: [first, end) = [lo, hi), or [0, length) with zeroOutside
  end: u32,
  lo: u32,
  hi: u32,
  blocks: u32,      // ⌈(end − first) / WG⌉ workgroups per task
  gridX: u32,
  gridY: u32,
  a: f32,
  b: f32,
  x: Vec,
  y: Vec,
  dst: Vec,
  z: Vec,           // last, so that the fields before it keep their offsets
}

@group(0) @binding(0) var<uniform> vp: VectorParams;
@group(0) @binding(1) var<storage, read_write> b0: array<f32>;
@group(0) @binding(2) var<storage, read_write> b1: array<f32>;
@group(0) @binding(3) var<storage, read_write> b2: array<f32>;

override WG: u32 = 256u;
// Which binding each operand lives in, as pipeline constants: the switches below fold away, so no
// access sits behind a run-time branch (a software adapter runs those masked, lane by lane).
override X_BUF: u32 = 0u;
override Y_BUF: u32 = 0u;
override OUT_BUF: u32 = 1u;
override Z_BUF: u32 = 0u;
override USE_X: bool = true;    // a ≠ 0
override USE_Y: bool = false;   // b ≠ 0
override USE_Z: bool = false;   // a Z operand: the b term is b·Y·Z

fn load(buf: u32, i: u32) -> f32 {
  switch buf {
    case 0u: { return b0[i]; }
    case 1u: { return b1[i]; }
    default: { return b2[i]; }
  }
}

fn store(buf: u32, i: u32, v: f32) {
  switch buf {
    case 0u: { b0[i] = v; }
    case 1u: { b1[i] = v; }
    default: { b2[i] = v; }
  }
}

@compute @workgroup_size(WG)
fn vector_op(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + vp.gridX * (wid.y + vp.gridY * wid.z);
  let t = g / vp.blocks;
  if (t >= vp.tasks) { return; }
  let i = vp.first + (g - t * vp.blocks) * WG + lid;
  if (i >= vp.end) { return; }
  var v = 0.0;
  if (i >= vp.lo && i < vp.hi) {
    if (USE_X) { v = vp.a * load(X_BUF, at(vp.x, t, i)); }
    if (USE_Y) {
      var term = load(Y_BUF, at(vp.y, t, i));
      if (USE_Z) { term *= load(Z_BUF, at(vp.z, t, i)); }
      v += vp.b * term;
    }
  }
  store(OUT_BUF, at(vp.dst, t, i), v);
}
