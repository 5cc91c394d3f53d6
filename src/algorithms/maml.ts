// MAML (Finn et al. 2017): the one core every other algorithm changes a little. Per task, n inner SGD
// steps of rate α on the support set from θ, the query loss at θ'_t, and its gradient with respect to θ
// (order 1: at θ'_t; order 2: exactly, through the inner steps); the outer update averages them.
//
//   plan: tasks → update
import { COMMON_DEFAULTS, COMMON_HELP, uniformWeights, type AlgorithmSpec, type Capabilities, type CommonOptions, type Defaults, type OptionHelp } from './common.js';
import { AMP_INNER_DEFAULTS, AMP_INNER_HELP, innerPerturbation, type AmpInnerOptimizerOptions } from './amp-inner.js';
import type { ResolvedLearnerOptions } from './index.js';
import type { DataSide, Plan, PlanStep } from './plan.js';

export type Optimizer = 'sgd' | 'adam';

/** The inner and outer loops' options every meta-learner shares (Meta-SGD, ANIL and Reptile take
 * these alone). */
export interface MetaLearnerCoreOptions extends CommonOptions {
  /** α (ADML: α1, the clean inner rate). */
  innerLr?: number;
  /** β (ADML: β1, the rate of the clean-adapted gradient). */
  outerLr?: number;
  innerSteps?: number;
  /** 1: first-order; 2: exact second order through the inner steps (default 1; CAML: 2). */
  order?: 1 | 2;
  /** Outer update: 'sgd' or 'adam' (β1, β2 = adamBetas, ε = adamEpsilon). */
  optimizer?: Optimizer;
  adamBetas?: [number, number];
  adamEpsilon?: number;
}

/** Options of the meta-learners: MAML, and ADML, GA-MAML and CAML, which extend it. */
export interface MetaLearnerOptions extends MetaLearnerCoreOptions, AmpInnerOptimizerOptions {}

export interface MamlOptions extends MetaLearnerOptions {
  /** The default algorithm: may be left out. */
  algorithm?: 'maml';
}

export const META_CORE_DEFAULTS = {
  ...COMMON_DEFAULTS,
  innerLr: 0.01,
  outerLr: 0.001,
  innerSteps: 1,
  order: 1,
  optimizer: 'sgd',
  adamBetas: [0.9, 0.999],
  adamEpsilon: 1e-8,
} satisfies Defaults<MetaLearnerCoreOptions>;

export const MAML_DEFAULTS = {
  ...META_CORE_DEFAULTS,
  ...AMP_INNER_DEFAULTS,
} satisfies Defaults<MamlOptions>;

export const META_CORE_HELP: Partial<Record<keyof Defaults<MetaLearnerCoreOptions>, OptionHelp>> = {
  ...COMMON_HELP,
  innerLr: { help: 'α (adml: α1; meta-sgd: the initial step sizes)', flag: 'number' },
  outerLr: { help: 'β (adml: β1; reptile: the interpolation rate)', flag: 'number' },
  innerSteps: { help: 'inner steps n (0: joint training, no adaptation)', flag: 'int' },
  order: { help: 'meta-gradient order (1: first order, 2: through the inner steps)', flag: ['1', '2'] },
  optimizer: { help: 'outer optimizer', flag: ['sgd', 'adam'] },
  adamBetas: { help: "Adam's β1, β2" },
  adamEpsilon: { help: "Adam's ε" },
};

export const MAML_HELP: Partial<Record<keyof Defaults<MamlOptions>, OptionHelp>> = {
  ...META_CORE_HELP,
  ...AMP_INNER_HELP,
};

/** The per-task pass of the MAML core: adapt on `support`, score and differentiate on `query`. */
export function metaTasks(o: ResolvedLearnerOptions, support: DataSide, query: DataSide, outSet: number, innerLr: number): PlanStep {
  return { kind: 'tasks', support, query, outSet, innerLr, innerSteps: o.innerSteps, wantMetaGrad: true, writeBack: false };
}

export function mamlPlan(o: ResolvedLearnerOptions, apply: boolean): Plan {
  return { sets: 1, steps: [metaTasks(o, 'clean', 'clean', 0, o.innerLr), { kind: 'update', apply }] };
}

/** One shared θ, adapted whole; the inner optimizer may be AMP's. ADML, GA-MAML and CAML start here. */
export const MAML_CAPABILITIES: Capabilities = {
  metaGradient: true,
  thetaPerTask: false,
  adapt: 'all',
  stepSizes: false,
  taskKernel: 'maml',
  episode: false,
  models: () => 1,
  paramVectors: () => 1,
  context: () => 0,
  perturb: innerPerturbation,
  evaluateDefaults: (o) => ({ steps: o.innerSteps, lr: o.innerLr }),
  taskWeights: uniformWeights,
};

export const maml: AlgorithmSpec<'maml', MamlOptions> = {
  name: 'maml',
  defaults: MAML_DEFAULTS,
  help: MAML_HELP,
  plan: mamlPlan,
  capabilities: MAML_CAPABILITIES,
};
