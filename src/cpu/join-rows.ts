// CPU twin of shaders/join-rows.wgsl: each task's support rows followed by its query rows, so that an
// inner loop over "support" trains on both (Reptile). Rows are unpadded here (D floats), as in the CPU
// engine's arrays; the kernel also copies the query side, which the CPU engine can pass as it is.

export interface JoinShape {
  tasks: number;
  supportRows: number;  // Ks
  queryRows: number;    // Kq
  dim: number;          // D
}

/** Task t's rows of the result: its Ks support rows, then its Kq query rows (T×(Ks+Kq)×D; labels T×(Ks+Kq)),
 * written into `into` when given (the CPU engine's shared scratch), else into new arrays. */
export function joinRows(supportX: Float32Array, supportY: Float32Array, queryX: Float32Array, queryY: Float32Array, shape: JoinShape,
  into?: { x: Float32Array; y: Float32Array }): { x: Float32Array; y: Float32Array } {
  const { tasks: T, supportRows: Ks, queryRows: Kq, dim: D } = shape;
  const joint = Ks + Kq;
  const x = into?.x ?? new Float32Array(T * joint * D);
  const y = into?.y ?? new Float32Array(T * joint);
  for (let t = 0; t < T; t++) {
    x.set(supportX.subarray(t * Ks * D, (t + 1) * Ks * D), t * joint * D);
    x.set(queryX.subarray(t * Kq * D, (t + 1) * Kq * D), (t * joint + Ks) * D);
    y.set(supportY.subarray(t * Ks, (t + 1) * Ks), t * joint);
    y.set(queryY.subarray(t * Kq, (t + 1) * Kq), t * joint + Ks);
  }
  return { x, y };
}
