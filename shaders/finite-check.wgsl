// The divergence check: counts the NaN and ±Infinity values of the parameters and of the outer
// optimizer state, recorded at the end of a training submit whose results are read back (the counts
// travel in the same readback as the metrics: no extra submit). Values are read as bits (exponent all
// ones), so no compiler assumption about non-finite floats can hide one.
// Two entries, recorded in order: reset (zeroes the counts), scan (a grid-stride loop; an invocation
// that found any adds its count: no atomic traffic while training is healthy).

struct FiniteParams { paramCount: u32, optCount: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> fp: FiniteParams;
@group(0) @binding(1) var<storage, read> params: array<u32>;        // θ as bits (internal layout, padded)
@group(0) @binding(2) var<storage, read> optState: array<u32>;      // m | v | step count, as bits
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;  // [θ, optimizer]

override WG_FC: u32 = 64u;

fn nonFinite(bits: u32) -> u32 { return select(0u, 1u, (bits & 0x7f800000u) == 0x7f800000u); }

@compute @workgroup_size(1)
fn reset() {
  atomicStore(&counts[0], 0u);
  atomicStore(&counts[1], 0u);
}

@compute @workgroup_size(WG_FC)
fn scan(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let stride = groups.x * WG_FC;
  var p = 0u;
  var o = 0u;
  for (var i = gid.x; i < fp.paramCount; i += stride) { p += nonFinite(params[i]); }
  for (var i = gid.x; i < fp.optCount; i += stride) { o += nonFinite(optState[i]); }
  if (p > 0u) { atomicAdd(&counts[0], p); }
  if (o > 0u) { atomicAdd(&counts[1], o); }
}
