// Host side of shaders/conv2d.wgsl (CPU twin: src/cpu/net/conv2d.ts, the float64 oracle): conv2d batched
// over tasks with per-task weights — forward, input gradient (transposed convolution) and weight
// gradient — each one dispatch for the whole batch, recorded by the caller into its compute pass.
// Activations live in one tape buffer, each array at an offset with a per-task stride (a task's rows
// contiguous inside it: row r at off + t·taskStride + r·features), as the MLP kernels lay theirs out;
// parameters at pOff + t·paramStride (paramStride 0: one shared θ), the layer's own floats at
// layer.offset as in src/models/layers.ts; a weight gradient at gradOff + t·gradStride + layer.offset.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import type { LayerLayout } from '../models/layers.js';
import { dummyBuffer, foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { SHADERS } from './shader-source.js';

export interface ConvShape {
  tasks: number;
  rows: number;
  layer: LayerLayout;
}

/** An array of the tape: task t's rows from off + t·taskStride. */
export interface TapeArray { off: number; taskStride: number }

export interface ConvOptions {
  /** Floats between tasks' parameter vectors (0: every task reads the same θ). */
  paramStride: number;
  /** First float of task 0's parameter vector (default 0). */
  paramOff?: number;
  /** Add to the output instead of overwriting it (the R-operator's sums). Default false. */
  accumulate?: boolean;
  /** Forward: add the bias; weight grad: write the bias gradient too. Default true. */
  bias?: boolean;
  /** Multiplies what is written or added (default 1). */
  scale?: number;
}

const KINDS = ['uniform', 'rw', 'read', 'rw'] as const;
const WG = 64;
const ENTRIES = { forward: 'conv_forward', inputGrad: 'conv_input_grad', weightGrad: 'conv_weight_grad' } as const;

export class Conv2dKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipelines: Record<keyof typeof ENTRIES, GPUComputePipeline>;

  constructor(private readonly device: GPUDevice, private readonly options: Pick<MlpKernelOptions, 'maxWorkgroupsPerDimension'> = {}) {
    this.layout = bindGroupLayout(device, 'Conv2dKernel.layout', [...KINDS]);
    const make = (entry: string) => computePipeline(device, 'conv2d.wgsl', SHADERS.conv2d, entry, this.layout, { WG });
    this.pipelines = { forward: make(ENTRIES.forward), inputGrad: make(ENTRIES.inputGrad), weightGrad: make(ENTRIES.weightGrad) };
  }

  /** y (rows × out features per task, in the tape) = conv(x; W) (+ b). */
  forward(buffers: { tape: GPUBuffer; params: GPUBuffer }, shape: ConvShape, o: ConvOptions & { x: TapeArray; y: TapeArray }, label: string): BoundDispatch {
    const { output } = shape.layer;
    const total = shape.tasks * shape.rows * output.h * output.w * output.c;
    return this.bind('forward', [buffers.tape, buffers.params, dummyBuffer(this.device, 0)], shape, o, o.x, o.y, total, 0, 0, label);
  }

  /** dx = the transposed convolution of dy with W (both in the tape). */
  inputGrad(buffers: { tape: GPUBuffer; params: GPUBuffer }, shape: ConvShape, o: ConvOptions & { dy: TapeArray; dx: TapeArray }, label: string): BoundDispatch {
    const { input } = shape.layer;
    const total = shape.tasks * shape.rows * input.h * input.w * input.c;
    return this.bind('inputGrad', [buffers.tape, buffers.params, dummyBuffer(this.device, 0)], shape, o, o.dx, o.dy, total, 0, 0, label);
  }

  /** grad[gradOff + t·gradStride + layer.offset …] (+)= ∂/∂(W, b) of ⟨dy, conv(x; W) + b⟩ over task t's rows. */
  weightGrad(buffers: { tape: GPUBuffer; grad: GPUBuffer }, shape: ConvShape, o: Omit<ConvOptions, 'paramStride' | 'paramOff'> & { x: TapeArray; dy: TapeArray; gradStride: number; gradOff?: number }, label: string): BoundDispatch {
    const total = shape.tasks * shape.layer.count;
    return this.bind('weightGrad', [buffers.tape, dummyBuffer(this.device, 0), buffers.grad], shape, { ...o, paramStride: 0 }, o.x, o.dy, total, o.gradStride, (o.gradOff ?? 0) + shape.layer.offset, label);
  }

  private bind(which: keyof typeof ENTRIES, buffers: GPUBuffer[], shape: ConvShape, o: ConvOptions, inSide: TapeArray, outSide: TapeArray, total: number, gradStride: number, gOff: number, label: string): BoundDispatch {
    const { layer } = shape;
    if (layer.spec.kind !== 'conv2d') throw new Error(`Conv2dKernel.${label}: layer is ${layer.spec.kind}, not conv2d`);
    const grid = foldGrid(this.device, Math.ceil(total / WG), `Conv2dKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `Conv2dKernel.${label}.uniform`, SHADERS.conv2d, 'cp', {
      tasks: shape.tasks, rows: shape.rows,
      inH: layer.input.h, inW: layer.input.w, inC: layer.input.c,
      outH: layer.output.h, outW: layer.output.w, outC: layer.output.c,
      size: layer.spec.size, stride: layer.spec.stride, padding: layer.spec.padding,
      paramStride: o.paramStride, pOff: o.paramOff ?? 0, wOff: layer.offset, bOff: layer.offset + layer.weights,
      inOff: inSide.off, inTaskStride: inSide.taskStride, outOff: outSide.off, outTaskStride: outSide.taskStride, gradStride, gOff,
      accumulate: o.accumulate ? 1 : 0, bias: o.bias === false ? 0 : 1, scale: o.scale ?? 1, total, gridX: grid.x, gridY: grid.y,
    });
    const group = bindGroup(this.device, `Conv2dKernel.${label}.group`, this.layout, [uniform, ...buffers]);
    return gridDispatch(this.pipelines[which], group, grid);
  }
}
