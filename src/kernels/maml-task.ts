// Host side of shaders/maml-task.wgsl (CPU twin: src/cpu/maml-task.ts): the fused per-task inner loop
// and meta-gradient. One bound dispatch per (buffers, uniform); setParams rewrites the uniform.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import { createUniformBuffer } from '../gpu/uniforms.js';
import { checkStepSizes, type TaskParams, type TaskPassParams } from '../cpu/maml-task.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from './shader-source.js';
import { dataLayout, quads } from './layout.js';

export interface MamlTaskBuffers {
  supportData: GPUBuffer;  // a data buffer (layout.ts dataLayout) whose supportX/supportY are read
  queryData: GPUBuffer;    // a data buffer whose queryX/queryY are read (may be supportData)
  theta: GPUBuffer;        // paddedDim, or T×paddedDim with thetaPerTask, or [θ | α] 2×paddedDim with stepSizes
  adapted: GPUBuffer;      // sets×T×paddedDim
  metaGrad: GPUBuffer;     // sets×T×paddedDim, or sets×T×2×paddedDim [g_θ | g_α] with stepSizes
  supportProb: GPUBuffer;  // sets×T×max(n,1)×Ks
  taskStats: GPUBuffer;    // sets×T×2
  perturbed: GPUBuffer;    // sets×T×paddedDim: AMP inner optimizer θ'+Δ, Meta-SGD order 2 α ⊙ v (any buffer otherwise)
}

const KINDS = ['uniform', 'read', 'read', 'rw', 'rw', 'rw', 'rw', 'rw', 'rw'] as const;

/** The fields both per-task uniforms share (TaskParams in maml-task.wgsl, CamlParams in caml-task.wgsl):
 * sizes, inner loop, grid width, the offsets of the rows (in vec4s) and labels (in floats), the chunk. */
export function taskUniformFields(p: TaskPassParams, groupsPerRow: number) {
  const off = dataLayout(p.tasks, p.supportRows, p.queryRows, p.dim);
  return {
    tasks: p.tasks, supportRows: p.supportRows, queryRows: p.queryRows, dim4: quads(p.dim),
    innerSteps: p.innerSteps, order: p.order, wantMetaGrad: p.wantMetaGrad ? 1 : 0, groupsPerRow, innerLr: p.innerLr,
    supportXOff: off.supportX / 4, supportYOff: off.supportY, queryXOff: off.queryX / 4, queryYOff: off.queryY,
    outSet: p.outSet, taskBase: p.chunk?.base ?? 0, slotTasks: p.chunk?.slotTasks ?? p.tasks,
  };
}

export interface BoundMamlTask<P = TaskParams> extends BoundDispatch {
  setParams(p: P): void;
}

export class MamlTaskKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, workgroup = DEFAULT_TASK_WORKGROUP) {
    this.layout = bindGroupLayout(device, 'MamlTaskKernel.layout', [...KINDS]);
    this.pipeline = computePipeline(device, 'maml-task.wgsl', SHADERS.mamlTask, 'adapt_and_meta_grad', this.layout, { WG: workgroup });
  }

  bind(b: MamlTaskBuffers, tasks: number, label: string): BoundMamlTask {
    const grid = taskGrid(tasks, this.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = createUniformBuffer(this.device, `MamlTaskKernel.${label}`, SHADERS.mamlTask, 'tp');
    const group = bindGroup(this.device, `MamlTaskKernel.${label}`, this.layout,
      [uniform.buffer, b.supportData, b.queryData, b.theta, b.adapted, b.metaGrad, b.supportProb, b.taskStats, b.perturbed]);
    const dispatch = boundDispatch(this.pipeline, group, grid.x, grid.y);
    return {
      encode: dispatch.encode,
      setParams(p: TaskParams) {
        checkStepSizes(p);
        uniform.write({
          ...taskUniformFields(p, grid.x),
          thetaStride: p.thetaPerTask ? quads(p.dim) : 0,
          perturbSteps: p.perturb?.steps ?? 0,
          perturbLr: p.perturb?.lr ?? 0,
          perturbRadius: p.perturb?.radius ?? 0,
          writeBack: p.writeBack ? 1 : 0,
          stepSizes: p.stepSizes ? 1 : 0,
        });
      },
    };
  }
}
