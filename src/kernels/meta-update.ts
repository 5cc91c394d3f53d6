// Host side of shaders/meta-update.wgsl (CPU twin: src/cpu/meta-update.ts): the weighted reduction of
// per-task meta-gradients and the outer SGD/Adam update, one invocation per parameter.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, createUniform, type BoundDispatch } from '../gpu/resources.js';
import type { UpdateParams } from '../cpu/meta-update.js';
import { SHADERS } from './shader-source.js';

export interface MetaUpdateBuffers {
  metaGrad: GPUBuffer;    // T×D
  taskWeight: GPUBuffer;  // T
  theta: GPUBuffer;       // D
  optState: GPUBuffer;    // 2D + 1
  meanGrad: GPUBuffer;    // D
}

const KINDS = ['uniform', 'read', 'read', 'rw', 'rw', 'rw'] as const;
const WG_UPDATE = 64;

export interface BoundMetaUpdate {
  /** Records count_step (Adam only) and update. */
  encode(pass: GPUComputePassEncoder): void;
}

export class MetaUpdateKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly update: GPUComputePipeline;
  private readonly countStep: GPUComputePipeline;
  constructor(private readonly device: GPUDevice) {
    this.layout = bindGroupLayout(device, 'MetaUpdateKernel.layout', [...KINDS]);
    this.update = computePipeline(device, 'meta-update.wgsl', SHADERS.metaUpdate, 'update', this.layout, { WG_UPDATE });
    this.countStep = computePipeline(device, 'meta-update.wgsl', SHADERS.metaUpdate, 'count_step', this.layout, { WG_UPDATE });
  }

  bind(b: MetaUpdateBuffers, p: UpdateParams, label: string): BoundMetaUpdate {
    const uniform = createUniform(this.device, `MetaUpdateKernel.${label}`, 32);
    const words = new ArrayBuffer(32);
    new Uint32Array(words, 0, 4).set([p.tasks, p.dim, p.rule, 0]);
    new Float32Array(words, 16, 4).set([p.outerLr, p.beta1, p.beta2, p.epsilon]);
    this.device.queue.writeBuffer(uniform, 0, words);
    const group = bindGroup(this.device, `MetaUpdateKernel.${label}`, this.layout,
      [uniform, b.metaGrad, b.taskWeight, b.theta, b.optState, b.meanGrad]);
    const update: BoundDispatch = boundDispatch(this.update, group, Math.ceil(p.dim / WG_UPDATE));
    const count: BoundDispatch | null = p.rule === 1 ? boundDispatch(this.countStep, group, 1) : null;
    return {
      encode(pass) {
        count?.encode(pass);
        update.encode(pass);
      },
    };
  }
}
