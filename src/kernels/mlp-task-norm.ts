// Host side of shaders/mlp-task-norm.wgsl (CPU twin: taskNorm in src/cpu/mlp-kernels.ts): per-task
// normalisation of a hidden layer — forward, backward (J g), R-forward (J R(z)) and R-backward — over
// each task's rows, one invocation per (task, unit). The mode is a pipeline constant (four small
// pipelines, each built on first use), so no mode switch runs per element.
import { bindGroup, bindGroupLayout, computePipeline, type BoundDispatch } from '../gpu/resources.js';
import { checkTaskNormSpec, type TaskNormMode, type TaskNormSpec } from '../cpu/mlp-kernels.js';
import { foldGrid, gridDispatch, type MlpKernelOptions } from './mlp-common.js';
import { writeUniform } from '../gpu/uniforms.js';
import { TASK_NORM_EPS } from '../models/mlp.js';
import { SHADERS } from './shader-source.js';

export { dummyBuffer } from './mlp-common.js';
export type { TaskNormArrays, TaskNormMode, TaskNormSpec } from '../cpu/mlp-kernels.js';

/** Binding 1: every array the spec names lives in the tape. */
export interface TaskNormBuffers { tape: GPUBuffer }

const KINDS = ['uniform', 'rw'] as const;
const MODES: Record<TaskNormMode, number> = { forward: 0, backward: 1, 'r-forward': 2, 'r-backward': 3 };
/** Units per workgroup: hidden widths are 32…256 in the nets of docs/neural-models.md. */
const WG = 64;

export class TaskNormKernel {
  private readonly layout: GPUBindGroupLayout;
  constructor(private readonly device: GPUDevice, private readonly options: MlpKernelOptions = {}) {
    this.layout = bindGroupLayout(device, 'TaskNormKernel.layout', [...KINDS]);
  }

  private pipeline(mode: TaskNormMode): GPUComputePipeline {
    return computePipeline(this.device, 'mlp-task-norm.wgsl', SHADERS.mlpTaskNorm, 'task_norm', this.layout, { WG, MODE: MODES[mode] });
  }

  /**
   * Writes the spec's uniform (its own buffer) and returns the dispatch. Throws ShapeError / LimitError.
   * @example forward of a hidden layer of 64 units, n written over z:
   *   new TaskNormKernel(device).bind({ tape }, { mode: 'forward', tasks, rows, units: 64, tapeTaskStride,
   *     inOff: z, outOff: z, reluOff: a, sOff: s }, 'forward2.norm').encode(pass);
   */
  bind(buffers: TaskNormBuffers, spec: TaskNormSpec, label: string): BoundDispatch {
    checkTaskNormSpec(spec);
    const blocks = Math.ceil(spec.units / WG);
    const grid = foldGrid(this.device, spec.rows > 0 ? blocks * spec.tasks : 0, `TaskNormKernel.${label}`, this.options);
    const uniform = writeUniform(this.device, `TaskNormKernel.${label}.uniform`, SHADERS.mlpTaskNorm, 'np', {
      tasks: spec.tasks, rows: spec.rows, units: spec.units, tapeTaskStride: spec.tapeTaskStride,
      inOff: spec.inOff, outOff: spec.outOff, reluOff: spec.reluOff ?? 0, nOff: spec.nOff ?? 0, sOff: spec.sOff,
      kappaOff: spec.kappaOff ?? 0, rhoOff: spec.rhoOff ?? 0, deltaOff: spec.deltaOff ?? 0, rnOff: spec.rnOff ?? 0,
      blocks, gridX: grid.x, gridY: grid.y, eps: TASK_NORM_EPS,
    });
    const group = bindGroup(this.device, `TaskNormKernel.${label}.group`, this.layout, [uniform, buffers.tape]);
    return gridDispatch(this.pipeline(spec.mode), group, grid);
  }
}
