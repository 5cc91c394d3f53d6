// CAML / CAVIA (Zintgraf et al. 2019): shared parameters w (D) and W (D×C); only the per-task context
// φ ∈ R^C adapts, from 0, and the task's model is θ_t = w + Wφ_t. Differentiates through the context
// by default (order 2). The logistic model stores [w | W_0 … W_{C−1}] (W_c = column c, so every
// per-feature loop stays a vec4 loop); the public layout is w, then W row-major.
//
//   plan: tasks (CAML kernel: only the context adapts) → update
import { camlFromPublic, camlToPublic } from '../cpu/caml-task.js';
import { initialParams } from '../rng.js';
import type { AlgorithmSpec, Capabilities, Defaults, OptionHelp, PublicLayout } from './common.js';
import type { ResolvedLearnerOptions } from './index.js';
import { MAML_CAPABILITIES, MAML_DEFAULTS, MAML_HELP, mamlPlan, type MetaLearnerOptions } from './maml.js';

export interface CamlOptions extends MetaLearnerOptions {
  algorithm: 'caml';
  /** C, the size of the per-task context φ. Parameters are w (D) then W (D×C row-major); w starts at
   * N(0, initScale²), W at N(0, max(initScale, 1/√D)²): W = 0 is a fixed point of CAVIA's gradient. */
  contextDim?: number;
  /** Only 'sgd': the AMP inner optimizer perturbs every parameter, CAML adapts only φ. */
  innerOptimizer?: 'sgd';
}

export const CAML_DEFAULTS = {
  ...MAML_DEFAULTS,
  order: 2,
  contextDim: 4,
} satisfies Defaults<CamlOptions>;

export const CAML_HELP: Partial<Record<keyof Defaults<CamlOptions>, OptionHelp>> = {
  ...MAML_HELP,
  contextDim: { help: 'context size C', flag: 'int' },
};

/** MAML's plan: the per-task kernel (the capability below) makes it CAML. */
export const camlPlan = mamlPlan;

const CAML_LAYOUT: PublicLayout = {
  describe: (o) => `w (dim = ${o.dim}) then W (dim × contextDim = ${o.dim} × ${o.contextDim}, row-major)`,
  toPublic: (internal, o) => camlToPublic(internal, o.dim, o.contextDim),
  fromPublic: (pub, o) => camlFromPublic(pub, o.dim, o.contextDim),
  init(o: ResolvedLearnerOptions) {
    const unit = initialParams((1 + o.contextDim) * o.dim, o.seed, 1);
    const wScale = Math.max(o.initScale, 1 / Math.sqrt(o.dim));
    return unit.map((v, i) => v * (i < o.dim ? o.initScale : wScale));
  },
};

export const CAML_CAPABILITIES: Capabilities = {
  ...MAML_CAPABILITIES,
  adapt: 'context',
  taskKernel: 'caml',
  paramVectors: (o) => 1 + o.contextDim,
  context: (o) => o.contextDim,
  publicLayout: CAML_LAYOUT,
};

export const caml: AlgorithmSpec<'caml', CamlOptions> = {
  name: 'caml',
  defaults: CAML_DEFAULTS,
  help: CAML_HELP,
  plan: camlPlan,
  capabilities: CAML_CAPABILITIES,
};
