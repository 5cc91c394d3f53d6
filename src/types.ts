/** One batch of T few-shot tasks. Arrays are row-major and task-major: row k of task t starts at
 * ((t · Ks) + k) · dim in supportX. Labels are exactly 0 or 1. */
export interface Batch {
  tasks: number;
  supportShots: number;
  queryShots: number;
  supportX: Float32Array;
  supportY: Float32Array;
  queryX: Float32Array;
  queryY: Float32Array;
}

export type Algorithm = 'maml';
export type BackendChoice = 'auto' | 'webgpu' | 'cpu';
export type Optimizer = 'sgd' | 'adam';

/** Options of createLearner, with their defaults (see DEFAULT_LEARNER_OPTIONS). */
export interface LearnerOptions {
  algorithm?: Algorithm;
  /** 'auto' (default) uses WebGPU when an adapter exists and the CPU backend otherwise. */
  backend?: BackendChoice;
  /** Features per row (required). A bias is a constant-1 feature the caller adds. */
  dim: number;
  innerLr?: number;
  outerLr?: number;
  innerSteps?: number;
  /** 1: first-order MAML (FOMAML); 2: exact second order through the inner steps. */
  order?: 1 | 2;
  optimizer?: Optimizer;
  /** Adam's β1, β2, ε (ignored by sgd). */
  adamBetas?: [number, number];
  adamEpsilon?: number;
  /** Seeds the initial parameters θ ~ N(0, initScale²). */
  seed?: number;
  initScale?: number;
  /** Check batches for NaN/Inf and labels outside {0,1} before each step (default true). */
  validate?: boolean;
}

export type ResolvedLearnerOptions = Required<LearnerOptions>;

export const DEFAULT_LEARNER_OPTIONS: Omit<ResolvedLearnerOptions, 'dim'> = {
  algorithm: 'maml',
  backend: 'auto',
  innerLr: 0.01,
  outerLr: 0.001,
  innerSteps: 1,
  order: 1,
  optimizer: 'sgd',
  adamBetas: [0.9, 0.999],
  adamEpsilon: 1e-8,
  seed: 1,
  initScale: 0.01,
  validate: true,
};

export interface StepOptions {
  /** Meta-iterations to run on this batch, recorded into one command buffer (default 1). */
  iterations?: number;
  /** Read back the mean query loss/accuracy at the adapted parameters (default false: no readback). */
  readback?: boolean;
}

/** Query metrics at the adapted parameters of the last iteration, before its outer update. */
export interface StepMetrics {
  loss: number;
  accuracy: number;
}

export interface EvaluateOptions {
  /** Inner steps on each task's support set (default: the learner's innerSteps; 0 scores θ itself). */
  steps?: number;
  /** Inner learning rate (default: the learner's innerLr). */
  lr?: number;
}

/** Mean over tasks with the half-width of a 95% confidence interval (1.96 · sd / √T). */
export interface MeanWithInterval {
  mean: number;
  ci95: number;
}

export interface EvaluateResult {
  loss: number;
  accuracy: number;
  lossInterval: MeanWithInterval;
  accuracyInterval: MeanWithInterval;
  /** Per-task query loss and accuracy after adaptation. */
  taskLoss: Float32Array;
  taskAccuracy: Float32Array;
}

export interface BackendInfo {
  kind: 'webgpu' | 'cpu';
  /** Adapter description (vendor, architecture, path used), or 'cpu'. */
  adapter: string;
  /** True when WebGPU runs on a software rasteriser (llvmpipe, SwiftShader). */
  software: boolean;
}
