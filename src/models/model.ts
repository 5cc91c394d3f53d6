// What engines and the learner ask of the model option: the layout of an MLP (null for the logistic
// unit) and the parameter counts of the public and internal layouts.
import { mlpLayout, type MlpLayout } from './mlp.js';
import { capabilitiesOf } from '../algorithms/index.js';
import type { ResolvedLearnerOptions } from '../types.js';

/** The MLP layout of a learner (CAML adds its context to the inputs), or null for the logistic unit. */
export function mlpLayoutOf(o: ResolvedLearnerOptions): MlpLayout | null {
  if (o.model.kind !== 'mlp') return null;
  return mlpLayout(o.dim, o.model.hidden, o.model.classes, capabilitiesOf(o).context(o), o.model.norm === 'task');
}

/** Models a learner holds: AMP trains `models` independent ones, the meta-learners one θ. */
export const modelCount = (o: ResolvedLearnerOptions): number => capabilitiesOf(o).models(o);
