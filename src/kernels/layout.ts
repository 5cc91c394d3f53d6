// The GPU memory layout shared by the logistic kernels: rows and parameter vectors are vec4 arrays, so
// D is padded with zeros to a multiple of 4 (zero features add nothing to a dot product and receive a
// zero gradient, so padding never changes the math). Every array starts on a vec4 boundary.

/** vec4s per row / parameter vector. */
export const quads = (dim: number): number => Math.ceil(dim / 4);
/** D rounded up to a multiple of 4. */
export const paddedDim = (dim: number): number => 4 * quads(dim);
export const roundUp4 = (n: number): number => 4 * Math.ceil(n / 4);

/** rows × dim → rows × paddedDim(dim); returns `src` itself when dim is already a multiple of 4. */
export function padRows(src: Float32Array, rows: number, dim: number): Float32Array {
  const Dp = paddedDim(dim);
  if (Dp === dim) return src;
  const out = new Float32Array(rows * Dp);
  for (let r = 0; r < rows; r++) out.set(src.subarray(r * dim, (r + 1) * dim), r * Dp);
  return out;
}

/** rows × paddedDim(dim) → rows × dim. */
export function unpadRows(src: Float32Array, rows: number, dim: number): Float32Array {
  const Dp = paddedDim(dim);
  if (Dp === dim) return src.slice(0, rows * dim);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) out.set(src.subarray(r * Dp, r * Dp + dim), r * dim);
  return out;
}

/** Float offsets of the four arrays packed into one `data` buffer, each on a vec4 boundary. */
export function dataLayout(tasks: number, supportRows: number, queryRows: number, dim: number) {
  const Dp = paddedDim(dim);
  const supportX = 0;
  const supportY = supportX + tasks * supportRows * Dp;
  const queryX = supportY + roundUp4(tasks * supportRows);
  const queryY = queryX + tasks * queryRows * Dp;
  return { supportX, supportY, queryX, queryY, total: queryY + roundUp4(tasks * queryRows) };
}
