// Host side of shaders/mlp-norm-clip.wgsl (CPU twin: normClipTensors in src/cpu/mlp-kernels.ts): AMP's
// per-tensor L2-ball projection of every task's perturbed parameters, one workgroup per (tensor, task).
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { checkNormClipSpec, MAX_CLIP_TENSORS, type NormClipSpec } from '../cpu/mlp-kernels.js';
import { foldGrid, gridDispatch, isSoftwareDevice, type MlpKernelOptions } from './mlp-common.js';
import { writeUniform } from '../gpu/uniforms.js';
import { SHADERS } from './shader-source.js';

export { MAX_CLIP_TENSORS };
export type { NormClipArrays, NormClipSpec } from '../cpu/mlp-kernels.js';

/** Bindings 1–2 (both read_write, distinct buffers). */
export interface NormClipBuffers { pert: GPUBuffer; base: GPUBuffer }

const KINDS = ['uniform', 'rw', 'rw'] as const;
/**
 * Invocations per (tensor, task), a power of two (tree reduction): 256 share a W_1 of ~200k floats on a
 * GPU; a software adapter pays per invocation at every barrier, so it gets 32 (one barrier per halving).
 */
const WG = 256;
const WG_SOFTWARE = 32;

export class NormClipKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, private readonly options: MlpKernelOptions = {}) {
    this.layout = bindGroupLayout(device, 'NormClipKernel.layout', [...KINDS]);
    const wg = (options.software ?? isSoftwareDevice(device)) ? WG_SOFTWARE : WG;
    this.pipeline = computePipeline(device, 'mlp-norm-clip.wgsl', SHADERS.mlpNormClip, 'norm_clip', this.layout, { WG: wg });
  }

  /**
   * Writes the spec's uniform (its own buffer) and returns the dispatch. Throws ShapeError (more than
   * MAX_CLIP_TENSORS tensors, bad ranges) / LimitError.
   * @example kernel.bind({ pert: adapted, base: theta }, { tasks: T, tensors: layout.tensors, radius: eps,
   *   pertOff: 0, pertTaskStride: layout.vector, baseOff: 0, baseTaskStride: 0 }, 'amp.clip').encode(pass);
   */
  bind(buffers: NormClipBuffers, spec: NormClipSpec, label: string): BoundDispatch {
    checkNormClipSpec(spec);
    const grid = foldGrid(this.device, spec.tensors.length * spec.tasks, `NormClipKernel.${label}`, this.options);
    const ranges = new Uint32Array(4 * MAX_CLIP_TENSORS);
    spec.tensors.forEach(([start, end], k) => ranges.set([start, end], 4 * k));
    const uniform = writeUniform(this.device, `NormClipKernel.${label}.uniform`, SHADERS.mlpNormClip, 'cp', {
      tasks: spec.tasks, count: spec.tensors.length, pertOff: spec.pertOff, pertTaskStride: spec.pertTaskStride,
      baseOff: spec.baseOff, baseTaskStride: spec.baseTaskStride, gridX: grid.x, gridY: grid.y, radius: spec.radius, ranges,
    });
    const group = bindGroup(this.device, `NormClipKernel.${label}.group`, this.layout, [uniform, buffers.pert, buffers.base]);
    return gridDispatch(this.pipeline, group, grid);
  }
}
