// Host side of shaders/ga-weights.wgsl (CPU twin: src/cpu/ga-weights.ts): gradient-agreement task
// weights written straight into the meta-update's taskWeight buffer, with no readback.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, paramGrid, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import { SHADERS } from './shader-source.js';
import { TASK_BLOCK } from './meta-update.js';

export interface GaBuffers {
  theta: GPUBuffer;       // paddedDim
  adapted: GPUBuffer;     // T×paddedDim (set 0)
  updateSum: GPUBuffer;   // paddedDim
  agree: GPUBuffer;       // 2T
  taskWeight: GPUBuffer;  // T (or more: only the first T are written)
  partial: GPUBuffer;     // ⌈T / TASK_BLOCK⌉ × paddedDim (meta-update.ts partialFloats)
}

const WG_GA = 64;

export class GaWeightsKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipelines: Record<'partial_updates' | 'sum_updates' | 'agreement' | 'normalize', GPUComputePipeline>;
  constructor(private readonly device: GPUDevice) {
    this.layout = bindGroupLayout(device, 'GaWeightsKernel.layout', ['uniform', 'read', 'read', 'rw', 'rw', 'rw', 'rw']);
    const make = (entry: string) => computePipeline(device, 'ga-weights.wgsl', SHADERS.gaWeights, entry, this.layout, { WG_GA, TASK_BLOCK });
    this.pipelines = { partial_updates: make('partial_updates'), sum_updates: make('sum_updates'), agreement: make('agreement'), normalize: make('normalize') };
  }

  /** paddedDim: parameter-vector length in floats (a multiple of 4). */
  bind(b: GaBuffers, tasks: number, paddedDim: number, normalization: 'paper' | 'notebook'): BoundDispatch {
    const grid = taskGrid(tasks, this.device.limits.maxComputeWorkgroupsPerDimension);
    const blocks = Math.ceil(tasks / TASK_BLOCK);
    const features = paramGrid(Math.ceil(paddedDim / WG_GA), this.device.limits.maxComputeWorkgroupsPerDimension, `${paddedDim} parameters`);
    const uniform = writeUniform(this.device, 'GaWeightsKernel.params', SHADERS.gaWeights, 'gp', {
      tasks, dim: paddedDim, notebook: normalization === 'notebook' ? 1 : 0, groupsPerRow: grid.x, blocks, featureGroupsX: features.x,
    });
    const group = bindGroup(this.device, 'GaWeightsKernel.group', this.layout, [uniform, b.theta, b.adapted, b.updateSum, b.agree, b.taskWeight, b.partial]);
    const steps = [
      boundDispatch(this.pipelines.partial_updates, group, features.x, features.y, blocks),
      boundDispatch(this.pipelines.sum_updates, group, features.x, features.y),
      boundDispatch(this.pipelines.agreement, group, grid.x, grid.y),
      boundDispatch(this.pipelines.normalize, group, 1),
    ];
    return { encode: (pass) => steps.forEach((s) => s.encode(pass)) };
  }
}
