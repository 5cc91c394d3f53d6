// Meta-SGD (Li et al. 2017): MAML whose inner step size is a learned vector α the size of θ,
// θ'_t = θ − α ⊙ ∇L(θ; S_t) (n steps, each with the same α), meta-learned with θ by the outer optimizer.
// α starts at innerLr everywhere. Order 1 treats the inner gradients as constants (∂θ'/∂α = −∇L(θ; S));
// order 2 differentiates through them exactly. The engines hold [θ | α] (two vectors) and the task pass's
// meta-gradient is [g_θ | g_α]; getParams() stays θ, getStepSizes() returns α. Evaluation adapts with α.
//
//   plan: tasks (step α ⊙ g; meta-gradient for θ and α) → update
import type { AlgorithmSpec, Capabilities, Defaults, OptionHelp } from './common.js';
import { MAML_CAPABILITIES, mamlPlan, META_CORE_DEFAULTS, META_CORE_HELP, type MetaLearnerCoreOptions } from './maml.js';

export interface MetaSgdOptions extends MetaLearnerCoreOptions {
  algorithm: 'meta-sgd';
}

export const META_SGD_DEFAULTS = { ...META_CORE_DEFAULTS } satisfies Defaults<MetaSgdOptions>;

export const META_SGD_HELP: Partial<Record<keyof Defaults<MetaSgdOptions>, OptionHelp>> = { ...META_CORE_HELP };

export const META_SGD_CAPABILITIES: Capabilities = {
  ...MAML_CAPABILITIES,
  stepSizes: true,
  // [θ | α] for the logistic unit; an MLP's two vectors are counted by the model (src/models/model.ts).
  paramVectors: () => 2,
  perturb: () => null,
};

export const metaSgd: AlgorithmSpec<'meta-sgd', MetaSgdOptions> = {
  name: 'meta-sgd',
  defaults: META_SGD_DEFAULTS,
  help: META_SGD_HELP,
  plan: mamlPlan,
  capabilities: META_SGD_CAPABILITIES,
};
