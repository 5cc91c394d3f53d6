// ANIL, "almost no inner loop" (Raghu et al. 2020): MAML whose inner loop adapts only the last layer
// (W_L, b_L) of an MLP; the body gets its meta-gradient through the head's adaptation (order 1: the
// query gradient at θ'; order 2: exactly, through the head's inner steps). The body's features are the
// same for every inner step and, on the GPU, computed once per task pass with the shared body weights.
// The logistic unit is all head: there ANIL is MAML.
//
//   plan: tasks (only the head adapts) → update
import type { AlgorithmSpec, Capabilities, Defaults, OptionHelp } from './common.js';
import { MAML_CAPABILITIES, mamlPlan, META_CORE_DEFAULTS, META_CORE_HELP, type MetaLearnerCoreOptions } from './maml.js';

export interface AnilOptions extends MetaLearnerCoreOptions {
  algorithm: 'anil';
}

export const ANIL_DEFAULTS = { ...META_CORE_DEFAULTS } satisfies Defaults<AnilOptions>;

export const ANIL_HELP: Partial<Record<keyof Defaults<AnilOptions>, OptionHelp>> = { ...META_CORE_HELP };

export const ANIL_CAPABILITIES: Capabilities = {
  ...MAML_CAPABILITIES,
  adapt: 'head',
  perturb: () => null,
};

export const anil: AlgorithmSpec<'anil', AnilOptions> = {
  name: 'anil',
  defaults: ANIL_DEFAULTS,
  help: ANIL_HELP,
  plan: mamlPlan,
  capabilities: ANIL_CAPABILITIES,
};
