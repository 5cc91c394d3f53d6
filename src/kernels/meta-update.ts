// Host side of shaders/meta-update.wgsl (CPU twin: src/cpu/meta-update.ts): the weighted reduction of
// per-task meta-gradients over blocks of tasks, then the outer SGD/Adam update per parameter.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, createUniform, type BoundDispatch } from '../gpu/resources.js';
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
  /** Records count_step (Adam only), partial_sums and update. */
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

  bind(b: MetaUpdateBuffers, p: UpdateParams, label: string): BoundMetaUpdate {
    const uniform = createUniform(this.device, `MetaUpdateKernel.${label}`, 32);
    const words = new ArrayBuffer(32);
    const blocks = Math.ceil(p.tasks / TASK_BLOCK);
    new Uint32Array(words, 0, 4).set([p.tasks, p.dim, p.rule, blocks]);
    new Float32Array(words, 16, 4).set([p.outerLr, p.beta1, p.beta2, p.epsilon]);
    this.device.queue.writeBuffer(uniform, 0, words);
    const group = bindGroup(this.device, `MetaUpdateKernel.${label}`, this.layout,
      [uniform, b.metaGrad, b.taskWeight, b.theta, b.optState, b.meanGrad, b.partial]);
    const groups = Math.ceil(p.dim / WG_UPDATE);
    const partial: BoundDispatch = boundDispatch(this.partialSums, group, groups, blocks);
    const update: BoundDispatch = boundDispatch(this.update, group, groups);
    const count: BoundDispatch | null = p.rule === 1 ? boundDispatch(this.countStep, group, 1) : null;
    return {
      encode(pass) {
        count?.encode(pass);
        partial.encode(pass);
        update.encode(pass);
      },
    };
  }
}
