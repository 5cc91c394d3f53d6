// The `metagrad` command line: train, eval, info. Every flag has a default shown by --help; errors
// print one line and a hint and exit with status 1 (2 for usage errors).
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { backendReasonInBrief, createLearner, pickAutoBackend, releaseSharedDevice, type Learner } from '../learner.js';
import { DivergenceError, FileError, InvalidOptionError, MetagradError } from '../errors.js';
import type { Algorithm, AttackOptions, CheckedBatch, EvaluateResult, LearnerOptions, QueryScores, ResolvedLearnerOptions, TrainOptions, TrainProgress } from '../types.js';
import { ALGORITHM_NAMES, DEFAULT_ALGORITHM, capabilitiesOf, optionKeys, optionUsers, pickOptions } from '../algorithms/index.js';
import { MAX_ROWS, resolveLearnerOptions, resolveTrainOptions, resolveEvaluateOptions } from '../validate.js';
import { embeddedSubsetDir, loadFashionMnist } from '../node/images.js';
import { loadOmniglotDir, loadOmniglotEmbedded } from '../node/omniglot.js';
import { nearestNeighbourAccuracy, omniglotTrainSet, pretrainMlp, pretrainModel, resolveAttack, transferAccuracy } from '../baselines.js';
import { fileSource } from '../tasks/file.js';
import { FASHION_SPLIT, fashionEpisodes, OMNIGLOT_EMBEDDED_SPLIT, sourceDim, withValidation, type TaskSource } from '../tasks/source.js';
import { sampleTasks, sinusoidTasks } from '../cpu/sample-tasks.js';
import type { SinusoidSource } from '../tasks/sinusoid.js';
import { meanWithInterval } from '../stats.js';
import { acquireDevice, type AdapterPath } from '../gpu/device.js';
import { closest, flagName, helpText, optionFlagKeys, optionFlags, optionsFromFlags, parseFlags, type FlagSpecs, type FlagValues } from './flags.js';
import { cliVocabulary, flagNames } from './vocabulary.js';
import { loadCheckpoint, removeStaleTemps, restoreState, saveCheckpoint, writeAtomic, type Checkpoint } from './checkpoint.js';
import { ProgressBar, formatSeconds } from './progress.js';
import { svgPlot, type Panel } from './plot.js';

const VERSION = '0.1.0';

const SOURCE_FLAGS: FlagSpecs = {
  source: { default: 'fashion-mnist', help: "task source (sinusoid: MAML's regression tasks y = A·sin(x − φ))", choices: ['fashion-mnist', 'fashion-episodes', 'omniglot', 'linear', 'seed', 'file', 'sinusoid'] },
  data: { help: 'Fashion-MNIST directory with the IDX files, or Omniglot\'s images_background/ + images_evaluation/ (default: the embedded sets)' },
  ways: { default: '5', kind: 'int', help: 'omniglot: classes N per task' },
  shots: { default: 'auto', help: 'omniglot: support images K per class (--query-shots: query images per class; auto: 1); sinusoid: support points K per task (auto: 10)' },
  amplitude: { default: '0.1,5', help: 'sinusoid: range lo,hi of the amplitude A' },
  phase: { default: '0,pi', help: 'sinusoid: range lo,hi of the phase φ (pi may be written for π)' },
  'x-range': { default: '-5,5', help: 'sinusoid: range lo,hi of the inputs x' },
  'val-alphabets': { default: '', help: 'omniglot: alphabets moved from meta-train to a validation split (comma-separated, e.g. Greek); train then evaluates on it, never on the test alphabets' },
  file: { help: 'CSV of your own tasks (--source file; format in README)' },
  'test-file': { help: 'CSV of held-out tasks (default: the last 20% of --file)' },
  dim: { default: '21', kind: 'int', help: 'features per row for --source linear|seed (linear: last one is the bias)' },
};

/** The learner options that are train flags: those the algorithm files give a flag (src/algorithms/),
 * with their defaults; seed and backend, shared by every algorithm, are listed apart. */
const SHARED_OPTION_FLAGS = ['seed', 'backend'];
const ALGORITHM_OPTION_FLAGS = optionFlagKeys().filter((k) => !SHARED_OPTION_FLAGS.includes(k));

export const TRAIN_FLAGS: FlagSpecs = {
  algo: { default: DEFAULT_ALGORITHM, help: 'algorithm', choices: ALGORITHM_NAMES },
  ...SOURCE_FLAGS,
  iterations: { default: '300', kind: 'int', help: 'meta-iterations (the command line\'s default; train() has none)' },
  'train-ways': { default: 'auto', help: 'protonet on N-way episodes: classes per training episode, evaluation staying --ways-way (the paper trains 60-way, tests 5-way; auto: --ways)' },
  tasks: { default: '32', kind: 'int', help: 'tasks per meta-batch (amp: the number of models)' },
  'support-shots': { default: '10', kind: 'int', help: 'support rows per task (images: half per class; omniglot: ways × shots, set by --shots; file: the file\'s unless given)' },
  'query-shots': { default: 'auto', help: 'query rows per task (omniglot: query images per class; sinusoid: query points per task; file: the file\'s unless given; auto: 10, sinusoid: = --shots)' },
  model: { default: 'auto', help: "model: the binary logistic unit, an MLP with a softmax head, or conv4 (MAML's Conv-4 on 28 × 28 images; CPU backend) (auto: mlp for N-way episodes, omniglot and fashion-episodes; logistic otherwise)", choices: ['auto', 'logistic', 'mlp', 'conv4'] },
  filters: { default: '64', kind: 'int', help: 'conv4: filters of every conv layer (64 in MAML; fewer train faster)' },
  pooling: { default: 'stride', help: "conv4: 'stride' (MAML's Omniglot net: stride-2 convolutions, mean over space) or 'max' (its mini-ImageNet net: 2 × 2 max-pools)", choices: ['stride', 'max'] },
  hidden: { default: 'auto', help: 'mlp: hidden widths, comma-separated (e.g. 256,128,64,64; empty: softmax regression; auto: empty, or 40,40 for sinusoid: MAML\'s 1-40-40-1 regressor)' },
  norm: { default: 'none', help: "mlp: 'task' normalises each hidden unit over the rows of the task's set (MAML's batch norm), or 'none'", choices: ['none', 'task'] },
  classes: { default: 'auto', help: 'mlp, conv4: classes N of the softmax head (labels 0 … N−1; auto: --ways for N-way episodes, else 2; sinusoid: a regressor, one real output under MSE)' },
  // The command line's own rule: pixels of image sources lie in [0, 1].
  ...optionFlags(ALGORITHM_OPTION_FLAGS, { clip: '0,1 for images, none otherwise' }),
  'eval-every': { default: '50', kind: 'int', help: 'evaluate on held-out tasks every N iterations (0: only at the end; the command line\'s default: train()\'s evalEvery is 0, never)' },
  'eval-tasks': { default: '600', kind: 'int', help: 'held-out tasks per evaluation (amp: one per model, = --tasks; file: each held-out task of the file once, not a flag there)' },
  'eval-steps': { default: 'auto', help: 'inner steps at evaluation (auto: = inner-steps)' },
  attack: { default: 'fgsm', help: 'attack for robust accuracy (the command line\'s default: train() attacks only when given evalAttack)', choices: ['fgsm', 'pgd', 'none'] },
  'attack-epsilon': { default: '0.1', kind: 'number', help: 'L∞ budget of the attack (--epsilon is ADML\'s training step)' },
  'checkpoint-every': { default: '100', kind: 'int', help: 'write the checkpoint every N iterations (and at the end)' },
  ...optionFlags(SHARED_OPTION_FLAGS),
  out: { default: 'run', help: 'run folder: metrics.jsonl, checkpoint.json, curves.svg, summary.json' },
  resume: { switch: true, help: 'continue the run in --out from its checkpoint, with the flags it was started with (only --iterations, --backend, --checkpoint-every, --eval-every, --quiet may be given anew)' },
  force: { switch: true, help: 'start over in an --out that holds a run (its checkpoint and metrics are removed)' },
  quiet: { switch: true, help: 'no progress bar' },
};

const EVAL_FLAGS: FlagSpecs = {
  checkpoint: { default: 'run/checkpoint.json', help: 'checkpoint to evaluate (what metagrad train wrote in its --out)' },
  ...SOURCE_FLAGS,
  source: { default: 'auto', help: 'task source (auto: the one the checkpoint was trained on)', choices: ['auto', 'fashion-mnist', 'fashion-episodes', 'omniglot', 'linear', 'seed', 'file', 'sinusoid'] },
  'eval-tasks': { default: '600', kind: 'int', help: 'held-out tasks (≥ 600 for tight intervals; file: each held-out task of the file once, not a flag there)' },
  'max-steps': { default: 'auto', help: 'adaptation curve after 0 … k inner steps (auto: 5; sinusoid: 10, as in MAML)' },
  steps: { default: 'auto', help: 'inner-step counts to score, comma-separated (e.g. 3; auto: 0 … --max-steps); each attacked column costs a full attack' },
  'inner-lr': { default: 'auto', help: 'inner rate at evaluation (auto: the checkpoint\'s)' },
  attack: { default: 'fgsm', help: 'attack against each adapted model', choices: ['fgsm', 'pgd', 'none'] },
  'attack-epsilon': { default: '0.1', kind: 'number', help: 'L∞ budget of the attack (as in train)' },
  epsilon: { help: '', refused: { why: 'the attack\'s L∞ budget is --attack-epsilon, as in train (where --epsilon is ADML\'s training step)', hint: 'Pass --attack-epsilon {value}.' } },
  // The task shape is the checkpoint's.
  ...Object.fromEntries(['ways', 'shots', 'val-alphabets', 'dim', 'amplitude', 'phase', 'x-range'].map((name) => [name, { help: '', refused: { why: 'eval scores tasks of the shape the checkpoint was trained on', hint: `Leave --${name} out: eval reads it from the checkpoint (train with another --${name} to evaluate that).` } }])),
  'joint-iterations': { default: 'auto', help: 'iterations of the jointly-trained baseline (auto: the checkpoint\'s; 0 skips it; not for N-way Omniglot, whose random relabelling makes one joint model meaningless)' },
  'transfer-iterations': { default: '1000', kind: 'int', help: 'a network (mlp, conv4) on Omniglot episodes: minibatch Adam iterations pretraining the transfer baseline, one classifier over every meta-train class (784-256-128-64-64 on one core: ≈ 35 s, with norm task ≈ 50 s; Conv-4 with 64 filters: minutes; 0 skips it)' },
  'transfer-norm': { default: 'auto', help: "mlp: per-task norm of the transfer baseline's network: auto (the checkpoint's), none or task (a conv net keeps its norm layers)", choices: ['auto', 'none', 'task'] },
  'transfer-lr': { default: '0.001', kind: 'number', help: 'Adam rate of the transfer baseline\'s pretraining' },
  'transfer-batch': { default: '64', kind: 'int', help: 'images per pretraining minibatch (with --norm task: the normalisation set)' },
  'transfer-steps': { default: '100', kind: 'int', help: 'gradient steps fitting the transfer baseline\'s fresh zero head to each task\'s support set (body frozen)' },
  'transfer-head-lr': { default: 'auto', help: 'rate of those steps (auto: 2 / mean(‖features‖² + 1) per task, a step under which the convex head loss always falls)' },
  backend: { default: 'auto', help: 'compute backend', choices: ['auto', 'webgpu', 'cpu'] },
  out: { default: 'auto', help: 'where to write eval.json (auto: next to the checkpoint)' },
};

const INFO_FLAGS: FlagSpecs = {};

function usage(): string {
  return `metagrad ${VERSION} — meta-learning on WebGPU

usage: metagrad <command> [flags]

commands:
  train   train a meta-learner on a task source (progress, metrics, checkpoints, plot)
  eval    adaptation curves of a checkpoint against baselines, clean and attacked
  info    backends, adapters and limits found on this machine

metagrad <command> --help (or metagrad help <command>) lists every flag with its default.
`;
}

const COMMANDS = ['train', 'eval', 'info'];

/** --model and --classes 'auto' made concrete for the source: N-way episodes need the MLP's softmax
 * head with one class per way; other sources are binary (the logistic unit, or an MLP of 2 classes). */
export function resolveModelFlags(f: FlagValues): FlagValues {
  const episodes = EPISODES.includes(String(f.source));
  const sinusoid = f.source === 'sinusoid';
  const model = f.model === 'auto' || f.model === undefined ? (episodes || sinusoid ? 'mlp' : 'logistic') : f.model;
  // 'auto' shots and widths: the source's usual (MAML's K = 10 points and 1-40-40-1 net for sinusoids).
  const shots = f.shots === 'auto' || f.shots === undefined ? (sinusoid ? 10 : 1) : Number(f.shots);
  const queryShots = f['query-shots'] === 'auto' || f['query-shots'] === undefined ? (sinusoid ? shots : 10) : Number(f['query-shots']);
  for (const [flag, v] of [['shots', shots], ['query-shots', queryShots]] as const) {
    if (!Number.isInteger(v)) throw new InvalidOptionError(`--${flag} must be an integer or auto; got "${String(f[flag])}".`, `e.g. --${flag} 5`);
  }
  const hidden = f.hidden === 'auto' || f.hidden === undefined ? (sinusoid ? '40,40' : '') : f.hidden;
  let classes = f.classes;
  const trainWays = f['train-ways'] === 'auto' || f['train-ways'] === undefined ? Number(f.ways) : Number(f['train-ways']);
  if (!Number.isInteger(trainWays)) throw new InvalidOptionError(`--train-ways must be an integer or auto; got "${String(f['train-ways'])}".`, 'e.g. --train-ways 20');
  if (classes === 'auto' || classes === undefined) classes = episodes ? Math.max(Number(f.ways), trainWays) : 2;
  else if (typeof classes === 'string') {
    const n = Number(classes);
    if (classes.trim() === '' || !Number.isInteger(n)) throw new InvalidOptionError(`--classes must be an integer or auto; got "${classes}".`, 'e.g. --classes 5');
    classes = n;
  }
  return { ...f, model, classes, shots, 'query-shots': queryShots, hidden, 'train-ways': trainWays };
}

/** Rows per task of N-way episodes, checked in the flags' words (the API would name supportShots = 300). */
function checkEpisodeRows(f: FlagValues): void {
  if (!EPISODES.includes(String(f.source))) return;
  const ways = Number(f.ways);
  for (const [flag, per] of [['shots', Number(f.shots)], ['query-shots', Number(f['query-shots'])]] as const) {
    const rows = ways * per;
    if (Number.isInteger(rows) && rows > MAX_ROWS) {
      const which = flag === 'shots' ? 'support' : 'query';
      throw new InvalidOptionError(`--ways ${ways} × --${flag} ${per} = ${rows} ${which} rows per task, over the most a task may have (${MAX_ROWS}).`,
        `Use at most ${Math.floor(MAX_ROWS / Math.max(per, 1))} ways with --${flag} ${per}, or fewer --${flag} (at most ${Math.floor(MAX_ROWS / Math.max(ways, 1))} with --ways ${ways}).`);
    }
  }
}

/** The task source named by the flags. */
export function sourceFromFlags(f: FlagValues, kind = String(f.source)): TaskSource {
  switch (kind) {
    case 'fashion-mnist': {
      const dir = f.data ? String(f.data) : embeddedSubsetDir();
      return { kind: 'images', images: loadFashionMnist(dir), split: FASHION_SPLIT, name: f.data ? dir : 'embedded Fashion-MNIST subset' };
    }
    case 'fashion-episodes': {
      // N-way episodes on Fashion-MNIST (meta-train classes 0–5, meta-test 6–9: at most 4-way held out).
      const dir = f.data ? String(f.data) : embeddedSubsetDir();
      return fashionEpisodes(loadFashionMnist(dir), { ways: Number(f.ways), shots: Number(f.shots), queries: Number(f['query-shots']) }, f.data ? dir : 'embedded Fashion-MNIST subset');
    }
    case 'omniglot': {
      const set = f.data ? loadOmniglotDir(String(f.data)) : loadOmniglotEmbedded();
      // The official layout: meta-train on images_background's alphabets, meta-test on images_evaluation's.
      const background = set.sets.find((s) => s.name === 'images_background');
      const evaluation = set.sets.find((s) => s.name === 'images_evaluation');
      const names = (s: { alphabets: [number, number] }) => set.alphabets.slice(s.alphabets[0], s.alphabets[1]);
      const base = f.data && background && evaluation ? { train: names(background), test: names(evaluation) } : OMNIGLOT_EMBEDDED_SPLIT;
      const val = String(f['val-alphabets'] ?? '').split(',').map((a) => a.trim()).filter(Boolean);
      for (const a of val) {
        if (!base.train.includes(a)) throw new InvalidOptionError(`--val-alphabets: ${a} is not a meta-train alphabet.`, `Choose from: ${base.train.join(', ')}.`);
      }
      const split = val.length ? withValidation(base, val) : base;
      return { kind: 'omniglot', set, ways: Number(f.ways), shots: Number(f.shots), queries: Number(f['query-shots']), split, name: f.data ? String(f.data) : 'embedded Omniglot (minimal background sets)' };
    }
    case 'sinusoid': {
      const range = (flag: string): [number, number] => {
        const parts = String(f[flag]).split(',').map((w) => w.trim());
        const values = parts.map((w) => (/^-?pi$/i.test(w) ? (w.startsWith('-') ? -Math.PI : Math.PI) : Number(w)));
        if (values.length !== 2 || !values.every(Number.isFinite) || parts.some((w) => w === '')) {
          throw new InvalidOptionError(`--${flag} must be lo,hi (two numbers; pi for π); got "${String(f[flag])}".`, `e.g. --${flag} ${TRAIN_FLAGS[flag].default}`);
        }
        return values as [number, number];
      };
      return { kind: 'sinusoid', shots: Number(f.shots), queries: Number(f['query-shots']), amplitude: range('amplitude'), phase: range('phase'), x: range('x-range') };
    }
    case 'linear': return { kind: 'linear', dim: Number(f.dim) };
    case 'seed': return { kind: 'seed', dim: Number(f.dim) };
    case 'file': {
      if (!f.file) throw new InvalidOptionError('--source file needs --file PATH.', 'Pass --file tasks.csv (format in the README).');
      const read = (p: string) => {
        try { return readFileSync(p, 'utf8'); } catch (e) { throw new InvalidOptionError(`Cannot read ${p}: ${(e as Error).message}.`, 'Check the path.'); }
      };
      return fileSource(read(String(f.file)), String(f.file), f['test-file'] ? read(String(f['test-file'])) : undefined, f['test-file'] ? String(f['test-file']) : undefined);
    }
    default: throw new InvalidOptionError(`Unknown source ${kind}.`, 'Use fashion-mnist, fashion-episodes, omniglot, sinusoid, linear, seed or file.');
  }
}

/** Sources of pixels in [0, 1] (attacks and ADML clip to that range). */
const isPixels = (source: TaskSource): boolean => source.kind === 'images' || source.kind === 'omniglot';

/** Rows per task set: the flags as given, or for Omniglot episodes ways × images per class. */
function shotsOf(f: FlagValues, source: TaskSource): { supportShots: number; queryShots: number } {
  if (source.kind === 'omniglot') return { supportShots: source.ways * source.shots, queryShots: source.ways * source.queries };
  if (source.kind === 'sinusoid') return { supportShots: source.shots, queryShots: source.queries ?? source.shots };
  return { supportShots: Number(f['support-shots']), queryShots: Number(f['query-shots']) };
}

const auto = (v: unknown): number | undefined => (v === 'auto' || v === undefined ? undefined : parseNumber(String(v)));
function parseNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidOptionError(`"${v}" is not a number.`, 'Pass a number or auto.');
  return n;
}

/** Flags that apply only to some runs: given to another, they are refused (as createLearner refuses
 * an option its algorithm does not take) instead of being ignored. */
const FLAG_APPLIES: Record<string, { when: (f: FlagValues, source: string) => boolean; to: string }> = {
  hidden: { when: (f) => f.model === 'mlp', to: '--model mlp' },
  norm: { when: (f) => f.model === 'mlp', to: '--model mlp' },
  classes: { when: (f, s) => (f.model === 'mlp' || f.model === 'conv4') && s !== 'sinusoid', to: '--model mlp or conv4 on classification sources (a sinusoid model is a regressor)' },
  filters: { when: (f) => f.model === 'conv4', to: '--model conv4' },
  pooling: { when: (f) => f.model === 'conv4', to: '--model conv4' },
  ways: { when: (_, s) => EPISODES.includes(s), to: '--source omniglot or fashion-episodes' },
  shots: { when: (_, s) => EPISODES.includes(s) || s === 'sinusoid', to: '--source omniglot, fashion-episodes or sinusoid (others: --support-shots)' },
  'support-shots': { when: (_, s) => !EPISODES.includes(s) && s !== 'sinusoid', to: 'sources other than omniglot, fashion-episodes (whose support rows are --ways × --shots) and sinusoid (--shots points)' },
  amplitude: { when: (_, s) => s === 'sinusoid', to: '--source sinusoid' },
  phase: { when: (_, s) => s === 'sinusoid', to: '--source sinusoid' },
  'x-range': { when: (_, s) => s === 'sinusoid', to: '--source sinusoid' },
  'val-alphabets': { when: (_, s) => s === 'omniglot', to: '--source omniglot' },
  'train-ways': { when: (f, s) => EPISODES.includes(s) && f.algo === 'protonet', to: '--algo protonet on --source omniglot or fashion-episodes' },
  data: { when: (_, s) => ['fashion-mnist', 'fashion-episodes', 'omniglot'].includes(s), to: '--source fashion-mnist, fashion-episodes or omniglot' },
  dim: { when: (_, s) => s === 'linear' || s === 'seed', to: '--source linear or seed' },
  file: { when: (_, s) => s === 'file', to: '--source file' },
  'test-file': { when: (_, s) => s === 'file', to: '--source file' },
  'eval-tasks': { when: (f, s) => s !== 'file' && !capabilitiesOf({ algorithm: String(f.algo) as Algorithm }).thetaPerTask, to: 'sources other than file (whose held-out tasks are each scored once) and algorithms other than amp (whose evaluations score one held-out task per model: --tasks)' },
};
const EPISODES = ['omniglot', 'fashion-episodes'];

/** Throws for the first flag of `given` that does not apply: an option of another algorithm (from the
 * algorithms' tables), or a flag of another model or source (FLAG_APPLIES). */
function checkApplicable(command: 'train' | 'eval', f: FlagValues, given: readonly string[], source = String(f.source)): void {
  const algorithm = String(f.algo) as Algorithm;
  for (const name of given) {
    const key = ALGORITHM_OPTION_FLAGS.find((k) => flagName(k) === name);
    if (command === 'train' && key !== undefined && !optionKeys(algorithm).includes(key)) {
      const users = optionUsers(key);
      throw new InvalidOptionError(`--${name} does not apply to --algo ${algorithm}.`, `It is a flag of --algo ${users.join(', ')}; leave it out or change --algo.`);
    }
    const rule = FLAG_APPLIES[name];
    if (rule && !rule.when(f, source)) {
      throw new InvalidOptionError(`--${name} does not apply here (--source ${source}${command === 'train' ? `, --algo ${algorithm}, --model ${String(f.model)}` : ''}).`, `It applies to ${rule.to}; leave it out.`);
    }
  }
}

/** Learner options from train flags: only those that apply to the algorithm (the flags of other
 * algorithms' options are left out), 'auto' ones to the algorithm's default. */
export function learnerOptionsFromFlags(flags: FlagValues, source: TaskSource): LearnerOptions {
  const f = resolveModelFlags(flags);
  const algorithm = String(f.algo) as Algorithm;
  const values: Record<string, unknown> = { ...optionsFromFlags(f, [...ALGORITHM_OPTION_FLAGS, ...SHARED_OPTION_FLAGS]), dim: sourceDim(source) };
  if (f.clip === 'auto' && isPixels(source)) values.clip = [0, 1];
  if (f.model === 'mlp') {
    values.model = source.kind === 'sinusoid'
      ? { kind: 'mlp', hidden: parseWidths(String(f.hidden ?? '')), loss: 'mse', norm: String(f.norm) as 'none' | 'task' }
      : { kind: 'mlp', hidden: parseWidths(String(f.hidden ?? '')), classes: Number(f.classes), norm: String(f.norm) as 'none' | 'task' };
  }
  if (f.model === 'conv4') values.model = { kind: 'conv4', classes: Number(f.classes), filters: Number(f.filters), pooling: String(f.pooling) as 'stride' | 'max' };
  // One model per task (AMP): --tasks is the number of models.
  if (capabilitiesOf({ algorithm }).thetaPerTask) values.models = Number(f.tasks);
  return pickOptions(algorithm, values);
}

function parseWidths(v: string): number[] {
  if (v.trim() === '') return [];
  return v.split(',').map((w) => {
    const n = Number(w);
    if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError(`--hidden: "${w}" is not a positive integer width.`, 'e.g. --hidden 256,128,64,64');
    return n;
  });
}

function attackFromFlags(kind: unknown, epsilon: unknown, clip?: [number, number]): AttackOptions | undefined {
  if (kind === 'none') return undefined;
  return { kind: kind as 'fgsm' | 'pgd', epsilon: Number(epsilon), ...(clip ? { clip } : {}) };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const withCi = (r: { mean: number; ci95: number }) => `${pct(r.mean)} ± ${(100 * r.ci95).toFixed(1)}`;
/** A figure of merit: accuracy (%), or a regression model's MSE (3 significant decimals). */
const mseWithCi = (r: { mean: number; ci95: number }) => `${r.mean.toFixed(3)} ± ${r.ci95.toFixed(3)}`;
const metricInterval = (r: QueryScores) => (r.metric === 'mse' ? r.mseInterval! : r.accuracyInterval);
const showMetric = (r: QueryScores) => (r.metric === 'mse' ? mseWithCi(r.mseInterval!) : withCi(r.accuracyInterval));
const metricName = (r: QueryScores) => (r.metric === 'mse' ? 'MSE' : 'accuracy');

/** Flags a resumed run may change: its length, and what only changes how it is watched, saved or
 * computed (the CPU engine is the GPU's twin). Every other flag given with --resume must match the run. */
const RESUME_MAY_CHANGE = ['iterations', 'backend', 'checkpoint-every', 'eval-every', 'quiet'];
/** Flags that say what to do with the run folder, not what the run is. */
const NOT_CONFIG = new Set(['out', 'resume', 'force']);
/** What train (and eval, beside the checkpoint) write in a run folder: --force removes them. */
const RUN_FILES = ['checkpoint.json', 'metrics.jsonl', 'summary.json', 'curves.svg', 'eval.json'];

const showFlag = (v: unknown) => (Array.isArray(v) ? v.join(',') : v === '' ? '""' : String(v));

/** The train flags a checkpoint's run was started with (config.flags), checked as the command line
 * checks them: flags it lacks (older versions) take their defaults; damage is a FileError naming it. */
export function checkpointFlags(ckpt: Checkpoint, file: string): FlagValues {
  const saved = ckpt.config.flags as Record<string, unknown>;
  const damaged = (what: string) => new FileError(`Checkpoint ${file} is damaged: its training configuration (config.flags) ${what}.`,
    'Restore the file from a copy of the run folder, or retrain (metagrad train --force --out DIR starts the run over).');
  if (typeof saved.source !== 'string') throw damaged(`has no source (source is ${saved.source === undefined ? 'missing' : JSON.stringify(saved.source)})`);
  const args: string[] = [];
  for (const [name, spec] of Object.entries(TRAIN_FLAGS)) {
    const v = saved[name];
    if (spec.switch || NOT_CONFIG.has(name) || v === undefined || v === null) continue;
    if (!['string', 'number'].includes(typeof v) && !(Array.isArray(v) && v.every((x) => typeof x === 'number'))) throw damaged(`has --${name} ${JSON.stringify(v)}`);
    args.push(`--${name}`, Array.isArray(v) ? v.join(',') : String(v));
  }
  try {
    return resolveModelFlags(parseFlags(args, TRAIN_FLAGS, 'train'));
  } catch (e) {
    if (e instanceof InvalidOptionError) throw damaged(`is invalid: ${e.message.split('\nHINT: ')[0]}`);
    throw e;
  }
}

/** Drops the records of metrics.jsonl past `iteration` (written after the checkpoint, before a crash
 * or a kill: the resumed run writes them again) and a torn last line. Returns how many it dropped. */
function truncateMetrics(file: string, iteration: number): number {
  if (!existsSync(file)) return 0;
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const kept = lines.filter((l) => {
    try {
      const r = JSON.parse(l);
      return typeof r?.iteration === 'number' && r.iteration <= iteration;
    } catch {
      return false;
    }
  });
  if (kept.length !== lines.length) writeAtomic(file, kept.map((l) => l + '\n').join(''));
  return lines.length - kept.length;
}

/** Thrown out of learner.train's progress callback to stop a run on SIGINT / SIGTERM (after the
 * checkpoint of the iteration reached is written). */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals, readonly iteration: number) { super(`interrupted by ${signal}`); }
}
const SIGNAL_STATUS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/** `metagrad train`; resolves with the exit status (130 / 143 when SIGINT / SIGTERM stopped it). */
async function train(args: string[]): Promise<number> {
  if (args.includes('--help')) { process.stdout.write(helpText('train', 'train a meta-learner on a task source', TRAIN_FLAGS)); return 0; }
  const given = new Set<string>();
  const f = resolveModelFlags(parseFlags(args, TRAIN_FLAGS, 'train', given));
  const out = String(f.out);
  const checkpointFile = path.join(out, 'checkpoint.json');
  const metricsFile = path.join(out, 'metrics.jsonl');
  let resumeFrom: Checkpoint | null = null;
  let flags = f;
  const changed: string[] = [];
  if (f.resume) {
    if (f.force) throw new InvalidOptionError('--resume continues the run in --out and --force starts it over: pass one of them.', `metagrad train --resume --out ${out} continues it.`);
    resumeFrom = loadCheckpoint(checkpointFile);
    // A resumed run is the run that was started: every flag from the checkpoint; a flag given again
    // must agree, except those that may change (its length, where and how it is watched).
    const saved = checkpointFlags(resumeFrom, checkpointFile);
    flags = { ...saved, out: f.out, resume: true, force: false, quiet: f.quiet };
    const conflicts: string[] = [];
    for (const name of given) {
      if (NOT_CONFIG.has(name) || name === 'quiet' || JSON.stringify(f[name]) === JSON.stringify(saved[name])) continue;
      if (RESUME_MAY_CHANGE.includes(name)) {
        flags[name] = f[name];
        changed.push(`--${name} ${showFlag(f[name])} (was ${showFlag(saved[name])})`);
      } else {
        conflicts.push(`--${name} ${showFlag(f[name])} (the run has ${showFlag(saved[name])})`);
      }
    }
    if (conflicts.length) {
      throw new InvalidOptionError(`--resume continues the run in ${out} as it was started, but ${conflicts.join(', ')}.`,
        `Leave ${conflicts.length > 1 ? 'those flags' : 'that flag'} out (on --resume only ${RESUME_MAY_CHANGE.filter((n) => n !== 'quiet').map((n) => `--${n}`).join(', ')} may change), or start a new run with another --out.`);
    }
  } else {
    const held = [checkpointFile, metricsFile].filter((file) => existsSync(file));
    if (held.length && !f.force) {
      throw new InvalidOptionError(`${held[0]} exists: this run folder holds a run.`, 'Pass --resume to continue it, --force to start it over (its metrics are cleared), or another --out.');
    }
  }
  // Every flag is checked before an adapter is acquired (which may take seconds, and print driver
  // noise): those that do not apply, the learner options and the train options.
  checkApplicable('train', flags, [...given].filter((n) => !NOT_CONFIG.has(n)));
  checkEpisodeRows(flags);
  const start = resumeFrom?.iteration ?? 0;
  const iterations = Number(flags.iterations);
  const source = sourceFromFlags(flags);
  // A task file's shots are the file's unless a flag says otherwise (a resumed run has them saved).
  if (source.kind === 'file' && !resumeFrom) {
    flags = { ...flags };
    if (!given.has('support-shots')) flags['support-shots'] = source.train.supportShots;
    if (!given.has('query-shots')) flags['query-shots'] = source.train.queryShots;
  }
  const options = learnerOptionsFromFlags(flags, source);
  const resolved = resolveLearnerOptions(options);
  if (resumeFrom) {
    // The options the checkpoint's state belongs to must be those its flags make.
    const made = resolved as unknown as Record<string, unknown>;
    const differ = Object.entries(resumeFrom.options).filter(([k, v]) => k !== 'backend' && JSON.stringify(v) !== JSON.stringify(made[k]));
    if (differ.length) {
      throw new FileError(`Checkpoint ${checkpointFile} is damaged: its learner options do not match its training configuration (${differ.map(([k, v]) => `${k} ${JSON.stringify(v)}, the flags make ${JSON.stringify(made[k])}`).join('; ')}).`,
        'The file was altered or mixes two runs: restore it from a copy of the run folder, or retrain (metagrad train --force).');
    }
  }
  const plan = trainPlanOf(flags, source, resolved, start);
  // (A complete run, 0 iterations to go, is said after its state is checked, below.)
  resolveTrainOptions(resumeFrom && start >= iterations ? { ...plan.options, iterations: 1 } : plan.options, resolved);
  const learner = await createLearner(options);
  try {
    if (resumeFrom) {
      restoreState(learner, resumeFrom, checkpointFile);
      if (start >= iterations) throw new InvalidOptionError(`The run in ${out} is complete: its checkpoint is at iteration ${start} of --iterations ${iterations}.`, `Pass --iterations above ${start} to train further.`);
    }
    return await trainWith(learner, flags, source, plan, { out, checkpointFile, metricsFile, resumeFrom, changed });
  } finally {
    learner.destroy();
  }
}

/** The train options of the flags (the table TRAIN_OPTION_FLAGS), and how train scores held-out tasks:
 * a task file's held-out tasks each once (fileHeldOut), evaluated by the command line between
 * iterations, else learner.train's evalTasks sampled tasks. */
function trainPlanOf(flags: FlagValues, source: TaskSource, o: ResolvedLearnerOptions, start: number) {
  const iterations = Number(flags.iterations);
  const can = capabilitiesOf(o);
  // The evaluation attack clips like the algorithm's own (ADML's clip), else pixels to [0, 1].
  const clip = optionKeys(o.algorithm).includes('clip') ? o.clip : isPixels(source) ? ([0, 1] as [number, number]) : undefined;
  const evalAttack = attackFromFlags(flags.attack, flags['attack-epsilon'], clip);
  const fileHeldOut = source.kind === 'file' && !can.thetaPerTask ? heldOutFileTasks(source) : null;
  const evalEvery = Number(flags['eval-every']) > 0 ? Number(flags['eval-every']) : iterations - start;
  // One model per task (AMP): model i is scored on held-out task i, so as many tasks as models.
  const evalTasks = fileHeldOut ? fileHeldOut.tasks : can.thetaPerTask ? can.models(o) : Number(flags['eval-tasks']);
  // --train-ways: training episodes of that many classes; evaluations keep --ways (a protonet's).
  const trainWays = Number(flags['train-ways']);
  const trainSource = source.kind === 'omniglot' && trainWays !== source.ways ? { ...source, ways: trainWays } : source;
  const options: TrainOptions = {
    source: trainSource, ...(trainSource !== source ? { evalSource: source } : {}),
    iterations: iterations - start, startIteration: start, tasksPerBatch: Number(flags.tasks),
    ...shotsOf(flags, trainSource),
    // The file's held-out tasks are scored by the command line at these iterations (a report each).
    ...(fileHeldOut ? { evalEvery: 0, iterationsPerSubmit: 1 } : { evalEvery, evalTasks }),
    evalSteps: auto(flags['eval-steps']), evalAttack, trackTrainLoss: true,
  };
  return { options, evalEvery, evalTasks, evalAttack, fileHeldOut };
}

/** Every held-out task of a task file, once, in the file's order. */
function heldOutFileTasks(source: Extract<TaskSource, { kind: 'file' }>): CheckedBatch {
  const t = source.test;
  return { tasks: t.count, supportShots: t.supportShots, queryShots: t.queryShots, supportX: t.supportX, supportY: t.supportY, queryX: t.queryX, queryY: t.queryY };
}

type TrainPlan = ReturnType<typeof trainPlanOf>;

async function trainWith(learner: Learner, flags: FlagValues, source: TaskSource, plan: TrainPlan, run: { out: string; checkpointFile: string; metricsFile: string; resumeFrom: Checkpoint | null; changed: string[] }): Promise<number> {
  const { out, checkpointFile, metricsFile, resumeFrom } = run;
  const start = resumeFrom?.iteration ?? 0;
  const iterations = Number(flags.iterations);
  mkdirSync(out, { recursive: true });
  // Temporary files of writers that were killed mid-write; a fresh run with --force clears the old one.
  removeStaleTemps(out);
  if (!resumeFrom && flags.force) for (const name of RUN_FILES) rmSync(path.join(out, name), { force: true });
  // Records a crash left past the checkpoint are written again by this run.
  const dropped = resumeFrom ? truncateMetrics(metricsFile, start) : 0;
  const { evalAttack, evalTasks, fileHeldOut } = plan;
  const config = { flags: { ...flags, resume: false, force: false }, source: source.kind === 'images' || source.kind === 'omniglot' ? source.name : source.kind };
  const fallback = 'fallbackReason' in learner.backend ? learner.backend.fallbackReason : undefined;
  console.log(`metagrad train: ${learner.options.algorithm} on ${config.source}, D=${learner.options.dim}, backend ${learner.backend.kind} (${learner.backend.adapter})` +
    (fallback ? ` — ${backendReasonInBrief(fallback)}${/software/.test(fallback) ? ' (--backend webgpu uses it anyway)' : ''}` : ''));
  const before = resumeFrom?.elapsedSeconds ?? 0;
  if (resumeFrom) {
    // The defaults, with --model and --classes 'auto' as they resolve for this run's source.
    const plain = parseFlags([], TRAIN_FLAGS, 'train');
    const { model, classes } = resolveModelFlags({ ...plain, source: flags.source, ways: flags.ways });
    const defaults: FlagValues = { ...plain, model, classes };
    const runFlags = Object.keys(TRAIN_FLAGS).filter((n) => !NOT_CONFIG.has(n) && !TRAIN_FLAGS[n].switch && JSON.stringify(flags[n]) !== JSON.stringify(defaults[n]));
    console.log(`resuming from iteration ${start} of ${iterations} (${checkpointFile}, ${formatSeconds(before)} of training so far): ` +
      `${runFlags.map((n) => `--${n} ${showFlag(flags[n])}`).join(' ') || 'the default flags'}` + (run.changed.length ? `; changed: ${run.changed.join(', ')}` : ''));
    if (dropped) console.log(`dropped ${dropped} record${dropped > 1 ? 's' : ''} of ${metricsFile} past iteration ${start} (written after the checkpoint)`);
  }

  const bar = flags.quiet ? null : new ProgressBar(iterations, start);
  const checkpointEvery = Number(flags['checkpoint-every']);
  let t0 = performance.now();
  const elapsed = () => before + (performance.now() - t0) / 1000;
  let lastSaved = start;
  const save = async (iteration: number) => {
    saveCheckpoint(checkpointFile, { format: 'metagrad-checkpoint/1', iteration, elapsedSeconds: elapsed(), options: learner.options, config, state: await learner.getState() });
    lastSaved = iteration;
  };
  // SIGINT / SIGTERM: the iterations in flight finish, the checkpoint of that iteration is written,
  // and the run stops (a second signal stops at once).
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      process.stderr.write(`\nmetagrad: ${signal} again: stopping now; ${checkpointFile} holds iteration ${lastSaved}.\n`);
      process.exit(SIGNAL_STATUS[signal] ?? 1);
    }
    interrupted = signal;
    process.stderr.write(`\nmetagrad: ${signal}: stopping after the iterations in flight, then writing the checkpoint (${signal} again stops at once)\n`);
  };
  let lastEval: EvaluateResult | undefined;
  const brief = (r: QueryScores) => (r.metric === 'mse' ? `MSE ${r.mse!.toFixed(3)}` : pct(r.accuracy));
  const onProgress = async (progress: TrainProgress) => {
    // Let the event loop deliver signals (the CPU engine may run many submits without yielding to it).
    await new Promise<void>((resolve) => setImmediate(resolve));
    // A task file's held-out tasks, each once, at the evaluation points (learner.train samples its
    // evalTasks with replacement: a few held-out tasks drawn hundreds of times make a false interval).
    const p = fileHeldOut && ((Number(flags['eval-every']) > 0 && progress.iteration % Number(flags['eval-every']) === 0) || progress.iteration === progress.endIteration)
      ? { ...progress, eval: await learner.evaluate(fileHeldOut, { steps: plan.options.evalSteps, attack: evalAttack }) }
      : progress;
    if (p.eval) {
      lastEval = p.eval;
      // Scores as the metric of the model: accuracy, or a regression model's MSE.
      const scores = (r: QueryScores) => (r.metric === 'mse'
        ? { loss: r.loss, mse: r.mse, mseCi95: r.mseInterval!.ci95 }
        : { loss: r.loss, accuracy: r.accuracy, accuracyCi95: r.accuracyInterval.ci95 });
      const record = {
        iteration: p.iteration, elapsedSeconds: before + p.elapsedSeconds, train: p.train,
        eval: scores(p.eval), attacked: p.eval.attacked ? scores(p.eval.attacked) : undefined,
      };
      appendFileSync(metricsFile, JSON.stringify(record) + '\n');
    }
    if (p.iteration - lastSaved >= checkpointEvery || p.iteration === p.endIteration) await save(p.iteration);
    const metrics = [
      p.train ? `loss ${p.train.loss.toFixed(3)}` : '',
      lastEval ? `${evalSplitName} ${brief(lastEval)}` : '',
      lastEval?.attacked ? `${String(flags.attack)} ${brief(lastEval.attacked)}` : '',
    ].filter(Boolean).join('  ');
    bar?.update(p.iteration, p.iterationsPerSecond, metrics, before + p.elapsedSeconds);
    if (interrupted && p.iteration < p.endIteration) {
      if (lastSaved !== p.iteration) await save(p.iteration);
      throw new Interrupted(interrupted, p.iteration);
    }
  };
  // With a validation split, train's evaluations use it (evalSplit 'auto'): tuning never sees the test alphabets.
  const evalSplitName = source.kind === 'omniglot' && source.split?.val?.length ? 'validation' : 'held-out';
  const scored = fileHeldOut ? `each of the ${evalTasks} held-out task${evalTasks === 1 ? '' : 's'} of ${source.kind === 'file' && flags['test-file'] ? String(flags['test-file']) : `${String(flags.file)} (its last 20%)`} once` : `${evalTasks} tasks`;
  if (fileHeldOut) console.log(`held-out scores: ${scored}`);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  t0 = performance.now();
  try {
    await learner.train({ ...plan.options, onProgress });
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
    bar?.finish();
    writePlot(out);
    process.stderr.write(`metagrad: interrupted by ${e.signal} at iteration ${e.iteration} of ${iterations}: wrote ${checkpointFile}; continue with: metagrad train --resume --out ${out}\n`);
    return SIGNAL_STATUS[e.signal] ?? 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  bar?.finish();
  const seconds = (performance.now() - t0) / 1000;
  // A regression run ends with its adaptation curve: held-out MSE after 0 … 10 inner steps (cheap for
  // the small nets regression uses), in summary.json and curves.svg.
  const curve = lastEval?.metric === 'mse' && !fileHeldOut ? await adaptationCurve(learner, source, plan) : undefined;
  writePlot(out, curve);
  const summary = {
    algorithm: learner.options.algorithm, source: config.source, iterations, seconds: before + seconds, backend: learner.backend,
    ...(resumeFrom ? { resumedFrom: start, sessionSeconds: seconds } : {}),
    final: lastEval ? (lastEval.metric === 'mse'
      ? { metric: 'mse', mse: lastEval.mseInterval, attacked: lastEval.attacked?.mseInterval, attack: evalAttack, curve }
      : { accuracy: lastEval.accuracyInterval, attacked: lastEval.attacked?.accuracyInterval, attack: evalAttack }) : null,
  };
  writeAtomic(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(`done: ${iterations - start} iterations in ${formatSeconds(seconds)} (${((iterations - start) / seconds).toFixed(1)} it/s)` +
    (resumeFrom ? `, ${formatSeconds(before + seconds)} of training in all` : '') +
    (lastEval ? `; ${evalSplitName} ${metricName(lastEval)} ${showMetric(lastEval)}` + (lastEval.attacked ? `, under ${String(flags.attack)} ε=${String(flags['attack-epsilon'])}: ${showMetric(lastEval.attacked)}` : '') : '') +
    ` (${scored}, 95% CI)`);
  console.log(`wrote ${out}/checkpoint.json, metrics.jsonl, curves.svg, summary.json`);
  return 0;
}

/** Held-out MSE after 0 … 10 inner steps of the trained model (the evaluation tasks of train). More
 * steps than training took may diverge (Meta-SGD's learned step sizes): the curve then ends there, and
 * says so. */
async function adaptationCurve(learner: Learner, source: TaskSource, plan: TrainPlan): Promise<Array<{ steps: number; mse: { mean: number; ci95: number } | null; diverged?: true }>> {
  const o = plan.options;
  // The held-out tasks train's evaluations scored (a regression source has no validation split).
  const batch = sampleTasks(source, { tasks: plan.evalTasks, supportShots: o.supportShots!, queryShots: o.queryShots! }, learner.options.seed, 0, 'test');
  const curve: Array<{ steps: number; mse: { mean: number; ci95: number } | null; diverged?: true }> = [];
  for (let k = 0; k <= 10; k++) {
    const r = await scoreOrDiverged(() => learner.evaluate(batch, { steps: k, lr: o.evalLr }));
    if (!r) {
      curve.push({ steps: k, mse: null, diverged: true });
      break;
    }
    curve.push({ steps: k, mse: r.mseInterval! });
  }
  return curve;
}

/** An evaluation's result, or null when its inner steps diverged (NaN or ±Infinity: a DivergenceError,
 * which leaves the learner usable). */
async function scoreOrDiverged(run: () => Promise<EvaluateResult>): Promise<EvaluateResult | null> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof DivergenceError) return null;
    throw e;
  }
}

/** curves.svg from metrics.jsonl: held-out accuracy or MSE (clean, attacked) and training loss; a
 * regression run's adaptation curve (MSE after k inner steps) as a third panel. */
export function writePlot(out: string, curve?: Array<{ steps: number; mse: { mean: number; ci95: number } | null }>): void {
  const file = path.join(out, 'metrics.jsonl');
  if (!existsSync(file)) return;
  // Records with an evaluation; a line torn by a crash (dropped when the run resumes) is left out.
  const rows = readFileSync(file, 'utf8').split('\n').flatMap((l) => {
    try { return [JSON.parse(l)]; } catch { return []; }
  }).filter((r) => typeof r?.iteration === 'number' && (typeof r.eval?.accuracy === 'number' || typeof r.eval?.mse === 'number'));
  // A regression model's records hold its MSE instead of an accuracy.
  const key = rows.some((r) => typeof r.eval.mse === 'number') ? 'mse' : 'accuracy';
  const panels: Panel[] = [
    {
      title: `held-out ${key === 'mse' ? 'MSE' : 'accuracy'} (95% CI)`, yLabel: key === 'mse' ? 'MSE' : 'accuracy', series: [
        { name: 'clean', color: '#1f77b4', points: rows.map((r) => ({ x: r.iteration, y: r.eval[key], ci: r.eval[`${key}Ci95`] })) },
        { name: 'attacked', color: '#d62728', points: rows.filter((r) => r.attacked).map((r) => ({ x: r.iteration, y: r.attacked[key], ci: r.attacked[`${key}Ci95`] })) },
      ],
    },
    { title: 'training query loss', yLabel: 'loss', series: [{ name: 'meta-batch', color: '#2ca02c', points: rows.filter((r) => r.train).map((r) => ({ x: r.iteration, y: r.train.loss })) }] },
  ];
  if (curve) panels.push({ title: 'held-out MSE after k inner steps (95% CI)', yLabel: 'MSE', xLabel: 'inner steps', series: [{ name: 'meta-learned', color: '#9467bd', points: curve.flatMap((c) => (c.mse ? [{ x: c.steps, y: c.mse.mean, ci: c.mse.ci95 }] : [])) }] });
  writeFileSync(path.join(out, 'curves.svg'), svgPlot(panels, 'meta-iteration'));
}

async function evaluate(args: string[]): Promise<void> {
  // What the rows of the table are (--help).
  const rows = `rows of the table:
  <algorithm> (checkpoint)  the meta-learned initialisation, adapted on each task's support set with k inner steps
  from scratch              the same network from its untrained initialisation (MLP: He init from the seed;
                            logistic unit: zero), adapted with the same k steps and inner rate: no meta-learning
  jointly trained           one model trained on the meta-train tasks without an inner loop, then adapted alike
                            (not for N-way episodes, Omniglot's or Fashion-MNIST's: they relabel classes at random)
  transfer                  (MLP on N-way episodes) one network of the checkpoint's widths and norm pretrained as
                            a classifier over every meta-train class (Omniglot: characters × 4 rotations) by minibatch
                            Adam; per task the body is frozen and a fresh zero N-way head is fitted to the
                            support set by gradient descent; with the checkpoint's norm 'task' the support set,
                            then the query set, is the normalisation set (transductive, like the meta-learned
                            model).
                            It takes no inner steps: one value for every column.
  nearest neighbour         1-NN on the raw pixels of the support set: no training, no steps
  oracle                    (sinusoid, instead of 1-NN) ŷ = A·sin(x − φ) with each task's true A and φ: the floor
each clean and, with --attack, under FGSM/PGD against that very (adapted) model. Scores are accuracy, or for
a regression model (sinusoid) the query MSE (mean over tasks of each task's mean squared error).
eval.json holds the table; eval.svg plots each model's curve over the inner steps.
`;
  if (args.includes('--help')) { process.stdout.write(helpText('eval', 'adaptation curves of a checkpoint against baselines', EVAL_FLAGS) + '\n' + rows); return; }
  const given = new Set<string>();
  const f = parseFlags(args, EVAL_FLAGS, 'eval', given);
  if (!given.has('checkpoint') && !existsSync(String(f.checkpoint))) {
    throw new InvalidOptionError(`No --checkpoint given, and the default ${String(f.checkpoint)} does not exist.`,
      'Pass --checkpoint PATH (the checkpoint.json in the --out folder of a metagrad train run), or run metagrad train first.');
  }
  const ckpt = loadCheckpoint(String(f.checkpoint));
  const trained = checkpointFlags(ckpt, String(f.checkpoint));
  const source = sourceFromFlags({ ...trained, ...Object.fromEntries(Object.entries(f).filter(([k, v]) => ['data', 'file', 'test-file'].includes(k) && v !== undefined)) },
    f.source === 'auto' ? String(trained.source) : String(f.source));
  const o = ckpt.options;
  const can = capabilitiesOf(o);
  if (can.stepSizes && given.has('inner-lr')) {
    throw new InvalidOptionError('--inner-lr does not apply to a Meta-SGD checkpoint: it adapts with its learned step sizes α (the from-scratch row with α = its initial innerLr).', 'Leave --inner-lr out.');
  }
  // A protonet takes no inner steps: its queries go to the nearest prototype.
  const stepFlag = (['inner-lr', 'steps', 'max-steps'] as const).find((n) => given.has(n));
  if (can.episode && stepFlag) {
    throw new InvalidOptionError(`--${stepFlag} does not apply to a protonet checkpoint: it takes no inner steps (each query goes to its nearest prototype).`, `Leave --${stepFlag} out.`);
  }
  const lr = auto(f['inner-lr']) ?? can.evaluateDefaults(o as ResolvedLearnerOptions).lr;
  // Meta-SGD's evaluate takes no rate (its α is part of the model), nor does a protonet's.
  const evalLr = can.stepSizes || can.episode ? undefined : lr;
  const backend = f.backend as LearnerOptions['backend'];
  if (!can.metaGradient) throw new InvalidOptionError('eval compares meta-learned initialisations; an AMP checkpoint holds independent models.', 'Evaluate AMP models with learner.evaluate on their own tasks.');
  // A task file's held-out tasks are scored each once, all of them; elsewhere --eval-tasks are sampled.
  if (source.kind === 'file' && given.has('eval-tasks')) {
    throw new InvalidOptionError(`--eval-tasks does not apply to a task file: eval scores each of its ${source.test.count} held-out tasks once.`, 'Leave --eval-tasks out (add held-out tasks to the file, or pass --test-file, for a tighter interval).');
  }
  const transferApplies = o.model.kind !== 'logistic' && source.kind === 'omniglot';
  const transferFlag = [...given].find((n) => n.startsWith('transfer-'));
  if (transferFlag && !transferApplies) throw new InvalidOptionError(`--${transferFlag} does not apply here: the transfer baseline is for a network's checkpoint (mlp, conv4) on N-way Omniglot episodes.`, `Leave --${transferFlag} out.`);
  const fileHeldOut = source.kind === 'file' ? heldOutFileTasks(source) : null;
  const tasks = fileHeldOut ? fileHeldOut.tasks : Number(f['eval-tasks']);
  const shots = fileHeldOut ? { supportShots: fileHeldOut.supportShots, queryShots: fileHeldOut.queryShots } : shotsOf(trained, source);
  const clip = isPixels(source) ? ([0, 1] as [number, number]) : undefined;
  const attack = attackFromFlags(f.attack, f['attack-epsilon'], clip);
  const maxSteps = f['max-steps'] === 'auto' ? (source.kind === 'sinusoid' ? 10 : 5) : parseSteps(String(f['max-steps']), '--max-steps')[0];
  const steps = can.episode ? [0] : f.steps === 'auto' ? Array.from({ length: maxSteps + 1 }, (_, k) => k) : parseSteps(String(f.steps));
  // Every flag is checked before an adapter is acquired.
  const resolved = resolveLearnerOptions({ ...stripForAlgorithm(o), backend });
  for (const k of steps) resolveEvaluateOptions({ steps: k, lr: evalLr, attack }, resolved);

  const restored = await createLearner({ ...stripForAlgorithm(o), backend });
  restoreState(restored, ckpt, String(f.checkpoint));
  // The baseline without meta-learning: the zero initialisation for the logistic unit; for a network
  // (MLP or conv: zero weights cannot learn, every hidden unit is dead) its untrained He initialisation.
  const mlp = o.model.kind !== 'logistic';
  const zeros = await createLearner({ ...stripForAlgorithm(o), backend, ...(mlp ? {} : { initScale: 0 }) } as LearnerOptions);
  if (can.adapt === 'context' && !mlp) {
    // A context-adapting model's zero baseline keeps W (else no context can move the model): w = 0, W as
    // trained (CAML).
    const p = ckpt.state.params.slice();
    p.fill(0, 0, o.dim);
    zeros.setParams(p);
  }
  // From scratch: the same network from its untrained initialisation, adapted with the same steps and rate.
  // (ANIL's own inner loop adapts only the head of the untrained network: its row says so.)
  const regression = source.kind === 'sinusoid';
  const initName = regression ? "nn.Linear's init" : 'He init';
  const scratchName = can.episode ? `untrained body (${initName}; nearest prototype)`
    : mlp ? `from scratch (${initName}, same steps${can.adapt === 'head' ? ', head only' : ''})` : 'from scratch (zero init, same steps)';
  const checkpointName = `${o.algorithm} (checkpoint, iteration ${ckpt.iteration}${can.episode ? '; nearest prototype, no steps' : ''})`;
  const models: Array<[string, Learner]> = [[checkpointName, restored], [scratchName, zeros]];
  const jointIterations = f['joint-iterations'] === 'auto' ? ckpt.iteration : parseNumber(String(f['joint-iterations']));
  // N-way Omniglot tasks relabel their classes at random: one jointly trained model has no fixed
  // label-to-class map to learn, so that row is left out there.
  if (jointIterations > 0 && can.adapt === 'all' && !can.episode && source.kind !== 'omniglot') {
    // The usual pretrained baseline: one model trained jointly on the meta-train tasks (no inner loop).
    const joint = await createLearner({ algorithm: 'maml', dim: o.dim, model: o.model, backend, seed: o.seed, optimizer: o.optimizer, outerLr: o.outerLr, innerSteps: 0, innerLr: o.innerLr });
    process.stderr.write(`training the joint baseline for ${jointIterations} iterations…\n`);
    await joint.train({ source, iterations: jointIterations, tasksPerBatch: Number(trained.tasks), ...shots });
    models.push([regression ? 'pretrained (jointly on all meta-train tasks, no inner loop), fine-tuned with the same steps' : 'jointly trained', joint]);
  }
  const results: Record<string, Array<{ steps: number; clean: unknown; attacked: unknown; diverged?: true }>> = {};
  console.log(`metagrad eval: ${fileHeldOut ? `each of the ${tasks} held-out task${tasks === 1 ? '' : 's'} of ${String(f['test-file'] ?? trained['test-file'] ?? trained.file)}${trained['test-file'] || f['test-file'] ? '' : ' (its last 20%)'} once` : `${tasks} held-out tasks`} of ${source.kind === 'images' ? `${source.name} (classes ${FASHION_SPLIT.test[0]}–${FASHION_SPLIT.test[1] - 1})` : source.kind === 'omniglot' ? `${source.name}, ${source.ways}-way (held-out alphabets)` : source.kind}, ` +
    `${shots.supportShots}-row support, ${shots.queryShots}-row query, ${can.episode ? 'nearest prototype (no steps)' : can.stepSizes ? 'learned step sizes α' : `inner lr ${lr}`}; ${regression ? 'query MSE' : 'accuracy'} mean ± 95% CI` + (attack ? `; attack ${attack.kind} ε=${attack.epsilon} against each adapted model` : ''));
  // One held-out batch (the meta-test split's batch 0), sampled once by the CPU twin — for images bit-
  // identical to what the GPU sampler draws — and scored by every model after 0 … k steps.
  const heldOut = fileHeldOut ?? sampleTasks(source, { tasks, ...shots }, o.seed, 0, 'test');
  const header = `| model | ${steps.map((k) => `${k} step${k === 1 ? '' : 's'}`).join(' | ')} |`;
  console.log(`\n${header}\n|---|${steps.map(() => '---').join('|')}|`);
  for (const [name, learner] of models) {
    results[name] = [];
    const clean: string[] = [];
    const attacked: string[] = [];
    for (const k of steps) {
      // (The baselines adapt with the checkpoint's rate, Meta-SGD with its learned step sizes: past the
      // steps they were made for, their inner steps may diverge — a cell, not a failed command.)
      const r = await scoreOrDiverged(() => learner.evaluate(heldOut, { steps: k, lr: evalLr, attack }));
      if (!r) {
        results[name].push({ steps: k, clean: null, attacked: null, diverged: true });
        clean.push('diverged');
        if (attack) attacked.push('diverged');
        continue;
      }
      results[name].push({ steps: k, clean: metricInterval(r), attacked: r.attacked ? metricInterval(r.attacked) : undefined });
      clean.push(showMetric(r));
      if (r.attacked) attacked.push(showMetric(r.attacked));
    }
    console.log(`| ${name} | ${clean.join(' | ')} |`);
    if (attacked.length) console.log(`| ${name}, ${attack!.kind} | ${attacked.join(' | ')} |`);
  }
  // The transfer baseline (a network on Omniglot): pretrain over every meta-train class, fine-tune a
  // fresh head per task; it takes no inner steps, so one value fills every column.
  let transfer: Record<string, unknown> | undefined;
  const transferIterations = Number(f['transfer-iterations']);
  if (o.model.kind !== 'logistic' && source.kind === 'omniglot' && transferIterations > 0) {
    const set = omniglotTrainSet(source);
    const mlpModel = o.model.kind === 'mlp' ? o.model : null;
    // --transfer-norm is the MLP's choice; a conv net keeps its own norm layers.
    const norm = mlpModel ? (f['transfer-norm'] === 'auto' ? mlpModel.norm === 'task' : f['transfer-norm'] === 'task') : true;
    const pretrainOptions = { seed: o.seed, iterations: transferIterations, batch: Number(f['transfer-batch']), lr: Number(f['transfer-lr']) };
    const what = mlpModel ? [784, ...mlpModel.hidden, set.classes].join('-') : `${o.model.kind} with a ${set.classes}-way head`;
    process.stderr.write(`pretraining the transfer baseline: ${what} over ${set.classes} meta-train classes, ${transferIterations} Adam iterations of ${pretrainOptions.batch} images…\n`);
    const pre = mlpModel ? pretrainMlp(set, { ...pretrainOptions, hidden: mlpModel.hidden, norm }) : pretrainModel(set, o.model, pretrainOptions);
    const headLr = auto(f['transfer-head-lr']);
    const attackParams = resolveAttack(attack, restored.options);
    const t0 = performance.now();
    const r = transferAccuracy(pre, heldOut, { ways: source.ways, steps: Number(f['transfer-steps']), lr: headLr, attack: attackParams });
    const tail = (xs: Float64Array) => xs.slice(-Math.min(50, xs.length)).reduce((a, v) => a + v, 0) / Math.min(50, xs.length);
    const name = `transfer (${mlpModel && norm ? "norm task, " : ""}pretrained ${transferIterations} it, fresh head ${String(f["transfer-steps"])} steps)`;
    console.log(`| ${name} | ${steps.map(() => withCi(r.accuracy)).join(' | ')} |`);
    if (r.attacked) console.log(`| ${name}, ${attack!.kind} | ${steps.map(() => withCi(r.attacked!.accuracy)).join(' | ')} |`);
    process.stderr.write(`transfer baseline: pretraining ${pre.seconds.toFixed(1)} s (minibatch loss ${pre.losses[0].toFixed(3)} → ${tail(pre.losses).toFixed(3)}, mean of the last 50), ` +
      `fine-tuning and scoring ${((performance.now() - t0) / 1000).toFixed(1)} s; head rate ${headLr ?? `auto (mean ${r.lr.toPrecision(3)})`}, support loss after ${String(f['transfer-steps'])} steps ${r.supportLoss.toFixed(3)}\n`);
    transfer = {
      ...pretrainOptions, ...(mlpModel ? { hidden: mlpModel.hidden, norm } : { model: o.model.kind }), classes: set.classes, headSteps: Number(f['transfer-steps']), headLr: headLr ?? 'auto', meanHeadLr: r.lr,
      pretrainSeconds: pre.seconds, pretrainLoss: { first: pre.losses[0], last50: tail(pre.losses) }, supportLoss: r.supportLoss,
      transductive: norm, clean: r.accuracy, attacked: r.attacked?.accuracy,
    };
  }
  // No training and no steps: 1-nearest-neighbour on the raw inputs (the field's pixel baseline) for
  // classification; for sinusoids the oracle that knows each task's A and φ.
  let extra: Record<string, unknown>;
  if (source.kind === 'sinusoid') {
    const oracle = sinusoidOracleMse(source, heldOut, o.seed);
    console.log(`| oracle (knows A and φ: ŷ = A·sin(x − φ); its MSE is the targets' float32 rounding) | ${steps.map(() => mseWithCi(oracle)).join(' | ')} |`);
    extra = { oracle };
  } else {
    const nn = nearestNeighbourAccuracy(heldOut);
    console.log(`| nearest neighbour (raw inputs, no steps) | ${steps.map(() => withCi(nn.accuracy)).join(' | ')} |`);
    extra = { nearestNeighbour: nn.accuracy };
  }
  const outFile = f.out === 'auto' ? path.join(path.dirname(String(f.checkpoint)), 'eval.json') : String(f.out);
  writeAtomic(outFile, JSON.stringify({ checkpoint: f.checkpoint, iteration: ckpt.iteration, tasks, lr, attack, metric: regression ? 'mse' : 'accuracy', results, ...(transfer ? { transfer } : {}), ...extra }, null, 2) + '\n');
  // The adaptation curves as a plot beside eval.json.
  const svgFile = outFile.replace(/\.json$/, '') + '.svg';
  writeFileSync(svgFile, svgPlot([{
    title: `held-out ${regression ? 'MSE' : 'accuracy'} after k inner steps (95% CI)`, yLabel: regression ? 'MSE' : 'accuracy',
    series: Object.entries(results).map(([name, rs], i) => ({ name: name.replace(/ \(.*$/, ''), color: PALETTE[i % PALETTE.length], points: rs.flatMap((r) => (r.clean ? [{ x: r.steps, y: (r.clean as { mean: number }).mean, ci: (r.clean as { ci95: number }).ci95 }] : [])) })),
  }], 'inner steps'));
  console.log(`\nwrote ${outFile}, ${svgFile}`);
  for (const [, l] of models) l.destroy();
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

/** The oracle of sinusoid regression: ŷ = A·sin(x − φ) with each held-out task's own A and φ (in float64),
 * scored as the models are: the mean over tasks of each task's query MSE, with its 95% interval. */
export function sinusoidOracleMse(source: SinusoidSource, batch: CheckedBatch, seed: number): { mean: number; ci95: number } {
  const { amplitude, phase } = sinusoidTasks(source, batch.tasks, seed, 0, 'test');
  const Kq = batch.queryShots;
  const perTask = Float64Array.from({ length: batch.tasks }, (_, t) => {
    let sum = 0;
    for (let k = 0; k < Kq; k++) {
      const e = batch.queryY[t * Kq + k] - amplitude[t] * Math.sin(batch.queryX[t * Kq + k] - phase[t]);
      sum += e * e;
    }
    return sum / Kq;
  });
  return meanWithInterval(perTask);
}

/** Resolved options → the options createLearner accepts for that algorithm. */
function stripForAlgorithm(o: Checkpoint['options']): LearnerOptions {
  const { backend: _, ...rest } = o as Checkpoint['options'] & { backend?: unknown };
  return pickOptions(o.algorithm, rest);
}

async function info(args: string[]): Promise<void> {
  if (args.includes('--help')) { process.stdout.write(helpText('info', 'backends, adapters and limits found on this machine', INFO_FLAGS)); return; }
  parseFlags(args, INFO_FLAGS, 'info');
  console.log(`metagrad ${VERSION}, node ${process.version}, ${process.platform}-${process.arch}`);
  // createRequire, not import.meta.resolve (Node ≥ 20.6): the floor is Node 20.0.
  try {
    const pkg = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('webgpu/package.json'), 'utf8'));
    console.log(`webgpu (Dawn) package ${pkg.version}`);
  } catch {
    console.log('webgpu (Dawn) package: not installed (an optional dependency: npm install webgpu)');
  }
  console.log('backends: cpu (always)');
  for (const p of ['vulkan', 'opengles', 'swiftshader'] as AdapterPath[]) {
    try {
      const acq = await acquireDevice({ path: p });
      const l = acq.device.limits;
      console.log(`  webgpu via ${p}: ${acq.description}${acq.software ? ' [software]' : ''}; timestamps: ${acq.hasTimestamps ? 'yes' : 'no'}`);
      console.log(`    limits: maxStorageBufferBindingSize ${(l.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, maxBufferSize ${(l.maxBufferSize / 2 ** 20).toFixed(0)} MiB, ` +
        `maxStorageBuffersPerShaderStage ${l.maxStorageBuffersPerShaderStage}, maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize} B, maxComputeWorkgroupsPerDimension ${l.maxComputeWorkgroupsPerDimension}`);
      acq.device.destroy();
    } catch (e) {
      console.log(`  webgpu via ${p}: unavailable (${(e as Error).message.replace(/\n\s*/g, ' ')})`);
    }
  }
  const picked = await pickAutoBackend();
  console.log(`backend 'auto' picks: ${picked.backend} — ${cliVocabulary(picked.reason.split('\n')[0], new Map(), 'info')}`);
  await releaseSharedDevice();
}

export async function main(argv: string[]): Promise<number> {
  // -h is --help, as everywhere; `metagrad help train` is `metagrad train --help`.
  const words = argv.map((a) => (a === '-h' ? '--help' : a));
  if (words[0] === 'help' && words[1] !== undefined && COMMANDS.includes(words[1])) words.splice(0, 2, words[1], '--help');
  const [command, ...rest] = words;
  try {
    switch (command) {
      case 'train': { const code = await train(rest); if (code !== 0) return code; break; }
      case 'eval': await evaluate(rest); break;
      case 'info': await info(rest); break;
      case undefined: case '--help': case 'help':
        if (command === 'help' && rest[0] !== undefined) return unknownCommand(rest[0]);
        process.stdout.write(usage()); return command ? 0 : 2;
      case '--version': case '-v': console.log(VERSION); break;
      default: return unknownCommand(command);
    }
    return 0;
  } catch (e) {
    if (e instanceof MetagradError) {
      // The API's words (option names, src/ paths) in the command line's: its flags. A file's errors
      // name what is in the file (a checkpoint's options.innerLr), so keep their words.
      const names = (command === 'train' || command === 'eval') && !(e instanceof FileError) ? flagNames(command, command === 'train' ? TRAIN_FLAGS : EVAL_FLAGS) : new Map<string, string>();
      const say = (text: string) => cliVocabulary(text, names, command ?? '');
      process.stderr.write(`metagrad: ${say(e.message.split('\nHINT: ')[0].replace(/\n/g, ' '))}\nhint: ${say(e.hint)}\n`);
      return e instanceof InvalidOptionError ? 2 : 1;
    }
    process.stderr.write(`metagrad: unexpected error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

function unknownCommand(command: string): number {
  const near = closest(command, COMMANDS);
  process.stderr.write(`metagrad: unknown command "${command}"${near ? `; did you mean \`metagrad ${near}\`?` : ''}\n` +
    `hint: the commands are ${COMMANDS.join(', ')}; metagrad --help describes them.\n`);
  return 2;
}

/** --steps: a comma-separated list of inner-step counts (--max-steps: one). */
function parseSteps(v: string, flag = '--steps'): number[] {
  const steps = v.split(',').map((w) => w.trim()).filter(Boolean).map(Number);
  if (steps.length === 0 || !steps.every((k) => Number.isInteger(k) && k >= 0 && k <= 1000) || (flag === '--max-steps' && steps.length !== 1)) {
    throw new InvalidOptionError(`${flag}: "${v}" is not ${flag === '--max-steps' ? 'an inner-step count' : 'a list of inner-step counts'}.`, flag === '--max-steps' ? 'e.g. --max-steps 10' : 'e.g. --steps 3 or --steps 0,1,5');
  }
  return steps;
}
