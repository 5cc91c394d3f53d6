// Host side of shaders/logistic.wgsl (CPU twin: src/cpu/logistic.ts). Records batched forward+gradient
// into a caller's compute pass (the engines score attacked queries with it); never submits.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import type { LogisticShape } from '../cpu/logistic.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from './shader-source.js';
import { quads } from './layout.js';

export interface LogisticBuffers {
  x: GPUBuffer;       // T×K×paddedDim (layout.ts)
  y: GPUBuffer;       // T×K
  params: GPUBuffer;  // paddedDim or T×paddedDim
  out: GPUBuffer;     // T×paddedDim
  stats: GPUBuffer;   // T×2
}

/** Where task 0 lives, in floats (multiples of 4 for rows and parameters); taskBase (chunked batches)
 * shifts the task index of params, out and stats. */
export interface LogisticOffsets { x: number; y: number; params: number; taskBase?: number }

export const LOGISTIC_KINDS = ['uniform', 'read', 'read', 'rw', 'rw', 'rw'] as const;

/** The fields of the `shape` uniform of logistic.wgsl. */
export function logisticShapeFields(shape: LogisticShape, offsets: LogisticOffsets, groupsPerRow: number) {
  return {
    tasks: shape.tasks, rows: shape.rows, dim4: quads(shape.dim), paramStride: shape.paramStride === 0 ? 0 : quads(shape.dim), groupsPerRow,
    xOff: offsets.x / 4, yOff: offsets.y, paramOff: offsets.params / 4, taskBase: offsets.taskBase ?? 0,
  };
}

export class LogisticKernels {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, workgroup = DEFAULT_TASK_WORKGROUP) {
    this.layout = bindGroupLayout(device, 'LogisticKernels.layout', [...LOGISTIC_KINDS]);
    this.pipeline = computePipeline(device, 'logistic.wgsl', SHADERS.logistic, 'forward_grad', this.layout, { WG: workgroup });
  }

  /** Binds buffers and sizes once; the returned dispatch can be recorded any number of times. */
  bind(b: LogisticBuffers, shape: LogisticShape, offsets: LogisticOffsets = { x: 0, y: 0, params: 0 }): { forwardGrad: BoundDispatch } {
    const grid = taskGrid(shape.tasks, this.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = writeUniform(this.device, 'LogisticKernels.shape', SHADERS.logistic, 'shape', logisticShapeFields(shape, offsets, grid.x));
    const group = bindGroup(this.device, 'LogisticKernels.group', this.layout, [uniform, b.x, b.y, b.params, b.out, b.stats]);
    return { forwardGrad: boundDispatch(this.pipeline, group, grid.x, grid.y) };
  }
}
