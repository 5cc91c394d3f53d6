// The algorithms by name, and what everyone asks of them: the options each takes (LearnerOptions, a
// union discriminated by `algorithm`), their defaults applied, their plans and capabilities.
import type { PerturbParams } from '../cpu/maml-task.js';
import type { AlgorithmSpec, Capabilities, OptionHelp, SameAs } from './common.js';
import { adml, type AdmlOptions } from './adml.js';
import { amp, type AmpOptions } from './amp.js';
import { caml, type CamlOptions } from './caml.js';
import { gaMaml, type GaMamlOptions } from './ga-maml.js';
import { maml, type MamlOptions } from './maml.js';
import { metaSgd, type MetaSgdOptions } from './meta-sgd.js';
import { anil, type AnilOptions } from './anil.js';
import { reptile, type ReptileOptions } from './reptile.js';
import { protonet, type ProtonetOptions } from './protonet.js';
import type { Plan } from './plan.js';

/** In this order in messages and help. */
export const ALGORITHMS = { maml, adml, 'ga-maml': gaMaml, caml, amp, 'meta-sgd': metaSgd, anil, reptile, protonet } as const;
export type Algorithm = keyof typeof ALGORITHMS;
export const ALGORITHM_NAMES = Object.keys(ALGORITHMS) as Algorithm[];
/** The algorithm of options that name none. */
export const DEFAULT_ALGORITHM: Algorithm = 'maml';

type AnyOptions = MamlOptions | AdmlOptions | GaMamlOptions | CamlOptions | AmpOptions | MetaSgdOptions | AnilOptions | ReptileOptions | ProtonetOptions;
type KeysOfUnion<T> = T extends unknown ? keyof T : never;
export type OptionKey = KeysOfUnion<AnyOptions>;
/** T, with the options of every other algorithm forbidden: `{ dim: 4, contextDim: 3 }` is a type error
 * (contextDim needs algorithm: 'caml'), as it is a runtime InvalidOptionError. */
type Only<T> = T & { [K in Exclude<OptionKey, keyof T>]?: never };

/** Options of createLearner: those of the chosen algorithm (maml.ts, adml.ts, ga-maml.ts, caml.ts,
 * amp.ts, meta-sgd.ts, anil.ts, reptile.ts, protonet.ts; `algorithm` may be left out for maml). Options of another
 * algorithm are rejected. */
export type LearnerOptions = Only<MamlOptions> | Only<AdmlOptions> | Only<GaMamlOptions> | Only<CamlOptions> | Only<AmpOptions>
  | Only<MetaSgdOptions> | Only<AnilOptions> | Only<ReptileOptions> | Only<ProtonetOptions>;

type ValueOf<T, K extends PropertyKey> = T extends unknown ? (K extends keyof T ? Exclude<T[K], undefined> : never) : never;
/** Options after defaults, flat: every option of every algorithm has a value (those that do not apply
 * to the learner's algorithm hold the first table's default and are read by nothing that matters). */
export type ResolvedLearnerOptions = { [K in OptionKey]-?: ValueOf<AnyOptions, K> };

export function algorithmOf(o: { algorithm: Algorithm }): AlgorithmSpec {
  return ALGORITHMS[o.algorithm] as AlgorithmSpec;
}

export const capabilitiesOf = (o: { algorithm: Algorithm }): Capabilities => algorithmOf(o).capabilities;

/** The options an algorithm takes, `algorithm` and `dim` included. */
export function optionKeys(algorithm: Algorithm): string[] {
  return ['algorithm', 'dim', ...Object.keys(ALGORITHMS[algorithm].defaults)];
}

/** The algorithms that take an option, in registry order. */
export function optionUsers(key: string): Algorithm[] {
  return ALGORITHM_NAMES.filter((a) => optionKeys(a).includes(key));
}

/** Every option of any algorithm. */
export const ALL_OPTION_KEYS: readonly string[] = [...new Set(ALGORITHM_NAMES.flatMap(optionKeys))];

/** How an algorithm describes one of its options (undefined when it does not take it). */
export function optionHelp(algorithm: Algorithm, key: string): OptionHelp | undefined {
  return (ALGORITHMS[algorithm].help as Record<string, OptionHelp | undefined>)[key];
}

export const isSameAs = (v: unknown): v is SameAs => typeof v === 'object' && v !== null && 'sameAs' in v;

/** Fills the options an algorithm does not take, from the first table (registry order) that has them. */
let fill: Record<string, unknown> | null = null;
function fillValues(): Record<string, unknown> {
  if (!fill) {
    fill = {};
    for (const a of ALGORITHM_NAMES) for (const [k, v] of Object.entries(ALGORITHMS[a].defaults)) if (!(k in fill)) fill[k] = v;
  }
  return fill;
}

/**
 * The options with the algorithm's defaults applied (a default that is another option's value, like
 * ADML's α2 = α1, resolved last). No checks: validate.ts's resolveLearnerOptions checks, then calls this.
 */
export function applyDefaults(options: { algorithm?: Algorithm; dim: number }): ResolvedLearnerOptions {
  const algorithm = options.algorithm ?? DEFAULT_ALGORITHM;
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o: Record<string, unknown> = { ...fillValues(), ...ALGORITHMS[algorithm].defaults, ...given, algorithm };
  for (const [k, v] of Object.entries(o)) if (isSameAs(v)) o[k] = o[v.sameAs];
  return o as ResolvedLearnerOptions;
}

/** Of `values`, the defined ones that `algorithm` takes, as its options (the CLI, the demo pages). */
export function pickOptions(algorithm: Algorithm, values: Record<string, unknown>): LearnerOptions {
  const keys = new Set(optionKeys(algorithm));
  return Object.fromEntries([...Object.entries(values).filter(([k, v]) => keys.has(k) && v !== undefined), ['algorithm', algorithm]]) as unknown as LearnerOptions;
}

/** One meta-iteration of the learner's algorithm (apply = false: the combined meta-gradient only). */
export function trainPlan(o: ResolvedLearnerOptions, apply = true): Plan {
  return algorithmOf(o).plan(o, apply);
}

/** Parameter vectors of D floats that one learner holds (logistic model). */
export const paramVectors = (o: ResolvedLearnerOptions): number => capabilitiesOf(o).paramVectors(o);

/** AMP's perturbation, when the algorithm is AMP or its inner optimizer is. */
export const perturbOf = (o: ResolvedLearnerOptions): PerturbParams | null => capabilitiesOf(o).perturb(o);

/** The kernel of the per-task pass (logistic model). */
export const taskKernelOf = (algorithm: Algorithm): 'maml' | 'caml' => ALGORITHMS[algorithm].capabilities.taskKernel;

/** Weights of the sets×T per-task meta-gradients in the update. */
export const taskWeights = (o: ResolvedLearnerOptions, tasks: number, sets: number): Float32Array => capabilitiesOf(o).taskWeights(o, tasks, sets);

export type { AlgorithmSpec, Capabilities, OptionHelp } from './common.js';
export type { MamlOptions, MetaLearnerOptions, MetaLearnerCoreOptions, Optimizer } from './maml.js';
export type { AdmlOptions } from './adml.js';
export type { GaMamlOptions } from './ga-maml.js';
export type { CamlOptions } from './caml.js';
export type { AmpOptions } from './amp.js';
export type { AmpInnerOptimizerOptions } from './amp-inner.js';
export type { MetaSgdOptions } from './meta-sgd.js';
export type { AnilOptions } from './anil.js';
export type { ReptileOptions } from './reptile.js';
export type { ProtonetOptions } from './protonet.js';
export type { CommonOptions, BackendChoice } from './common.js';
