// Host side of shaders/mlp-vector.wgsl (CPU twin: vectorOp in src/cpu/mlp-kernels.ts): out = a·X + b·Y,
// or a·X + b·Y ⊙ Z, over a per-task index range, one invocation per element.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { checkVectorSpec, type VectorOperand, type VectorSpec } from '../cpu/mlp-kernels.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { writeUniform } from '../gpu/uniforms.js';
import { SHADERS } from './shader-source.js';

export { dummyBuffer } from './mlp-common.js';
export type { VectorArrays, VectorOperand, VectorSpec } from '../cpu/mlp-kernels.js';

/** Bindings 1–3, all read_write and distinct (dummyBuffer(device, slot) for unused ones). */
export interface VectorBuffers { b0: GPUBuffer; b1: GPUBuffer; b2: GPUBuffer }

const KINDS = ['uniform', 'rw', 'rw', 'rw'] as const;
const WG = 256;
const UNUSED: VectorOperand = { buf: 0, off: 0, taskStride: 0 };

export class VectorKernel {
  private readonly layout: GPUBindGroupLayout;
  constructor(private readonly device: GPUDevice, private readonly options: MlpKernelOptions = {}) {
    this.layout = bindGroupLayout(device, 'VectorKernel.layout', [...KINDS]);
  }

  /** The pipeline for one placement of the operands (built on first use; a handful are used). Z_BUF and
   * USE_Z only appear in the constants when a Z operand is used, X's only when a = 0. */
  private pipeline(x: number | null, y: number, out: number, useY: boolean, z: number | null): GPUComputePipeline {
    const constants: Record<string, number> = { WG, X_BUF: x ?? 0, Y_BUF: y, OUT_BUF: out, USE_Y: Number(useY) };
    if (x === null) constants.USE_X = 0;
    if (z !== null) Object.assign(constants, { Z_BUF: z, USE_Z: 1 });
    return computePipeline(this.device, 'mlp-vector.wgsl', SHADERS.mlpVector, 'vector_op', this.layout, constants);
  }

  /**
   * Writes the spec's uniform (its own buffer) and returns the dispatch. Throws ShapeError / LimitError.
   * @example θ (b0) into every task's θ' (b1):
   *   kernel.bind({ b0: theta, b1: adapted, b2: dummyBuffer(device) }, { tasks: T, length: V, lo: 0, hi: V, a: 1, b: 0,
   *     x: { buf: 0, off: 0, taskStride: 0 }, out: { buf: 1, off: 0, taskStride: V } }, 'copy-theta').encode(pass);
   */
  bind(buffers: VectorBuffers, spec: VectorSpec, label: string): BoundDispatch {
    checkVectorSpec(spec);
    const first = spec.zeroOutside ? 0 : spec.lo;
    const end = spec.zeroOutside ? spec.length : spec.hi;
    const blocks = Math.ceil((end - first) / WG);
    const grid = foldGrid(this.device, blocks * spec.tasks, `VectorKernel.${label}`, this.options);
    const y = spec.b !== 0 && spec.y ? spec.y : UNUSED;
    const z = spec.b !== 0 && spec.z ? spec.z : null;
    const uniform = writeUniform(this.device, `VectorKernel.${label}.uniform`, SHADERS.mlpVector, 'vp', {
      tasks: spec.tasks, first, end, lo: spec.lo, hi: spec.hi, blocks, gridX: grid.x, gridY: grid.y,
      a: spec.a, b: spec.b, x: spec.x, y: y, dst: spec.out, z: z ?? UNUSED,
    });
    const group = bindGroup(this.device, `VectorKernel.${label}.group`, this.layout, [uniform, buffers.b0, buffers.b1, buffers.b2]);
    return gridDispatch(this.pipeline(spec.a !== 0 ? spec.x.buf : null, y.buf, spec.out.buf, spec.b !== 0, z ? z.buf : null), group, grid);
  }
}
