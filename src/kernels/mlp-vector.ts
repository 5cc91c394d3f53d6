// Host side of shaders/mlp-vector.wgsl (CPU twin: vectorOp in src/cpu/mlp-kernels.ts): out = a·X + b·Y
// over a per-task index range, one invocation per element.
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

  /** The pipeline for one placement of the operands (at most 3·3·3·2 variants, built on first use). */
  private pipeline(x: number, y: number, out: number, useY: boolean): GPUComputePipeline {
    return computePipeline(this.device, 'mlp-vector.wgsl', SHADERS.mlpVector, 'vector_op', this.layout,
      { WG, X_BUF: x, Y_BUF: y, OUT_BUF: out, USE_Y: Number(useY) });
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
    const uniform = writeUniform(this.device, `VectorKernel.${label}.uniform`, SHADERS.mlpVector, 'vp', {
      tasks: spec.tasks, first, end, lo: spec.lo, hi: spec.hi, blocks, gridX: grid.x, gridY: grid.y,
      a: spec.a, b: spec.b, x: spec.x, y: y, dst: spec.out,
    });
    const group = bindGroup(this.device, `VectorKernel.${label}.group`, this.layout, [uniform, buffers.b0, buffers.b1, buffers.b2]);
    return gridDispatch(this.pipeline(spec.x.buf, y.buf, spec.out.buf, spec.b !== 0), group, grid);
  }
}
