// Host side of shaders/proto.wgsl (CPU twin: protoEpisode in src/cpu/proto.ts): the prototypical loss of
// each task's episode, its δ and its statistics, one workgroup per task; NetPass records it as the loss
// of a protonet's body.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { checkProtoSpec, type ProtoSpec } from '../cpu/proto.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { writeUniform } from '../gpu/uniforms.js';
import { SHADERS } from './shader-source.js';

export type { ProtoSpec } from '../cpu/proto.js';

/** Bindings 1–3: the labels, the tape (z, δ, scratch), the statistics (dummyBuffer when not wanted). */
export interface ProtoBuffers { data: GPUBuffer; tape: GPUBuffer; stats: GPUBuffer }

const KINDS = ['uniform', 'read', 'rw', 'rw'] as const;
const WG = 64;

export class ProtoKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, private readonly options: MlpKernelOptions = {}) {
    this.layout = bindGroupLayout(device, 'ProtoKernel.layout', [...KINDS]);
    this.pipeline = computePipeline(device, 'proto.wgsl', SHADERS.proto, 'proto_loss', this.layout, { WG });
  }

  /** Labels must be class indices < classes, each query's class with a support row (checked on the host). */
  bind(buffers: ProtoBuffers, spec: ProtoSpec, label: string): BoundDispatch {
    checkProtoSpec(spec);
    const grid = foldGrid(this.device, spec.tasks, `ProtoKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `ProtoKernel.${label}.uniform`, SHADERS.proto, 'pp', {
      tasks: spec.tasks, rows: spec.rows, support: spec.support, features: spec.features, classes: spec.classes,
      yOff: spec.yOff, zOff: spec.zOff, dOff: spec.dOff, scratchOff: spec.scratchOff, tapeTaskStride: spec.tapeTaskStride,
      wantStats: spec.wantStats ? 1 : 0, statsOff: spec.statsOff, gridX: grid.x, gridY: grid.y, scale: spec.scale,
    });
    const group = bindGroup(this.device, `ProtoKernel.${label}.group`, this.layout, [uniform, buffers.data, buffers.tape, buffers.stats]);
    return gridDispatch(this.pipeline, group, grid);
  }
}
