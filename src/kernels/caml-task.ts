// Host side of shaders/caml-task.wgsl (CPU twin: src/cpu/caml-task.ts): CAML / CAVIA's per-task context
// adaptation and meta-gradient. One bound dispatch per (buffers, uniform); setParams rewrites the uniform.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, taskGrid } from '../gpu/resources.js';
import { createUniformBuffer } from '../gpu/uniforms.js';
import type { CamlParams } from '../cpu/caml-task.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from './shader-source.js';
import { taskUniformFields, type BoundMamlTask } from './maml-task.js';

export interface CamlTaskBuffers {
  supportData: GPUBuffer;  // a data buffer (layout.ts dataLayout) whose supportX/supportY are read
  queryData: GPUBuffer;    // a data buffer whose queryX/queryY are read
  params: GPUBuffer;       // (C+1)×paddedDim: w, W_0 … W_{C−1}
  adapted: GPUBuffer;      // sets×T×paddedDim
  metaGrad: GPUBuffer;     // sets×T×(C+1)×paddedDim
  tape: GPUBuffer;         // camlScratchSizes().tape
  taskStats: GPUBuffer;    // sets×T×2
  scratch: GPUBuffer;      // sets×T×3×paddedDim
}

const KINDS = ['uniform', 'read', 'read', 'read', 'rw', 'rw', 'rw', 'rw', 'rw'] as const;

export class CamlTaskKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, workgroup = DEFAULT_TASK_WORKGROUP) {
    this.layout = bindGroupLayout(device, 'CamlTaskKernel.layout', [...KINDS]);
    this.pipeline = computePipeline(device, 'caml-task.wgsl', SHADERS.camlTask, 'caml_adapt_and_meta_grad', this.layout, { WG: workgroup });
  }

  bind(b: CamlTaskBuffers, tasks: number, label: string): BoundMamlTask<CamlParams> {
    const grid = taskGrid(tasks, this.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = createUniformBuffer(this.device, `CamlTaskKernel.${label}`, SHADERS.camlTask, 'cp');
    const group = bindGroup(this.device, `CamlTaskKernel.${label}`, this.layout,
      [uniform.buffer, b.supportData, b.queryData, b.params, b.adapted, b.metaGrad, b.tape, b.taskStats, b.scratch]);
    const dispatch = boundDispatch(this.pipeline, group, grid.x, grid.y);
    return {
      encode: dispatch.encode,
      setParams(p: CamlParams) {
        uniform.write({ ...taskUniformFields(p, grid.x), context: p.context });
      },
    };
  }
}
