// The AMP inner optimizer: the AMP step (Zheng et al. 2021; the `amp` trainer, amp.ts) used as the inner
// loop of MAML, ADML or GA-MAML. Each inner step takes the support gradient at θ'+Δ, where Δ ascends
// the support loss for N steps of size ζ and stays in the L2 ball of radius ε (shaders/norm-clip.wgsl).
import type { PerturbParams } from '../cpu/maml-task.js';
import type { Defaults, OptionHelp } from './common.js';
import { AMP_DEFAULTS, AMP_HELP } from './amp.js';

export interface AmpInnerOptimizerOptions {
  /** Inner-loop optimizer: plain 'sgd', or 'amp' (gradient at an adversarially perturbed point). */
  innerOptimizer?: 'sgd' | 'amp';
  /** ζ, the ascent step of the perturbation. */
  perturbLr?: number;
  /** N, ascent steps per inner step. */
  perturbSteps?: number;
  /** ε, the L2 radius of the perturbation. */
  perturbEpsilon?: number;
}

/** ζ, N and ε are the AMP trainer's. */
export const AMP_INNER_DEFAULTS = {
  innerOptimizer: 'sgd',
  perturbLr: AMP_DEFAULTS.perturbLr,
  perturbSteps: AMP_DEFAULTS.perturbSteps,
  perturbEpsilon: AMP_DEFAULTS.epsilon,
} as const satisfies Defaults<AmpInnerOptimizerOptions>;

export const AMP_INNER_HELP: Record<keyof AmpInnerOptimizerOptions, OptionHelp> = {
  innerOptimizer: { help: 'inner optimizer (amp: AMP-perturbed gradient)', flag: ['sgd', 'amp'] },
  perturbLr: AMP_HELP.perturbLr!,
  perturbSteps: AMP_HELP.perturbSteps!,
  perturbEpsilon: { help: 'ε of the AMP inner optimizer (L2 radius)', flag: 'number' },
};

/** The perturbation of the inner loop: AMP's when the inner optimizer is 'amp', none for SGD. */
export function innerPerturbation(o: Required<AmpInnerOptimizerOptions>): PerturbParams | null {
  return o.innerOptimizer === 'amp' ? { steps: o.perturbSteps, lr: o.perturbLr, radius: o.perturbEpsilon } : null;
}
