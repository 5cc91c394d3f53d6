// Host side of shaders/mlp-gemm.wgsl (CPU twin: gemm in src/cpu/mlp-kernels.ts): the batched small
// matmul behind every MLP layer's forward, backward, weight gradient and R-operator (docs/neural-models.md).
// Tiles are chosen per (M, N, K) and per kind of adapter (chooseTiles), since M, the rows of one task,
// is usually 5…25 and a 16- or 32-row tile would mostly compute padding; the spec's structure (sources,
// mode, optional steps) becomes pipeline constants, one compiled variant per structure and tile shape.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { ShapeError } from '../errors.js';
import { checkGemmSpec, SRC, type BiasOperand, type GemmSpec, type Operand } from '../cpu/mlp-kernels.js';
import { dummyBuffer, foldGrid, gridDispatch, isSoftwareDevice, type MlpKernelOptions } from './mlp-common.js';
import { writeUniform } from '../gpu/uniforms.js';
import { SHADERS } from './shader-source.js';

export { SRC, dummyBuffer };
export type { BiasOperand, GemmArrays, GemmMode, GemmSpec, Operand } from '../cpu/mlp-kernels.js';

/** The buffers of bindings 1–5; p0, p1, p2 and tape must be distinct (dummyBuffer(device, slot) for unused ones). */
export interface GemmBuffers { data: GPUBuffer; tape: GPUBuffer; p0: GPUBuffer; p1: GPUBuffer; p2: GPUBuffer }

/**
 * One pipeline variant: TX×TY invocations, each owning RM rows × RN columns of a TM×TN = TY·RM × TX·RN
 * tile. `direct`: entry gemm_direct (operands read straight from their buffers, for software adapters),
 * else gemm (K staged KT rows at a time through workgroup memory).
 */
export interface GemmTiles { TX: number; TY: number; RM: number; RN: number; KT: number; direct: boolean }

const KINDS = ['uniform', 'read', 'rw', 'rw', 'rw', 'rw'] as const;
const MODES = { write: 0, accumulate: 1, from: 2 } as const;
const NONE: Operand = { src: SRC.NONE, off: 0, taskStride: 0, strideI: 0, strideJ: 0 };
/** The shader's register block limits (MAX_RM, MAX_RN, MAX_RN_DIRECT, DIRECT_SUMS). */
const MAX_RM = 32;
const MAX_RN = 4;
const MAX_RN_DIRECT = 16;
const DIRECT_SUMS = 128;

/**
 * Tiles for an M×N output with K-deep terms. Both families put one row of invocations (TY = 1) on all
 * RM rows of the tile, so every invocation reads the same A words and A is re-read once per column block.
 * - GPU (gemm): 32 invocations × RN = 1 or 2 columns (N ≤ 32 or larger); RM = M when M ≤ 32 (a task's
 *   5…25 rows take one tile, no padding rows, and every B element is read once per task), else 32-row
 *   tiles. A comes from workgroup memory as a broadcast. KT = min(K, 32): a K of 10 rows (weight
 *   gradients) stages 10, not 32, rows of each tile.
 * - software (gemm_direct): 8 invocations (one SIMD group of llvmpipe), RM = M up to 16 rows (else M
 *   split evenly into tiles of ≤ 16), RN = as many columns as fit 128 sums (≤ 16, ≤ ⌈N/8⌉). Each k
 *   costs RM + RN loads, each a loop over the lanes, for RM·RN multiply-adds, so wide blocks win; the
 *   block shape is a uniform, so all tile choices of one spec structure share one pipeline.
 */
export function chooseTiles(M: number, N: number, K: number, software: boolean): GemmTiles {
  // On Mesa llvmpipe (GL ES, Mesa 22.3) gemm_direct silently writes zeros for long reductions — no
  // validation error, no device loss — e.g. (K, RN) = (600, 16), (784, 16), (4000, 2) fail while (513, 16),
  // (784, 8), (2000, 2) are right; the exact condition is not pinned down. The staged variant loops
  // K / KT times and is right at all of them, so reductions over 256 take it, at some cost on a
  // software adapter. Found by the MLP test at 784 inputs (test/mlp-kernels.test.ts keeps the case).
  if (software && K <= DIRECT_MAX_K) {
    const RM = M <= 16 ? Math.max(1, M) : Math.ceil(M / Math.ceil(M / 16));
    const RN = Math.max(1, Math.min(MAX_RN_DIRECT, Math.floor(DIRECT_SUMS / RM), Math.ceil(N / 8)));
    return { TX: 8, TY: 1, RM, RN, KT: 1, direct: true };
  }
  return { TX: 32, TY: 1, RM: Math.min(MAX_RM, Math.max(1, M)), RN: N <= 32 ? 1 : 2, KT: Math.min(32, Math.max(1, K)), direct: false };
}

/** The longest k loop gemm_direct is trusted with (see chooseTiles). */
export const DIRECT_MAX_K = 256;

/** Workgroup floats a variant stages (the shader's TILE_A + TILE_B; none for gemm_direct). */
export const tileFloats = (t: GemmTiles): number => (t.direct ? 0 : t.KT * (t.TY * t.RM + 1 + t.TX * t.RN + 1) + 2 * t.TX * t.TY);

/** Throws ShapeError unless the shader can run `t` on `device`: register blocks within the shader's limits, workgroup limits. */
export function checkTiles(t: GemmTiles, device: GPUDevice): void {
  const l = device.limits;
  const ok = [t.TX, t.TY, t.RM, t.RN, t.KT].every((v) => Number.isInteger(v) && v >= 1) && t.RM <= MAX_RM &&
    (t.direct ? t.RN <= MAX_RN_DIRECT && t.RM * t.RN <= DIRECT_SUMS : t.RN <= MAX_RN) &&
    t.TX <= l.maxComputeWorkgroupSizeX && t.TY <= l.maxComputeWorkgroupSizeY && t.TX * t.TY <= l.maxComputeInvocationsPerWorkgroup &&
    4 * tileFloats(t) <= l.maxComputeWorkgroupStorageSize;
  if (!ok) {
    throw new ShapeError(`gemm tiles ${JSON.stringify(t)} are not supported on this device.`,
      `Need RM ≤ ${MAX_RM}, RN ≤ ${MAX_RN} (direct: RN ≤ ${MAX_RN_DIRECT}, RM·RN ≤ ${DIRECT_SUMS}), a workgroup within the device's size limits and ${4 * tileFloats(t)} bytes of workgroup memory.`);
  }
}

export class GemmKernel {
  private readonly layout: GPUBindGroupLayout;
  /** Whether bind picks the software-adapter variants (options.software, else from device.adapterInfo). */
  readonly software: boolean;
  constructor(private readonly device: GPUDevice, private readonly options: MlpKernelOptions = {}) {
    this.layout = bindGroupLayout(device, 'GemmKernel.layout', [...KINDS]);
    this.software = options.software ?? isSoftwareDevice(device);
  }

  /** The pipeline of one variant: tile shape plus the spec's structure (pipelineConstants). Cached per device. */
  pipeline(direct: boolean, constants: Record<string, number>): GPUComputePipeline {
    return computePipeline(this.device, 'mlp-gemm.wgsl', SHADERS.mlpGemm, direct ? 'gemm_direct' : 'gemm', this.layout, constants);
  }

  /**
   * Writes the spec's uniform (a buffer of its own) and returns the dispatch, to be recorded into any
   * compute pass. Throws ShapeError on an invalid spec, LimitError when the grid cannot be dispatched.
   * The first bind of a new (tiles, structure) combination compiles a pipeline.
   * @example
   *   const fwd = new GemmKernel(device).bind({ data, tape, p0: theta, p1: dummyBuffer(device, 1), p2: dummyBuffer(device, 2) },
   *     { tasks: T, M: R, N: h, K1: D, A1: x, B1: w, bias1: b, mode: 'write', scale: 1, out: z, out2: a }, 'layer1.forward');
   *   fwd.encode(pass);
   */
  bind(buffers: GemmBuffers, spec: GemmSpec, label: string, tiles?: GemmTiles): BoundDispatch {
    checkGemmSpec(spec);
    const t = tiles ?? chooseTiles(spec.M, spec.N, Math.max(spec.K1, spec.K2 ?? 0), this.software);
    checkTiles(t, this.device);
    const TM = t.TY * t.RM;
    const TN = t.TX * t.RN;
    const tilesM = Math.ceil(spec.M / TM);
    const tilesN = Math.ceil(spec.N / TN);
    const grid = foldGrid(this.device, spec.tasks * tilesM * tilesN, `GemmKernel.${label}`, this.options);
    // A term with a NONE factor adds nothing: it becomes K = 0 with both sources NONE (one variant fewer).
    const term = (K: number, A: Operand | undefined, B: Operand | undefined): [number, Operand, Operand] =>
      K > 0 && A && B && A.src !== SRC.NONE && B.src !== SRC.NONE ? [K, A, B] : [0, NONE, NONE];
    const [K1, A1, B1] = term(spec.K1, spec.A1, spec.B1);
    const [K2, A2, B2] = term(spec.K2 ?? 0, spec.A2, spec.B2);
    const bias = (b: BiasOperand | undefined): Operand => (b ? { ...b, strideI: 0, strideJ: 1 } : NONE);
    const operands = {
      a1: A1, b1: B1, a2: A2, b2: B2, bias1: bias(spec.bias1), bias2: bias(spec.bias2),
      mask: spec.mask ?? NONE, dst: spec.out, addend: spec.mode === 'from' ? spec.from! : NONE, dst2: spec.out2 ?? NONE,
      dst2Mask: spec.out2 && spec.out2.src !== SRC.NONE ? spec.out2Mask ?? NONE : NONE,
    };
    const uniform = writeUniform(this.device, `GemmKernel.${label}.uniform`, SHADERS.mlpGemm, 'gp', {
      tasks: spec.tasks, M: spec.M, N: spec.N, K1, K2, tilesN, tilesM, gridX: grid.x, gridY: grid.y, scale: spec.scale, blockRows: t.RM, blockCols: t.RN, ...operands,
    });
    // Staging order only matters for real operands: ONE / NONE keep the default (fewer variants).
    const kFastA = (A: Operand) => (A.src < SRC.ONE ? Number(A.strideJ === 1) : 1);
    const kFastB = (B: Operand) => (B.src < SRC.ONE ? Number(B.strideJ !== 1 && B.strideI === 1) : 0);
    // gemm_direct reads its block shape from the uniform and stages nothing: only TX and TY shape its
    // pipeline, so every tile choice of one spec structure shares one compiled variant.
    const shape: Record<string, number> = t.direct ? { TX: t.TX, TY: t.TY } : { TX: t.TX, TY: t.TY, RM: t.RM, RN: t.RN, KT: t.KT };
    const constants: Record<string, number> = {
      ...shape, MODE: MODES[spec.mode],
      SRC_A1: A1.src, SRC_B1: B1.src, SRC_A2: A2.src, SRC_B2: B2.src, SRC_BIAS1: operands.bias1.src, SRC_BIAS2: operands.bias2.src,
      SRC_MASK: operands.mask.src, SRC_DST: operands.dst.src, SRC_ADDEND: operands.addend.src, SRC_DST2: operands.dst2.src,
      SRC_DST2_MASK: operands.dst2Mask.src,
    };
    if (!t.direct) Object.assign(constants, { K_FAST_A1: kFastA(A1), K_FAST_B1: kFastB(B1), K_FAST_A2: kFastA(A2), K_FAST_B2: kFastB(B2) });
    const group = bindGroup(this.device, `GemmKernel.${label}.group`, this.layout,
      [uniform, buffers.data, buffers.tape, buffers.p0, buffers.p1, buffers.p2]);
    return gridDispatch(this.pipeline(t.direct, constants), group, grid);
  }
}
