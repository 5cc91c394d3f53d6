// All checks of user input live here, so that every bad input is rejected in one place, before any
// GPU work starts, with an error that names the problem and the fix.
import { InvalidOptionError, LabelError, LimitError, NonFiniteError, ShapeError } from './errors.js';
import { NO_CLIP, type Batch, type EvaluateOptions, type LearnerOptions, type ResolvedLearnerOptions, type TrainOptions } from './types.js';
import { ALGORITHM_NAMES, ALL_OPTION_KEYS, DEFAULT_ALGORITHM, applyDefaults, capabilitiesOf, optionHelp, optionKeys, optionUsers } from './algorithms/index.js';
import type { ModelSpec } from './models/mlp.js';
import { netLayout, type LayerSpec, type LossSpec } from './models/layers.js';
import { modelLayoutOf, netModelLayout } from './models/model.js';
import { COMMON_DEFAULTS } from './algorithms/common.js';
import { classRange, omniglotPool, sourceDim, type TaskSource } from './tasks/source.js';
import { missingClasses } from './tasks/idx.js';
import { sinusoidGrid, sinusoidQueries, type SinusoidSource } from './tasks/sinusoid.js';
import type { AttackParams } from './cpu/fgsm.js';

/** Rows per task set that the kernels hold in workgroup memory (MAX_ROWS in logistic-common.wgsl). */
export const MAX_ROWS = 256;
/** Inner steps accepted: each one keeps Ks probabilities per task for the order-2 backward pass. */
export const MAX_INNER_STEPS = 100;
/** Context size of CAML (workgroup memory of caml-task.wgsl). */
export const MAX_CONTEXT = 64;

function isPositiveFinite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

export function checkPositive(name: string, value: unknown, hint: string): number {
  if (!isPositiveFinite(value)) {
    throw new InvalidOptionError(`${name} must be a finite number > 0, got ${String(value)}.`, hint);
  }
  return value;
}

function checkNonNegative(name: string, value: unknown, hint: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError(`${name} must be a finite number ≥ 0, got ${String(value)}.`, hint);
  }
  return value;
}

export function checkInteger(name: string, value: unknown, min: number, max: number, hint: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}.`, hint);
  }
  return value;
}

function checkOneOf<T extends string | number>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new InvalidOptionError(
      `${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}.`,
      `Pass ${name}: ${JSON.stringify(allowed[0])} or leave it out for the default.`,
    );
  }
  return value as T;
}

function checkClip(name: string, clip: unknown): [number, number] {
  if (!Array.isArray(clip) || clip.length !== 2 || !clip.every((v) => typeof v === 'number' && !Number.isNaN(v)) || !(clip[0] < clip[1])) {
    throw new InvalidOptionError(`${name} must be [lo, hi] with lo < hi, got ${JSON.stringify(clip)}.`, 'For pixels in [0, 1] pass clip: [0, 1]; leave it out for no clipping.');
  }
  // ±Infinity become the largest finite float32: WGSL may assume values are finite.
  return [Math.max(clip[0], NO_CLIP[0]), Math.min(clip[1], NO_CLIP[1])];
}

const KNOWN_OPTIONS = new Set<string>(ALL_OPTION_KEYS);

export function resolveLearnerOptions(options: LearnerOptions): ResolvedLearnerOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('createLearner needs an options object.', 'Call createLearner({ dim: 50 }).');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new InvalidOptionError(`Unknown option "${key}".`, `Known options: ${[...KNOWN_OPTIONS].sort().join(', ')}.`);
    }
  }
  const algorithm = checkOneOf('algorithm', options.algorithm ?? DEFAULT_ALGORITHM, ALGORITHM_NAMES);
  const allowed = new Set<string>(optionKeys(algorithm));
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined && !allowed.has(key)) {
      const users = optionUsers(key);
      throw new InvalidOptionError(`Option "${key}" does not apply to algorithm '${algorithm}'.`, `It is an option of ${users.map((a) => `'${a}'`).join(', ')}; remove it or change the algorithm.`);
    }
  }
  // Every default comes from the algorithm's table (src/algorithms/<name>.ts).
  const o = applyDefaults({ ...options, algorithm });
  checkOneOf('backend', o.backend, ['auto', 'webgpu', 'cpu'] as const);
  checkInteger('dim', o.dim, 1, 1 << 20, 'dim is the number of features per row, e.g. 784 for 28×28 images.');
  checkPositive('innerLr', o.innerLr, 'A typical inner learning rate is 0.01 to 0.5.');
  checkPositive('outerLr', o.outerLr, 'A typical outer learning rate is 0.001 (adam) to 0.1 (sgd).');
  // 0 inner steps is joint training (no adaptation): the usual pretrained baseline of meta-learning papers.
  checkInteger('innerSteps', o.innerSteps, 0, MAX_INNER_STEPS, 'MAML usually takes 1 to 10 inner steps (0: joint training, no adaptation).');
  checkOneOf('order', o.order, [1, 2] as const);
  checkOneOf('optimizer', o.optimizer, ['sgd', 'adam'] as const);
  checkOneOf('innerOptimizer', o.innerOptimizer, ['sgd', 'amp'] as const);
  checkPositive('perturbLr', o.perturbLr, "AMP's ζ is typically 0.1 to 1.");
  checkInteger('perturbSteps', o.perturbSteps, 1, 100, "AMP's N is typically 1 to 5 ascent steps.");
  checkNonNegative('perturbEpsilon', o.perturbEpsilon, "AMP's L2 radius ε; 0 turns the perturbation off.");
  if (!Array.isArray(o.adamBetas) || o.adamBetas.length !== 2 || !o.adamBetas.every((b) => typeof b === 'number' && b >= 0 && b < 1)) {
    throw new InvalidOptionError(`adamBetas must be two numbers in [0, 1), got ${JSON.stringify(o.adamBetas)}.`, 'The usual values are [0.9, 0.999].');
  }
  checkPositive('adamEpsilon', o.adamEpsilon, 'The usual value is 1e-8.');
  checkInteger('seed', o.seed, 0, 2 ** 32 - 1, 'Use a non-negative integer seed, e.g. 1.');
  checkInteger('threads', o.threads, 0, 256, 'CPU worker threads: 0 (one per core), 1 (none) or a count.');
  checkNonNegative('initScale', o.initScale, 'Use 0 for a zero initialisation or e.g. 0.01.');
  if (typeof o.validate !== 'boolean') {
    throw new InvalidOptionError(`validate must be true or false, got ${String(o.validate)}.`, 'Leave it out (true) unless batches are checked elsewhere.');
  }
  checkPositive('innerLrAdv', o.innerLrAdv, 'ADML α2, typically equal to innerLr.');
  checkPositive('outerLrAdv', o.outerLrAdv, 'ADML β2, typically equal to outerLr.');
  checkNonNegative('epsilon', o.epsilon, `${optionHelp(algorithm, 'epsilon')?.help ?? 'ε'}.`);
  o.clip = checkClip('clip', o.clip);
  checkOneOf('pairing', o.pairing, ['cross', 'same'] as const);
  checkOneOf('normalization', o.normalization, ['paper', 'notebook'] as const);
  checkInteger('contextDim', o.contextDim, 1, MAX_CONTEXT, `CAVIA contexts are small: 1 to ${MAX_CONTEXT}.`);
  checkInteger('models', o.models, 1, 1 << 22, 'AMP trains one model per task of the batch.');
  checkPositive('lr', o.lr, "AMP's η, e.g. 0.1.");
  o.model = checkModel(o.model);
  // The default value is accepted so that resolved options (checkpoints, the CLI) round-trip; any other
  // value would be silently ignored, so it is refused.
  if (o.model.kind !== 'logistic' && options.initScale !== undefined && options.initScale !== COMMON_DEFAULTS.initScale) {
    throw new InvalidOptionError(`initScale (${options.initScale}) applies to the logistic model; the ${o.model.kind} model starts He-normal (SPEC.md).`, 'Leave initScale out, or set the parameters with setParams.');
  }
  // CAML's context enters layer 1 as constant input columns: it shifts every row's pre-activation by the
  // same amount, which a per-task normalisation of layer 1 subtracts again — φ would adapt on rounding noise.
  if (capabilitiesOf(o).adapt === 'context' && o.model.kind === 'mlp' && o.model.norm === 'task' && o.model.hidden.length > 0) {
    throw new InvalidOptionError(`${algorithm.toUpperCase()} with norm: 'task' cannot adapt: its context φ adds the same shift to every row of layer 1, which the per-task normalisation removes.`,
      `Use norm: 'none' with ${algorithm} (or hidden: [] for a softmax head).`);
  }
  // A layer list's shapes against the rows (the image has dim features; every layer fits its input).
  const net = netModelLayout(o.model, o.dim, capabilitiesOf(o).context(o));
  if (net && capabilitiesOf(o).adapt === 'head' && net.net.layers[net.net.layers.length - 1].spec.kind !== 'dense') {
    throw new InvalidOptionError(`${algorithm.toUpperCase()} adapts the head, the last layer, which must be dense; this model ends with ${net.net.layers[net.net.layers.length - 1].spec.kind}.`, "End the layer list with { kind: 'dense', units: N }.");
  }
  // The AMP inner optimizer perturbs every parameter: not for an algorithm that adapts only a context.
  if (capabilitiesOf(o).adapt !== 'all' && o.innerOptimizer === 'amp') {
    const others = optionUsers('innerOptimizer').filter((a) => capabilitiesOf({ algorithm: a }).adapt === 'all');
    throw new InvalidOptionError(`innerOptimizer 'amp' is not available for '${algorithm}': ${algorithm.toUpperCase()} adapts only the context φ.`,
      `Use innerOptimizer: 'sgd' with ${algorithm}, or 'amp' with ${others.slice(0, -1).join(', ')} or ${others[others.length - 1]}.`);
  }
  return o;
}

/** Largest width of an MLP layer and number of classes: the kernels keep a row of logits per invocation. */
export const MAX_WIDTH = 1 << 16;
export const MAX_CLASSES = 1024;
export const MAX_LAYERS = 16;

/** The model option, checked and copied (so that later changes to the caller's object change nothing). */
export function checkModel(model: unknown): ModelSpec {
  const hint = "Pass model: { kind: 'logistic' } or { kind: 'mlp', hidden: [256, 128, 64, 64], classes: 5 }.";
  if (model === null || typeof model !== 'object') throw new InvalidOptionError(`model must be an object, got ${JSON.stringify(model)}.`, hint);
  const m = model as Record<string, unknown>;
  if (m.kind === 'logistic') {
    const extra = Object.keys(m).filter((k) => k !== 'kind');
    if (extra.length) throw new InvalidOptionError(`The logistic model takes no options, got ${extra.join(', ')}.`, hint);
    return { kind: 'logistic' };
  }
  if (m.kind === 'conv4' || m.kind === 'layers') return checkNetModel(m);
  if (m.kind !== 'mlp') throw new InvalidOptionError(`model.kind must be 'logistic', 'mlp', 'conv4' or 'layers', got ${JSON.stringify(m.kind)}.`, hint);
  const extra = Object.keys(m).filter((k) => !['kind', 'hidden', 'classes', 'norm', 'loss'].includes(k));
  if (extra.length) throw new InvalidOptionError(`Unknown option(s) of the mlp model: ${extra.join(', ')}.`, hint);
  const hidden = m.hidden ?? [];
  if (!Array.isArray(hidden) || hidden.length > MAX_LAYERS - 1 || !hidden.every((h) => Number.isInteger(h) && h >= 1 && h <= MAX_WIDTH)) {
    throw new InvalidOptionError(`model.hidden must be an array of at most ${MAX_LAYERS - 1} integer widths in [1, ${MAX_WIDTH}], got ${JSON.stringify(hidden)}.`, 'e.g. hidden: [256, 128, 64, 64]; [] is multinomial logistic regression.');
  }
  const norm = m.norm ?? 'none';
  if (norm !== 'none' && norm !== 'task') throw new InvalidOptionError(`model.norm must be 'none' or 'task', got ${JSON.stringify(m.norm)}.`, "norm: 'task' normalises each hidden unit over the rows of the task's set (MAML's transductive batch norm).");
  const loss = m.loss ?? 'softmax-ce';
  if (loss !== 'softmax-ce' && loss !== 'mse') throw new InvalidOptionError(`model.loss must be 'softmax-ce' (classification) or 'mse' (regression), got ${JSON.stringify(m.loss)}.`, "e.g. { kind: 'mlp', hidden: [40, 40], loss: 'mse' } for MAML's sinusoid regressor.");
  if (loss === 'mse') {
    if (m.classes !== undefined) throw new InvalidOptionError(`The mlp regressor (loss 'mse') has one real output; it takes no classes (got ${JSON.stringify(m.classes)}).`, "Leave classes out, or use loss 'softmax-ce' for N-way classification.");
    return { kind: 'mlp', hidden: [...(hidden as number[])], loss, norm };
  }
  checkInteger('model.classes', m.classes, 2, MAX_CLASSES, 'classes is N of N-way tasks, e.g. 5.');
  return { kind: 'mlp', hidden: [...(hidden as number[])], classes: m.classes as number, norm };
}

/** The conv4 and layers models, checked and copied (their layer lists are checked against the data's
 * dim by netModelLayout when the learner is resolved). */
function checkNetModel(m: Record<string, unknown>): ModelSpec {
  const allowed = m.kind === 'conv4' ? ['kind', 'classes', 'filters', 'pooling', 'image'] : ['kind', 'input', 'layers', 'loss'];
  const hint = m.kind === 'conv4'
    ? "e.g. model: { kind: 'conv4', classes: 5 } (filters: 64, pooling: 'stride' — MAML's Omniglot net; pooling: 'max' — its mini-ImageNet net)."
    : "e.g. model: { kind: 'layers', input: { h: 28, w: 28, c: 1 }, layers: [{ kind: 'conv2d', filters: 32, size: 3, stride: 2, padding: 1 }, { kind: 'relu' }, { kind: 'meanpool' }, { kind: 'dense', units: 5 }] }.";
  const extra = Object.keys(m).filter((k) => !allowed.includes(k));
  if (extra.length) throw new InvalidOptionError(`Unknown option(s) of the ${String(m.kind)} model: ${extra.join(', ')}.`, hint);
  const shape = (name: string, v: unknown) => {
    const s = v as Record<string, unknown>;
    if (v === null || typeof v !== 'object' || !['h', 'w', 'c'].every((k) => Number.isInteger(s[k]) && (s[k] as number) >= 1)) {
      throw new InvalidOptionError(`${name} must be { h, w, c }, positive integers, got ${JSON.stringify(v)}.`, 'e.g. { h: 28, w: 28, c: 1 } for Omniglot rows.');
    }
    return { h: s.h as number, w: s.w as number, c: s.c as number };
  };
  if (m.kind === 'conv4') {
    checkInteger('model.classes', m.classes, 2, MAX_CLASSES, 'classes is N of N-way tasks, e.g. 5.');
    const filters = m.filters ?? 64;
    checkInteger('model.filters', filters, 1, 1024, 'MAML uses 64 on Omniglot and 32 on mini-ImageNet.');
    const pooling = m.pooling ?? 'stride';
    if (pooling !== 'stride' && pooling !== 'max') throw new InvalidOptionError(`model.pooling must be 'stride' or 'max', got ${JSON.stringify(m.pooling)}.`, hint);
    return { kind: 'conv4', classes: m.classes as number, filters: filters as number, pooling, ...(m.image !== undefined ? { image: shape('model.image', m.image) } : {}) };
  }
  if (!Array.isArray(m.layers)) throw new InvalidOptionError(`model.layers must be an array of layers, got ${JSON.stringify(m.layers)}.`, hint);
  if (m.layers.length > 4 * MAX_LAYERS) throw new InvalidOptionError(`model.layers has ${m.layers.length} layers; at most ${4 * MAX_LAYERS}.`, hint);
  const input = shape('model.input', m.input);
  // A deep copy of plain data (later changes to the caller's objects change nothing); netLayout checks each layer.
  const layers = JSON.parse(JSON.stringify(m.layers)) as LayerSpec[];
  const loss = (m.loss === undefined ? { kind: 'softmax-ce' } : JSON.parse(JSON.stringify(m.loss))) as LossSpec;
  netLayout(input, layers, loss);
  return { kind: 'layers', input, layers, loss };
}

export interface ResolvedEvaluateOptions {
  steps: number;
  lr: number;
  attack: AttackParams | null;
}

export function resolveEvaluateOptions(options: EvaluateOptions | undefined, learner: ResolvedLearnerOptions): ResolvedEvaluateOptions {
  const can = capabilitiesOf(learner);
  const defaults = can.evaluateDefaults(learner);
  if (can.stepSizes && options?.lr !== undefined) {
    throw new InvalidOptionError(`evaluate lr does not apply to Meta-SGD: it adapts with its learned step sizes α (getStepSizes()).`, 'Leave lr out (setStepSizes() changes α).');
  }
  const steps = options?.steps ?? defaults.steps;
  const lr = options?.lr ?? defaults.lr;
  if (can.episode) {
    // A protonet adapts nothing: it scores each query by its nearest prototype.
    if (steps !== 0 || options?.lr !== undefined) {
      throw new InvalidOptionError(`evaluate ${steps !== 0 ? `steps (${steps})` : 'lr'} does not apply to a protonet: it takes no inner steps (queries go to their nearest prototype).`, 'Leave steps and lr out (or steps: 0).');
    }
  } else {
    checkInteger('evaluate steps', steps, 0, MAX_INNER_STEPS, 'Use 0 to score θ without adaptation, or the training innerSteps.');
    checkPositive('evaluate lr', lr, 'Use the training innerLr.');
  }
  const a = options?.attack;
  if (a === undefined) return { steps, lr, attack: null };
  if (a === null || typeof a !== 'object') throw new InvalidOptionError('attack must be an object { kind, epsilon, … }.', "e.g. attack: { kind: 'fgsm', epsilon: 0.1 }.");
  const kind = checkOneOf('attack.kind', a.kind, ['fgsm', 'pgd'] as const);
  checkNonNegative('attack.epsilon', a.epsilon, 'The L∞ budget, e.g. 0.1 for inputs in [0, 1].');
  if (kind === 'fgsm' && (a.steps !== undefined || a.stepSize !== undefined)) {
    throw new InvalidOptionError('FGSM is one step of size ε: steps and stepSize apply to PGD only.', "Use kind: 'pgd' for several steps.");
  }
  const k = kind === 'fgsm' ? 1 : a.steps ?? 10;
  checkInteger('attack.steps', k, 1, 1000, 'PGD usually takes 10 to 40 steps.');
  const stepSize = kind === 'fgsm' ? a.epsilon : a.stepSize ?? (2.5 * a.epsilon) / k;
  checkNonNegative('attack.stepSize', stepSize, 'The default is 2.5·ε/steps.');
  const [lo, hi] = a.clip !== undefined ? checkClip('attack.clip', a.clip) : learner.clip;
  return { steps, lr, attack: { kind, epsilon: a.epsilon, steps: k, stepSize, lo, hi } };
}

/** Throws ShapeError unless `array` is a Float32Array of `expected` values. */
export function checkFloatArray(name: string, array: unknown, expected: number, layout: string): Float32Array {
  if (!(array instanceof Float32Array)) {
    throw new ShapeError(
      `${name} must be a Float32Array, got ${array === null ? 'null' : typeof array === 'object' ? (array as object).constructor?.name : typeof array}.`,
      `Wrap the data: new Float32Array(values). Layout: ${layout}.`,
    );
  }
  if (array.length !== expected) {
    throw new ShapeError(`${name} has ${array.length} values, expected ${expected} (${layout}).`, 'Check tasks, shots and dim against the arrays.');
  }
  return array;
}

export function checkFinite(name: string, array: Float32Array): void {
  // Fast pass on the bits: a float32 is NaN or ±Infinity exactly when its exponent is all ones, and then
  // (bits & 0x7f800000) + 0x00800000 carries into bit 31. Four OR-accumulators, no float arithmetic.
  const bits = new Uint32Array(array.buffer, array.byteOffset, array.length);
  const n = bits.length;
  const end4 = n - (n % 4);
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (let i = 0; i < end4; i += 4) {
    a0 |= (bits[i] & 0x7f800000) + 0x00800000;
    a1 |= (bits[i + 1] & 0x7f800000) + 0x00800000;
    a2 |= (bits[i + 2] & 0x7f800000) + 0x00800000;
    a3 |= (bits[i + 3] & 0x7f800000) + 0x00800000;
  }
  for (let i = end4; i < n; i++) a0 |= (bits[i] & 0x7f800000) + 0x00800000;
  if (((a0 | a1 | a2 | a3) & 0x80000000) === 0) return;
  for (let i = 0; i < array.length; i++) {
    const v = array[i];
    if (!Number.isFinite(v)) {
      throw new NonFiniteError(`${name}[${i}] is ${v}.`, 'Remove or impute non-finite values before passing the batch.');
    }
  }
}

export function checkLabels(name: string, array: Float32Array, rowsPerTask = array.length): void {
  // Fast pass: 0 and 1 are the only values v with v·(v − 1) = 0 (NaN fails it too).
  let bad = 0;
  for (let i = 0; i < array.length; i++) bad += array[i] * (array[i] - 1) === 0 ? 0 : 1;
  if (bad === 0) return;
  for (let i = 0; i < array.length; i++) {
    const v = array[i];
    if (v !== 0 && v !== 1) {
      throw new LabelError(`${name}[${i}] (task ${Math.floor(i / rowsPerTask)}, row ${i % rowsPerTask}) is ${v}; labels must be exactly 0 or 1.`, 'Binary tasks need labels in {0, 1}: map the positive class to 1 and the other to 0. For N-way tasks use model: { kind: \'mlp\', classes: N }.');
    }
  }
}

/** N-way labels: integral class indices 0 … classes−1 (the MLP's softmax head). */
export function checkClassLabels(name: string, array: Float32Array, classes: number, rowsPerTask: number): void {
  for (let i = 0; i < array.length; i++) {
    const v = array[i];
    // v >= 0 && v < classes is false for NaN; v % 1 catches fractions.
    if (!(v >= 0 && v < classes && v % 1 === 0)) {
      throw new LabelError(
        `${name}[${i}] (task ${Math.floor(i / rowsPerTask)}, row ${i % rowsPerTask}) is ${v}; labels of a ${classes}-way model must be class indices 0 … ${classes - 1}.`,
        `Relabel each task's classes 0 … ${classes - 1}, or create the learner with model.classes large enough.`,
      );
    }
  }
}

/** Labels as float32: Float32Array as it is, Int32Array / Uint32Array converted (exactly, for indices < 2^24). */
function labelArray(name: string, array: unknown, expected: number, layout: string): Float32Array {
  if (array instanceof Int32Array || array instanceof Uint32Array) {
    if (array.length !== expected) throw new ShapeError(`${name} has ${array.length} values, expected ${expected} (${layout}).`, 'Check tasks and shots against the arrays.');
    return Float32Array.from(array);
  }
  if (!(array instanceof Float32Array)) {
    throw new ShapeError(
      `${name} must be a Float32Array, Int32Array or Uint32Array of labels, got ${array === null ? 'null' : typeof array === 'object' ? (array as object).constructor?.name : typeof array}.`,
      `Wrap the labels: new Int32Array(values). Layout: ${layout}.`,
    );
  }
  return checkFloatArray(name, array, expected, layout);
}

/** Shape, limits and (when `deep`) content checks of a batch for a learner of `dim` features; labels
 * binary (classes = null: the logistic unit) or class indices 0 … classes−1. Returns the batch with its
 * labels as Float32Arrays (integer label arrays are converted; nothing else is copied). */
/** classes: null for the logistic unit's 0/1 labels, N for class indices 0 … N−1, 0 for real targets (MSE). */
export function validateBatch(batch: Batch, dim: number, deep: boolean, classes: number | null = null, episode = false): Batch {
  if (batch === null || typeof batch !== 'object') {
    throw new ShapeError('The batch must be an object { tasks, supportShots, queryShots, supportX, supportY, queryX, queryY }.', 'See the Batch type in the README.');
  }
  const { tasks, supportShots, queryShots } = batch;
  for (const [name, v] of [['tasks', tasks], ['supportShots', supportShots], ['queryShots', queryShots]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new ShapeError(`batch.${name} must be an integer ≥ 1, got ${String(v)}.`, 'Set tasks, supportShots and queryShots to the sizes of the arrays.');
    }
  }
  for (const [name, v] of [['supportShots', supportShots], ['queryShots', queryShots]] as const) {
    if (v > MAX_ROWS) {
      throw new LimitError(`batch.${name} = ${v} exceeds ${MAX_ROWS} rows per task set.`, `Split the task into sets of at most ${MAX_ROWS} rows.`);
    }
  }
  const layout = (k: string) => `tasks × ${k} × dim = ${tasks} × ${k === 'supportShots' ? supportShots : queryShots} × ${dim}, row-major`;
  checkFloatArray('batch.supportX', batch.supportX, tasks * supportShots * dim, layout('supportShots'));
  checkFloatArray('batch.queryX', batch.queryX, tasks * queryShots * dim, layout('queryShots'));
  const supportY = labelArray('batch.supportY', batch.supportY, tasks * supportShots, `tasks × supportShots = ${tasks} × ${supportShots}`);
  const queryY = labelArray('batch.queryY', batch.queryY, tasks * queryShots, `tasks × queryShots = ${tasks} × ${queryShots}`);
  const checked = supportY === batch.supportY && queryY === batch.queryY ? batch : { ...batch, supportY, queryY };
  if (!deep) return checked;
  checkFinite('batch.supportX', batch.supportX);
  checkFinite('batch.queryX', batch.queryX);
  if (classes === null) {
    checkLabels('batch.supportY', supportY, supportShots);
    checkLabels('batch.queryY', queryY, queryShots);
  } else if (classes === 0) {
    // Regression (MSE): the labels are real targets, finite after conversion to float32.
    checkFinite('batch.supportY', supportY);
    checkFinite('batch.queryY', queryY);
  } else {
    checkClassLabels('batch.supportY', supportY, classes, supportShots);
    checkClassLabels('batch.queryY', queryY, classes, queryShots);
    if (episode) checkEpisodeLabels(supportY, queryY, tasks, supportShots, queryShots);
  }
  return checked;
}

/** A protonet's episodes: every query row's class has a support row in its task (its prototype). */
function checkEpisodeLabels(supportY: Float32Array, queryY: Float32Array, tasks: number, Ks: number, Kq: number): void {
  const seen = new Set<number>();
  for (let t = 0; t < tasks; t++) {
    seen.clear();
    for (let s = 0; s < Ks; s++) seen.add(supportY[t * Ks + s]);
    for (let q = 0; q < Kq; q++) {
      const k = queryY[t * Kq + q];
      if (!seen.has(k)) {
        throw new LabelError(`batch.queryY[${t * Kq + q}] (task ${t}, row ${q}) is class ${k}, which has no support row in task ${t}: a protonet has no prototype for it.`,
          "Give every class of a task's query rows at least one support row (N-way K-shot episodes do).");
      }
    }
  }
}

/** Train options with defaults applied, checked against the learner (dimensions, AMP's models). */
export function resolveTrainOptions(options: TrainOptions, learner: ResolvedLearnerOptions) {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('train needs an options object { source, iterations, … }.', "e.g. train({ source: { kind: 'linear', dim: 21 }, iterations: 1000 }).");
  const source = options.source;
  const kinds = ['seed', 'linear', 'images', 'file', 'omniglot', 'sinusoid'];
  if (source === null || typeof source !== 'object' || !kinds.includes((source as TaskSource).kind)) {
    throw new InvalidOptionError(`train: source must be a task source with kind ${kinds.map((k) => `'${k}'`).join(', ')}.`, 'See src/tasks/source.ts, or the CLI flag --source.');
  }
  const dim = sourceDim(source);
  if (dim !== learner.dim) {
    throw new ShapeError(`The ${source.kind} source makes rows of ${dim} features but the learner has dim = ${learner.dim}.`, `Create the learner with dim: ${dim}${source.kind === 'images' ? ' (784 pixels + a bias feature)' : ''}.`);
  }
  const int = (name: string, v: unknown, min: number, max: number, hint: string) => checkInteger(`train ${name}`, v, min, max, hint);
  // One model per task (AMP): batches hold exactly as many tasks as models, for training and evaluation.
  const perTask = capabilitiesOf(learner).thetaPerTask;
  const models = capabilitiesOf(learner).models(learner);
  const tasksPerBatch = int('tasksPerBatch', options.tasksPerBatch ?? (perTask ? models : 32), 1, 1 << 20, 'Use e.g. 32 tasks per batch.');
  if (perTask && tasksPerBatch !== models) {
    throw new ShapeError(`AMP trains model i on task i: tasksPerBatch is ${tasksPerBatch}, models is ${models}.`, `Use tasksPerBatch: ${models}.`);
  }
  const evaluate = resolveEvaluateOptions({ steps: options.evalSteps, lr: options.evalLr, attack: options.evalAttack }, learner);
  const t = {
    source,
    iterations: int('iterations', options.iterations, 1, 1e9, 'Train for 1 or more meta-iterations.'),
    tasksPerBatch,
    supportShots: int('supportShots', options.supportShots ?? sourceRows(source)?.support ?? 10, 1, MAX_ROWS, `1 to ${MAX_ROWS} rows.`),
    queryShots: int('queryShots', options.queryShots ?? sourceRows(source)?.query ?? 10, 1, MAX_ROWS, `1 to ${MAX_ROWS} rows.`),
    startIteration: int('startIteration', options.startIteration ?? 0, 0, 2 ** 31 - 1, 'Start at 0, or at the iteration of a checkpoint.'),
    evalEvery: int('evalEvery', options.evalEvery ?? 0, 0, 1e9, 'Evaluate every N iterations, or 0 for never.'),
    evalTasks: int('evalTasks', options.evalTasks ?? (perTask ? models : 600), 1, 1 << 20, 'Use ≥ 600 held-out tasks for tight intervals.'),
    evalSteps: evaluate.steps,
    evalLr: evaluate.lr,
    evalAttack: evaluate.attack,
    evalSplit: evalSplitOf(options.evalSplit, source),
    iterationsPerSubmit: int('iterationsPerSubmit', options.iterationsPerSubmit ?? 10, 1, 10000, 'e.g. 10.'),
    trackTrainLoss: options.trackTrainLoss === true,
    onProgress: options.onProgress,
  };
  if (perTask && t.evalTasks !== models) {
    throw new ShapeError(`AMP scores model i on held-out task i: evalTasks is ${t.evalTasks}, models is ${models}.`, `Use evalTasks: ${models}, or leave it out.`);
  }
  checkSourceFor(source, t, learner, 'train');
  // Where evaluations draw their tasks: the training source, or another of the same kind and rows'
  // features (a protonet trained on 20-way episodes, scored on 5-way ones).
  const evalSource = options.evalSource ?? source;
  if (evalSource === null || typeof evalSource !== 'object' || evalSource.kind !== source.kind) {
    throw new InvalidOptionError(`train: evalSource must be a task source of the training source's kind (${source.kind}), got ${JSON.stringify((evalSource as TaskSource | null)?.kind)}.`, 'Leave evalSource out to evaluate on the training source.');
  }
  if (sourceDim(evalSource) !== dim) throw new ShapeError(`evalSource makes rows of ${sourceDim(evalSource)} features, the learner has dim = ${dim}.`, 'Give evalSource rows of the same features.');
  const evalRows = evalSource === source ? { supportShots: t.supportShots, queryShots: t.queryShots } : { supportShots: sourceRows(evalSource)?.support ?? t.supportShots, queryShots: sourceRows(evalSource)?.query ?? t.queryShots };
  if (evalSource !== source) checkSourceFor(evalSource, evalRows, learner, 'evaluation');
  return { ...t, evalSource, evalSupportShots: evalRows.supportShots, evalQueryShots: evalRows.queryShots };
}

/** The checks of one task source against the rows a batch of it has and the learner's model. */
function checkSourceFor(source: TaskSource, t: { supportShots: number; queryShots: number }, learner: ResolvedLearnerOptions, role: 'train' | 'evaluation'): void {
  if (source.kind === 'omniglot') {
    const { ways: N, shots: K, queries: Q } = source;
    if (t.supportShots !== N * K || t.queryShots !== N * Q) {
      throw new ShapeError(`A ${N}-way ${K}-shot Omniglot task with ${Q} queries per class has ${N * K} support and ${N * Q} query rows (ways × shots, ways × queries); ${role} asked for ${t.supportShots} and ${t.queryShots}.`, `Pass supportShots: ${N * K}, queryShots: ${N * Q}, or leave them out.`);
    }
    omniglotPool(source, 'train');  // throws on an unknown or shared alphabet, too few classes or drawers
    omniglotPool(source, 'test');
    if (source.split?.val?.length) omniglotPool(source, 'val');
    const classes = modelLayoutOf(learner)?.classes ?? 2;
    if (N > classes) {
      throw new ShapeError(`The Omniglot source labels ${N} classes per task but the model has ${classes} outputs.`, `Create the learner with model: { kind: 'mlp', classes: ${N}, … }, or use ways: ${classes}.`);
    }
  }
  if (source.kind === 'sinusoid') checkSinusoidSource(source, t, modelLayoutOf(learner)?.classes ?? 2);
  if (source.kind === 'images') {
    checkImageSource(source, 'train');
    checkImageSource(source, 'test');
  }
  if (source.kind === 'file') {
    for (const split of ['train', 'test'] as const) {
      const f = source[split];
      if (f.supportShots !== t.supportShots || f.queryShots !== t.queryShots) {
        throw new ShapeError(`The file's ${split} tasks have ${f.supportShots} support and ${f.queryShots} query rows; ${role} asked for ${t.supportShots} and ${t.queryShots}.`, `Pass supportShots: ${f.supportShots}, queryShots: ${f.queryShots}.`);
      }
    }
  }
}

/** Rows per task a source makes by itself (Omniglot: ways × shots and ways × queries; sinusoid: its
 * points), or null where the caller chooses them. */
export function sourceRows(source: TaskSource): { support: number; query: number } | null {
  if (source.kind === 'omniglot') return { support: source.ways * source.shots, query: source.ways * source.queries };
  if (source.kind === 'sinusoid') return { support: source.shots, query: sinusoidQueries(source) };
  return null;
}

/** A sinusoid source: integer points, valid ranges (sinusoidGrid's checks), rows that match, and a
 * regression model (real targets: the MSE loss, classes 0). */
export function checkSinusoidSource(source: SinusoidSource, rows: { supportShots: number; queryShots: number }, modelClasses: number): void {
  checkInteger('sinusoid shots', source.shots, 1, MAX_ROWS, 'K points per task, e.g. shots: 10.');
  checkInteger('sinusoid queries', sinusoidQueries(source), 1, MAX_ROWS, 'Query points per task (default: shots).');
  sinusoidGrid(source);
  if (rows.supportShots !== source.shots || rows.queryShots !== sinusoidQueries(source)) {
    throw new ShapeError(`The sinusoid source makes ${source.shots} support and ${sinusoidQueries(source)} query points per task; train asked for ${rows.supportShots} and ${rows.queryShots}.`, 'Leave supportShots and queryShots out (the source sets them).');
  }
  if (modelClasses !== 0) {
    throw new ShapeError('The sinusoid source has real targets (y = A·sin(x − φ)), but the model is a classifier.', "Use a regression model: { kind: 'mlp', hidden: [40, 40], loss: 'mse' } (MAML's 1-40-40-1), or a layers model with loss { kind: 'mse' }.");
  }
}

/** An images source's class range of `split` (classRange: at least 2 classes) and the images of each of
 * its classes: at least one, inside the data. A class without images would be sampled from nothing
 * (NaN parameters on the CPU, the next class's images on the GPU). */
export function checkImageSource(source: Extract<TaskSource, { kind: 'images' }>, split: 'train' | 'test'): void {
  const images = source.images;
  if (images === null || typeof images !== 'object' || !(images.data instanceof Uint8Array) || !Number.isInteger(images.pixels) || images.pixels < 1
    || typeof images.classStart?.length !== 'number' || images.classStart.length !== images.classCount?.length) {
    throw new ShapeError('An images source needs images: { pixels, data: Uint8Array, classStart, classCount } with one start and count per class.', 'Load it with loadFashionMnist or imageSetFromIdx.');
  }
  const [lo, hi] = classRange(source, split);
  const what = `The images source${source.name ? ` ${source.name.slice(0, 80)}` : ''}: its meta-${split} split (classes ${lo}–${hi - 1})`;
  const missing = missingClasses(images, lo, hi);
  if (missing) {
    throw new ShapeError(`${what} has no images of class${missing.includes(',') ? 'es' : ''} ${missing}.`,
      'Every class of both splits needs images: use the complete dataset files, or give split ranges of classes that have images.');
  }
  const count = images.data.length / images.pixels;
  for (let c = lo; c < hi; c++) {
    const start = images.classStart[c];
    if (!(Number.isInteger(start) && start >= 0 && start + images.classCount[c] <= count)) {
      throw new ShapeError(`${what}: class ${c}'s images ${start} … ${start + images.classCount[c] - 1} are not within the ${count} images of the data.`, 'Build the image set with imageSetFromIdx (images sorted by class).');
    }
  }
}

/** Where train's periodic evaluations draw their tasks: 'auto' = the validation split when the source
 * has one (so that tuning by those figures never looks at the test split), else the meta-test split. */
function evalSplitOf(v: unknown, source: TaskSource): 'val' | 'test' {
  const hasVal = source.kind === 'omniglot' && (source.split?.val?.length ?? 0) > 0;
  if (v === undefined || v === 'auto') return hasVal ? 'val' : 'test';
  if (v === 'test') return 'test';
  if (v === 'val') {
    if (!hasVal) throw new InvalidOptionError('evalSplit is \'val\' but the source has no validation split.', "Give an Omniglot source a split with val alphabets (e.g. OMNIGLOT_TUNING_SPLIT), or use evalSplit: 'test'.");
    return 'val';
  }
  throw new InvalidOptionError(`evalSplit must be 'auto', 'val' or 'test', got ${JSON.stringify(v)}.`, "e.g. evalSplit: 'val' while tuning.");
}
