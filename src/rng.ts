// Counter-based random numbers: value = hash(seed, stream, counter), so any element of a stream can be
// produced independently (on the CPU here; a WGSL twin can give the same bits on the GPU).

/** PCG's RXS-M-XS output permutation of one LCG step: a good 32-bit integer hash. */
export function pcgHash(input: number): number {
  const state = (Math.imul(input >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Uniform in [0, 1) from (seed, stream, counter), 24 bits of resolution (exact in float32). */
export function uniform01(seed: number, stream: number, counter: number): number {
  const h = pcgHash((pcgHash((pcgHash(seed) ^ stream) >>> 0) ^ counter) >>> 0);
  return (h >>> 8) / 16777216;
}

/** Standard normal by Box–Muller from two counter-indexed uniforms. */
export function normal(seed: number, stream: number, counter: number): number {
  const u1 = uniform01(seed, stream, 2 * counter) || 1 / 16777216;  // never log(0)
  const u2 = uniform01(seed, stream, 2 * counter + 1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Named streams, so that different uses of one seed never share numbers. */
export const STREAM = { init: 1, tasks: 2, data: 3 } as const;

/** θ ~ N(0, scale²), identical for every backend given the seed. */
export function initialParams(dim: number, seed: number, scale: number): Float32Array {
  const theta = new Float32Array(dim);
  for (let d = 0; d < dim; d++) theta[d] = scale * normal(seed, STREAM.init, d);
  return theta;
}
