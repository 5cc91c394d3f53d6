// The contract both backends implement: the learner validates input, then hands it to an Engine.
// Engines own the parameters and optimizer state; a GPU engine keeps them resident on the device.
import type { Batch, BackendInfo, ResolvedLearnerOptions } from '../types.js';
import { UPDATE_RULE, type UpdateParams } from '../cpu/meta-update.js';
import type { TaskParams } from '../cpu/maml-task.js';

export interface Engine {
  readonly info: BackendInfo;
  setParams(theta: Float32Array): void;
  getParams(): Promise<Float32Array>;
  /** Runs `iterations` meta-iterations on `batch`; returns the last iteration's T×2 query stats when asked. */
  step(batch: Batch, iterations: number, readback: boolean): Promise<Float32Array | undefined>;
  /** Adapts a copy of θ on each support set and returns T×2 query (loss, accuracy); θ is unchanged. */
  evaluate(batch: Batch, steps: number, lr: number): Promise<Float32Array>;
  /** The meta-gradient mean_i g_i that `step` would apply, without applying it. */
  metaGradient(batch: Batch): Promise<Float32Array>;
  /** Resolves when all submitted work has finished. */
  sync(): Promise<void>;
  destroy(): void;
}

export function taskParamsFor(batch: Batch, o: ResolvedLearnerOptions, mode: 'train' | { steps: number; lr: number }): TaskParams {
  const train = mode === 'train';
  return {
    tasks: batch.tasks,
    supportRows: batch.supportShots,
    queryRows: batch.queryShots,
    dim: o.dim,
    innerSteps: train ? o.innerSteps : mode.steps,
    order: o.order,
    wantMetaGrad: train,
    innerLr: train ? o.innerLr : mode.lr,
  };
}

export function updateParamsFor(tasks: number, o: ResolvedLearnerOptions, applyUpdate: boolean): UpdateParams {
  return {
    tasks,
    dim: o.dim,
    rule: applyUpdate ? UPDATE_RULE[o.optimizer] : UPDATE_RULE.none,
    outerLr: o.outerLr,
    beta1: o.adamBetas[0],
    beta2: o.adamBetas[1],
    epsilon: o.adamEpsilon,
  };
}

/** Task weights of the plain MAML mean: 1/T each. */
export function uniformTaskWeights(tasks: number): Float32Array {
  return new Float32Array(tasks).fill(1 / tasks);
}
