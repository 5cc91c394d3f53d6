// Gradient-agreement MAML (Eshratifar et al. 2018): the task updates u_t = θ − θ'_t are weighted by how
// they agree with the others, w_t = Σ_j u_t·u_j / Σ_k |Σ_j u_k·u_j| ('paper'), or with the denominator
// Σ_k Σ_j |u_k·u_j| ('notebook'); the weights are computed on the device, with no readback.
//
//   plan: tasks → ga-weights → update
import type { AlgorithmSpec, Defaults, OptionHelp } from './common.js';
import type { ResolvedLearnerOptions } from './index.js';
import { MAML_CAPABILITIES, MAML_DEFAULTS, MAML_HELP, metaTasks, type MetaLearnerOptions } from './maml.js';
import type { Plan } from './plan.js';

export interface GaMamlOptions extends MetaLearnerOptions {
  algorithm: 'ga-maml';
  /** 'paper': Σ_k |Σ_j u_k·u_j| denominator; 'notebook': Σ_k Σ_j |u_k·u_j|. */
  normalization?: 'paper' | 'notebook';
}

export const GA_MAML_DEFAULTS = {
  ...MAML_DEFAULTS,
  normalization: 'paper',
} satisfies Defaults<GaMamlOptions>;

export const GA_MAML_HELP: Partial<Record<keyof Defaults<GaMamlOptions>, OptionHelp>> = {
  ...MAML_HELP,
  normalization: { help: 'weight normalisation', flag: ['paper', 'notebook'] },
};

export function gaMamlPlan(o: ResolvedLearnerOptions, apply: boolean): Plan {
  return { sets: 1, steps: [metaTasks(o, 'clean', 'clean', 0, o.innerLr), { kind: 'ga-weights', normalization: o.normalization }, { kind: 'update', apply }] };
}

/** MAML's: the first T task weights are overwritten on the device each iteration. */
export const GA_MAML_CAPABILITIES = MAML_CAPABILITIES;

export const gaMaml: AlgorithmSpec<'ga-maml', GaMamlOptions> = {
  name: 'ga-maml',
  defaults: GA_MAML_DEFAULTS,
  help: GA_MAML_HELP,
  plan: gaMamlPlan,
  capabilities: GA_MAML_CAPABILITIES,
};
