// Host side of shaders/pool.wgsl (CPU twin: src/cpu/net/pool.ts): 2 × 2 max-pooling (forward with its
// argmax, the gather of R(x) through it, the scatter of δ or R(δ)) and global mean-pooling (forward and
// its spread), each one dispatch over every image (row) of every task of the batch.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import type { LayerLayout } from '../models/layers.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { SHADERS } from './shader-source.js';

const KINDS = ['uniform', 'read', 'rw', 'rw'] as const;
const WG = 64;
const ENTRIES = ['max_forward', 'max_gather', 'max_scatter', 'mean_forward', 'mean_spread'] as const;
export type PoolPass = (typeof ENTRIES)[number];

/** src: what the pass reads (x, R(x), δ or R(δ) of the output); arg: max-pool's argmax (u32, one per
 * output value; any buffer for mean-pool); dst: what it writes. */
export interface PoolBuffers { src: GPUBuffer; arg: GPUBuffer; dst: GPUBuffer }

export class PoolKernel {
  private readonly layout: GPUBindGroupLayout;
  constructor(private readonly device: GPUDevice, private readonly options: Pick<MlpKernelOptions, 'maxWorkgroupsPerDimension'> = {}) {
    this.layout = bindGroupLayout(device, 'PoolKernel.layout', [...KINDS]);
  }

  /** `images`: tasks × rows. The scatters and mean_spread write the layer's input size, the rest its output. */
  bind(pass: PoolPass, buffers: PoolBuffers, layer: LayerLayout, images: number, label: string, accumulate = false): BoundDispatch {
    const kind = layer.spec.kind;
    if ((pass.startsWith('max') && kind !== 'maxpool') || (pass.startsWith('mean') && kind !== 'meanpool')) {
      throw new Error(`PoolKernel.${label}: pass ${pass} does not belong to a ${kind} layer`);
    }
    const { input, output } = layer;
    const toInput = pass === 'max_scatter' || pass === 'mean_spread';
    const total = images * (toInput ? input.h * input.w * input.c : output.h * output.w * output.c);
    const grid = foldGrid(this.device, Math.ceil(total / WG), `PoolKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `PoolKernel.${label}.uniform`, SHADERS.pool, 'pp', {
      images, inH: input.h, inW: input.w, channels: input.c, outH: output.h, outW: output.w,
      accumulate: accumulate ? 1 : 0, total, gridX: grid.x, gridY: grid.y,
    });
    const group = bindGroup(this.device, `PoolKernel.${label}.group`, this.layout, [uniform, buffers.src, buffers.arg, buffers.dst]);
    return gridDispatch(computePipeline(this.device, 'pool.wgsl', SHADERS.pool, pass, this.layout, { WG }), group, grid);
  }
}
