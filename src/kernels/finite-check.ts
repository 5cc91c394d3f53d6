// Host side of shaders/finite-check.wgsl (CPU twin: src/cpu/finite-check.ts): counts of the non-finite
// values of θ and of the optimizer state, written to a two-word buffer that the engine reads back
// together with the metrics.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import { SHADERS } from './shader-source.js';

const WG_FC = 64;
/** Values per invocation at least, so that a small model runs in one workgroup. */
const PER_INVOCATION = 16;
/** Workgroups at most (grid-stride loop beyond). */
const MAX_GROUPS = 256;

export interface FiniteCheckBuffers {
  params: GPUBuffer;    // paramCount floats
  optState: GPUBuffer;  // optCount floats
  counts: GPUBuffer;    // 2 u32: non-finite values of params, of optState
}

export class FiniteCheckKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly reset: GPUComputePipeline;
  private readonly scan: GPUComputePipeline;
  constructor(private readonly device: GPUDevice) {
    this.layout = bindGroupLayout(device, 'FiniteCheckKernel.layout', ['uniform', 'read', 'read', 'rw']);
    this.reset = computePipeline(device, 'finite-check.wgsl', SHADERS.finiteCheck, 'reset', this.layout, {});
    this.scan = computePipeline(device, 'finite-check.wgsl', SHADERS.finiteCheck, 'scan', this.layout, { WG_FC });
  }

  bind(b: FiniteCheckBuffers, paramCount: number, optCount: number): BoundDispatch {
    const uniform = writeUniform(this.device, 'FiniteCheckKernel.params', SHADERS.finiteCheck, 'fp', { paramCount, optCount });
    const group = bindGroup(this.device, 'FiniteCheckKernel.group', this.layout, [uniform, b.params, b.optState, b.counts]);
    const groups = Math.max(1, Math.min(MAX_GROUPS, Math.ceil(Math.max(paramCount, optCount) / (WG_FC * PER_INVOCATION))));
    const steps = [boundDispatch(this.reset, group, 1), boundDispatch(this.scan, group, groups)];
    return { encode: (pass) => steps.forEach((s) => s.encode(pass)) };
  }
}
