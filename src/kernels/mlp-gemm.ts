// Host side of shaders/mlp-gemm.wgsl (CPU twin: gemm in src/cpu/mlp-kernels.ts): the batched small
// matmul behind every MLP layer's forward, backward, weight gradient and R-operator (docs/neural-models.md).
// Tile shapes are pipeline variants (override constants) chosen per (M, N), since M, the rows of one
// task, is usually 5…25 and a 16- or 32-row tile would mostly compute padding.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { checkGemmSpec, SRC, type BiasOperand, type GemmSpec, type Operand } from '../cpu/mlp-kernels.js';
import { dummyBuffer, foldGrid, type MlpKernelOptions, gridDispatch, writeUniform } from './mlp-common.js';
import { SHADERS } from './shader-source.js';

export { SRC, dummyBuffer };
export type { BiasOperand, GemmArrays, GemmMode, GemmSpec, Operand } from '../cpu/mlp-kernels.js';

/** The buffers of bindings 1–5; p0, p1, p2 and tape must be distinct (dummyBuffer(device, slot) for unused ones). */
export interface GemmBuffers { data: GPUBuffer; tape: GPUBuffer; p0: GPUBuffer; p1: GPUBuffer; p2: GPUBuffer }

/** One pipeline variant: TX×TY invocations, each owning RM rows × RN columns; K staged KT at a time. */
export interface GemmTiles { TX: number; TY: number; RM: number; RN: number; KT: number }

const KINDS = ['uniform', 'read', 'rw', 'rw', 'rw', 'rw'] as const;
const MODES = { write: 0, accumulate: 1, from: 2 } as const;
const NONE: Operand = { src: SRC.NONE, off: 0, taskStride: 0, strideI: 0, strideJ: 0 };
/** The shader's register block limits (MAX_RM, MAX_RN). */
const MAX_RM = 8;

/**
 * Tiles for an M×N output. M ≤ 32 (a task's rows): 64 invocations as 16×4, RM = ⌈M/4⌉ rows each, so
 * the tile is 4·⌈M/4⌉ rows (8 for 5 rows, 28 for 25) and one tile covers all rows: each B (weight)
 * element is read once per task. Larger M (weight gradients, M = inputs): 64×TN tiles of 256 invocations
 * (16×16, 4 rows each). RN = 1, 2, 4 for N ≤ 16, ≤ 32, larger: small N (the head) keeps narrow tiles.
 */
export function chooseTiles(M: number, N: number, limits?: GPUSupportedLimits): GemmTiles {
  const RN = N <= 16 ? 1 : N <= 32 ? 2 : 4;
  const maxInvocations = limits?.maxComputeInvocationsPerWorkgroup ?? 256;
  const maxY = limits?.maxComputeWorkgroupSizeY ?? 256;
  if (M > 32 && maxInvocations >= 256 && maxY >= 16) return { TX: 16, TY: 16, RM: 4, RN, KT: 16 };
  return { TX: 16, TY: 4, RM: Math.min(MAX_RM, Math.max(1, Math.ceil(M / 4))), RN, KT: 32 };
}

/** Workgroup floats a variant stages (the shader's TILE_A + TILE_B). */
export const tileFloats = (t: GemmTiles): number => t.KT * (t.TY * t.RM + 1 + t.TX * t.RN + 1);

export class GemmKernel {
  private readonly layout: GPUBindGroupLayout;
  constructor(private readonly device: GPUDevice, private readonly options: MlpKernelOptions = {}) {
    this.layout = bindGroupLayout(device, 'GemmKernel.layout', [...KINDS]);
  }

  /** The pipeline of one tile variant (built once per device and variant, then cached). */
  pipeline(tiles: GemmTiles): GPUComputePipeline {
    return computePipeline(this.device, 'mlp-gemm.wgsl', SHADERS.mlpGemm, 'gemm', this.layout, { ...tiles });
  }

  /**
   * Writes the spec's uniform (a buffer of its own) and returns the dispatch, to be recorded into any
   * compute pass. Throws ShapeError on an invalid spec, LimitError when the grid cannot be dispatched.
   * @example
   *   const fwd = new GemmKernel(device).bind({ data, tape, p0: theta, p1: dummyBuffer(device, 1), p2: dummyBuffer(device, 2) },
   *     { tasks: T, M: R, N: h, K1: D, A1: x, B1: w, bias1: b, mode: 'write', scale: 1, out: z, out2: a }, 'layer1.forward');
   *   fwd.encode(pass);
   */
  bind(buffers: GemmBuffers, spec: GemmSpec, label: string, tiles?: GemmTiles): BoundDispatch {
    checkGemmSpec(spec);
    const t = tiles ?? chooseTiles(spec.M, spec.N, this.device.limits);
    const TM = t.TY * t.RM;
    const TN = t.TX * t.RN;
    const tilesM = Math.ceil(spec.M / TM);
    const tilesN = Math.ceil(spec.N / TN);
    const grid = foldGrid(this.device, spec.tasks * tilesM * tilesN, `GemmKernel.${label}`, this.options);
    // A term with a NONE factor adds nothing: skip its K loop rather than multiply zeros.
    const K1 = spec.A1.src === SRC.NONE || spec.B1.src === SRC.NONE ? 0 : spec.K1;
    const A2 = spec.A2 ?? NONE;
    const B2 = spec.B2 ?? NONE;
    const K2 = A2.src === SRC.NONE || B2.src === SRC.NONE ? 0 : spec.K2 ?? 0;
    const bias = (b: BiasOperand | undefined): Operand => (b ? { ...b, strideI: 0, strideJ: 1 } : NONE);
    const uniform = writeUniform(this.device, `GemmKernel.${label}.uniform`, SHADERS.mlpGemm, 'gp', {
      tasks: spec.tasks, M: spec.M, N: spec.N, K1, K2, tilesN, tilesM, gridX: grid.x, gridY: grid.y,
      mode: MODES[spec.mode], scale: spec.scale,
      a1: spec.A1, b1: spec.B1, a2: A2, b2: B2, bias1: bias(spec.bias1), bias2: bias(spec.bias2),
      mask: spec.mask ?? NONE, dst: spec.out, addend: spec.from ?? NONE, dst2: spec.out2 ?? NONE, dst2Mask: spec.out2Mask ?? NONE,
    });
    const group = bindGroup(this.device, `GemmKernel.${label}.group`, this.layout,
      [uniform, buffers.data, buffers.tape, buffers.p0, buffers.p1, buffers.p2]);
    return gridDispatch(this.pipeline(t), group, grid);
  }
}
