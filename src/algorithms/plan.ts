// Every algorithm of metagrad is the one MAML core (a per-task pass: inner loop, query statistics,
// meta-gradient) plus a few small extra steps. A Plan lists those steps; both engines interpret the
// same plan (the GPU engine records each step as one or more dispatches into one compute pass, the
// CPU engine runs its twins), so an algorithm is written once, here.
//
//   maml     tasks → update
//   ga-maml  tasks → ga-weights → update                     (weights computed on the device)
//   caml     tasks (CAML kernel: only the context adapts) → update
//   adml     attack S, attack Q against θ → tasks(S, Q_adv; α1) → tasks(S_adv, Q; α2) → update over 2T
//   amp      tasks with each task's own model, AMP inner optimizer, 1 step of size η, written back
//   evaluate tasks (no meta-gradient) [→ attack Q against each θ'_t → score the attacked queries]
import type { AttackParams } from '../cpu/fgsm.js';
import type { PerturbParams } from '../cpu/maml-task.js';
import type { Algorithm, ResolvedLearnerOptions } from '../types.js';

/** Which copy of the batch a step reads: as given, or with FGSM/PGD-attacked inputs (same labels). */
export type DataSide = 'clean' | 'adv';

export type PlanStep =
  /** Attack the clean `rows` into the adversarial copy, against θ (stride 0) or each task's θ' (set 0). */
  | { kind: 'attack'; rows: 'support' | 'query'; against: 'theta' | 'adapted'; attack: AttackParams }
  /** The per-task pass (maml-task or caml-task kernel); outputs go to slot set `outSet`. */
  | {
      kind: 'tasks'; support: DataSide; query: DataSide; outSet: number; innerLr: number; innerSteps: number;
      wantMetaGrad: boolean; writeBack: boolean;
    }
  /** Gradient-agreement weights of the task updates of set 0 into the task weights. */
  | { kind: 'ga-weights'; normalization: 'paper' | 'notebook' }
  /** θ ← θ − β Σ_t w_t g_t over every set (apply = false only computes Σ_t w_t g_t). */
  | { kind: 'update'; apply: boolean }
  /** Query loss/accuracy of each θ'_t (set 0) on the attacked query rows. */
  | { kind: 'score-attacked' };

export interface Plan {
  steps: PlanStep[];
  /** Output sets of the task passes (ADML: 2). */
  sets: number;
}

/** Parameter vectors of D floats that one learner holds. */
export function paramVectors(o: Pick<ResolvedLearnerOptions, 'algorithm' | 'models' | 'contextDim'>): number {
  if (o.algorithm === 'amp') return o.models;
  if (o.algorithm === 'caml') return 1 + o.contextDim;
  return 1;
}

/** AMP's perturbation, when the algorithm is AMP or its inner optimizer is. */
export function perturbOf(o: ResolvedLearnerOptions): PerturbParams | null {
  if (o.algorithm === 'amp') return { steps: o.perturbSteps, lr: o.perturbLr, radius: o.epsilon };
  if (o.innerOptimizer === 'amp') return { steps: o.perturbSteps, lr: o.perturbLr, radius: o.perturbEpsilon };
  return null;
}

/** The kernel of the per-task pass. */
export function taskKernelOf(algorithm: Algorithm): 'maml' | 'caml' {
  return algorithm === 'caml' ? 'caml' : 'maml';
}

/** One meta-iteration (apply = false: compute the combined meta-gradient without applying it). */
export function trainPlan(o: ResolvedLearnerOptions, apply = true): Plan {
  const task = (support: DataSide, query: DataSide, outSet: number, innerLr: number) =>
    ({ kind: 'tasks', support, query, outSet, innerLr, innerSteps: o.innerSteps, wantMetaGrad: true, writeBack: false }) as const;
  const update = { kind: 'update', apply } as const;
  switch (o.algorithm) {
    case 'maml':
    case 'caml':
      return { sets: 1, steps: [task('clean', 'clean', 0, o.innerLr), update] };
    case 'ga-maml':
      return { sets: 1, steps: [task('clean', 'clean', 0, o.innerLr), { kind: 'ga-weights', normalization: o.normalization }, update] };
    case 'adml': {
      const fgsm: AttackParams = { kind: 'fgsm', epsilon: o.epsilon, steps: 1, stepSize: o.epsilon, lo: o.clip[0], hi: o.clip[1] };
      const cross = o.pairing === 'cross';
      return {
        sets: 2,
        steps: [
          { kind: 'attack', rows: 'support', against: 'theta', attack: fgsm },
          { kind: 'attack', rows: 'query', against: 'theta', attack: fgsm },
          task('clean', cross ? 'adv' : 'clean', 0, o.innerLr),
          task('adv', cross ? 'clean' : 'adv', 1, o.innerLrAdv),
          update,
        ],
      };
    }
    case 'amp':
      return {
        sets: 1,
        steps: [{ kind: 'tasks', support: 'clean', query: 'clean', outSet: 0, innerLr: o.lr, innerSteps: 1, wantMetaGrad: false, writeBack: true }],
      };
  }
}

/** Adapt a copy of θ on each support set, score the query sets, optionally under attack. */
export function evaluatePlan(steps: number, lr: number, attack: AttackParams | null): Plan {
  const plan: PlanStep[] = [{ kind: 'tasks', support: 'clean', query: 'clean', outSet: 0, innerLr: lr, innerSteps: steps, wantMetaGrad: false, writeBack: false }];
  if (attack) plan.push({ kind: 'attack', rows: 'query', against: 'adapted', attack }, { kind: 'score-attacked' });
  return { sets: 1, steps: plan };
}

/** Weights of the per-task meta-gradients in the update (sets×T). ADML folds β2/β1 into the weights
 * of the adversarial set, so that θ − β1·Σ w g = θ − β1 g_c − β2 g_a with one update. GA-MAML's
 * first T are overwritten on the device each iteration. */
export function taskWeights(o: ResolvedLearnerOptions, tasks: number, sets: number): Float32Array {
  const w = new Float32Array(sets * tasks).fill(1 / tasks);
  if (o.algorithm === 'adml') w.fill(o.outerLrAdv / o.outerLr / tasks, tasks);
  return w;
}

/** Whether a plan needs the adversarial copy of the data. */
export const needsAdversarial = (plan: Plan): boolean => plan.steps.some((s) => s.kind === 'attack');
