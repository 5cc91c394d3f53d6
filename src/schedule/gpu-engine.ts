// The WebGPU backend. Parameters, optimizer state and the scratch of the current batch shape stay
// resident; a meta-iteration is two dispatches (fused per-task kernel, then the across-task update)
// recorded into one compute pass, and `iterations` meta-iterations share one command buffer and one
// submit. Nothing is read back unless the caller asks.
import { LimitError } from '../errors.js';
import { checkDeviceHealthy, type AcquiredDevice } from '../gpu/device.js';
import { createBuffer, readFloats, writeFloats } from '../gpu/resources.js';
import { MamlTaskKernel, type BoundMamlTask } from '../kernels/maml-task.js';
import { dataLayout, padRows, paddedDim } from '../kernels/layout.js';
import { MetaUpdateKernel, type BoundMetaUpdate } from '../kernels/meta-update.js';
import { taskScratchSizes } from '../cpu/maml-task.js';
import type { Batch, BackendInfo, ResolvedLearnerOptions } from '../types.js';
import { taskParamsFor, uniformTaskWeights, updateParamsFor, type Engine } from './engine.js';

/** Buffers and recorded dispatches for one batch shape (T, Ks, Kq) and inner-step capacity. */
interface BatchSlot {
  key: string;
  probSteps: number;
  buffers: GPUBuffer[];
  data: GPUBuffer;
  metaGrad: GPUBuffer;
  taskStats: GPUBuffer;
  train: BoundMamlTask;
  evaluate: BoundMamlTask;
  update: BoundMetaUpdate;
  gradientOnly: BoundMetaUpdate;
}

export class GpuEngine implements Engine {
  readonly info: BackendInfo;
  private readonly device: GPUDevice;
  private readonly theta: GPUBuffer;
  private readonly optState: GPUBuffer;
  private readonly meanGrad: GPUBuffer;
  private readonly taskKernel: MamlTaskKernel;
  private readonly updateKernel: MetaUpdateKernel;
  private slot: BatchSlot | null = null;
  /** Completion of the last submit: at most one meta-iteration batch is queued behind the running one. */
  private inFlight: Promise<unknown> | null = null;

  constructor(readonly acquired: AcquiredDevice, private readonly options: ResolvedLearnerOptions, initialTheta: Float32Array, workgroup?: number) {
    this.device = acquired.device;
    this.info = { kind: 'webgpu', adapter: acquired.description, software: acquired.software };
    // Parameter-sized buffers hold paddedDim floats; the padding stays 0 (zero features, zero gradient).
    const Dp = paddedDim(options.dim);
    this.theta = createBuffer(this.device, 'GpuEngine.theta', Dp);
    this.optState = createBuffer(this.device, 'GpuEngine.optState', 2 * Dp + 1);
    this.meanGrad = createBuffer(this.device, 'GpuEngine.meanGrad', Dp);
    writeFloats(this.device, this.theta, 0, initialTheta);
    this.taskKernel = new MamlTaskKernel(this.device, workgroup);
    this.updateKernel = new MetaUpdateKernel(this.device);
  }

  setParams(theta: Float32Array): void {
    checkDeviceHealthy(this.acquired);
    writeFloats(this.device, this.theta, 0, theta);
  }

  async getParams(): Promise<Float32Array> {
    checkDeviceHealthy(this.acquired);
    return this.read(this.theta, this.options.dim);
  }

  private async read(buffer: GPUBuffer, floats: number): Promise<Float32Array> {
    const out = await readFloats(this.device, buffer, floats);
    checkDeviceHealthy(this.acquired);
    return out;
  }

  /** Rejects batches beyond the adapter's limits before any buffer is made. */
  private checkFits(batch: Batch, probSteps: number): void {
    const limits = this.device.limits;
    const D = this.options.dim;
    const dataBytes = dataLayout(batch.tasks, batch.supportShots, batch.queryShots, D).total * 4;
    const scratch = taskScratchSizes({ tasks: batch.tasks, supportRows: batch.supportShots, dim: paddedDim(D), innerSteps: probSteps });
    const largest = Math.max(dataBytes, scratch.adapted * 4, scratch.supportProb * 4);
    const cap = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    if (largest > cap) {
      throw new LimitError(
        `This batch needs a GPU buffer of ${(largest / 2 ** 20).toFixed(1)} MiB (tasks=${batch.tasks}, shots=${batch.supportShots}+${batch.queryShots}, dim=${D}), ` +
          `over the adapter's storage-binding limit of ${(cap / 2 ** 20).toFixed(1)} MiB.`,
        'Use fewer tasks per batch (e.g. split it in two steps) or the CPU backend.',
      );
    }
    const groupsNeeded = Math.ceil(batch.tasks / limits.maxComputeWorkgroupsPerDimension);
    if (groupsNeeded > limits.maxComputeWorkgroupsPerDimension) {
      throw new LimitError(`tasks = ${batch.tasks} exceeds the adapter's dispatch grid.`, 'Use fewer tasks per batch.');
    }
  }

  private slotFor(batch: Batch, probSteps: number): BatchSlot {
    const key = `${batch.tasks}x${batch.supportShots}x${batch.queryShots}`;
    const needed = Math.max(probSteps, this.options.innerSteps, 1);
    if (this.slot && this.slot.key === key && this.slot.probSteps >= needed) return this.slot;
    this.checkFits(batch, needed);
    this.releaseSlot();
    const T = batch.tasks;
    const D = this.options.dim;
    const sizes = taskScratchSizes({ tasks: T, supportRows: batch.supportShots, dim: paddedDim(D), innerSteps: needed });
    const make = (name: string, floats: number) => createBuffer(this.device, `GpuEngine.${name}[${key}]`, floats);
    const data = make('data', dataLayout(T, batch.supportShots, batch.queryShots, D).total);
    const adapted = make('adapted', sizes.adapted);
    const metaGrad = make('metaGrad', sizes.metaGrad);
    const supportProb = make('supportProb', sizes.supportProb);
    const taskStats = make('taskStats', sizes.taskStats);
    const taskWeight = make('taskWeight', T);
    writeFloats(this.device, taskWeight, 0, uniformTaskWeights(T));
    const taskBuffers = { data, theta: this.theta, adapted, metaGrad, supportProb, taskStats };
    const updateBuffers = { metaGrad, taskWeight, theta: this.theta, optState: this.optState, meanGrad: this.meanGrad };
    const updateParams = (apply: boolean) => ({ ...updateParamsFor(T, this.options, apply), dim: paddedDim(D) });
    const train = this.taskKernel.bind(taskBuffers, T, 'train');
    train.setParams(taskParamsFor(batch, this.options, 'train'));
    this.slot = {
      key,
      probSteps: needed,
      buffers: [data, adapted, metaGrad, supportProb, taskStats, taskWeight],
      data,
      metaGrad,
      taskStats,
      train,
      evaluate: this.taskKernel.bind(taskBuffers, T, 'evaluate'),
      update: this.updateKernel.bind(updateBuffers, updateParams(true), 'update'),
      gradientOnly: this.updateKernel.bind(updateBuffers, updateParams(false), 'gradientOnly'),
    };
    return this.slot;
  }

  private upload(slot: BatchSlot, batch: Batch): void {
    const D = this.options.dim;
    const off = dataLayout(batch.tasks, batch.supportShots, batch.queryShots, D);
    writeFloats(this.device, slot.data, off.supportX * 4, padRows(batch.supportX, batch.tasks * batch.supportShots, D));
    writeFloats(this.device, slot.data, off.supportY * 4, batch.supportY);
    writeFloats(this.device, slot.data, off.queryX * 4, padRows(batch.queryX, batch.tasks * batch.queryShots, D));
    writeFloats(this.device, slot.data, off.queryY * 4, batch.queryY);
  }

  private async submit(label: string, record: (pass: GPUComputePassEncoder) => void): Promise<void> {
    if (this.inFlight) await this.inFlight;
    checkDeviceHealthy(this.acquired);
    const encoder = this.device.createCommandEncoder({ label });
    const pass = encoder.beginComputePass({ label });
    record(pass);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    this.inFlight = this.device.queue.onSubmittedWorkDone();
  }

  async step(batch: Batch, iterations: number, readback: boolean): Promise<Float32Array | undefined> {
    const slot = this.slotFor(batch, this.options.innerSteps);
    this.upload(slot, batch);
    await this.submit('GpuEngine.step', (pass) => {
      for (let i = 0; i < iterations; i++) {
        slot.train.encode(pass);
        slot.update.encode(pass);
      }
    });
    return readback ? this.read(slot.taskStats, 2 * batch.tasks) : undefined;
  }

  async evaluate(batch: Batch, steps: number, lr: number): Promise<Float32Array> {
    const slot = this.slotFor(batch, steps);
    this.upload(slot, batch);
    slot.evaluate.setParams(taskParamsFor(batch, this.options, { steps, lr }));
    await this.submit('GpuEngine.evaluate', (pass) => slot.evaluate.encode(pass));
    return this.read(slot.taskStats, 2 * batch.tasks);
  }

  async metaGradient(batch: Batch): Promise<Float32Array> {
    const slot = this.slotFor(batch, this.options.innerSteps);
    this.upload(slot, batch);
    await this.submit('GpuEngine.metaGradient', (pass) => {
      slot.train.encode(pass);
      slot.gradientOnly.encode(pass);
    });
    return this.read(this.meanGrad, this.options.dim);
  }

  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    checkDeviceHealthy(this.acquired);
  }

  private releaseSlot(): void {
    for (const b of this.slot?.buffers ?? []) b.destroy();
    this.slot = null;
  }

  destroy(): void {
    this.releaseSlot();
    this.theta.destroy();
    this.optState.destroy();
    this.meanGrad.destroy();
  }
}
