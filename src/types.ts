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

export type Algorithm = 'maml' | 'adml' | 'ga-maml' | 'caml' | 'amp';
export type { ModelSpec, MlpModelSpec, LogisticModelSpec } from './models/mlp.js';
import type { ModelSpec } from './models/mlp.js';
export type BackendChoice = 'auto' | 'webgpu' | 'cpu';
export type Optimizer = 'sgd' | 'adam';

/** Options of createLearner. Every default is in DEFAULT_LEARNER_OPTIONS; options that do not apply to
 * the chosen algorithm are rejected (ALGORITHM_OPTIONS says which apply). */
export interface LearnerOptions {
  algorithm?: Algorithm;
  /** 'auto' (default) uses WebGPU when an adapter exists and the CPU backend otherwise. */
  backend?: BackendChoice;
  /** Features per row (required). A bias is a constant-1 feature the caller adds (logistic model). */
  dim: number;
  /** The model: { kind: 'logistic' } (default; the seeds' binary unit, labels 0/1), or
   * { kind: 'mlp', hidden: [256, 128, 64, 64], classes: N } (ReLU MLP with an N-way softmax head, labels
   * 0 … N−1; hidden: [] is multinomial logistic regression). */
  model?: ModelSpec;
  /** Seeds the initial parameters θ ~ N(0, initScale²). */
  seed?: number;
  initScale?: number;
  /** CPU backend: worker threads for large batches (0 = one per core, the default; 1 = none). */
  threads?: number;
  /** Check batches for NaN/Inf and labels outside {0,1} before each step (default true). */
  validate?: boolean;
  /** Outer update: 'sgd' or 'adam' (β1, β2 = adamBetas, ε = adamEpsilon). */
  optimizer?: Optimizer;
  adamBetas?: [number, number];
  adamEpsilon?: number;

  // MAML family (maml, adml, ga-maml, caml)
  /** α (ADML: α1, the clean inner rate). */
  innerLr?: number;
  /** β (ADML: β1, the rate of the clean-adapted gradient). */
  outerLr?: number;
  innerSteps?: number;
  /** 1: first-order; 2: exact second order through the inner steps (default 1; CAML: 2). */
  order?: 1 | 2;
  /** Inner-loop optimizer: plain 'sgd', or 'amp' (gradient at an adversarially perturbed point). */
  innerOptimizer?: 'sgd' | 'amp';
  /** AMP as inner optimizer: ζ, N and the L2 radius ε. */
  perturbLr?: number;
  perturbSteps?: number;
  perturbEpsilon?: number;

  // ADML
  /** α2, the inner rate on adversarial support sets (default: innerLr). */
  innerLrAdv?: number;
  /** β2, the rate of the adversarially-adapted gradient (default: outerLr). */
  outerLrAdv?: number;
  /** FGSM step ε of ADML's adversarial samples; for 'amp', the L2 radius of the perturbation. */
  epsilon?: number;
  /** Inputs are clipped to [lo, hi] after each attack step (default: no clipping). */
  clip?: [number, number];
  /** 'cross' (the paper): θ'_clean on adversarial queries, θ'_adv on clean ones; 'same': seed notebook 000. */
  pairing?: 'cross' | 'same';

  // GA-MAML
  /** 'paper': Σ_k |Σ_j u_k·u_j| denominator; 'notebook': Σ_k Σ_j |u_k·u_j|. */
  normalization?: 'paper' | 'notebook';

  // CAML (CAVIA)
  /** C, the size of the per-task context φ. Parameters are w (D) then W (D×C row-major); w starts at
   * N(0, initScale²), W at N(0, max(initScale, 1/√D)²): W = 0 is a fixed point of CAVIA's gradient. */
  contextDim?: number;

  // AMP (plain training of `models` independent logistic models)
  models?: number;
  /** η */
  lr?: number;
}

export type ResolvedLearnerOptions = Required<LearnerOptions>;

/** No clipping: the largest finite float32, since WGSL may assume values are finite. */
export const NO_CLIP: [number, number] = [-3.4028234663852886e38, 3.4028234663852886e38];

export const DEFAULT_LEARNER_OPTIONS: Omit<ResolvedLearnerOptions, 'dim'> = {
  algorithm: 'maml',
  backend: 'auto',
  model: { kind: 'logistic' },
  seed: 1,
  threads: 0,
  initScale: 0.01,
  validate: true,
  optimizer: 'sgd',
  adamBetas: [0.9, 0.999],
  adamEpsilon: 1e-8,
  innerLr: 0.01,
  outerLr: 0.001,
  innerSteps: 1,
  order: 1,
  innerOptimizer: 'sgd',
  perturbLr: 1,
  perturbSteps: 1,
  perturbEpsilon: 0.5,
  innerLrAdv: Number.NaN,   // resolved to innerLr
  outerLrAdv: Number.NaN,   // resolved to outerLr
  epsilon: Number.NaN,      // resolved per algorithm: 0.1 (adml), 0.5 (amp)
  clip: NO_CLIP,
  pairing: 'cross',
  normalization: 'paper',
  contextDim: 4,
  models: 1,
  lr: 0.1,
};

const COMMON = ['algorithm', 'backend', 'dim', 'model', 'seed', 'threads', 'initScale', 'validate', 'optimizer', 'adamBetas', 'adamEpsilon'] as const;
const MAML_FAMILY = [...COMMON, 'innerLr', 'outerLr', 'innerSteps', 'order', 'innerOptimizer', 'perturbLr', 'perturbSteps', 'perturbEpsilon'] as const;

/** Which options apply to each algorithm. */
export const ALGORITHM_OPTIONS: Record<Algorithm, readonly (keyof LearnerOptions)[]> = {
  maml: MAML_FAMILY,
  adml: [...MAML_FAMILY, 'innerLrAdv', 'outerLrAdv', 'epsilon', 'clip', 'pairing'],
  'ga-maml': [...MAML_FAMILY, 'normalization'],
  caml: [...MAML_FAMILY, 'contextDim'],
  // AMP is plain SGD with step η on each model (the paper's optimizer): no outer optimizer options.
  amp: ['algorithm', 'backend', 'dim', 'model', 'seed', 'threads', 'initScale', 'validate', 'models', 'lr', 'perturbLr', 'perturbSteps', 'epsilon'],
};

export interface StepOptions {
  /** Meta-iterations to run on this batch, recorded into one command buffer (default 1). */
  iterations?: number;
  /** Read back the mean query loss/accuracy at the adapted parameters (default false: no readback). */
  readback?: boolean;
  /** Also read back the task weights of the last iteration's update (GA-MAML: the agreement weights
   * w_t; ADML: 2T weights, the adversarial half scaled by β2/β1; others 1/T). Not for 'amp'. */
  returnWeights?: boolean;
}

/** Query metrics at the adapted parameters of the last iteration, before its outer update (ADML: of
 * the clean-adapted pass; AMP: support loss before the update is not reported, query metrics are). */
export interface StepMetrics {
  loss: number;
  accuracy: number;
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
  accuracy: number;
  lossInterval: MeanWithInterval;
  accuracyInterval: MeanWithInterval;
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
  /** Held-out tasks per evaluation (default 600), inner steps and rate (default: the learner's). */
  evalTasks?: number;
  evalSteps?: number;
  evalLr?: number;
  /** Also score the held-out queries under this attack. */
  evalAttack?: AttackOptions;
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
  train?: { loss: number; accuracy: number };
  eval?: EvaluateResult;
}

/** Everything needed to continue a training exactly: parameters (public layout) and optimizer state. */
export interface LearnerState {
  params: Float32Array;
  /** [m | v | step count] of the outer optimizer, internal layout (opaque to users). */
  optimizer: Float32Array;
}
