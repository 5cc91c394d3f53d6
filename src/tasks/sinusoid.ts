// MAML's sinusoid regression tasks (../shared/SPEC.md "Sinusoid regression"; Finn et al. 2017 §5.1):
// task = (A, φ), A ~ U[amplitude], φ ~ U[phase]; its points x ~ U[x], y = A·sin(x − φ); K support and K
// query points per task, one feature (x) per row and a real target.
//
// Sampled on the device (shaders/sample-tasks.wgsl, kind 4) and on the CPU (src/cpu/sample-tasks.ts) to
// the same bits. A GPU's sin is accurate to ~2⁻¹¹ at best and differs between drivers, so neither side
// calls one: A, φ and x are drawn on a grid of step 2⁻¹² (integers times a power of two: exact in
// float32), x − φ is then a grid index too, and sin comes from a table of float32 values computed once on
// the CPU in float64 and uploaded. y = A·table[x − φ] is one float32 multiplication, correctly rounded on
// both sides; nothing is left for a compiler to contract into a fused multiply-add. The grid is finer
// than anything the task distribution resolves (the defaults draw from 20,070 amplitudes, 12,868 phases
// and 40,961 abscissae).
import { InvalidOptionError } from '../errors.js';

export interface SinusoidSource {
  kind: 'sinusoid';
  /** K, support points per task. */
  shots: number;
  /** Query points per task (default: shots, as in MAML). */
  queries?: number;
  /** [lo, hi] of the amplitude A (default [0.1, 5]). */
  amplitude?: [number, number];
  /** [lo, hi] of the phase φ (default [0, π]). */
  phase?: [number, number];
  /** [lo, hi] of the inputs x (default [−5, 5]). */
  x?: [number, number];
  name?: string;
}

export const SINUSOID_DEFAULTS = { amplitude: [0.1, 5] as [number, number], phase: [0, Math.PI] as [number, number], x: [-5, 5] as [number, number] };

/** Fractional bits of the grid: values are integers × 2⁻¹². */
export const SINUSOID_GRID_BITS = 12;
const STEP = 2 ** -SINUSOID_GRID_BITS;
/** Grid indices stay below 2²⁴ in magnitude (exact in float32): values within ±4096. */
const MAX_ABS = 4096;
/** Most entries of the sine table (16 MiB of float32): x and phase ranges that sum to at most 1024. */
const MAX_TABLE = 1 << 22;

/** A source's ranges as grid indices, and the sine table over every x − φ they can make. */
export interface SinusoidGrid {
  /** value = (lo + i)·2⁻¹², i in [0, count). */
  ampLo: number; ampCount: number;
  phaseLo: number; phaseCount: number;
  xLo: number; xCount: number;
  /** table[j] = float32(sin((tableLo + j)·2⁻¹²)); tableLo = xLo − (phaseLo + phaseCount − 1). */
  tableLo: number;
  table: Float32Array<ArrayBuffer>;
}

const grids = new WeakMap<SinusoidSource, SinusoidGrid>();

function range(name: string, v: unknown, fallback: [number, number]): [number, number] {
  const r = v ?? fallback;
  if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => typeof x === 'number' && Number.isFinite(x)) || !(r[0] <= r[1]) || Math.abs(r[0]) > MAX_ABS || Math.abs(r[1]) > MAX_ABS) {
    throw new InvalidOptionError(`The sinusoid source's ${name} must be [lo, hi] with finite lo ≤ hi within ±${MAX_ABS}, got ${JSON.stringify(v)}.`,
      `e.g. ${name}: [${fallback.map((x) => +x.toFixed(4)).join(', ')}] (the default).`);
  }
  return r as [number, number];
}

/** The grid of a source (checked; cached per source object). */
export function sinusoidGrid(source: SinusoidSource): SinusoidGrid {
  const cached = grids.get(source);
  if (cached) return cached;
  const [aLo, aHi] = range('amplitude', source.amplitude, SINUSOID_DEFAULTS.amplitude);
  const [pLo, pHi] = range('phase', source.phase, SINUSOID_DEFAULTS.phase);
  const [xLo, xHi] = range('x', source.x, SINUSOID_DEFAULTS.x);
  // Grid points inside [lo, hi] (at least one: lo rounded up, or lo itself when lo = hi is off the grid).
  const onGrid = (lo: number, hi: number): [number, number] => {
    const first = Math.ceil(lo / STEP), last = Math.floor(hi / STEP);
    return last >= first ? [first, last - first + 1] : [Math.round(lo / STEP), 1];
  };
  const [ampLo, ampCount] = onGrid(aLo, aHi);
  const [phaseLo, phaseCount] = onGrid(pLo, pHi);
  const [gxLo, xCount] = onGrid(xLo, xHi);
  const tableLo = gxLo - (phaseLo + phaseCount - 1);
  const size = (gxLo + xCount - 1) - phaseLo - tableLo + 1;
  if (size > MAX_TABLE) {
    throw new InvalidOptionError(`The sinusoid source's x and phase ranges span ${(size * STEP).toFixed(1)} radians of x − φ, more than the ${MAX_TABLE * STEP} its sine table covers.`, 'Use narrower x or phase ranges.');
  }
  const table = new Float32Array(size);
  for (let j = 0; j < size; j++) table[j] = Math.sin((tableLo + j) * STEP);
  const grid = { ampLo, ampCount, phaseLo, phaseCount, xLo: gxLo, xCount, tableLo, table };
  grids.set(source, grid);
  return grid;
}

/** Query points per task of a source. */
export const sinusoidQueries = (source: SinusoidSource): number => source.queries ?? source.shots;

/** A task's amplitude and phase as grid indices (offsets from lo): counters 0 and 1 of its stream under
 * `seed` (the CPU and GPU samplers, and evaluation's oracle, all draw them this way). */
export function sinusoidTaskIndices(grid: SinusoidGrid, draw: (counter: number, n: number) => number): { amp: number; phase: number } {
  return { amp: draw(0, grid.ampCount), phase: draw(1, grid.phaseCount) };
}

export const gridValue = (index: number): number => index * STEP;
