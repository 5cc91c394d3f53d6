// ADML (Yin et al. 2018): MAML with FGSM samples. The support and query rows are attacked against θ;
// θ'_clean (rate α1) is scored on the adversarial queries and θ'_adv (α2) on the clean ones ('cross',
// the paper; 'same': clean → clean, adv → adv, seed notebook 000), and θ ← θ − β1·g_c − β2·g_a.
//
//   plan: attack S, attack Q against θ → tasks(S, Q_adv; α1) → tasks(S_adv, Q; α2) → update over 2T
import type { AttackParams } from '../cpu/fgsm.js';
import { NO_CLIP, sameAs, type AlgorithmSpec, type Defaults, type OptionHelp } from './common.js';
import type { ResolvedLearnerOptions } from './index.js';
import { MAML_CAPABILITIES, MAML_DEFAULTS, MAML_HELP, metaTasks, type MetaLearnerOptions } from './maml.js';
import type { Plan } from './plan.js';

export interface AdmlOptions extends MetaLearnerOptions {
  algorithm: 'adml';
  /** α2, the inner rate on adversarial support sets (default: innerLr). */
  innerLrAdv?: number;
  /** β2, the rate of the adversarially-adapted gradient (default: outerLr). */
  outerLrAdv?: number;
  /** FGSM step ε of the adversarial samples (L∞). */
  epsilon?: number;
  /** Inputs are clipped to [lo, hi] after each attack step (default: no clipping). */
  clip?: [number, number];
  /** 'cross' (the paper): θ'_clean on adversarial queries, θ'_adv on clean ones; 'same': seed notebook 000. */
  pairing?: 'cross' | 'same';
}

export const ADML_DEFAULTS = {
  ...MAML_DEFAULTS,
  innerLrAdv: sameAs('innerLr'),
  outerLrAdv: sameAs('outerLr'),
  epsilon: 0.1,
  clip: NO_CLIP,
  pairing: 'cross',
} satisfies Defaults<AdmlOptions>;

export const ADML_HELP: Partial<Record<keyof Defaults<AdmlOptions>, OptionHelp>> = {
  ...MAML_HELP,
  innerLrAdv: { help: 'α2, the inner rate on adversarial support sets', flag: 'number' },
  outerLrAdv: { help: 'β2, the rate of the adversarially-adapted gradient', flag: 'number' },
  epsilon: { help: 'FGSM step ε (L∞) of the adversarial samples', flag: 'number' },
  clip: { help: 'input range lo,hi after each attack step', flag: 'pair' },
  pairing: { help: "'cross': θ'_clean scored on adversarial queries, θ'_adv on clean; 'same': clean→clean, adv→adv", flag: ['cross', 'same'] },
};

export function admlPlan(o: ResolvedLearnerOptions, apply: boolean): Plan {
  const fgsm: AttackParams = { kind: 'fgsm', epsilon: o.epsilon, steps: 1, stepSize: o.epsilon, lo: o.clip[0], hi: o.clip[1] };
  const cross = o.pairing === 'cross';
  return {
    sets: 2,
    steps: [
      { kind: 'attack', rows: 'support', against: 'theta', attack: fgsm },
      { kind: 'attack', rows: 'query', against: 'theta', attack: fgsm },
      metaTasks(o, 'clean', cross ? 'adv' : 'clean', 0, o.innerLr),
      metaTasks(o, 'adv', cross ? 'clean' : 'adv', 1, o.innerLrAdv),
      { kind: 'update', apply },
    ],
  };
}

/** β2/β1 is folded into the weights of the adversarial set, so that θ − β1·Σ w g = θ − β1 g_c − β2 g_a
 * with one update (with Adam, Adam runs on g_c + (β2/β1) g_a). */
export function admlWeights(o: ResolvedLearnerOptions, tasks: number, sets: number): Float32Array {
  return new Float32Array(sets * tasks).fill(1 / tasks).fill(o.outerLrAdv / o.outerLr / tasks, tasks);
}

export const ADML_CAPABILITIES = { ...MAML_CAPABILITIES, taskWeights: admlWeights };

export const adml: AlgorithmSpec<'adml', AdmlOptions> = {
  name: 'adml',
  defaults: ADML_DEFAULTS,
  help: ADML_HELP,
  plan: admlPlan,
  capabilities: ADML_CAPABILITIES,
};
