// Host side of shaders/norm-clip-entry.wgsl (CPU twin: src/cpu/norm-clip.ts): the L2-ball projection
// of AMP as a standalone dispatch. Training calls the same WGSL function inside maml-task.wgsl.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, createUniform, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from './shader-source.js';
import { quads } from './layout.js';

export class NormClipKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, workgroup = DEFAULT_TASK_WORKGROUP) {
    this.layout = bindGroupLayout(device, 'NormClipKernel.layout', ['uniform', 'rw', 'rw']);
    this.pipeline = computePipeline(device, 'norm-clip.wgsl', SHADERS.normClip, 'clip_to_ball', this.layout, { WG: workgroup });
  }

  /** points, centres: M×paddedDim. */
  bind(points: GPUBuffer, centres: GPUBuffer, models: number, dim: number, radius: number): BoundDispatch {
    const grid = taskGrid(models, this.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = createUniform(this.device, 'NormClipKernel.params', 32);
    const words = new ArrayBuffer(32);
    new Uint32Array(words, 0, 3).set([models, quads(dim), grid.x]);
    new Float32Array(words, 16, 1)[0] = radius;
    this.device.queue.writeBuffer(uniform, 0, words);
    return boundDispatch(this.pipeline, bindGroup(this.device, 'NormClipKernel.group', this.layout, [uniform, points, centres]), grid.x, grid.y);
  }
}
