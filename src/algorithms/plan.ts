// Every algorithm of metagrad is the one MAML core (a per-task pass: inner loop, query statistics,
// meta-gradient) plus a few small extra steps. A Plan lists those steps; both engines interpret the
// same plan (the GPU engine records each step as one or more dispatches into one compute pass, the
// CPU engine runs its twins), so an algorithm is written once, in its own file:
//
//   maml.ts     tasks → update
//   ga-maml.ts  tasks → ga-weights → update                     (weights computed on the device)
//   caml.ts     tasks (CAML kernel: only the context adapts) → update
//   adml.ts     attack S, attack Q against θ → tasks(S, Q_adv; α1) → tasks(S_adv, Q; α2) → update over 2T
//   amp.ts      tasks with each task's own model, AMP perturbation, 1 step of size η, written back
//   meta-sgd.ts tasks (the step α ⊙ g with θ's learned α; meta-gradients for θ and α) → update
//   anil.ts     tasks (only the head adapts) → update
//   reptile.ts  tasks on support ∪ query (no meta-gradient) → difference θ − θ'_t → update
//   protonet.ts tasks (no inner steps; the query pass scores each episode against its prototypes) → update
//   evaluate    tasks (no meta-gradient) [→ attack Q against each θ'_t → score the attacked queries]  (here)
import type { AttackParams } from '../cpu/fgsm.js';

/** Which copy of the batch a step reads: as given, or with FGSM/PGD-attacked inputs (same labels). */
export type DataSide = 'clean' | 'adv';
/** The rows an inner loop adapts on: a side's support rows, or each task's support and query rows
 * together (Reptile: clean only). */
export type SupportSide = DataSide | 'joint';

export type PlanStep =
  /** Attack the clean `rows` into the adversarial copy, against θ (stride 0) or each task's θ' (set 0). */
  | { kind: 'attack'; rows: 'support' | 'query'; against: 'theta' | 'adapted'; attack: AttackParams }
  /** The per-task pass (maml-task or caml-task kernel); outputs go to slot set `outSet`. */
  | {
      kind: 'tasks'; support: SupportSide; query: DataSide; outSet: number; innerLr: number; innerSteps: number;
      wantMetaGrad: boolean; writeBack: boolean;
      /** Prototypical networks: the query pass reads each task's support rows then its `query` side's
       * rows as one episode, scored against the prototypes of the support rows (innerSteps 0). */
      episode?: boolean;
    }
  /** Reptile's task updates as gradients: g_t = θ − θ'_t of set 0 (so that the update's θ − β·mean g_t
   * is θ + β·mean(θ'_t − θ), and Adam acts on −mean(θ'_t − θ)). */
  | { kind: 'difference' }
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

/** Adapt a copy of θ on each support set, score the query sets, optionally under attack (episode: a
 * protonet's scoring against prototypes, no steps). */
export function evaluatePlan(steps: number, lr: number, attack: AttackParams | null, episode = false): Plan {
  const plan: PlanStep[] = [{ kind: 'tasks', support: 'clean', query: 'clean', outSet: 0, innerLr: lr, innerSteps: steps, wantMetaGrad: false, writeBack: false, ...(episode ? { episode } : {}) }];
  if (attack) plan.push({ kind: 'attack', rows: 'query', against: 'adapted', attack }, { kind: 'score-attacked' });
  return { sets: 1, steps: plan };
}

/** Whether a plan reads each task's support ∪ query rows: Reptile's inner loop, a protonet's episodes. */
export const needsJoint = (plan: Plan): boolean => plan.steps.some((s) => s.kind === 'tasks' && (s.support === 'joint' || !!s.episode));

/** Whether a plan needs the adversarial copy of the data. */
export const needsAdversarial = (plan: Plan): boolean => plan.steps.some((s) => s.kind === 'attack');

/** Whether a plan weighs every task's update against all others (GA-MAML): its tasks' adapted
 * parameters must all be resident at once. */
export const weighsAcrossTasks = (plan: Plan): boolean => plan.steps.some((s) => s.kind === 'ga-weights');
