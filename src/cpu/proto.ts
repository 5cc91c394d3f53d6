// CPU twin of shaders/proto.wgsl: the prototypical loss of each task's episode over embeddings held in a
// tape, with the kernel's layout, scratch and float32 storage. The math is protoLoss's
// (src/cpu/net/losses.ts, the float64 oracle); the twin computes in float64 and stores float32.
import { ShapeError } from '../errors.js';

/** Where the kernel reads and writes; every offset in floats, per task + t·tapeTaskStride (labels:
 * yOff + t·rows). dOff must not alias zOff (the δ of the queries is written before the prototypes'
 * gradient reads their z). */
export interface ProtoSpec {
  tasks: number;
  rows: number;
  /** The episode's first `support` rows are its support rows. */
  support: number;
  features: number;
  classes: number;
  yOff: number;
  zOff: number;
  dOff: number;
  scratchOff: number;
  tapeTaskStride: number;
  /** δ = scale·∂(summed query loss)/∂z: 1/Q for the mean loss. */
  scale: number;
  wantStats: boolean;
  statsOff: number;
}

export interface ProtoArrays { data: Float32Array; tape: Float32Array; stats: Float32Array }

/** Scratch floats per task: prototypes, counts, their gradient, and g (Q × N). */
export const protoScratchFloats = (s: { rows: number; support: number; features: number; classes: number }): number =>
  2 * s.classes * s.features + s.classes + (s.rows - s.support) * s.classes;

export function checkProtoSpec(spec: ProtoSpec): void {
  const { tasks, rows, support, features, classes } = spec;
  if (![tasks, rows, support, features, classes].every((n) => Number.isInteger(n) && n >= 0) || support < 1 || rows <= support || classes < 2 || features < 1) {
    throw new ShapeError(`proto: an episode needs support ≥ 1 and query rows, classes ≥ 2 and features ≥ 1, got ${JSON.stringify({ tasks, rows, support, features, classes })}.`, 'Give every task support and query rows.');
  }
  if (spec.dOff === spec.zOff) throw new ShapeError('proto: dOff must not alias zOff.', 'Write δ to its own tape section.');
}

/** Twin of shaders/proto.wgsl. */
export function protoEpisode(arrays: ProtoArrays, spec: ProtoSpec): void {
  checkProtoSpec(spec);
  const { tasks, rows, support: S, features: F, classes: N, scale } = spec;
  const { data, tape, stats } = arrays;
  const Q = rows - S;
  const protos = new Float64Array(N * F), counts = new Float64Array(N), g = new Float64Array(Q * N), dProtos = new Float64Array(N * F);
  for (let t = 0; t < tasks; t++) {
    const base = t * spec.tapeTaskStride;
    const z = spec.zOff + base, d = spec.dOff + base, labels = spec.yOff + t * rows;
    protos.fill(0);
    counts.fill(0);
    for (let s = 0; s < S; s++) {
      const k = data[labels + s];
      counts[k]++;
      for (let f = 0; f < F; f++) protos[k * F + f] += tape[z + s * F + f];
    }
    // Stored as the kernel stores them (float32), and read back so.
    for (let i = 0; i < N * F; i++) protos[i] = Math.fround(counts[Math.floor(i / F)] > 0 ? protos[i] / counts[Math.floor(i / F)] : 0);
    let loss = 0, hits = 0;
    for (let q = 0; q < Q; q++) {
      const zq = z + (S + q) * F;
      const y = data[labels + S + q];
      let top = 0, arg = N;
      for (let k = 0; k < N; k++) {
        if (counts[k] === 0) continue;
        let d2 = 0;
        for (let f = 0; f < F; f++) d2 += (tape[zq + f] - protos[k * F + f]) ** 2;
        g[q * N + k] = -d2;
        if (arg === N || -d2 > top) { top = -d2; arg = k; }
      }
      let sum = 0;
      for (let k = 0; k < N; k++) if (counts[k] > 0) sum += Math.exp(g[q * N + k] - top);
      loss += Math.log(sum) + top - g[q * N + y];
      hits += arg === y ? 1 : 0;
      for (let k = 0; k < N; k++) g[q * N + k] = counts[k] > 0 ? scale * (Math.exp(g[q * N + k] - top) / sum - (k === y ? 1 : 0)) : 0;
      for (let f = 0; f < F; f++) {
        let acc = 0;
        for (let k = 0; k < N; k++) acc += g[q * N + k] * (protos[k * F + f] - tape[zq + f]);
        tape[d + (S + q) * F + f] = 2 * acc;
      }
    }
    for (let i = 0; i < N * F; i++) {
      const k = Math.floor(i / F), f = i % F;
      let acc = 0;
      for (let q = 0; q < Q; q++) acc += g[q * N + k] * (tape[z + (S + q) * F + f] - protos[i]);
      dProtos[i] = 2 * acc;
    }
    for (let i = 0; i < S * F; i++) {
      const k = data[labels + Math.floor(i / F)];
      tape[d + i] = dProtos[k * F + (i % F)] / counts[k];
    }
    const scratch = spec.scratchOff + base;
    tape.set(protos, scratch);
    tape.set(counts, scratch + N * F);
    tape.set(dProtos, scratch + N * F + N);
    tape.set(g, scratch + 2 * N * F + N);
    if (spec.wantStats) {
      stats[spec.statsOff + 2 * t] = loss / Q;
      stats[spec.statsOff + 2 * t + 1] = hits / Q;
    }
  }
}
