/** One batch of T few-shot tasks. Arrays are row-major and task-major: row k of task t starts at
 * ((t · Ks) + k) · dim in supportX. Labels are exactly 0 or 1 (logistic model), or class indices
 * 0 … N−1 (MLP model), as floats or as an Int32Array / Uint32Array. */
export interface Batch {
  tasks: number;
  supportShots: number;
  queryShots: number;
  supportX: Float32Array;
  supportY: Float32Array | Int32Array | Uint32Array;
  queryX: Float32Array;
  queryY: Float32Array | Int32Array | Uint32Array;
}

/** A batch after validation: labels as float32 (what the engines read). */
export interface CheckedBatch extends Batch {
  supportY: Float32Array;
  queryY: Float32Array;
}

// Learner options: one interface per algorithm (src/algorithms/<name>.ts, with its defaults), joined
// in a union discriminated by `algorithm` (src/algorithms/index.ts).
export type {
  Algorithm, LearnerOptions, ResolvedLearnerOptions, MamlOptions, AdmlOptions, GaMamlOptions, CamlOptions, AmpOptions,
  MetaSgdOptions, AnilOptions, ReptileOptions, ProtonetOptions, MetaLearnerOptions, MetaLearnerCoreOptions, AmpInnerOptimizerOptions, CommonOptions, BackendChoice, Optimizer,
} from './algorithms/index.js';
export { NO_CLIP } from './algorithms/common.js';
export type { ModelSpec, MlpModelSpec, MlpRegressorSpec, LogisticModelSpec } from './models/mlp.js';
export type { Conv4ModelSpec, LayersModelSpec } from './models/layers.js';

export interface StepOptions {
  /** Meta-iterations to run on this batch, recorded into one command buffer (default 1). */
  iterations?: number;
  /** Read back the mean query loss/accuracy at the adapted parameters (default false: no readback). */
  readback?: boolean;
  /** Also read back the task weights of the last iteration's update (GA-MAML: the agreement weights
   * w_t; ADML: 2T weights, the adversarial half scaled by β2/β1; others 1/T). Not for 'amp'. */
  returnWeights?: boolean;
}

/** step() options that ask for a readback (`readback: true` or `returnWeights: true`): with them,
 * step() resolves with the metrics (Learner.step's first overload); without, with undefined. */
export type ReadbackStepOptions = StepOptions & ({ readback: true } | { returnWeights: true });

/** Query metrics at the adapted parameters of the last iteration, before its outer update (ADML: of
 * the clean-adapted pass; AMP: support loss before the update is not reported, query metrics are). */
export interface StepMetrics {
  loss: number;
  /** Classification models; NaN under a regression (MSE) model, whose `mse` holds its metric. */
  accuracy: number;
  /** The model's metric: 'accuracy', or 'mse' for a regression model (a layer list with loss 'mse'). */
  metric: 'accuracy' | 'mse';
  mse?: number;
  /** GA-MAML task weights, when asked with returnWeights. */
  taskWeights?: Float32Array;
}

/** An L∞ attack on the query inputs, made against each task's adapted parameters (white-box). */
export interface AttackOptions {
  kind: 'fgsm' | 'pgd';
  epsilon: number;
  /** PGD steps k (default 10; FGSM is one step). */
  steps?: number;
  /** PGD step size s (default 2.5·ε/k). */
  stepSize?: number;
  /** Clip to [lo, hi] (default: the learner's clip, else none). */
  clip?: [number, number];
}

export interface EvaluateOptions {
  /** Inner steps on each task's support set (default: the learner's innerSteps; 0 scores θ itself). */
  steps?: number;
  /** Inner learning rate (default: the learner's innerLr). */
  lr?: number;
  /** Also score the query set under attack. */
  attack?: AttackOptions;
}

/** Mean over tasks with the half-width of a 95% confidence interval (1.96 · sd / √T). */
export interface MeanWithInterval {
  mean: number;
  ci95: number;
}

/** Query loss and accuracy over the tasks of a batch: means, 95% intervals and per-task values. */
export interface QueryScores {
  loss: number;
  /** The model's metric: 'accuracy' (classification), or 'mse' for a regression model (a layer list
   * with loss 'mse'), whose mean squared error is in `mse`, `mseInterval` and `taskMse`; its accuracy
   * fields are then NaN. */
  metric: 'accuracy' | 'mse';
  accuracy: number;
  lossInterval: MeanWithInterval;
  accuracyInterval: MeanWithInterval;
  mse?: number;
  mseInterval?: MeanWithInterval;
  taskMse?: Float32Array;
  /** Per-task query loss and accuracy after adaptation. */
  taskLoss: Float32Array;
  taskAccuracy: Float32Array;
}

export interface EvaluateResult extends QueryScores {
  /** Query scores under the attack, when one was asked for. */
  attacked?: QueryScores;
}

/** evaluate's scores plus what adaptation and the attack produced, for inspection (learner.adapt). */
export interface AdaptResult extends EvaluateResult {
  /** Each task's adapted parameters, T×D task-major (CAML: the task's model w + Wφ_t; AMP: the models). */
  adapted: Float32Array;
  /** With an attack: the attacked query rows, T×Kq×D, laid out as batch.queryX. */
  attackedQueryX?: Float32Array;
}

export interface BackendInfo {
  kind: 'webgpu' | 'cpu';
  /** Adapter description (vendor, architecture, path used), or 'cpu'. */
  adapter: string;
  /** True when WebGPU runs on a software rasteriser (llvmpipe, SwiftShader). */
  software: boolean;
}

/** Options of learner.train: a whole training on batches drawn from a task source. */
export interface TrainOptions {
  /** Where tasks come from (src/tasks/source.ts): 'seed', 'linear', 'images' (Fashion-MNIST) or 'file'. */
  source: import('./tasks/source.js').TaskSource;
  /** Meta-iterations to run (from startIteration). */
  iterations: number;
  tasksPerBatch?: number;
  supportShots?: number;
  queryShots?: number;
  /** Number of the first iteration: batches are keyed by it, so a resumed run sees the batches an
   * uninterrupted one would (default 0). */
  startIteration?: number;
  /** Evaluate on held-out tasks (meta-test split) every this many iterations, and at the end (0: never). */
  evalEvery?: number;
  /** Where evaluations draw their tasks (default: source): another source of the same kind, e.g. the
   * 5-way episodes a protonet trained on 20-way ones is scored on (its rows set the evaluation's shots). */
  evalSource?: import('./tasks/source.js').TaskSource;
  /** Held-out tasks per evaluation (default 600), inner steps and rate (default: the learner's). */
  evalTasks?: number;
  evalSteps?: number;
  evalLr?: number;
  /** Also score the held-out queries under this attack. */
  evalAttack?: AttackOptions;
  /** Split of the periodic evaluations: 'auto' (default) = 'val' when the source has a validation split,
   * else 'test'. */
  evalSplit?: 'auto' | 'val' | 'test';
  /** Meta-iterations recorded per submit (default 10); progress is reported between submits. */
  iterationsPerSubmit?: number;
  /** Read back the training query loss/accuracy at every progress report (default false). */
  trackTrainLoss?: boolean;
  onProgress?: (progress: TrainProgress) => void | Promise<void>;
}

export interface TrainProgress {
  /** Meta-iterations done, counted from 0 (startIteration included). */
  iteration: number;
  /** The iteration number training stops at. */
  endIteration: number;
  elapsedSeconds: number;
  iterationsPerSecond: number;
  /** The last batch's query loss and metric (accuracy; NaN with `mse` for a regression model). */
  train?: { loss: number; accuracy: number; mse?: number };
  eval?: EvaluateResult;
}

/** Everything needed to continue a training exactly: parameters (public layout) and optimizer state. */
export interface LearnerState {
  params: Float32Array;
  /** Meta-SGD: the learned inner step sizes α (getStepSizes()); absent for the other algorithms. */
  stepSizes?: Float32Array;
  /** [m | v | step count] of the outer optimizer, internal layout (opaque to users; Meta-SGD: over θ
   * then α). */
  optimizer: Float32Array;
}
