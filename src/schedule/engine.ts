// The contract both backends implement: the learner validates input, then hands it to an Engine.
// Engines own the parameters and optimizer state (a GPU engine keeps them resident on the device) and
// run Plans (src/algorithms/plan.ts). Parameters cross this interface in the internal layout: V vectors
// of D floats (V = paramVectors: 1, CAML's 1 + C, or AMP's models); for the MLP model, per-task vectors
// of layout.vector floats (src/models/mlp.ts: one, or AMP's models).
import type { AttackParams } from '../cpu/fgsm.js';
import type { TaskParams } from '../cpu/maml-task.js';
import type { CamlParams } from '../cpu/caml-task.js';
import type { ModelTaskParams } from '../cpu/model-task.js';
import type { ModelLayout } from '../models/model.js';
import { UPDATE_RULE, type UpdateParams } from '../cpu/meta-update.js';
import type { PlanStep } from '../algorithms/plan.js';
import { capabilitiesOf, perturbOf } from '../algorithms/index.js';
// Engines see batches after validation: labels as float32 (CheckedBatch).
import type { CheckedBatch as Batch, BackendInfo, ResolvedLearnerOptions } from '../types.js';
import type { SampleShape } from '../cpu/sample-tasks.js';
import type { Split, TaskSource } from '../tasks/source.js';

export interface StepReadback {
  /** T×2 query (loss, accuracy) of the last iteration's first task pass. */
  stats?: Float32Array;
  /** sets×T task weights of the last iteration. */
  weights?: Float32Array;
  /** When a check was asked: how many values of θ and of the optimizer state are NaN or ±Infinity after
   * the call (the GPU counts them at the end of the same submit and reads them with the metrics). */
  nonFinite?: NonFiniteCounts;
}

/** Non-finite values found by the divergence check (0 and 0: the state is finite). */
export interface NonFiniteCounts {
  params: number;
  optimizer: number;
}

/** What a training call reads back: metrics, task weights, the divergence check. */
export interface StepWant {
  stats: boolean;
  weights: boolean;
  check?: boolean;
}

export interface EvaluateOutput {
  clean: Float32Array;      // T×2
  attacked?: Float32Array;  // T×2
  /** With detail: each task's adapted parameters (T×D; CAML: w + Wφ_t; MLP: T×vector, internal layout)
   * and attacked query rows (T×Kq×D). */
  adapted?: Float32Array;
  attackedQueryX?: Float32Array;
}

export interface Engine {
  readonly info: BackendInfo;
  /** Writes whole vectors of the internal layout from vector `firstVector` on (Meta-SGD: θ is vector 0
   * and α vector 1; default 0). */
  setParams(params: Float32Array, firstVector?: number): void;
  getParams(): Promise<Float32Array>;
  /** Runs `iterations` meta-iterations on `batch`; reads back only what is asked. */
  step(batch: Batch, iterations: number, want: StepWant): Promise<StepReadback>;
  /** Adapts a copy of θ on each support set and scores the query sets (clean, and attacked when asked). */
  evaluate(batch: Batch, steps: number, lr: number, attack: AttackParams | null, detail?: boolean): Promise<EvaluateOutput>;
  /** The meta-gradient Σ_t w_t g_t that `step` would apply, without applying it. */
  metaGradient(batch: Batch): Promise<Float32Array>;
  /** Runs meta-iterations first … first+count−1 on batches of a device source (seed, linear, images, omniglot),
   * sampled by the engine itself (the GPU engine on the device, with no upload). */
  trainSampled(source: TaskSource, shape: SampleShape, seed: number, first: number, count: number, want: { stats: boolean; check?: boolean }): Promise<StepReadback>;
  /** Evaluates on batch `index` of a device source's split. */
  evaluateSampled(source: TaskSource, shape: SampleShape, seed: number, index: number, split: Split, steps: number, lr: number, attack: AttackParams | null): Promise<EvaluateOutput>;
  /** Outer optimizer state [m | v | step count] in the internal layout (V·D each), for checkpoints. */
  getOptimizerState(): Promise<Float32Array>;
  setOptimizerState(state: Float32Array): void;
  /** GPU time (ms) of the last submit's compute pass from timestamp queries; null without them. */
  gpuTimeMs(): Promise<number | null>;
  /** Resolves when all submitted work has finished. */
  sync(): Promise<void>;
  destroy(): void;
}

type TasksStep = Extract<PlanStep, { kind: 'tasks' }>;

/** The fields both per-task kernels (maml-task, caml-task) share, for one plan step. */
function sharedTaskFields(batch: Batch, o: ResolvedLearnerOptions, s: TasksStep, dim: number) {
  return {
    tasks: batch.tasks, supportRows: batch.supportShots, queryRows: batch.queryShots, dim,
    innerSteps: s.innerSteps, order: o.order, wantMetaGrad: s.wantMetaGrad, innerLr: s.innerLr, outSet: s.outSet,
  };
}

/** Uniform contents of the MAML per-task pass for one plan step. */
export function taskParamsFor(batch: Batch, o: ResolvedLearnerOptions, s: TasksStep, dim: number): TaskParams {
  const can = capabilitiesOf(o);
  return { ...sharedTaskFields(batch, o, s, dim), thetaPerTask: can.thetaPerTask, perturb: perturbOf(o), writeBack: s.writeBack, stepSizes: can.stepSizes };
}

/** Uniform contents of the CAML per-task pass for one plan step. */
export function camlParamsFor(batch: Batch, o: ResolvedLearnerOptions, s: TasksStep, dim: number): CamlParams {
  return { ...sharedTaskFields(batch, o, s, dim), context: o.contextDim };
}

/** Uniform contents of the model's per-task pass (the MAML core) for one plan step: the algorithm
 * adapts all parameters, the head (ANIL), or only the context φ of `layout` (CAML). */
export function modelTaskParamsFor(batch: Batch, o: ResolvedLearnerOptions, s: TasksStep, layout: ModelLayout): ModelTaskParams {
  return {
    ...sharedTaskFields(batch, o, s, layout.dim), layout, adapt: capabilitiesOf(o).adapt,
    thetaPerTask: capabilitiesOf(o).thetaPerTask, perturb: perturbOf(o), writeBack: s.writeBack, stepSizes: capabilitiesOf(o).stepSizes,
    // A protonet's episode: the query pass reads each task's support rows then its query rows.
    ...(s.episode ? { queryRows: batch.supportShots + batch.queryShots, episodeSupport: batch.supportShots } : {}),
  };
}

/** Outer update over `tasks` = sets×T per-task gradients of `dim` floats each. */
export function updateParamsFor(tasks: number, dim: number, o: ResolvedLearnerOptions, apply: boolean): UpdateParams {
  return {
    tasks,
    dim,
    rule: apply ? UPDATE_RULE[o.optimizer] : UPDATE_RULE.none,
    outerLr: o.outerLr,
    beta1: o.adamBetas[0],
    beta2: o.adamBetas[1],
    epsilon: o.adamEpsilon,
  };
}
