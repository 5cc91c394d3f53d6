// Counter-based random numbers, the WGSL twin of src/rng.ts: value = hash(seed, stream, counter), so
// every element of a batch is produced independently of every other (any thread, any order) and the
// GPU and CPU produce the same bits. All arithmetic is u32 with wrap-around, as Math.imul in TS.

// PCG's RXS-M-XS output permutation of one LCG step: a good 32-bit integer hash.
fn pcgHash(input: u32) -> u32 {
  let state = input * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn hash3(seed: u32, stream: u32, counter: u32) -> u32 {
  return pcgHash(pcgHash(pcgHash(seed) ^ stream) ^ counter);
}

// Uniform in [0, 1) with 24 bits: exact in f32, so identical to the TS value.
fn uniform01(seed: u32, stream: u32, counter: u32) -> f32 {
  return f32(hash3(seed, stream, counter) >> 8u) / 16777216.0;
}

// Integer in [0, n), n ≥ 1 (modulo bias < n / 2^32: negligible for the sizes used here).
fn randomBelow(seed: u32, stream: u32, counter: u32, n: u32) -> u32 {
  return hash3(seed, stream, counter) % n;
}

// Standard normal by Box–Muller. Its bits differ from the TS float64 value by float32 rounding of
// log/cos/sqrt (the uniforms feeding it are identical).
fn normal(seed: u32, stream: u32, counter: u32) -> f32 {
  let u1 = max(uniform01(seed, stream, 2u * counter), 1.0 / 16777216.0);
  let u2 = uniform01(seed, stream, 2u * counter + 1u);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
