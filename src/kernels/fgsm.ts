// Host side of shaders/fgsm.wgsl (CPU twin: src/cpu/fgsm.ts): FGSM / PGD on every row of every task,
// recorded as a chain of attack steps that ping-pong between two buffers so the last lands in `out`.
import { bindGroup, bindGroupLayout, boundDispatch, computePipeline, taskGrid, type BoundDispatch } from '../gpu/resources.js';
import { writeUniform } from '../gpu/uniforms.js';
import type { AttackParams } from '../cpu/fgsm.js';
import { DEFAULT_TASK_WORKGROUP, SHADERS } from './shader-source.js';
import { quads } from './layout.js';

/** Where the rows live: a buffer and float offsets (multiples of 4 for rows). */
export interface RowsAt { buffer: GPUBuffer; xOff: number }

export interface AttackBinding {
  clean: RowsAt & { labelOff: number };  // clean rows and their labels
  params: GPUBuffer;                      // θ (stride 0) or adapted θ' (stride D4)
  paramOff: number;                       // float offset of task 0's parameters
  paramPerTask: boolean;
  out: RowsAt;                            // where the attacked rows go
  scratch: RowsAt;                        // second buffer for PGD's ping-pong (same size as the rows)
  tasks: number;
  rows: number;
  dim: number;
}

const KINDS = ['uniform', 'read', 'read', 'rw', 'rw'] as const;

export class AttackKernel {
  private readonly layout: GPUBindGroupLayout;
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly device: GPUDevice, workgroup = DEFAULT_TASK_WORKGROUP) {
    this.layout = bindGroupLayout(device, 'AttackKernel.layout', [...KINDS]);
    this.pipeline = computePipeline(device, 'fgsm.wgsl', SHADERS.fgsm, 'attack_step', this.layout, { WG: workgroup });
  }

  /** Binds and writes the uniforms of all k steps; the result records the whole attack. */
  bind(b: AttackBinding, a: AttackParams, label: string): BoundDispatch {
    const grid = taskGrid(b.tasks, this.device.limits.maxComputeWorkgroupsPerDimension);
    const steps: BoundDispatch[] = [];
    let current: RowsAt = b.clean;
    for (let i = 0; i < a.steps; i++) {
      const target = (a.steps - 1 - i) % 2 === 0 ? b.out : b.scratch;
      const uniform = writeUniform(this.device, `AttackKernel.${label}.step${i}`, SHADERS.fgsm, 'ap', {
        tasks: b.tasks, rows: b.rows, dim4: quads(b.dim), dim: b.dim, cleanXOff: b.clean.xOff / 4, labelOff: b.clean.labelOff,
        currentXOff: current.xOff / 4, nextXOff: target.xOff / 4, paramStride: b.paramPerTask ? quads(b.dim) : 0,
        paramOff: b.paramOff / 4, groupsPerRow: grid.x, epsilon: a.epsilon, stepSize: a.stepSize, lo: a.lo, hi: a.hi,
      });
      const group = bindGroup(this.device, `AttackKernel.${label}.step${i}`, this.layout, [uniform, b.clean.buffer, current.buffer, b.params, target.buffer]);
      steps.push(boundDispatch(this.pipeline, group, grid.x, grid.y));
      current = target;
    }
    return { encode: (pass) => steps.forEach((s) => s.encode(pass)) };
  }
}
