// Host side of shaders/maml-task.wgsl (CPU twin: src/cpu/maml-task.ts): the fused per-task inner loop
// and meta-gradient. One bound dispatch per (buffers, uniform); setParams rewrites the uniform.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, createUniform, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import type { TaskParams } from '../cpu/maml-task.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from './shader-source.js';
import { dataLayout, quads } from './layout.js';

export { dataLayout };

export interface MamlTaskBuffers {
  data: GPUBuffer;         // supportX | supportY | queryX | queryY (layout.ts dataLayout)
  theta: GPUBuffer;        // D padded to a multiple of 4
  adapted: GPUBuffer;      // T×paddedDim
  metaGrad: GPUBuffer;     // T×paddedDim
  supportProb: GPUBuffer;  // T×max(n,1)×Ks
  taskStats: GPUBuffer;    // T×2
}

const KINDS = ['uniform', 'read', 'rw', 'rw', 'rw', 'rw', 'rw'] as const;

export interface BoundMamlTask extends BoundDispatch {
  setParams(p: TaskParams): void;
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
    const uniform = createUniform(this.device, `MamlTaskKernel.${label}`, 64);
    const group = bindGroup(this.device, `MamlTaskKernel.${label}`, this.layout,
      [uniform, b.data, b.theta, b.adapted, b.metaGrad, b.supportProb, b.taskStats]);
    const dispatch = boundDispatch(this.pipeline, group, grid.x, grid.y);
    const device = this.device;
    return {
      encode: dispatch.encode,
      setParams(p: TaskParams) {
        const off = dataLayout(p.tasks, p.supportRows, p.queryRows, p.dim);
        const words = new ArrayBuffer(64);
        const u = new Uint32Array(words);
        u.set([p.tasks, p.supportRows, p.queryRows, quads(p.dim), p.innerSteps, p.order, p.wantMetaGrad ? 1 : 0, grid.x]);
        new Float32Array(words, 32, 1)[0] = p.innerLr;
        // Rows are addressed in vec4s, labels in floats.
        u.set([off.supportX / 4, off.supportY, off.queryX / 4, off.queryY], 9);
        device.queue.writeBuffer(uniform, 0, words);
      },
    };
  }
}
