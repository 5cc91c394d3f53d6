// Host side of shaders/conv2d.wgsl (CPU twin: src/cpu/net/conv2d.ts, the float64 oracle): conv2d batched
// over tasks with per-task weights — forward, input gradient (transposed convolution) and weight
// gradient — each one dispatch for the whole batch, recorded by the caller into its compute pass.
// Buffers: a task's rows are contiguous (task t, row r at (t·rows + r)·features); its parameters at
// t·paramStride in the parameter buffer (paramStride 0: one shared θ), the layer's own floats at
// layer.offset as in src/models/layers.ts.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import type { LayerLayout } from '../models/layers.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { SHADERS } from './shader-source.js';

export interface ConvShape {
  tasks: number;
  rows: number;
  layer: LayerLayout;
}

export interface ConvOptions {
  /** Floats between tasks' parameter vectors (0: every task reads the same θ). */
  paramStride: number;
  /** Add to the output instead of overwriting it (the R-operator's sums). Default false. */
  accumulate?: boolean;
  /** Forward: add the bias; weight grad: write the bias gradient too. Default true. */
  bias?: boolean;
}

const KINDS = ['uniform', 'read', 'read', 'rw'] as const;
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

  /** y (rows × out features per task) = conv(x; W) (+ b). */
  forward(buffers: { x: GPUBuffer; params: GPUBuffer; y: GPUBuffer }, shape: ConvShape, o: ConvOptions, label: string): BoundDispatch {
    const { output } = shape.layer;
    const total = shape.tasks * shape.rows * output.h * output.w * output.c;
    return this.bind('forward', [buffers.x, buffers.params, buffers.y], shape, o, total, 0, 0, label);
  }

  /** dx = the transposed convolution of dy with W. */
  inputGrad(buffers: { dy: GPUBuffer; params: GPUBuffer; dx: GPUBuffer }, shape: ConvShape, o: ConvOptions, label: string): BoundDispatch {
    const { input } = shape.layer;
    const total = shape.tasks * shape.rows * input.h * input.w * input.c;
    return this.bind('inputGrad', [buffers.dy, buffers.params, buffers.dx], shape, o, total, 0, 0, label);
  }

  /** grad[t·gradStride + layer.offset …] (+)= ∂/∂(W, b) of ⟨dy, conv(x; W) + b⟩ over task t's rows. */
  weightGrad(buffers: { x: GPUBuffer; dy: GPUBuffer; grad: GPUBuffer }, shape: ConvShape, o: ConvOptions & { gradStride: number }, label: string): BoundDispatch {
    const total = shape.tasks * shape.layer.count;
    return this.bind('weightGrad', [buffers.x, buffers.dy, buffers.grad], shape, o, total, o.gradStride, shape.layer.offset, label);
  }

  private bind(which: keyof typeof ENTRIES, buffers: GPUBuffer[], shape: ConvShape, o: ConvOptions, total: number, gradStride: number, gOff: number, label: string): BoundDispatch {
    const { layer } = shape;
    if (layer.spec.kind !== 'conv2d') throw new Error(`Conv2dKernel.${label}: layer is ${layer.spec.kind}, not conv2d`);
    const grid = foldGrid(this.device, Math.ceil(total / WG), `Conv2dKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `Conv2dKernel.${label}.uniform`, SHADERS.conv2d, 'cp', {
      tasks: shape.tasks, rows: shape.rows,
      inH: layer.input.h, inW: layer.input.w, inC: layer.input.c,
      outH: layer.output.h, outW: layer.output.w, outC: layer.output.c,
      size: layer.spec.size, stride: layer.spec.stride, padding: layer.spec.padding,
      paramStride: o.paramStride, wOff: layer.offset, bOff: layer.offset + layer.weights, gradStride, gOff,
      accumulate: o.accumulate ? 1 : 0, bias: o.bias === false ? 0 : 1, total, gridX: grid.x, gridY: grid.y,
    });
    const group = bindGroup(this.device, `Conv2dKernel.${label}.group`, this.layout, [uniform, ...buffers]);
    return gridDispatch(this.pipelines[which], group, grid);
  }
}
