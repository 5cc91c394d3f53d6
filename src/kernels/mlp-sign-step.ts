// Host side of shaders/mlp-sign-step.wgsl (CPU twin: signStep in src/cpu/mlp-kernels.ts): one FGSM/PGD
// step on every input row of every task, one invocation per feature.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { checkSignStepSpec, type SignStepSpec } from '../cpu/mlp-kernels.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { writeUniform } from '../gpu/uniforms.js';
import { SHADERS } from './shader-source.js';

export type { SignStepArrays, SignStepSpec } from '../cpu/mlp-kernels.js';

/** Bindings 1–3: clean rows (read-only), adversarial rows (read_write), the tape holding g (read_write). */
export interface SignStepBuffers { clean: GPUBuffer; adv: GPUBuffer; tape: GPUBuffer }

const KINDS = ['uniform', 'read', 'rw', 'rw'] as const;
const WG = 128;

export class SignStepKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, private readonly options: MlpKernelOptions = {}) {
    this.layout = bindGroupLayout(device, 'SignStepKernel.layout', [...KINDS]);
    this.pipeline = computePipeline(device, 'mlp-sign-step.wgsl', SHADERS.mlpSignStep, 'sign_step', this.layout, { WG });
  }

  /**
   * Writes the spec's uniform (its own buffer) and returns the dispatch. Throws ShapeError / LimitError.
   * @example kernel.bind({ clean: data, adv, tape }, { tasks, rows, dim: D, rowStride: Dp, cleanOff, advOff, readClean: step === 0,
   *   gOff, gTaskStride, gRowStride: D, stepSize, epsilon, lo: 0, hi: 1 }, `pgd.step${step}`).encode(pass);
   */
  bind(buffers: SignStepBuffers, spec: SignStepSpec, label: string): BoundDispatch {
    checkSignStepSpec(spec);
    const blocks = Math.ceil(spec.dim / WG);
    const grid = foldGrid(this.device, blocks * spec.tasks * spec.rows, `SignStepKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `SignStepKernel.${label}.uniform`, SHADERS.mlpSignStep, 'sp', {
      tasks: spec.tasks, rows: spec.rows, dim: spec.dim, rowStride: spec.rowStride, cleanOff: spec.cleanOff, advOff: spec.advOff,
      readClean: spec.readClean ? 1 : 0, gOff: spec.gOff, gTaskStride: spec.gTaskStride, gRowStride: spec.gRowStride,
      blocks, gridX: grid.x, gridY: grid.y, stepSize: spec.stepSize, epsilon: spec.epsilon, lo: spec.lo, hi: spec.hi,
    });
    const group = bindGroup(this.device, `SignStepKernel.${label}.group`, this.layout, [uniform, buffers.clean, buffers.adv, buffers.tape]);
    return gridDispatch(this.pipeline, group, grid);
  }
}
