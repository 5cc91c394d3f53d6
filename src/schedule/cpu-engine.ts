// The CPU backend: the same contract as the GPU engine, computed by the CPU twins of the kernels.
import { adaptAndMetaGrad, taskScratchSizes, type TaskOutputs } from '../cpu/maml-task.js';
import { countStep, metaUpdate } from '../cpu/meta-update.js';
import type { Batch, BackendInfo, ResolvedLearnerOptions } from '../types.js';
import { taskParamsFor, uniformTaskWeights, updateParamsFor, type Engine } from './engine.js';

export class CpuEngine implements Engine {
  readonly info: BackendInfo = { kind: 'cpu', adapter: 'cpu', software: true };
  private theta: Float32Array;
  private readonly optState: Float32Array;
  private readonly meanGrad: Float32Array;

  constructor(private readonly options: ResolvedLearnerOptions, initialTheta: Float32Array) {
    this.theta = Float32Array.from(initialTheta);
    this.optState = new Float32Array(2 * options.dim + 1);
    this.meanGrad = new Float32Array(options.dim);
  }

  setParams(theta: Float32Array): void { this.theta.set(theta); }
  async getParams(): Promise<Float32Array> { return Float32Array.from(this.theta); }

  private runTasks(batch: Batch, mode: Parameters<typeof taskParamsFor>[2]): TaskOutputs {
    const p = taskParamsFor(batch, this.options, mode);
    const sizes = taskScratchSizes(p);
    const out: TaskOutputs = {
      adapted: new Float32Array(sizes.adapted),
      metaGrad: new Float32Array(sizes.metaGrad),
      supportProb: new Float32Array(sizes.supportProb),
      taskStats: new Float32Array(sizes.taskStats),
    };
    adaptAndMetaGrad(out, batch, this.theta, p);
    return out;
  }

  async step(batch: Batch, iterations: number, readback: boolean): Promise<Float32Array | undefined> {
    const weights = uniformTaskWeights(batch.tasks);
    const up = updateParamsFor(batch.tasks, this.options, true);
    let stats: Float32Array | undefined;
    for (let i = 0; i < iterations; i++) {
      const out = this.runTasks(batch, 'train');
      if (up.rule === 1) countStep(this.optState, this.options.dim);
      metaUpdate(this.theta, this.optState, this.meanGrad, out.metaGrad, weights, up);
      stats = out.taskStats;
    }
    return readback ? stats : undefined;
  }

  async evaluate(batch: Batch, steps: number, lr: number): Promise<Float32Array> {
    return this.runTasks(batch, { steps, lr }).taskStats;
  }

  async metaGradient(batch: Batch): Promise<Float32Array> {
    const out = this.runTasks(batch, 'train');
    const meanGrad = new Float32Array(this.options.dim);
    metaUpdate(this.theta, this.optState, meanGrad, out.metaGrad, uniformTaskWeights(batch.tasks), updateParamsFor(batch.tasks, this.options, false));
    return meanGrad;
  }

  async sync(): Promise<void> {}

  destroy(): void {}
}
