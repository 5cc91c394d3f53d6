// Host side of shaders/maml-task.wgsl (CPU twin: src/cpu/maml-task.ts): the fused per-task inner loop
// and meta-gradient. One bound dispatch per (buffers, uniform); setParams rewrites the uniform.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, createUniform, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import type { TaskParams, TaskPassParams } from '../cpu/maml-task.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from './shader-source.js';
import { dataLayout, quads } from './layout.js';

export interface MamlTaskBuffers {
  supportData: GPUBuffer;  // a data buffer (layout.ts dataLayout) whose supportX/supportY are read
  queryData: GPUBuffer;    // a data buffer whose queryX/queryY are read (may be supportData)
  theta: GPUBuffer;        // paddedDim, or T×paddedDim with thetaPerTask
  adapted: GPUBuffer;      // sets×T×paddedDim
  metaGrad: GPUBuffer;     // sets×T×paddedDim
  supportProb: GPUBuffer;  // sets×T×max(n,1)×Ks
  taskStats: GPUBuffer;    // sets×T×2
  perturbed: GPUBuffer;    // sets×T×paddedDim (AMP inner optimizer; any buffer otherwise)
}

const KINDS = ['uniform', 'read', 'read', 'rw', 'rw', 'rw', 'rw', 'rw', 'rw'] as const;
const UNIFORM_BYTES = 96;

/** Words 0–12 of both per-task uniforms (TaskParams in maml-task.wgsl, CamlParams in caml-task.wgsl):
 * sizes, inner loop, grid width, and the offsets of the rows (in vec4s) and labels (in floats). */
export function taskUniformHead(p: TaskPassParams, groupsPerRow: number, bytes: number) {
  const off = dataLayout(p.tasks, p.supportRows, p.queryRows, p.dim);
  const words = new ArrayBuffer(bytes);
  const u = new Uint32Array(words);
  const f = new Float32Array(words);
  u.set([p.tasks, p.supportRows, p.queryRows, quads(p.dim), p.innerSteps, p.order, p.wantMetaGrad ? 1 : 0, groupsPerRow]);
  f[8] = p.innerLr;
  u.set([off.supportX / 4, off.supportY, off.queryX / 4, off.queryY], 9);
  const chunk = [p.chunk?.base ?? 0, p.chunk?.slotTasks ?? p.tasks];
  return { words, u, f, chunk };
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
    const uniform = createUniform(this.device, `MamlTaskKernel.${label}`, UNIFORM_BYTES);
    const group = bindGroup(this.device, `MamlTaskKernel.${label}`, this.layout,
      [uniform, b.supportData, b.queryData, b.theta, b.adapted, b.metaGrad, b.supportProb, b.taskStats, b.perturbed]);
    const dispatch = boundDispatch(this.pipeline, group, grid.x, grid.y);
    const device = this.device;
    return {
      encode: dispatch.encode,
      setParams(p: TaskParams) {
        const { words, u, f, chunk } = taskUniformHead(p, grid.x, UNIFORM_BYTES);
        u.set([p.thetaPerTask ? quads(p.dim) : 0, p.outSet, p.perturb?.steps ?? 0], 13);
        f[16] = p.perturb?.lr ?? 0;
        f[17] = p.perturb?.radius ?? 0;
        u[18] = p.writeBack ? 1 : 0;
        u.set(chunk, 19);
        device.queue.writeBuffer(uniform, 0, words);
      },
    };
  }
}
