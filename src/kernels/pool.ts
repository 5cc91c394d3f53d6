// Host side of shaders/pool.wgsl (CPU twins: src/cpu/net/pool.ts, relu.ts): 2 × 2 max-pooling (forward
// with its argmax, the gather of R(x) through it, the scatter of δ or R(δ)), global mean-pooling (forward
// and its spread) and ReLU's mask, each one dispatch over every image (row) of every task of the batch.
// Activations live in one tape buffer, each array at an offset with a per-task stride (TapeArray, as the
// conv kernel's); max-pool's argmax in a u32 buffer laid out like its output.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import type { LayerLayout } from '../models/layers.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import type { TapeArray } from './conv2d.js';
import { SHADERS } from './shader-source.js';

const KINDS = ['uniform', 'rw', 'rw'] as const;
const WG = 64;
const ENTRIES = ['max_forward', 'max_gather', 'max_scatter', 'mean_forward', 'mean_spread'] as const;
export type PoolPass = (typeof ENTRIES)[number];

/** Where a pooling pass reads and writes: `input` the layer's input side (x, R(x), δ or R(δ) of x),
 * `output` its output side, `arg` max-pool's choices (in the arg buffer; unused by mean-pool). Forward
 * and gather read input and write output; scatter and spread read output and write input. */
export interface PoolArrays { input: TapeArray; output: TapeArray; arg: TapeArray }

export class PoolKernel {
  private readonly layout: GPUBindGroupLayout;
  constructor(private readonly device: GPUDevice, private readonly options: Pick<MlpKernelOptions, 'maxWorkgroupsPerDimension'> = {}) {
    this.layout = bindGroupLayout(device, 'PoolKernel.layout', [...KINDS]);
  }

  bind(pass: PoolPass, buffers: { tape: GPUBuffer; arg: GPUBuffer }, layer: LayerLayout, shape: { tasks: number; rows: number }, at: PoolArrays, label: string, accumulate = false): BoundDispatch {
    const kind = layer.spec.kind;
    if ((pass.startsWith('max') && kind !== 'maxpool') || (pass.startsWith('mean') && kind !== 'meanpool')) {
      throw new Error(`PoolKernel.${label}: pass ${pass} does not belong to a ${kind} layer`);
    }
    const { input, output } = layer;
    const toInput = pass === 'max_scatter' || pass === 'mean_spread';
    const total = shape.tasks * shape.rows * (toInput ? input.h * input.w * input.c : output.h * output.w * output.c);
    return this.record(pass, buffers, shape, { inH: input.h, inW: input.w, channels: input.c, outH: output.h, outW: output.w }, at, total, accumulate, label);
  }

  /** out = src ⊙ [gate > 0] over `features` floats per row (ReLU: forward with src = gate = x; R(y), δ
   * and R(δ) through x's mask). In place is fine (out = src or out = gate). */
  mask(buffers: { tape: GPUBuffer; arg: GPUBuffer }, shape: { tasks: number; rows: number; features: number }, at: { src: TapeArray; gate: TapeArray; out: TapeArray }, label: string, accumulate = false): BoundDispatch {
    return this.record('relu_mask', buffers, shape, { inH: 1, inW: 1, channels: shape.features, outH: 1, outW: 1 },
      { input: at.out, output: at.src, arg: at.gate }, shape.tasks * shape.rows * shape.features, accumulate, label);
  }

  /**
   * CAML's context channels of a layer list's input (image h × w with `channels` = data + context channels):
   * 'join' writes out = [data | φ] per position from rows (h·w·data floats per row; zero with srcZero)
   * and φ; 'sum' writes out[c] = Σ over rows and positions of src's context channel c; 'split' writes
   * out = the data channels of src (rows of h·w·data floats).
   */
  context(pass: 'join' | 'sum' | 'split', buffers: { tape: GPUBuffer; arg: GPUBuffer }, shape: { tasks: number; rows: number }, image: { h: number; w: number; channels: number; data: number },
    at: { out: TapeArray; src: TapeArray; phi?: TapeArray }, label: string, o: { srcZero?: boolean; accumulate?: boolean } = {}): BoundDispatch {
    const positions = image.h * image.w;
    const total = pass === 'join' ? shape.tasks * shape.rows * positions * image.channels
      : pass === 'sum' ? shape.tasks * (image.channels - image.data) : shape.tasks * shape.rows * positions * image.data;
    return this.record(`context_${pass}`, buffers, shape, { inH: image.h, inW: image.w, channels: image.channels, outH: 1, outW: 1 },
      { input: at.out, output: at.src, arg: at.phi ?? { off: 0, taskStride: 0 } }, total, !!o.accumulate, label, { split: image.data, srcZero: o.srcZero ? 1 : 0 });
  }

  private record(entry: string, buffers: { tape: GPUBuffer; arg: GPUBuffer }, shape: { tasks: number; rows: number }, dims: { inH: number; inW: number; channels: number; outH: number; outW: number },
    at: PoolArrays, total: number, accumulate: boolean, label: string, context = { split: 0, srcZero: 0 }): BoundDispatch {
    const grid = foldGrid(this.device, Math.ceil(total / WG), `PoolKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `PoolKernel.${label}.uniform`, SHADERS.pool, 'pp', {
      tasks: shape.tasks, rows: shape.rows, ...dims,
      inOff: at.input.off, inTaskStride: at.input.taskStride, outOff: at.output.off, outTaskStride: at.output.taskStride,
      argOff: at.arg.off, argTaskStride: at.arg.taskStride, ...context,
      accumulate: accumulate ? 1 : 0, total, gridX: grid.x, gridY: grid.y,
    });
    const group = bindGroup(this.device, `PoolKernel.${label}.group`, this.layout, [uniform, buffers.tape, buffers.arg]);
    return gridDispatch(computePipeline(this.device, 'pool.wgsl', SHADERS.pool, entry, this.layout, { WG }), group, grid);
  }
}
