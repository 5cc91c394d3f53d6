// Host side of shaders/mlp-softmax.wgsl (CPU twin: softmaxXent in src/cpu/mlp-kernels.ts): the softmax
// head's loss, gradient and R-operator over every task's rows, one workgroup per task.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { checkSoftmaxSpec, type SoftmaxSpec } from '../cpu/mlp-kernels.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { writeUniform } from '../gpu/uniforms.js';
import { SHADERS } from './shader-source.js';

export { dummyBuffer } from './mlp-common.js';
export type { SoftmaxArrays, SoftmaxSpec } from '../cpu/mlp-kernels.js';

/** Bindings 1–3. `stats` is only written in mode 'loss' with wantStats (else pass dummyBuffer(device)). */
export interface SoftmaxBuffers { data: GPUBuffer; tape: GPUBuffer; stats: GPUBuffer }

const KINDS = ['uniform', 'read', 'rw', 'rw'] as const;
/** Invocations per task: one per row, and rows are 5…25 in the common case. */
const WG = 32;

export class SoftmaxKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, private readonly options: MlpKernelOptions = {}) {
    this.layout = bindGroupLayout(device, 'SoftmaxKernel.layout', [...KINDS]);
    this.pipeline = computePipeline(device, 'mlp-softmax.wgsl', SHADERS.mlpSoftmax, 'softmax_xent', this.layout, { WG });
  }

  /**
   * Writes the spec's uniform (its own buffer) and returns the dispatch. Labels must be valid class
   * indices (checked on the host before upload). Throws ShapeError / LimitError.
   * @example new SoftmaxKernel(device).bind({ data, tape, stats }, { tasks, rows, classes: 5, mode: 'loss', yOff,
   *   zOff, pOff, dOff, rzOff: 0, tapeTaskStride, scale: 1 / rows, wantStats: true, statsOff: 0 }, 'query.loss').encode(pass);
   */
  bind(buffers: SoftmaxBuffers, spec: SoftmaxSpec, label: string): BoundDispatch {
    checkSoftmaxSpec(spec);
    const grid = foldGrid(this.device, spec.rows > 0 || spec.wantStats ? spec.tasks : 0, `SoftmaxKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `SoftmaxKernel.${label}.uniform`, SHADERS.mlpSoftmax, 'sp', {
      tasks: spec.tasks, rows: spec.rows, classes: spec.classes, mode: ['loss', 'r', 'mse', 'mse-r'].indexOf(spec.mode),
      yOff: spec.yOff, zOff: spec.zOff, pOff: spec.pOff, dOff: spec.dOff, rzOff: spec.rzOff, tapeTaskStride: spec.tapeTaskStride,
      wantStats: spec.wantStats ? 1 : 0, statsOff: spec.statsOff, gridX: grid.x, gridY: grid.y, scale: spec.scale,
    });
    const group = bindGroup(this.device, `SoftmaxKernel.${label}.group`, this.layout, [uniform, buffers.data, buffers.tape, buffers.stats]);
    return gridDispatch(this.pipeline, group, grid);
  }
}
