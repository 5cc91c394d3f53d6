// Host side of shaders/logistic.wgsl (CPU twin: src/cpu/logistic.ts). Records batched forward+gradient
// and Hessian-vector products into a caller's compute pass; never submits.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, createUniform, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import type { LogisticShape } from '../cpu/logistic.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from './shader-source.js';
import { quads } from './layout.js';

export interface LogisticBuffers {
  x: GPUBuffer;       // T×K×paddedDim (layout.ts)
  y: GPUBuffer;       // T×K
  params: GPUBuffer;  // paddedDim or T×paddedDim
  vec: GPUBuffer;     // T×paddedDim (hvp only; any buffer for forwardGrad)
  out: GPUBuffer;     // T×paddedDim
  stats: GPUBuffer;   // T×2
}

const KINDS = ['uniform', 'read', 'read', 'rw', 'rw', 'rw', 'rw'] as const;

export class LogisticKernels {
  private readonly layout: GPUBindGroupLayout;
  constructor(private readonly device: GPUDevice, private readonly workgroup = DEFAULT_TASK_WORKGROUP) {
    this.layout = bindGroupLayout(device, 'LogisticKernels.layout', [...KINDS]);
  }

  /** Binds buffers and sizes once; the returned dispatches can be recorded any number of times.
   * Offsets (floats, multiples of 4 for rows and parameters) locate task 0 inside x, y and params;
   * taskBase (chunked batches) shifts the task index of params, vec, out and stats. */
  bind(b: LogisticBuffers, shape: LogisticShape, offsets: { x: number; y: number; params: number; taskBase?: number } = { x: 0, y: 0, params: 0 }): { forwardGrad: BoundDispatch; hvp: BoundDispatch; uniform: GPUBuffer } {
    const grid = taskGrid(shape.tasks, this.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = createUniform(this.device, 'LogisticKernels.shape', 48);
    this.device.queue.writeBuffer(uniform, 0, new Uint32Array([
      shape.tasks, shape.rows, quads(shape.dim), shape.paramStride === 0 ? 0 : quads(shape.dim), grid.x,
      offsets.x / 4, offsets.y, offsets.params / 4, offsets.taskBase ?? 0, 0, 0, 0,
    ]));
    const group = bindGroup(this.device, 'LogisticKernels.group', this.layout, [uniform, b.x, b.y, b.params, b.vec, b.out, b.stats]);
    const pipeline = (entry: string) =>
      computePipeline(this.device, 'logistic.wgsl', SHADERS.logistic, entry, this.layout, { WG: this.workgroup });
    return {
      forwardGrad: boundDispatch(pipeline('forward_grad'), group, grid.x, grid.y),
      hvp: boundDispatch(pipeline('hvp'), group, grid.x, grid.y),
      uniform,
    };
  }
}
