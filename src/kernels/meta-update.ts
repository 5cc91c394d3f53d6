// Host side of shaders/meta-update.wgsl (CPU twin: src/cpu/meta-update.ts): the weighted reduction of
// per-task meta-gradients over blocks of tasks, then the outer SGD/Adam update per parameter.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, paramGrid, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import type { UpdateParams } from '../cpu/meta-update.js';
import { SHADERS } from './shader-source.js';

export interface MetaUpdateBuffers {
  metaGrad: GPUBuffer;    // T×D
  taskWeight: GPUBuffer;  // T
  theta: GPUBuffer;       // D
  optState: GPUBuffer;    // 2D + 1
  meanGrad: GPUBuffer;    // D
  partial: GPUBuffer;     // ⌈T / TASK_BLOCK⌉ × D (see partialFloats)
}

const KINDS = ['uniform', 'read', 'read', 'rw', 'rw', 'rw', 'rw'] as const;
const WG_UPDATE = 64;
/** Tasks summed by one workgroup of partial_sums. */
export const TASK_BLOCK = 64;
export const partialFloats = (tasks: number, dim: number) => Math.ceil(tasks / TASK_BLOCK) * dim;

export interface BoundMetaUpdate {
  /** Records partial_sums, count_step (Adam only) and update. */
  encode(pass: GPUComputePassEncoder): void;
}

export class MetaUpdateKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly partialSums: GPUComputePipeline;
  private readonly update: GPUComputePipeline;
  private readonly countStep: GPUComputePipeline;
  constructor(private readonly device: GPUDevice) {
    this.layout = bindGroupLayout(device, 'MetaUpdateKernel.layout', [...KINDS]);
    const make = (entry: string) => computePipeline(device, 'meta-update.wgsl', SHADERS.metaUpdate, entry, this.layout, { WG_UPDATE, TASK_BLOCK });
    this.partialSums = make('partial_sums');
    this.update = make('update');
    this.countStep = make('count_step');
  }

  /** The uniform of one dispatch, filled through a view of the WGSL struct (layout written once, in WGSL). */
  private uniform(label: string, fields: Record<string, number>): GPUBuffer {
    return writeUniform(this.device, `MetaUpdateKernel.${label}`, SHADERS.metaUpdate, 'up', fields);
  }

  private grid(dim: number) {
    return paramGrid(Math.ceil(dim / WG_UPDATE), this.device.limits.maxComputeWorkgroupsPerDimension, `${dim} parameters`);
  }

  /** Partial sums of tasks [taskBase, taskBase + tasks) of the weights, whose meta-gradients start at
   * float gradOff of metaGrad, into block rows from blockBase: one dispatch per chunk (and output set)
   * of a batch processed in chunks. */
  bindPartial(b: MetaUpdateBuffers, p: { tasks: number; dim: number; taskBase: number; blockBase: number; gradOff?: number }, label: string): BoundDispatch {
    const grid = this.grid(p.dim);
    const uniform = this.uniform(`${label}.partial@${p.taskBase}`, { tasks: p.tasks, dim: p.dim, taskBase: p.taskBase, blockBase: p.blockBase, groupsX: grid.x, gradOff: p.gradOff ?? 0 });
    const group = bindGroup(this.device, `MetaUpdateKernel.${label}.partial`, this.layout, [uniform, b.metaGrad, b.taskWeight, b.theta, b.optState, b.meanGrad, b.partial]);
    return boundDispatch(this.partialSums, group, grid.x, grid.y, Math.ceil(p.tasks / TASK_BLOCK));
  }

  /** Sums `blocks` block rows and applies the rule (Adam's step count first). */
  bindApply(b: MetaUpdateBuffers, p: UpdateParams, blocks: number, label: string): BoundDispatch {
    const grid = this.grid(p.dim);
    const uniform = this.uniform(`${label}.apply`, {
      tasks: p.tasks, dim: p.dim, rule: p.rule, blocks, outerLr: p.outerLr, beta1: p.beta1, beta2: p.beta2, epsilon: p.epsilon, groupsX: grid.x,
    });
    const group = bindGroup(this.device, `MetaUpdateKernel.${label}.apply`, this.layout, [uniform, b.metaGrad, b.taskWeight, b.theta, b.optState, b.meanGrad, b.partial]);
    const update = boundDispatch(this.update, group, grid.x, grid.y);
    const count = p.rule === 1 ? boundDispatch(this.countStep, group, 1) : null;
    return {
      encode(pass) {
        count?.encode(pass);
        update.encode(pass);
      },
    };
  }

  /** The whole update over one batch whose meta-gradients are all in metaGrad. */
  bind(b: MetaUpdateBuffers, p: UpdateParams, label: string): BoundMetaUpdate {
    const partial = this.bindPartial(b, { tasks: p.tasks, dim: p.dim, taskBase: 0, blockBase: 0 }, label);
    const apply = this.bindApply(b, p, Math.ceil(p.tasks / TASK_BLOCK), label);
    return {
      encode(pass) {
        partial.encode(pass);
        apply.encode(pass);
      },
    };
  }
}
