// Kernels that only the tests dispatch, with their CPU twins: the L2-ball projection of AMP as a
// standalone dispatch (training runs the same WGSL function inside maml-task.wgsl) and the logistic
// Hessian-vector product (order 2 runs it fused inside maml-task.wgsl). Their entry points live in
// test/shaders/ and are put after the src shaders whose functions and bindings they use.
import logisticCommon from '../shaders/logistic-common.wgsl';
import normClip from '../shaders/norm-clip.wgsl';
import normClipEntry from './shaders/norm-clip-entry.wgsl';
import hvpEntry from './shaders/logistic-hvp.wgsl';
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, taskGrid, type BoundDispatch } from '../src/gpu/resources.js';
import { writeUniform } from '../src/gpu/uniforms.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from '../src/kernels/shader-source.js';
import { quads } from '../src/kernels/layout.js';
import { LOGISTIC_KINDS, logisticShapeFields, type LogisticBuffers, type LogisticOffsets } from '../src/kernels/logistic.js';
import { clipToBall } from '../src/cpu/norm-clip.js';
import { rowDots, rowsTransposeTimes, sigmoid, type LogisticShape } from '../src/cpu/logistic.js';

const NORM_CLIP = `${logisticCommon}\n${normClip}\n${normClipEntry}`;
const LOGISTIC_HVP = `${SHADERS.logistic}\n${hvpEntry}`;

/** point_m ← Π_ε(point_m) around centre_m for every model m (test/shaders/norm-clip-entry.wgsl). */
export class NormClipKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, workgroup = DEFAULT_TASK_WORKGROUP) {
    this.layout = bindGroupLayout(device, 'NormClipKernel.layout', ['uniform', 'rw', 'rw']);
    this.pipeline = computePipeline(device, 'norm-clip-entry.wgsl', NORM_CLIP, 'clip_to_ball', this.layout, { WG: workgroup });
  }

  /** points, centres: M×paddedDim. */
  bind(points: GPUBuffer, centres: GPUBuffer, models: number, dim: number, radius: number): BoundDispatch {
    const grid = taskGrid(models, this.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = writeUniform(this.device, 'NormClipKernel.params', NORM_CLIP, 'cp', { models, dim4: quads(dim), groupsPerRow: grid.x, radius });
    return boundDispatch(this.pipeline, bindGroup(this.device, 'NormClipKernel.group', this.layout, [uniform, points, centres]), grid.x, grid.y);
  }
}

/** Twin of norm-clip-entry.wgsl `clip_to_ball`: every model m of M. */
export function clipModelsToBall(points: Float32Array, centres: Float32Array, models: number, dim: number, radius: number): void {
  for (let m = 0; m < models; m++) clipToBall(points, centres, m * dim, dim, radius);
}

/** out_t = H(θ_t)·v_t of the logistic loss (test/shaders/logistic-hvp.wgsl, over logistic.wgsl's bindings). */
export class LogisticHvpKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, workgroup = DEFAULT_TASK_WORKGROUP) {
    this.layout = bindGroupLayout(device, 'LogisticHvpKernel.layout', [...LOGISTIC_KINDS, 'rw']);
    this.pipeline = computePipeline(device, 'logistic-hvp.wgsl', LOGISTIC_HVP, 'hvp', this.layout, { WG: workgroup });
  }

  /** b.out receives H·v; vec: T×paddedDim. */
  bind(b: LogisticBuffers & { vec: GPUBuffer }, shape: LogisticShape, offsets: LogisticOffsets = { x: 0, y: 0, params: 0 }): BoundDispatch {
    const grid = taskGrid(shape.tasks, this.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = writeUniform(this.device, 'LogisticHvpKernel.shape', LOGISTIC_HVP, 'shape', logisticShapeFields(shape, offsets, grid.x));
    const group = bindGroup(this.device, 'LogisticHvpKernel.group', this.layout, [uniform, b.x, b.y, b.params, b.out, b.stats, b.vec]);
    return boundDispatch(this.pipeline, group, grid.x, grid.y);
  }
}

/** Twin of logistic-hvp.wgsl `hvp`: out_t = X_tᵀ(p(1−p) ⊙ X_t v_t)/K at θ_t. */
export function hvp(out: Float32Array, x: Float32Array, params: Float32Array, v: Float32Array, s: LogisticShape): void {
  const { tasks, rows: K, dim: D } = s;
  const logits = new Float64Array(K);
  const xv = new Float64Array(K);
  for (let t = 0; t < tasks; t++) {
    rowDots(logits, x, t * K * D, K, params, t * s.paramStride, D);
    rowDots(xv, x, t * K * D, K, v, t * D, D);
    for (let r = 0; r < K; r++) {
      const p = sigmoid(logits[r]);
      xv[r] *= p * (1 - p);
    }
    rowsTransposeTimes(out, t * D, x, t * K * D, K, xv, D, 1 / K, false);
  }
}
