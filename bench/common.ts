// Shared by the bench's row families (bench.ts: logistic and MLP rows; nets.ts: Conv-4 and sinusoid rows): timing,
// number formats, finding a python with the peers' packages, and the verification measure.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface Timing { median: number; min: number; max: number; repeats: number; gpuMedianMs: number | null; capped?: boolean }

/** Repeats `once` (which ends with the work finished) for ~SECONDS after a warm-up (at least 3 repeats,
 * unless the next repeat would end past capS seconds after the warm-up: then `capped`, ≥ 1 repeat). */
export async function timeIt(once: () => Promise<number | void>, capS = Infinity, warm = true): Promise<Timing> {
  if (warm) await once();
  const times: number[] = [];
  const gpu: number[] = [];
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let capped = false;
  while (times.length < 3 || (performance.now() < end && times.length < 100)) {
    if (times.length && (performance.now() - start) / 1000 + times[times.length - 1] > capS) { capped = true; break; }
    const t0 = performance.now();
    const g = await once();
    times.push((performance.now() - t0) / 1000);
    if (typeof g === 'number') gpu.push(g);
  }
  return { median: median(times), min: Math.min(...times), max: Math.max(...times), repeats: times.length, gpuMedianMs: gpu.length ? median(gpu) : null, ...(capped ? { capped } : {}) };
}

export function findPython(): { py: string; torch: boolean } | null {
  let numpyOnly: string | null = null;
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0) return { py, torch: true };
    if (!numpyOnly && spawnSync(py, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0) numpyOnly = py;
  }
  return numpyOnly ? { py: numpyOnly, torch: false } : null;
}

export const fmt = (x: number | undefined | null, digits = 0) => (x === undefined || x === null || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
export const fmtRate = (x: number) => (Number.isFinite(x) && x < 10 ? x.toPrecision(2) : fmt(x));

/** max|Δθ − Δθ_ref| / max|Δθ_ref| with Δθ = θ1 − θ0 (in float64; the numerator is max|θ1 − θ_ref|). */
export function relChangeError(theta0: Float32Array, theta1: Float32Array, ref: Float32Array): { relErr: number; maxAbsDiff: number } {
  if (theta1.length !== ref.length || theta1.some((v) => !Number.isFinite(v))) return { relErr: Infinity, maxAbsDiff: Infinity };
  let diff = 0, change = 0;
  for (let i = 0; i < theta0.length; i++) {
    diff = Math.max(diff, Math.abs(theta1[i] - ref[i]));
    change = Math.max(change, Math.abs(ref[i] - theta0[i]));
  }
  return { relErr: change > 0 ? diff / change : Infinity, maxAbsDiff: diff };
}

/** Writes float32 arrays one after the other into `file` (the peers' BATCH.bin). */
export function writeFloats(file: string, arrays: Float32Array[]): void {
  const fd = openSync(file, 'w');
  for (const p of arrays) writeSync(fd, new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  closeSync(fd);
}
