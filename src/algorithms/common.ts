// What every algorithm file (maml.ts, adml.ts, ga-maml.ts, caml.ts, amp.ts) declares, and the options
// all of them share. An algorithm is one object: its defaults (the only place they live), the help of
// its own options (the CLI's flags are made from it), its plan (the steps both engines run) and its
// capabilities (what the engines, the learner, validation and the CLI ask instead of testing its name).
import type { PerturbParams } from '../cpu/maml-task.js';
import type { ModelSpec } from '../models/mlp.js';
import type { ResolvedLearnerOptions } from './index.js';
import type { Plan } from './plan.js';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

/** Options of every algorithm. */
export interface CommonOptions {
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
}

export const COMMON_DEFAULTS = {
  backend: 'auto',
  model: { kind: 'logistic' },
  seed: 1,
  initScale: 0.01,
  threads: 0,
  validate: true,
} as const satisfies Defaults<CommonOptions>;

/** No clipping: the largest finite float32, since WGSL may assume values are finite. */
export const NO_CLIP: [number, number] = [-3.4028234663852886e38, 3.4028234663852886e38];

/** A default that is another option's resolved value (ADML's α2 = α1 unless given). */
export interface SameAs { sameAs: string }
export const sameAs = (option: string): SameAs => ({ sameAs: option });

/** The defaults of an options interface: a value for every option but `algorithm` and `dim`. */
export type Defaults<O> = { [K in Exclude<keyof O, 'algorithm' | 'dim'>]-?: Exclude<O[K], undefined> | SameAs };

/** How an option is described to people: `help` (the CLI's --help line, error hints) and, when it is
 * a command-line flag (`--kebab-case-name`), how the flag's text is read. */
export interface OptionHelp {
  help: string;
  flag?: 'number' | 'int' | 'pair' | readonly string[];
}

/** Help of the options every algorithm shares (those that are CLI flags). */
export const COMMON_HELP: Partial<Record<keyof CommonOptions, OptionHelp>> = {
  seed: { help: 'seed of the initial parameters and of task sampling', flag: 'int' },
  backend: { help: 'compute backend', flag: ['auto', 'webgpu', 'cpu'] },
};

/** What an algorithm can do and how it holds its parameters: what engines, learner, validation and the
 * CLI ask instead of testing the algorithm's name. */
export interface Capabilities {
  /** A meta-gradient and task weights exist (metaGradient(), step's returnWeights); false for AMP's
   * independent models. */
  metaGradient: boolean;
  /** θ holds one model per task, model t trained and scored on task t (AMP): batches hold exactly
   * models(o) tasks, training samples and evaluation scores that many. */
  thetaPerTask: boolean;
  /** What the inner loop adapts: every parameter, only the per-task context φ (CAML), or only the MLP's
   * last layer W_L, b_L (ANIL; the logistic unit is all head). The AMP inner optimizer perturbs every
   * parameter, so it needs 'all'. */
  adapt: 'all' | 'context' | 'head';
  /** θ is followed by a learned vector α of per-parameter inner step sizes, meta-learned with θ
   * (Meta-SGD): the engines hold [θ | α] and the task passes take the step α ⊙ g. */
  stepSizes: boolean;
  /** The fused per-task kernel of the logistic model (maml-task or caml-task). */
  taskKernel: 'maml' | 'caml';
  /** Prototypical networks: the model is the network's body, and the query pass scores each task's
   * episode (support ∪ query rows through the body together) against prototypes of its support rows. */
  episode: boolean;
  /** Parameter sets held: AMP's models, else 1. */
  models(o: ResolvedLearnerOptions): number;
  /** Vectors of dim floats of the logistic model: 1, CAML's 1 + C, AMP's models, Meta-SGD's 2 (θ, α). */
  paramVectors(o: ResolvedLearnerOptions): number;
  /** Inputs an MLP's first layer gets besides the data: CAML's context C, else 0. */
  context(o: ResolvedLearnerOptions): number;
  /** AMP's perturbation of the inner gradients (the trainer's own, or the AMP inner optimizer's). */
  perturb(o: ResolvedLearnerOptions): PerturbParams | null;
  /** evaluate() without `steps` / `lr`: the learner's inner loop, or AMP's models as they are (0 steps). */
  evaluateDefaults(o: ResolvedLearnerOptions): { steps: number; lr: number };
  /** Weights of the sets×T per-task meta-gradients in the update (uniform 1/T unless said otherwise). */
  taskWeights(o: ResolvedLearnerOptions, tasks: number, sets: number): Float32Array;
  /** The logistic model's public parameter layout, when it differs from the engines' (CAML's W). */
  publicLayout?: PublicLayout;
}

/** Conversions between the public parameter layout (getParams/setParams) and the engines' (logistic). */
export interface PublicLayout {
  describe(o: ResolvedLearnerOptions): string;
  toPublic(internal: Float32Array, o: ResolvedLearnerOptions): Float32Array;
  fromPublic(pub: Float32Array, o: ResolvedLearnerOptions): Float32Array;
  /** Initial parameters in the internal layout. */
  init(o: ResolvedLearnerOptions): Float32Array;
}

/** One algorithm: its name, defaults, option help, plan and capabilities. */
export interface AlgorithmSpec<Name extends string = string, Options = object> {
  name: Name;
  /** Every option the algorithm takes (but `algorithm` and `dim`) with its default. */
  defaults: Defaults<Options>;
  /** Help of the options that are its own (the shared ones are described where they are declared). */
  help: Partial<Record<keyof Defaults<Options>, OptionHelp>>;
  /** One meta-iteration (apply = false: compute the combined meta-gradient without applying it). */
  plan(o: ResolvedLearnerOptions, apply: boolean): Plan;
  capabilities: Capabilities;
}

/** Uniform task weights 1/T over every set. */
export const uniformWeights = (_o: ResolvedLearnerOptions, tasks: number, sets: number): Float32Array => new Float32Array(sets * tasks).fill(1 / tasks);
