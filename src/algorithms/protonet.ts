// Prototypical networks (Snell et al. 2017; ../shared/SPEC.md "Prototypical networks"): no inner loop.
// The model is the learner's network without its head (the body f_θ); per task, the prototype of class
// k is the mean embedding of k's support rows, a query row's logits are −‖f(x) − c_k‖², and the loss is
// the cross-entropy over the query rows; θ ← the outer optimizer (Adam by default) on its gradient.
// Support and query rows go through the body together, one pass per task ("episode" rows: support ∪
// query, as the reference implementation concatenates them), so a body with per-task norm normalises
// over the whole episode — the statistics the prototypes and the queries are embedded with agree.
//
//   plan: tasks (0 inner steps; the query pass scores the episode against its prototypes) → update
import { COMMON_DEFAULTS, COMMON_HELP, type AlgorithmSpec, type Capabilities, type CommonOptions, type Defaults, type OptionHelp } from './common.js';
import type { ResolvedLearnerOptions } from './index.js';
import { MAML_CAPABILITIES, type Optimizer } from './maml.js';
import type { Plan } from './plan.js';

export interface ProtonetOptions extends CommonOptions {
  algorithm: 'protonet';
  /** The outer optimizer's rate (Adam's default 1e-3, as the paper). */
  outerLr?: number;
  optimizer?: Optimizer;
  adamBetas?: [number, number];
  adamEpsilon?: number;
}

export const PROTONET_DEFAULTS = {
  ...COMMON_DEFAULTS,
  outerLr: 0.001,
  optimizer: 'adam',
  adamBetas: [0.9, 0.999],
  adamEpsilon: 1e-8,
} satisfies Defaults<ProtonetOptions>;

export const PROTONET_HELP: Partial<Record<keyof Defaults<ProtonetOptions>, OptionHelp>> = {
  ...COMMON_HELP,
  outerLr: { help: 'the outer optimizer\'s rate', flag: 'number' },
  optimizer: { help: 'outer optimizer', flag: ['sgd', 'adam'] },
  adamBetas: { help: "Adam's β1, β2" },
  adamEpsilon: { help: "Adam's ε" },
};

export function protonetPlan(_o: ResolvedLearnerOptions, apply: boolean): Plan {
  return {
    sets: 1,
    steps: [
      { kind: 'tasks', support: 'clean', query: 'clean', episode: true, outSet: 0, innerLr: 0, innerSteps: 0, wantMetaGrad: true, writeBack: false },
      { kind: 'update', apply },
    ],
  };
}

export const PROTONET_CAPABILITIES: Capabilities = {
  ...MAML_CAPABILITIES,
  episode: true,
  perturb: () => null,
  evaluateDefaults: () => ({ steps: 0, lr: 0 }),
};

export const protonet: AlgorithmSpec<'protonet', ProtonetOptions> = {
  name: 'protonet',
  defaults: PROTONET_DEFAULTS,
  help: PROTONET_HELP,
  plan: protonetPlan,
  capabilities: PROTONET_CAPABILITIES,
};
