// Host side of shaders/join-rows.wgsl (CPU twin: src/cpu/join-rows.ts): writes, from a data buffer of
// layout dataLayout(T, Ks, Kq, D), a `joint` buffer of layout dataLayout(T, Ks+Kq, Kq, D) whose support
// side is each task's support rows followed by its query rows (Reptile's inner loop trains on both).
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import type { JoinShape } from '../cpu/join-rows.js';
import { dataLayout, quads } from './layout.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { SHADERS } from './shader-source.js';

export interface JoinRowsBuffers {
  data: GPUBuffer;   // dataLayout(T, Ks, Kq, D), read
  joint: GPUBuffer;  // dataLayout(T, Ks+Kq, Kq, D) floats at least, written (a different buffer)
}

const KINDS = ['uniform', 'read', 'rw'] as const;
const WG = 256;

export class JoinRowsKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  /** options.maxWorkgroupsPerDimension folds the grid as if the device allowed fewer (tests of the fold). */
  constructor(private readonly device: GPUDevice, private readonly options: Pick<MlpKernelOptions, 'maxWorkgroupsPerDimension'> = {}) {
    this.layout = bindGroupLayout(device, 'JoinRowsKernel.layout', [...KINDS]);
    this.pipeline = computePipeline(device, 'join-rows.wgsl', SHADERS.joinRows, 'join_rows', this.layout, { WG });
  }

  /** One dispatch (its own uniform) for this shape; one invocation per vec4 word of `joint`. */
  bind(buffers: JoinRowsBuffers, shape: JoinShape, label: string): BoundDispatch {
    const { tasks: T, supportRows: Ks, queryRows: Kq, dim: D } = shape;
    const input = dataLayout(T, Ks, Kq, D);
    const output = dataLayout(T, Ks + Kq, Kq, D);
    const words = output.total / 4;
    const grid = foldGrid(this.device, Math.ceil(words / WG), `JoinRowsKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `JoinRowsKernel.${label}.uniform`, SHADERS.joinRows, 'jp', {
      tasks: T, supportRows: Ks, queryRows: Kq, dim4: quads(D),
      supportXIn: input.supportX / 4, supportYIn: input.supportY, queryXIn: input.queryX / 4, queryYIn: input.queryY,
      supportYOut: output.supportY / 4, queryXOut: output.queryX / 4, totalOut: words, gridX: grid.x, gridY: grid.y,
    });
    const group = bindGroup(this.device, `JoinRowsKernel.${label}.group`, this.layout, [uniform, buffers.data, buffers.joint]);
    return gridDispatch(this.pipeline, group, grid);
  }
}
