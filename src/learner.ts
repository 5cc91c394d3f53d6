// The public learner: validates every input in one place, then delegates to an Engine (GPU or CPU).
import { DestroyedError, InvalidOptionError, MetagradError, NoAdapterError } from './errors.js';
import { acquireDevice, type AcquiredDevice, type AcquireOptions } from './gpu/device.js';
import { initialParams } from './rng.js';
import { CpuEngine } from './schedule/cpu-engine.js';
import type { Engine } from './schedule/engine.js';
import { GpuEngine } from './schedule/gpu-engine.js';
import { meanWithInterval, splitTaskStats } from './stats.js';
import type {
  BackendInfo, Batch, EvaluateOptions, EvaluateResult, LearnerOptions, ResolvedLearnerOptions, StepMetrics, StepOptions,
} from './types.js';
import { checkFinite, checkFloatArray, checkInteger, resolveEvaluateOptions, resolveLearnerOptions, validateBatch } from './validate.js';

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
  readonly backend: BackendInfo & { fallbackReason?: string };
  setParams(theta: Float32Array): void;
  getParams(): Promise<Float32Array>;
  step(batch: Batch, options?: StepOptions): Promise<StepMetrics | undefined>;
  evaluate(batch: Batch, options?: EvaluateOptions): Promise<EvaluateResult>;
  metaGradient(batch: Batch): Promise<Float32Array>;
  /** Resolves when every submitted meta-iteration has finished on the device (for timing). */
  sync(): Promise<void>;
  destroy(): void;
}

class LearnerImpl implements Learner {
  private destroyed = false;
  constructor(readonly options: Readonly<ResolvedLearnerOptions>, private readonly engine: Engine, readonly backend: Learner['backend']) {}

  private live(): Engine {
    if (this.destroyed) throw new DestroyedError('This learner was destroyed.', 'Create a new one with createLearner().');
    return this.engine;
  }

  setParams(theta: Float32Array): void {
    const engine = this.live();
    checkFloatArray('theta', theta, this.options.dim, `dim = ${this.options.dim} parameters`);
    checkFinite('theta', theta);
    engine.setParams(theta);
  }

  getParams(): Promise<Float32Array> {
    return this.live().getParams();
  }

  async step(batch: Batch, options: StepOptions = {}): Promise<StepMetrics | undefined> {
    const engine = this.live();
    const iterations = checkInteger('iterations', options.iterations ?? 1, 1, 1_000_000, 'Run 1 or more meta-iterations per call.');
    validateBatch(batch, this.options.dim, this.options.validate);
    const stats = await engine.step(batch, iterations, options.readback === true);
    if (!stats) return undefined;
    const { loss, accuracy } = splitTaskStats(stats);
    return { loss: meanWithInterval(loss).mean, accuracy: meanWithInterval(accuracy).mean };
  }

  async evaluate(batch: Batch, options?: EvaluateOptions): Promise<EvaluateResult> {
    const engine = this.live();
    const { steps, lr } = resolveEvaluateOptions(options, this.options);
    validateBatch(batch, this.options.dim, this.options.validate);
    const { loss, accuracy } = splitTaskStats(await engine.evaluate(batch, steps, lr));
    const lossInterval = meanWithInterval(loss);
    const accuracyInterval = meanWithInterval(accuracy);
    return { loss: lossInterval.mean, accuracy: accuracyInterval.mean, lossInterval, accuracyInterval, taskLoss: loss, taskAccuracy: accuracy };
  }

  async metaGradient(batch: Batch): Promise<Float32Array> {
    const engine = this.live();
    validateBatch(batch, this.options.dim, this.options.validate);
    return engine.metaGradient(batch);
  }

  sync(): Promise<void> {
    return this.live().sync();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.engine.destroy();
  }
}

/**
 * Creates a meta-learner on the WebGPU backend (when an adapter exists) or the CPU backend.
 *
 * @example
 * ```ts
 * const learner = await createLearner({ algorithm: 'maml', dim: 50, innerLr: 0.01, outerLr: 0.001, order: 2 });
 * await learner.step(batch);
 * const { accuracy } = await learner.evaluate(testBatch, { steps: 5 });
 * learner.destroy();
 * ```
 */
export async function createLearner(options: LearnerOptions): Promise<Learner> {
  const resolved = Object.freeze(resolveLearnerOptions(options));
  const theta = initialParams(resolved.dim, resolved.seed, resolved.initScale);
  if (resolved.backend === 'cpu') {
    const engine = new CpuEngine(resolved, theta);
    return new LearnerImpl(resolved, engine, engine.info);
  }
  let acquired: AcquiredDevice;
  try {
    acquired = await getSharedDevice();
  } catch (e) {
    if (resolved.backend === 'auto' && e instanceof NoAdapterError) {
      const engine = new CpuEngine(resolved, theta);
      return new LearnerImpl(resolved, engine, { ...engine.info, fallbackReason: e.message });
    }
    throw e;
  }
  if (acquired.lost) throw new InvalidOptionError('The shared WebGPU device is lost.', 'Retry createLearner: a new device is acquired.');
  // METAGRAD_WG: workgroup size of the per-task kernels, for tuning experiments (default 64).
  const workgroup = typeof process !== 'undefined' && process.env?.METAGRAD_WG ? Number(process.env.METAGRAD_WG) : undefined;
  const engine = new GpuEngine(acquired, resolved, theta, workgroup);
  return new LearnerImpl(resolved, engine, engine.info);
}

export { MetagradError };
