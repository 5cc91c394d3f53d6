// The public learner: validates every input in one place, then delegates to an Engine (GPU or CPU).
import { DestroyedError, DeviceLostError, DivergenceError, InvalidOptionError, MetagradError, NoAdapterError, ShapeError } from './errors.js';
import { acquireDevice, adoptDevice, probeAdaptersInChild, type AcquiredDevice, type AcquireOptions } from './gpu/device.js';
import { adapterFromEnv, isNode } from './gpu/node-env.js';
import { initialParams } from './rng.js';
import { capabilitiesOf } from './algorithms/index.js';
import type { Capabilities } from './algorithms/common.js';
import { describeLayout, modelInit, modelLayoutOf, modelCount, type ModelLayout } from './models/model.js';
import { CpuEngine } from './schedule/cpu-engine.js';
import type { Engine, EvaluateOutput, NonFiniteCounts, StepReadback } from './schedule/engine.js';
import { GpuEngine } from './schedule/gpu-engine.js';
import { meanWithInterval, splitTaskStats } from './stats.js';
import type {
  AdaptResult, BackendInfo, Batch, CheckedBatch, EvaluateOptions, EvaluateResult, LearnerOptions, LearnerState, QueryScores, TrainOptions, TrainProgress, ResolvedLearnerOptions, StepMetrics, StepOptions, ReadbackStepOptions,
} from './types.js';
import { checkFinite, checkFloatArray, checkInteger, resolveEvaluateOptions, resolveLearnerOptions, resolveTrainOptions, validateBatch } from './validate.js';
import { sampleFileTasks } from './cpu/sample-tasks.js';
import { countNonFinite } from './cpu/finite-check.js';

let sharedDevice: Promise<AcquiredDevice> | null = null;

/** One device per process, shared by learners (acquiring one costs ~0.25 s on a software adapter). */
export function getSharedDevice(options?: AcquireOptions): Promise<AcquiredDevice> {
  if (!sharedDevice) {
    sharedDevice = acquireDevice(options).then((acq) => {
      // A lost device is dropped so that the next learner acquires a fresh one.
      acq.device.lost.then(() => { if (sharedDevice && acq.lost) sharedDevice = null; });
      return acq;
    });
    sharedDevice.catch(() => { sharedDevice = null; });
  }
  return sharedDevice;
}

/** Destroys the shared device (idempotent). Learners made on it stop working. */
export async function releaseSharedDevice(): Promise<void> {
  const pending = sharedDevice;
  sharedDevice = null;
  if (pending) {
    try { (await pending).device.destroy(); } catch { /* never acquired: nothing to release */ }
  }
}

export interface Learner {
  readonly options: Readonly<ResolvedLearnerOptions>;
  /** Length of getParams()/setParams(). Logistic: dim; CAML dim·(1 + contextDim); AMP models·dim.
   * MLP: Σ_l (h_{l−1} + 1)·h_l (CAML: layer 1 has dim + contextDim inputs); AMP: models times that.
   * Meta-SGD: θ's count (getStepSizes() has as many). */
  readonly paramCount: number;
  readonly backend: BackendInfo & { fallbackReason?: string };
  setParams(params: Float32Array): void;
  getParams(): Promise<Float32Array>;
  /** Meta-SGD: the learned per-parameter inner step sizes α, in getParams()'s layout (InvalidOptionError
   * for the other algorithms, whose step size is the scalar innerLr). */
  getStepSizes(): Promise<Float32Array>;
  setStepSizes(stepSizes: Float32Array): void;
  step(batch: Batch, options: ReadbackStepOptions): Promise<StepMetrics>;
  step(batch: Batch, options?: StepOptions): Promise<StepMetrics | undefined>;
  evaluate(batch: Batch, options?: EvaluateOptions): Promise<EvaluateResult>;
  /** Σ_t w_t g_t that step() would apply, in getParams()'s layout (Meta-SGD: θ's, then α's: 2 × paramCount). */
  metaGradient(batch: Batch): Promise<Float32Array>;
  /** evaluate, plus each task's adapted parameters and (with an attack) the attacked query rows. */
  adapt(batch: Batch, options?: EvaluateOptions): Promise<AdaptResult>;
  /** A whole training on batches sampled from a task source (on the device for seed, linear and
   * images); reads back only what onProgress asks for. Resolves with the last progress report. */
  train(options: TrainOptions): Promise<TrainProgress>;
  /** Parameters and optimizer state, for checkpoints; setState restores them exactly. Rejects with a
   * DivergenceError (and hands nothing out) when any value is NaN or ±Infinity. */
  getState(): Promise<LearnerState>;
  setState(state: LearnerState): void;
  /** GPU time in ms of the last submitted command buffer's compute pass, from timestamp queries (the
   * whole pass: all its iterations); null on the CPU backend or an adapter without timestamps. */
  gpuTime(): Promise<number | null>;
  /** Resolves when every submitted meta-iteration has finished on the device (for timing). */
  sync(): Promise<void>;
  /** Frees the learner. A call already running completes (train() stops at its next submit with a
   * DestroyedError); calls still waiting reject with a DestroyedError. */
  destroy(): void;
}

/** One level of a learner's call queue: its calls run one at a time, in the order they were made.
 * train() opens a nested level while its onProgress callback runs, so that the callback may call the
 * learner (getState for a checkpoint, evaluate) without waiting for the train() that awaits it. */
interface CallQueue {
  tail: Promise<unknown>;
  /** Calls of this level started or waiting. */
  pending: number;
}

class LearnerImpl implements Learner {
  private destroyed = false;
  /** The engine was freed (destroy() waits for the running call). */
  private released = false;
  private queue: CallQueue = { tail: Promise.resolve(), pending: 0 };
  /** Calls started or waiting, over all queue levels. */
  private calls = 0;
  /** Meta-iterations run: step() adds its own, train() sets the iteration it reached. */
  private iteration = 0;
  /** The last iteration at which the divergence check found the state finite. */
  private lastFinite: number | null = null;
  readonly paramCount: number;
  /** The model's layout: an MLP or a list of layers (null: the logistic unit). */
  private readonly mlp: ModelLayout | null;
  /** What the algorithm can do and how it holds its parameters (src/algorithms/common.ts). */
  private readonly can: Capabilities;
  /** The model's metric: a layer list under MSE regresses; every other model classifies. */
  private readonly metric: 'accuracy' | 'mse';
  constructor(readonly options: Readonly<ResolvedLearnerOptions>, private readonly engine: Engine, readonly backend: Learner['backend']) {
    this.mlp = modelLayoutOf(options);
    this.metric = this.mlp?.kind === 'net' && this.mlp.net.loss.kind === 'mse' ? 'mse' : 'accuracy';
    this.can = capabilitiesOf(options);
    // Public θ only: Meta-SGD's α has getStepSizes().
    this.paramCount = this.mlp ? modelCount(options) * this.mlp.params : (this.can.paramVectors(options) / (this.can.stepSizes ? 2 : 1)) * options.dim;
  }

  private live(): Engine {
    if (this.destroyed) throw new DestroyedError('This learner was destroyed.', 'Create a new one with createLearner().');
    return this.engine;
  }

  /**
   * Runs `fn` after every call made before it (calls on one learner never interleave: un-awaited calls
   * give exactly the results of the same calls awaited in order). With nothing queued it starts at once
   * (synchronously, up to its first await).
   */
  private enqueue<T>(fn: (engine: Engine) => Promise<T>): Promise<T> {
    const q = this.queue;
    const idle = q.pending === 0;
    q.pending++;
    this.calls++;
    const start = async () => fn(this.live());
    const run = idle ? start() : q.tail.then(start);
    const done = () => {
      q.pending--;
      this.calls--;
      if (this.calls === 0 && this.destroyed) this.release();
    };
    q.tail = run.then(done, done);
    return run;
  }

  /** Runs a synchronous state change now when no call is queued, else after the queued calls. Its
   * input is checked before, so only a lost device (reported by the next call as well) can fail it. */
  private apply(change: (engine: Engine) => void): void {
    if (this.queue.pending === 0) change(this.live());
    else void this.enqueue(async (engine) => change(engine)).catch(() => { /* reported by the next call */ });
  }

  /** The batch to hand to a queued call: a copy when the call waits (the caller may reuse its arrays
   * as soon as the call returns its promise). */
  private hold(batch: CheckedBatch): CheckedBatch {
    if (this.queue.pending === 0) return batch;
    return { ...batch, supportX: batch.supportX.slice(), supportY: batch.supportY.slice(), queryX: batch.queryX.slice(), queryY: batch.queryY.slice() };
  }

  private evaluationLrText(lr: number): string {
    return this.can.stepSizes ? 'the learned step sizes' : `evaluation lr ${lr}`;
  }

  /** Throws a DivergenceError when the divergence check found a non-finite value. */
  private verify(counts: NonFiniteCounts | undefined, where: string): void {
    if (!counts) return;
    if (counts.params === 0 && counts.optimizer === 0) {
      this.lastFinite = this.iteration;
      return;
    }
    const o = this.options;
    const what = [
      counts.params ? `${counts.params} parameter value${counts.params === 1 ? '' : 's'}` : '',
      counts.optimizer ? `${counts.optimizer} optimizer-state value${counts.optimizer === 1 ? '' : 's'}` : '',
    ].filter(Boolean).join(' and ');
    const since = this.lastFinite !== null && this.lastFinite < this.iteration ? ` (finite at iteration ${this.lastFinite})` : '';
    throw new DivergenceError(
      `Training diverged by meta-iteration ${this.iteration}${since}: ${what} ${counts.params + counts.optimizer === 1 ? 'is' : 'are'} NaN or ±Infinity (${where}). ` +
        `The likely cause is a learning rate too high (innerLr ${o.innerLr}, outerLr ${o.outerLr}, optimizer ${o.optimizer}).`,
      `Lower outerLr and innerLr (e.g. 10× smaller)${o.optimizer === 'sgd' ? ", or use optimizer: 'adam'" : ''}, and restart or resume from the last checkpoint: ` +
        'no non-finite state is ever handed out, so it holds the last finite one. setState() makes this learner usable again.',
      this.iteration,
    );
  }

  private layoutText(): string {
    const o = this.options;
    const perTask = this.can.thetaPerTask;
    if (this.mlp) {
      const order = this.mlp.kind === 'mlp' ? 'per layer W in×out row-major, then b' : 'per layer: dense W in×out row-major, conv W k×k×C_in×C_out, then b';
      return `${perTask ? `models × ${this.mlp.params}` : `${this.mlp.params}`} parameters of the ${describeLayout(this.mlp)} (${order})`;
    }
    if (this.can.publicLayout) return this.can.publicLayout.describe(o);
    if (perTask) return `models × dim = ${this.can.models(o)} × ${o.dim}, model-major`;
    return `dim = ${o.dim} parameters`;
  }

  /** Public parameter layout → the engines' internal one (CAML's logistic layout differs; an MLP's
   * vectors carry room for the context φ and padding to whole vec4s). */
  private toInternal(params: Float32Array): Float32Array {
    const o = this.options;
    if (this.mlp) return resizeVectors(params, modelCount(o), this.mlp.params, this.mlp.vector);
    return this.can.publicLayout ? this.can.publicLayout.fromPublic(params, o) : params;
  }

  private toPublic(params: Float32Array): Float32Array {
    const o = this.options;
    if (this.mlp) return resizeVectors(params, modelCount(o), this.mlp.vector, this.mlp.params);
    return this.can.publicLayout ? this.can.publicLayout.toPublic(params, o) : params;
  }

  /** Validates a batch (labels: 0/1 for the logistic unit, 0 … N−1 for an MLP) and returns it with
   * float32 labels. AMP trains model i on task i: the batch must hold exactly `models` tasks. */
  private checkBatch(batch: Batch): CheckedBatch {
    const checked = validateBatch(batch, this.options.dim, this.options.validate, this.mlp ? this.mlp.classes : null, this.can.episode) as CheckedBatch;
    const models = this.can.models(this.options);
    if (this.can.thetaPerTask && batch.tasks !== models) {
      throw new ShapeError(`AMP trains model i on task i: batch.tasks is ${batch.tasks}, models is ${models}.`, `Pass batches of ${models} tasks, or create the learner with models: ${batch.tasks}.`);
    }
    return checked;
  }

  setParams(params: Float32Array): void {
    this.live();
    this.writeVectors('params', params, 0);
  }

  async getParams(): Promise<Float32Array> {
    this.live();
    return this.enqueue(async (engine) => this.toPublic(this.thetaOf(await this.finiteParams(engine, 'found by getParams()'))));
  }

  /** The engine's parameters (internal layout), or a DivergenceError when any is NaN/±Infinity: every
   * readback is checked, not only step()'s, so no call hands out a diverged result. */
  private async finiteParams(engine: Engine, where: string): Promise<Float32Array> {
    const params = await engine.getParams();
    this.verify({ params: countNonFinite(params), optimizer: 0 }, where);
    return params;
  }

  /**
   * A result read back (scores, a meta-gradient) with NaN/±Infinity in it: the parameters diverged (a
   * DivergenceError naming them) or, with finite parameters, the computation from them overflowed (a
   * DivergenceError naming what to lower). Never returned as numbers.
   */
  private async checkResult(engine: Engine, values: (ArrayLike<number> | undefined)[], what: string, lrText: string): Promise<void> {
    if (values.every((v) => !v || countNonFinite(v) === 0)) return;
    await this.finiteParams(engine, `found when ${what} came out non-finite`);
    throw new DivergenceError(
      `${what[0].toUpperCase()}${what.slice(1)} came out NaN or ±Infinity although the parameters are finite: the inner steps from them overflowed (${lrText}).`,
      `Lower the step size (${lrText}) or the attack's epsilon; the parameters are unchanged and still usable.`,
      this.iteration,
    );
  }

  /** Checks `values` (public layout) and writes them from internal vector `firstVector` on (Meta-SGD: θ
   * is vector 0, α vector 1). */
  private writeVectors(name: string, values: Float32Array, firstVector: number): void {
    checkFloatArray(name, values, this.paramCount, this.layoutText());
    checkFinite(name, values);
    const internal = this.toInternal(values);
    // A deferred write must not see the caller's later changes to its array.
    const held = internal === values && this.queue.pending > 0 ? values.slice() : internal;
    this.apply((engine) => engine.setParams(held, firstVector));
  }

  /** Floats of θ in the internal layout (Meta-SGD's α follows them). */
  private get thetaFloats(): number {
    return this.mlp ? modelCount(this.options) * this.mlp.vector : this.can.paramVectors(this.options) * this.options.dim / (this.can.stepSizes ? 2 : 1);
  }

  /** θ of the engine's parameters (Meta-SGD: without α). */
  private thetaOf(internal: Float32Array): Float32Array {
    return this.can.stepSizes ? internal.subarray(0, this.thetaFloats) : internal;
  }

  private requireStepSizes(what: string): void {
    if (!this.can.stepSizes) {
      throw new InvalidOptionError(`${what} applies to Meta-SGD; '${this.options.algorithm}' adapts with the scalar innerLr (${this.options.innerLr}).`,
        "Create the learner with algorithm: 'meta-sgd' to learn a step size per parameter.");
    }
  }

  async getStepSizes(): Promise<Float32Array> {
    this.live();
    this.requireStepSizes('getStepSizes()');
    return this.enqueue(async (engine) => this.toPublic((await this.finiteParams(engine, 'found by getStepSizes()')).subarray(this.thetaFloats)));
  }

  setStepSizes(stepSizes: Float32Array): void {
    this.live();
    this.requireStepSizes('setStepSizes()');
    this.writeVectors('stepSizes', stepSizes, 1);
  }

  step(batch: Batch, options: ReadbackStepOptions): Promise<StepMetrics>;
  step(batch: Batch, options?: StepOptions): Promise<StepMetrics | undefined>;
  async step(batch: Batch, options: StepOptions = {}): Promise<StepMetrics | undefined> {
    this.live();
    const iterations = checkInteger('iterations', options.iterations ?? 1, 1, 1_000_000, 'Run 1 or more meta-iterations per call.');
    const checked = this.hold(this.checkBatch(batch));
    const weights = options.returnWeights === true;
    if (weights && !this.can.metaGradient) {
      throw new InvalidOptionError(`returnWeights applies to meta-learning algorithms; '${this.options.algorithm}' has no task weights.`, 'Leave returnWeights out.');
    }
    const stats = options.readback === true || weights;
    return this.enqueue(async (engine) => {
      // Every readback carries the divergence check (on the GPU: in the same submit and readback).
      const out = await engine.step(checked, iterations, { stats, weights, check: stats });
      this.iteration += iterations;
      this.verify(out.nonFinite, 'checked at step() readback');
      if (!out.stats) return undefined;
      const { loss, accuracy } = splitTaskStats(out.stats);
      const second = meanWithInterval(accuracy).mean;
      const metrics: StepMetrics = this.metric === 'mse' ? { loss: meanWithInterval(loss).mean, accuracy: NaN, metric: 'mse', mse: second } : { loss: meanWithInterval(loss).mean, accuracy: second, metric: 'accuracy' };
      if (out.weights) metrics.taskWeights = out.weights;
      return metrics;
    });
  }

  async evaluate(batch: Batch, options?: EvaluateOptions): Promise<EvaluateResult> {
    this.live();
    const { steps, lr, attack } = resolveEvaluateOptions(options, this.options);
    const checked = this.hold(this.checkBatch(batch));
    return this.enqueue(async (engine) => {
      const out = await engine.evaluate(checked, steps, lr, attack);
      await this.checkResult(engine, [out.clean, out.attacked], 'the evaluation', this.evaluationLrText(lr));
      return scores(out, this.metric);
    });
  }

  async adapt(batch: Batch, options?: EvaluateOptions): Promise<AdaptResult> {
    this.live();
    const { steps, lr, attack } = resolveEvaluateOptions(options, this.options);
    const checked = this.hold(this.checkBatch(batch));
    return this.enqueue(async (engine) => {
      const out = await engine.evaluate(checked, steps, lr, attack, true);
      await this.checkResult(engine, [out.clean, out.attacked, out.adapted], 'the adaptation', this.evaluationLrText(lr));
      const result: AdaptResult = { ...scores(out, this.metric), adapted: this.adaptedToPublic(out.adapted!, checked.tasks) };
      if (out.attackedQueryX) result.attackedQueryX = out.attackedQueryX;
      return result;
    });
  }

  async metaGradient(batch: Batch): Promise<Float32Array> {
    this.live();
    if (!this.can.metaGradient) {
      throw new InvalidOptionError(`metaGradient() applies to meta-learning algorithms, not '${this.options.algorithm}'.`, 'Use step() to train AMP models.');
    }
    const checked = this.hold(this.checkBatch(batch));
    return this.enqueue(async (engine) => {
      const g = await engine.metaGradient(checked);
      await this.checkResult(engine, [g], 'the meta-gradient', `innerLr ${this.options.innerLr}`);
      if (!this.can.stepSizes) return this.toPublic(g);
      // Meta-SGD: θ's meta-gradient, then α's, each in getParams()'s layout.
      const out = new Float32Array(2 * this.paramCount);
      out.set(this.toPublic(g.subarray(0, this.thetaFloats)));
      out.set(this.toPublic(g.subarray(this.thetaFloats)), this.paramCount);
      return out;
    });
  }

  async train(options: TrainOptions): Promise<TrainProgress> {
    this.live();
    const t = resolveTrainOptions(options, this.options);
    return this.enqueue((engine) => this.runTraining(engine, t));
  }

  private async runTraining(engine: Engine, t: ReturnType<typeof resolveTrainOptions>): Promise<TrainProgress> {
    const { source, evalSource } = t;
    const shape = { tasks: t.tasksPerBatch, supportShots: t.supportShots, queryShots: t.queryShots };
    const evalShape = { tasks: t.evalTasks, supportShots: t.evalSupportShots, queryShots: t.evalQueryShots };
    const evaluate = async (): Promise<EvaluateResult> => scores(evalSource.kind === 'file'
      ? await engine.evaluate(sampleFileTasks(evalSource, t.evalTasks, this.options.seed, 0, t.evalSplit), t.evalSteps, t.evalLr, t.evalAttack)
      : await engine.evaluateSampled(evalSource, evalShape, this.options.seed, 0, t.evalSplit, t.evalSteps, t.evalLr, t.evalAttack), this.metric);
    const start = performance.now();
    const end = t.startIteration + t.iterations;
    let iteration = t.startIteration;
    let last: TrainProgress = { iteration, endIteration: end, elapsedSeconds: 0, iterationsPerSecond: 0 };
    const stopped = () => new DestroyedError(`train() stopped at iteration ${iteration}: the learner was destroyed.`, 'Call destroy() after train() resolves, or keep the learner.');
    while (iteration < end) {
      if (this.destroyed) throw stopped();
      // Stop each submit at the next evaluation point so that evaluations see exactly that iteration.
      const nextEval = t.evalEvery > 0 ? (Math.floor(iteration / t.evalEvery) + 1) * t.evalEvery : end;
      const count = Math.min(t.iterationsPerSubmit, end - iteration, nextEval - iteration);
      const reached = iteration + count;
      const evalNow = t.evalEvery > 0 && (reached % t.evalEvery === 0 || reached === end);
      // Every report reads back the divergence check (with the train metrics when tracked), which also
      // waits for the submit, so that the report's timing is the device's.
      const report = t.onProgress !== undefined || evalNow || reached === end;
      let out: StepReadback = {};
      if (source.kind === 'file') {
        for (let i = iteration; i < reached; i++) {
          if (this.destroyed) throw stopped();
          const lastOne = i === reached - 1 && report;
          out = await engine.step(sampleFileTasks(source, t.tasksPerBatch, this.options.seed, i, 'train'), 1, { stats: t.trackTrainLoss && lastOne, weights: false, check: lastOne });
        }
      } else {
        out = await engine.trainSampled(source, shape, this.options.seed, iteration, count, { stats: t.trackTrainLoss && report, check: report });
      }
      iteration = reached;
      this.iteration = iteration;
      if (!report) continue;
      this.verify(out.nonFinite, 'checked at train() progress report');
      const elapsedSeconds = (performance.now() - start) / 1000;
      last = { iteration, endIteration: end, elapsedSeconds, iterationsPerSecond: (iteration - t.startIteration) / elapsedSeconds };
      if (out.stats) {
        const { loss, accuracy } = splitTaskStats(out.stats);
        const second = meanWithInterval(accuracy).mean;
        last.train = this.metric === 'mse' ? { loss: meanWithInterval(loss).mean, accuracy: NaN, mse: second } : { loss: meanWithInterval(loss).mean, accuracy: second };
      }
      if (evalNow) last.eval = await evaluate();
      if (t.onProgress) await this.callback(() => t.onProgress!(last));
    }
    return last;
  }

  /** Runs train()'s onProgress with a nested call queue: calls it makes run now (train() waits for
   * them), calls made before it still wait for train(). */
  private async callback(fn: () => void | Promise<void>): Promise<void> {
    const outer = this.queue;
    const inner: CallQueue = { tail: Promise.resolve(), pending: 0 };
    this.queue = inner;
    try {
      await fn();
    } finally {
      await inner.tail;
      this.queue = outer;
    }
  }

  /** Each task's adapted vector in the public layout (an MLP's: its parameters, then CAML's context φ_t). */
  private adaptedToPublic(adapted: Float32Array, tasks: number): Float32Array {
    if (!this.mlp) return adapted;
    return resizeVectors(adapted, tasks, this.mlp.vector, this.mlp.params + this.mlp.context);
  }

  async getState(): Promise<LearnerState> {
    this.live();
    return this.enqueue(async (engine) => {
      const params = await engine.getParams();
      const optimizer = await engine.getOptimizerState();
      // Never hand out a non-finite state: a checkpoint written from it could not be resumed.
      this.verify({ params: countNonFinite(params), optimizer: countNonFinite(optimizer) }, 'found by getState()');
      const state: LearnerState = { params: this.toPublic(this.thetaOf(params)), optimizer };
      if (this.can.stepSizes) state.stepSizes = this.toPublic(params.subarray(this.thetaFloats));
      return state;
    });
  }

  setState(state: LearnerState): void {
    this.live();
    // The optimizer state is in the engines' internal layout (an MLP's vectors are padded; Meta-SGD's
    // covers θ and α).
    const internal = this.thetaFloats * (this.can.stepSizes ? 2 : 1);
    if (this.can.stepSizes && state?.stepSizes === undefined) {
      throw new ShapeError('A Meta-SGD state holds stepSizes (the learned α) besides params.', 'Pass the state getState() returned by a Meta-SGD learner, unchanged.');
    }
    if (!this.can.stepSizes && state?.stepSizes !== undefined) {
      throw new ShapeError(`state.stepSizes is a Meta-SGD state's; this learner is '${this.options.algorithm}'.`, "Restore it into a learner with algorithm: 'meta-sgd'.");
    }
    const optLength = 2 * internal + 1;
    checkFloatArray('state.optimizer', state?.optimizer, optLength, `[m | v | step count] = 2 × ${internal} + 1 values`);
    checkFinite('state.optimizer', state.optimizer);
    // The last value counts Adam's steps (its bias correction): a whole number ≥ 0.
    const steps = state.optimizer[optLength - 1];
    if (!(Number.isInteger(steps) && steps >= 0)) {
      throw new ShapeError(`state.optimizer's last value is Adam's step count, which must be a whole number ≥ 0; got ${steps}.`, 'Pass the state getState() returned, unchanged.');
    }
    const optimizer = this.queue.pending > 0 ? state.optimizer.slice() : state.optimizer;
    this.setParams(state.params);
    if (state.stepSizes) this.setStepSizes(state.stepSizes);
    this.apply((engine) => engine.setOptimizerState(optimizer));
  }

  gpuTime(): Promise<number | null> {
    try { this.live(); } catch (e) { return Promise.reject(e); }
    return this.enqueue((engine) => engine.gpuTimeMs());
  }

  sync(): Promise<void> {
    try { this.live(); } catch (e) { return Promise.reject(e); }
    return this.enqueue((engine) => engine.sync());
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    // A running call completes first (queued ones reject with a DestroyedError when their turn comes).
    if (this.calls === 0) this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.engine.destroy();
  }
}

/** Per-task (loss, metric) pairs → means with 95% intervals, the metric under its name (accuracy, or
 * a regression model's MSE, whose accuracy fields are NaN). */
function summarize(stats: Float32Array, metric: 'accuracy' | 'mse'): QueryScores {
  const { loss, accuracy: second } = splitTaskStats(stats);
  const lossInterval = meanWithInterval(loss);
  const secondInterval = meanWithInterval(second);
  if (metric === 'mse') {
    const nan = { mean: NaN, ci95: NaN };
    return { loss: lossInterval.mean, metric, accuracy: NaN, lossInterval, accuracyInterval: nan, taskLoss: loss, taskAccuracy: new Float32Array(loss.length).fill(NaN),
      mse: secondInterval.mean, mseInterval: secondInterval, taskMse: second };
  }
  return { loss: lossInterval.mean, metric, accuracy: secondInterval.mean, lossInterval, accuracyInterval: secondInterval, taskLoss: loss, taskAccuracy: second };
}

/** An engine's per-task stats → evaluate's result (clean, and attacked when there was an attack). */
function scores(out: EvaluateOutput, metric: 'accuracy' | 'mse'): EvaluateResult {
  const result: EvaluateResult = summarize(out.clean, metric);
  if (out.attacked) result.attacked = summarize(out.attacked, metric);
  return result;
}

/** `count` vectors of `from` floats → `count` vectors of `to` floats (truncated or zero-padded). */
function resizeVectors(src: Float32Array, count: number, from: number, to: number): Float32Array {
  const out = new Float32Array(count * to);
  const n = Math.min(from, to);
  for (let i = 0; i < count; i++) out.set(src.subarray(i * from, i * from + n), i * to);
  return out;
}

/** Initial parameters in the engines' internal layout (see LearnerOptions.contextDim for CAML; an MLP
 * starts He-normal, each of AMP's models from its own stretch of the seed's stream). */
function initialInternalParams(o: ResolvedLearnerOptions): Float32Array {
  const mlp = modelLayoutOf(o);
  const can = capabilitiesOf(o);
  if (mlp) {
    const models = modelCount(o);
    const out = new Float32Array(models * mlp.vector * (can.stepSizes ? 2 : 1));
    for (let m = 0; m < models; m++) out.set(modelInit(mlp, o.seed, m * mlp.vector), m * mlp.vector);
    // Meta-SGD's α starts at innerLr for every parameter (its φ and padding entries are never read).
    if (can.stepSizes) out.fill(o.innerLr, models * mlp.vector, models * mlp.vector + mlp.params);
    return out;
  }
  if (can.stepSizes) {
    const out = new Float32Array(2 * o.dim);
    out.set(initialParams(o.dim, o.seed, o.initScale));
    return out.fill(o.innerLr, o.dim);
  }
  return can.publicLayout ? can.publicLayout.init(o) : initialParams(can.paramVectors(o) * o.dim, o.seed, o.initScale);
}

/** createLearner's options plus `device`, until LearnerOptions (src/algorithms/common.ts) carries it. */
export type CreateLearnerOptions = LearnerOptions & {
  /** An existing GPUDevice to run on (shared with the page or with other learners). metagrad never
   * destroys it; it needs maxStorageBuffersPerShaderStage ≥ 8. Implies the WebGPU backend. */
  device?: GPUDevice;
};

/** What backend 'auto' runs on, and why. */
export interface AutoBackend {
  backend: 'webgpu' | 'cpu';
  /** The adapter's description (webgpu), or why the CPU backend runs. */
  reason: string;
  /** The shared device (webgpu), or null. */
  acquired: AcquiredDevice | null;
}

/** An adapter's description in a few words: the software rasteriser's name and the path
 * ('llvmpipe, OpenGL ES'), or the description's start. */
export function shortAdapterName(description: string): string {
  const path = /\((vulkan|opengles|swiftshader|browser|external)\)\s*$/.exec(description)?.[1];
  const via = path === 'opengles' ? ', OpenGL ES' : path === 'vulkan' ? ', Vulkan' : '';
  const soft = /llvmpipe|lavapipe|swiftshader/i.exec(description)?.[0].toLowerCase();
  if (soft) return `${soft}${soft === 'swiftshader' ? '' : via}`;
  const text = description.replace(/\s*\([a-z]+\)\s*$/, '');
  return text.length > 48 ? `${text.slice(0, 47)}…` : text;
}

function softwareReason(description: string): string {
  return `the only WebGPU adapter is a software one (${shortAdapterName(description)}), slower than the CPU backend. ` +
    (isNode() ? "Pass backend: 'webgpu' (or set METAGRAD_ADAPTER) to use it anyway." : "Pass backend: 'webgpu' to use it anyway.");
}

/** Why the CPU backend runs, in one short clause for a person (no option syntax): for a log's first line. */
export function backendReasonInBrief(reason: string): string {
  if (/^No WebGPU adapter/.test(reason)) return 'no WebGPU adapter here (`metagrad info` lists what was tried)';
  return reason.split('\n')[0].replace(/\.\s.*$/, '').replace(/\.$/, '');
}

/**
 * backend 'auto': WebGPU on a hardware adapter (or on whatever METAGRAD_ADAPTER names); the CPU
 * backend when there is no adapter, and when the only adapter is a software rasteriser (llvmpipe,
 * SwiftShader): in Node the CPU backend's threads are 3–4× faster there (bench/README.md), and in a
 * browser even its one thread is 15–20× faster than Chrome's SwiftShader on the demo pages' MLPs
 * (bench/browser-speed.mjs).
 * The software adapter stays available with backend: 'webgpu' (or METAGRAD_ADAPTER naming it).
 */
export async function pickAutoBackend(): Promise<AutoBackend> {
  // Node, no adapter named, no device held yet: ask a child process first, so that a machine whose
  // only adapter is a software one (or none) runs the CPU backend without Dawn ever loaded here.
  if (isNode() && !sharedDevice && adapterFromEnv() === undefined) {
    const probe = await probeAdaptersInChild();
    if (probe && !probe.hardware) {
      return probe.software
        ? { backend: 'cpu', reason: softwareReason(probe.software), acquired: null }
        : { backend: 'cpu', reason: `No WebGPU adapter found. Tried:\n  - ${probe.tried.join('\n  - ')}`, acquired: null };
    }
  }
  let acquired: AcquiredDevice;
  try {
    acquired = await getSharedDevice();
  } catch (e) {
    if (e instanceof NoAdapterError) return { backend: 'cpu', reason: e.message, acquired: null };
    throw e;
  }
  if (acquired.software && !acquired.named) return { backend: 'cpu', reason: softwareReason(acquired.description), acquired: null };
  return { backend: 'webgpu', reason: acquired.description, acquired };
}

/**
 * Creates a meta-learner on the WebGPU backend (when an adapter exists) or the CPU backend.
 * `device`: run on an existing GPUDevice (several learners may share one; none destroys it).
 *
 * @example
 * ```ts
 * const learner = await createLearner({ algorithm: 'maml', dim: 50, innerLr: 0.01, outerLr: 0.001, order: 2 });
 * await learner.step(batch);
 * const { accuracy } = await learner.evaluate(testBatch, { steps: 5 });
 * learner.destroy();
 * ```
 */
export async function createLearner(options: CreateLearnerOptions): Promise<Learner> {
  let device: GPUDevice | undefined;
  let rest: LearnerOptions = options;
  if (options !== null && typeof options === 'object' && 'device' in options) {
    ({ device, ...rest } = options);
    rest = rest as LearnerOptions;
  }
  const resolved = Object.freeze(resolveLearnerOptions(rest));
  if (device !== undefined && resolved.backend === 'cpu') {
    throw new InvalidOptionError("A device was passed with backend: 'cpu'.", "Leave device out for the CPU backend, or use backend: 'webgpu' (or 'auto') with it.");
  }
  const theta = initialInternalParams(resolved);
  if (resolved.backend === 'cpu') {
    const engine = new CpuEngine(resolved, theta);
    return new LearnerImpl(resolved, engine, engine.info);
  }
  let acquired: AcquiredDevice;
  if (device !== undefined) {
    acquired = adoptDevice(device);
  } else if (resolved.backend === 'auto') {
    const pick = await pickAutoBackend();
    if (!pick.acquired) {
      const engine = new CpuEngine(resolved, theta);
      return new LearnerImpl(resolved, engine, { ...engine.info, fallbackReason: pick.reason });
    }
    acquired = pick.acquired;
  } else {
    acquired = await getSharedDevice();
  }
  if (acquired.lost) {
    throw device !== undefined
      ? new DeviceLostError(`The GPUDevice passed as device is lost (${acquired.lost.reason}): ${acquired.lost.message}`, 'Pass a live device.')
      : new InvalidOptionError('The shared WebGPU device is lost.', 'Retry createLearner: a new device is acquired.');
  }
  // METAGRAD_WG: workgroup size of the per-task kernels, for tuning experiments (default 64).
  const workgroup = typeof process !== 'undefined' && process.env?.METAGRAD_WG ? Number(process.env.METAGRAD_WG) : undefined;
  const engine = new GpuEngine(acquired, resolved, theta, workgroup);
  return new LearnerImpl(resolved, engine, engine.info);
}

export { MetagradError };
