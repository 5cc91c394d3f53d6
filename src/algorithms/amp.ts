// AMP (Zheng et al. 2021) as a trainer of its own: `models` independent logistic models (or MLPs), model
// t trained on task t's support rows with AMP's step: the gradient is taken at θ_t + Δ, where Δ ascends
// the loss for N steps of size ζ within the L2 ball of radius ε; then θ_t ← θ_t − η·∇. There is no
// meta-gradient and no outer optimizer (plain SGD with step η, the paper's). The same step as an
// inner optimizer of the meta-learners is amp-inner.ts.
//
//   plan: tasks with each task's own model, AMP perturbation, 1 step of size η, written back
import { COMMON_DEFAULTS, COMMON_HELP, uniformWeights, type AlgorithmSpec, type Capabilities, type CommonOptions, type Defaults, type OptionHelp } from './common.js';
import type { ResolvedLearnerOptions } from './index.js';
import type { Plan } from './plan.js';

export interface AmpOptions extends CommonOptions {
  algorithm: 'amp';
  /** M, the models: model t is trained and scored on task t, so batches hold M tasks. */
  models?: number;
  /** η */
  lr?: number;
  /** ζ, the ascent step of the perturbation. */
  perturbLr?: number;
  /** N, ascent steps per training step. */
  perturbSteps?: number;
  /** ε, the L2 radius of the perturbation. */
  epsilon?: number;
}

export const AMP_DEFAULTS = {
  ...COMMON_DEFAULTS,
  models: 1,
  lr: 0.1,
  perturbLr: 1,
  perturbSteps: 1,
  epsilon: 0.5,
} satisfies Defaults<AmpOptions>;

export const AMP_HELP: Partial<Record<keyof Defaults<AmpOptions>, OptionHelp>> = {
  ...COMMON_HELP,
  models: { help: 'M, independent models (the CLI: --tasks)' },
  lr: { help: 'η, the step of each model', flag: 'number' },
  perturbLr: { help: 'AMP ζ, the ascent step of the perturbation', flag: 'number' },
  perturbSteps: { help: 'AMP N, ascent steps per inner step', flag: 'int' },
  epsilon: { help: 'L2 radius ε of the perturbation', flag: 'number' },
};

export function ampPlan(o: ResolvedLearnerOptions): Plan {
  return {
    sets: 1,
    steps: [{ kind: 'tasks', support: 'clean', query: 'clean', outSet: 0, innerLr: o.lr, innerSteps: 1, wantMetaGrad: false, writeBack: true }],
  };
}

export const AMP_CAPABILITIES: Capabilities = {
  metaGradient: false,
  episode: false,
  thetaPerTask: true,
  adapt: 'all',
  stepSizes: false,
  taskKernel: 'maml',
  models: (o) => o.models,
  paramVectors: (o) => o.models,
  context: () => 0,
  perturb: (o) => ({ steps: o.perturbSteps, lr: o.perturbLr, radius: o.epsilon }),
  // The models are scored as they are (0 steps) unless asked to adapt.
  evaluateDefaults: (o) => ({ steps: 0, lr: o.lr }),
  taskWeights: uniformWeights,
};

export const amp: AlgorithmSpec<'amp', AmpOptions> = {
  name: 'amp',
  defaults: AMP_DEFAULTS,
  help: AMP_HELP,
  plan: ampPlan,
  capabilities: AMP_CAPABILITIES,
};
