// Reptile (Nichol et al. 2018): per task, n plain SGD steps of rate α on the task's support and query
// rows together, from θ; then θ ← θ + β · mean_t(θ'_t − θ). No query split and no second order. The
// update is the outer optimizer's on the "gradient" g_t = θ − θ'_t: SGD with rate β is exactly the rule
// above, Adam acts on −mean_t(θ'_t − θ). Query statistics are those of θ'_t on its query rows (which the
// inner loop also saw: a training figure); evaluation adapts on the support rows alone, as for MAML.
//
//   plan: tasks on support ∪ query (no meta-gradient) → difference θ − θ'_t → update
import type { AlgorithmSpec, Capabilities, CommonOptions, Defaults, OptionHelp } from './common.js';
import type { ResolvedLearnerOptions } from './index.js';
import { MAML_CAPABILITIES, META_CORE_DEFAULTS, META_CORE_HELP, type MetaLearnerCoreOptions } from './maml.js';
import type { Plan } from './plan.js';

export interface ReptileOptions extends CommonOptions, Omit<MetaLearnerCoreOptions, 'order' | keyof CommonOptions> {
  algorithm: 'reptile';
}

const { order: _order, ...CORE_WITHOUT_ORDER } = META_CORE_DEFAULTS;

/** β = 0.1 interpolates a tenth of the way to the mean adapted parameters; 5 inner steps (the papers use
 * 5 to 10). */
export const REPTILE_DEFAULTS = {
  ...CORE_WITHOUT_ORDER,
  outerLr: 0.1,
  innerSteps: 5,
} satisfies Defaults<ReptileOptions>;

const { order: _orderHelp, ...CORE_HELP_WITHOUT_ORDER } = META_CORE_HELP;
export const REPTILE_HELP: Partial<Record<keyof Defaults<ReptileOptions>, OptionHelp>> = { ...CORE_HELP_WITHOUT_ORDER };

export function reptilePlan(o: ResolvedLearnerOptions, apply: boolean): Plan {
  return {
    sets: 1,
    steps: [
      { kind: 'tasks', support: 'joint', query: 'clean', outSet: 0, innerLr: o.innerLr, innerSteps: o.innerSteps, wantMetaGrad: false, writeBack: false },
      { kind: 'difference' },
      { kind: 'update', apply },
    ],
  };
}

export const REPTILE_CAPABILITIES: Capabilities = {
  ...MAML_CAPABILITIES,
  perturb: () => null,
};

export const reptile: AlgorithmSpec<'reptile', ReptileOptions> = {
  name: 'reptile',
  defaults: REPTILE_DEFAULTS,
  help: REPTILE_HELP,
  plan: reptilePlan,
  capabilities: REPTILE_CAPABILITIES,
};
