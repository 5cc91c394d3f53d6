// The WebGPU backend. Parameters, optimizer state and the scratch of the current batch shape stay
// resident. A Plan (src/algorithms/plan.ts) is compiled once per batch shape into bound dispatches;
// a meta-iteration records them into one compute pass (MAML: 3 dispatches; ADML: 6; GA-MAML: 6), and
// `iterations` meta-iterations share one command buffer and one submit. Nothing is read back unless
// the caller asks.
import { InvalidOptionError, LimitError } from '../errors.js';
import { checkDeviceHealthy, type AcquiredDevice } from '../gpu/device.js';
import { createBuffer, readFloats, writeFloats, type BoundDispatch } from '../gpu/resources.js';
import { MamlTaskKernel } from '../kernels/maml-task.js';
import { CamlTaskKernel } from '../kernels/caml-task.js';
import { AttackKernel } from '../kernels/fgsm.js';
import { GaWeightsKernel } from '../kernels/ga-weights.js';
import { LogisticKernels } from '../kernels/logistic.js';
import { dataLayout, padRows, paddedDim, unpadRows } from '../kernels/layout.js';
import { MetaUpdateKernel, partialFloats } from '../kernels/meta-update.js';
import { taskScratchSizes } from '../cpu/maml-task.js';
import { camlScratchSizes } from '../cpu/caml-task.js';
import type { AttackParams } from '../cpu/fgsm.js';
import { evaluatePlan, needsAdversarial, needsJoint, weighsAcrossTasks, type Plan } from '../algorithms/plan.js';
import { JoinRowsKernel } from '../kernels/join-rows.js';
import { VectorKernel } from '../kernels/mlp-vector.js';
import { capabilitiesOf, paramVectors, perturbOf, taskKernelOf, taskWeights, trainPlan } from '../algorithms/index.js';
// Engines see batches after validation: labels as float32 (CheckedBatch).
import type { CheckedBatch as Batch, BackendInfo, ResolvedLearnerOptions } from '../types.js';
import { packImages, SampleTasksKernel } from '../kernels/sample-tasks.js';
import type { SampleShape } from '../cpu/sample-tasks.js';
import type { Split, TaskSource } from '../tasks/source.js';
import { camlParamsFor, modelTaskParamsFor, taskParamsFor, updateParamsFor, type Engine, type EvaluateOutput, type NonFiniteCounts, type StepReadback, type StepWant } from './engine.js';
import { FiniteCheckKernel } from '../kernels/finite-check.js';
import { modelLayoutOf, modelCount, type ModelLayout } from '../models/model.js';
import { NetPass, netTapeFloats } from './net-pass.js';
import { MlpPass, mlpPassScratchFloats, mlpTapeFloats, type Rows } from './mlp-pass.js';
import { TASK_BLOCK } from '../kernels/meta-update.js';

/** Buffers of one batch shape (T, Ks, Kq), sized for `innerSteps` inner steps and `sets` task passes. */
interface BatchSlot {
  key: string;
  innerSteps: number;
  buffers: GPUBuffer[];
  /** The batch's rows, in chunks of tasks that each fit one storage binding (usually one chunk). */
  chunks: DataChunk[];
  adapted: GPUBuffer;
  metaGrad: GPUBuffer;
  supportProb: GPUBuffer;   // maml: σ per inner step; caml: the tape
  taskStats: GPUBuffer;
  attackedStats: GPUBuffer;
  perturbed: GPUBuffer;     // maml: θ'+Δ (AMP); caml: g_s | z | Hz
  taskWeight: GPUBuffer;
  updateSum: GPUBuffer;
  agree: GPUBuffer;
  partial: GPUBuffer;       // per-block partial sums of the meta-update
  /** MLP: the per-task scratch (adapted, metaGrad, points, tape) holds one chunk of tasks at a time, and
   * each chunk's pass records its kernels into it; logistic: null (its scratch holds the whole batch). */
  mlp: { passes: Array<MlpPass | NetPass>; points: GPUBuffer; tape: GPUBuffer } | null;
  /** Compiled plans: the training plan, its gradient-only twin, and recent evaluation plans. */
  compiled: Map<string, CompiledPlan>;
}

/** A compiled plan: the dispatches of each chunk, then those over the whole batch. */
interface CompiledPlan extends BoundDispatch {
  chunks: BoundDispatch[];
  batch: BoundDispatch[];
}


/** Tasks first … first+tasks−1 of a batch, packed in their own buffers (layout.ts dataLayout). */
interface DataChunk {
  first: number;
  tasks: number;
  data: GPUBuffer;          // clean rows and labels
  advData: GPUBuffer;       // attacked rows, same layout; labels copied from the clean batch
  attackScratch: GPUBuffer; // PGD's ping-pong partner of advData
  /** Reptile: dataLayout(tasks, Ks + Kq, Kq): each task's support then query rows as its support rows,
   * and the query rows (written from `data` by join-rows in the pass); null otherwise. */
  joint: GPUBuffer | null;
}

export class GpuEngine implements Engine {
  readonly info: BackendInfo;
  private readonly device: GPUDevice;
  private readonly Dp: number;
  private readonly vectors: number;
  /** The MLP's layout, or null for the logistic unit. */
  /** The model's layout (an MLP or a layer list; null: the logistic unit). */
  private readonly mlp: ModelLayout | null;
  /** Floats of the parameters held (internal layout). */
  private readonly paramFloats: number;
  /** Floats of one task's parameter-sized vectors (θ'_t, g_t): Dp (logistic) or layout.vector (MLP). */
  private readonly taskVector: number;
  /** Output sets of the task passes: ADML keeps its clean and adversarial passes apart (2), others 1. */
  private readonly sets: number;
  /** Meta-SGD: θ's vector is followed by α's, and each task's meta-gradient is [g_θ | g_α]. */
  private readonly stepSizes: boolean;
  /** Floats of one task's meta-gradient: taskVector, twice that for Meta-SGD. */
  private readonly gradVector: number;
  /** Reptile's inner loop reads support ∪ query rows. */
  private readonly joint: boolean;
  private joinKernel: JoinRowsKernel | null = null;
  private vectorKernel: VectorKernel | null = null;
  private readonly params: GPUBuffer;
  private readonly optState: GPUBuffer;
  private readonly meanGrad: GPUBuffer;
  private readonly kernels: {
    maml: MamlTaskKernel | null; caml: CamlTaskKernel | null; ga: GaWeightsKernel; update: MetaUpdateKernel;
  };
  private slot: BatchSlot | null = null;
  /** The logistic unit's attack and scoring kernels, built on first use (an MLP never builds them:
   * a pipeline compile costs ~1 s on a software adapter). */
  private attackKernel: AttackKernel | null = null;
  private logisticKernels: LogisticKernels | null = null;
  /** The device-side iteration counter of task sampling (one u32). */
  private readonly sampleState: GPUBuffer;
  private sampler: SampleTasksKernel | null = null;
  /** Resident data of each source used with this engine (image sets), uploaded once. */
  private readonly sourceData = new Map<TaskSource, GPUBuffer>();
  private readonly sourceIds = new WeakMap<TaskSource, number>();
  /** Completion of the last submit: at most one meta-iteration batch is queued behind the running one. */
  private inFlight: Promise<unknown> | null = null;
  /** The divergence check (non-finite values of θ and of the optimizer state), recorded at the end of
   * a training submit whose results are read back, and its two counts (u32). */
  private readonly finiteCheck: BoundDispatch;
  private readonly finiteCounts: GPUBuffer;
  /** Timestamps of the last submit's compute pass, when the adapter has timestamp queries. */
  private readonly timing: { querySet: GPUQuerySet; resolve: GPUBuffer } | null;

  constructor(readonly acquired: AcquiredDevice, private readonly options: ResolvedLearnerOptions, initialParams: Float32Array, private readonly workgroup?: number) {
    this.device = acquired.device;
    this.info = { kind: 'webgpu', adapter: acquired.description, software: acquired.software };
    // Each parameter vector holds paddedDim floats; the padding stays 0 (zero features, zero gradient).
    this.Dp = paddedDim(options.dim);
    const layout = modelLayoutOf(options);
    this.mlp = layout;
    this.stepSizes = capabilitiesOf(options).stepSizes;
    this.vectors = this.mlp ? modelCount(options) * (this.stepSizes ? 2 : 1) : paramVectors(options);
    this.taskVector = this.mlp ? this.mlp.vector : this.Dp;
    this.gradVector = this.taskVector * (this.stepSizes ? 2 : 1);
    this.sets = trainPlan(options).sets;
    this.joint = needsJoint(trainPlan(options));
    const P = (this.paramFloats = this.vectors * this.taskVector);
    this.params = createBuffer(this.device, 'GpuEngine.params', P);
    this.optState = createBuffer(this.device, 'GpuEngine.optState', 2 * P + 1);
    this.meanGrad = createBuffer(this.device, 'GpuEngine.meanGrad', P);
    this.sampleState = createBuffer(this.device, 'GpuEngine.sampleState', 4);
    this.timing = acquired.hasTimestamps
      ? { querySet: this.device.createQuerySet({ label: 'GpuEngine.timestamps', type: 'timestamp', count: 2 }), resolve: createBuffer(this.device, 'GpuEngine.timestampResolve', 4, GPUBufferUsage.QUERY_RESOLVE) }
      : null;
    this.setParams(initialParams);
    const caml = taskKernelOf(options.algorithm) === 'caml';
    this.kernels = {
      maml: caml || this.mlp ? null : new MamlTaskKernel(this.device, workgroup),
      caml: caml && !this.mlp ? new CamlTaskKernel(this.device, workgroup) : null,
      ga: new GaWeightsKernel(this.device),
      update: new MetaUpdateKernel(this.device),
    };
    this.finiteCounts = createBuffer(this.device, 'GpuEngine.finiteCounts', 4);
    this.finiteCheck = new FiniteCheckKernel(this.device).bind({ params: this.params, optState: this.optState, counts: this.finiteCounts }, P, 2 * P + 1);
  }

  setParams(params: Float32Array, firstVector = 0): void {
    checkDeviceHealthy(this.acquired);
    // The learner gives an MLP's vectors already padded (layout.vector); logistic rows are padded here.
    const at = firstVector * this.taskVector * 4;
    writeFloats(this.device, this.params, at, this.mlp ? params : padRows(params, params.length / this.options.dim, this.options.dim));
  }

  async getParams(): Promise<Float32Array> {
    checkDeviceHealthy(this.acquired);
    const raw = await this.read(this.params, this.paramFloats);
    return this.mlp ? raw : unpadRows(raw, this.vectors, this.options.dim);
  }

  private async read(buffer: GPUBuffer, floats: number): Promise<Float32Array> {
    const out = await readFloats(this.device, buffer, floats);
    checkDeviceHealthy(this.acquired);
    return out;
  }

  /** Several buffers' contents in one readback (one copy submit, one map); null parts are skipped. */
  private async readMany(parts: ({ buffer: GPUBuffer; floats: number } | null)[]): Promise<(Float32Array | undefined)[]> {
    const total = parts.reduce((n, p) => n + (p ? p.floats : 0), 0);
    if (total === 0) return parts.map(() => undefined);
    checkDeviceHealthy(this.acquired);
    const staging = this.device.createBuffer({ label: 'readback:GpuEngine', size: total * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder({ label: 'readback' });
    let at = 0;
    for (const p of parts) {
      if (!p || p.floats === 0) continue;
      encoder.copyBufferToBuffer(p.buffer, 0, staging, at * 4, p.floats * 4);
      at += p.floats;
    }
    this.device.queue.submit([encoder.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const all = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      at = 0;
      return parts.map((p) => {
        if (!p) return undefined;
        const out = all.slice(at, at + p.floats);
        at += p.floats;
        return out;
      });
    } finally {
      staging.destroy();
      checkDeviceHealthy(this.acquired);
    }
  }

  /** The counts of the divergence check as read back (two u32 in float storage). */
  private static counts(raw: Float32Array | undefined): NonFiniteCounts | undefined {
    if (!raw) return undefined;
    const words = new Uint32Array(raw.buffer, raw.byteOffset, 2);
    return { params: words[0], optimizer: words[1] };
  }

  private scratchSizes(batch: Batch, innerSteps: number) {
    const supportRows = batch.supportShots + (this.joint ? batch.queryShots : 0);
    const shape = { tasks: batch.tasks, supportRows, dim: this.Dp, innerSteps, context: this.options.contextDim, stepSizes: this.stepSizes };
    if (this.kernels.caml) {
      const z = camlScratchSizes(shape, this.sets);
      return { adapted: z.adapted, metaGrad: z.metaGrad, supportProb: z.tape, taskStats: z.taskStats, perturbed: z.scratch };
    }
    return taskScratchSizes(shape, this.sets);
  }

  /** The largest buffer a kernel may bind (METAGRAD_MAX_BINDING, read when the learner is made, lowers
   * it: tests use it to split small batches into chunks). */
  private readonly forcedBindingCap = typeof process !== 'undefined' ? Number(process.env?.METAGRAD_MAX_BINDING) || Infinity : Infinity;

  private bindingCap(): number {
    const limits = this.device.limits;
    return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, this.forcedBindingCap);
  }

  /** Tasks per data chunk: as many as one storage binding holds (an MLP's: also its per-task scratch). */
  private tasksPerChunk(batch: Batch, innerSteps: number): number {
    const perTask = Math.max(
      this.dataFloatsPerTask(batch) * 4,
      ...(this.mlp ? Object.values(this.mlpScratchPerTask(batch, innerSteps)).map((f) => f * 4) : []),
    );
    return Math.max(1, Math.min(batch.tasks, Math.floor((this.bindingCap() - 64) / perTask)));
  }

  /** Floats per task of the largest data buffer: the batch's rows, or Reptile's joined rows. */
  private dataFloatsPerTask(batch: Batch): number {
    const { supportShots: Ks, queryShots: Kq } = batch;
    return dataLayout(1, Ks + (this.joint ? Kq : 0), Kq, this.options.dim).total;
  }

  /** Rows of the largest set an MLP pass reads: Reptile's support ∪ query, else the larger set. */
  private passRows(batch: Batch): number {
    return this.joint ? batch.supportShots + batch.queryShots : Math.max(batch.supportShots, batch.queryShots);
  }

  /** Floats per task of the model's tape for `sections` primal sections (and a layer list's max-pool choices). */
  private tapeFloats(batch: Batch, sections: number): { tape: number; arg: number } {
    const layout = this.mlp!;
    const rows = this.passRows(batch);
    return layout.kind === 'net' ? netTapeFloats(layout, rows, sections) : { tape: mlpTapeFloats(layout, rows, sections), arg: 1 };
  }

  /** Floats per task of the MLP's chunk scratch (docs/neural-models.md "Memory per task"). */
  private mlpScratchPerTask(batch: Batch, innerSteps: number) {
    const o = this.options;
    const V = this.mlp!.vector;
    const amp = perturbOf(o) !== null;
    const order2 = o.order === 2;
    const tape = this.tapeFloats(batch, order2 ? innerSteps + 1 : 1);
    return {
      adapted: this.sets * V,
      metaGrad: this.sets * this.gradVector,
      // θ'⁽ˢ⁾ (+Δ) of each inner step: AMP's perturbed points, and order 2's points for s ≥ 1.
      points: amp || order2 ? innerSteps * V : 1,
      tape: tape.tape,
      // A layer list's max-pool choices (u32s).
      poolChoices: tape.arg,
      // Meta-SGD: Σ g_s (and order 2's α ⊙ v) per task.
      scratch: Math.max(1, mlpPassScratchFloats(this.mlp!, { innerSteps, order: o.order, stepSizes: this.stepSizes, head: capabilitiesOf(o).adapt === 'head' })),
    };
  }

  /** Rejects batches beyond the adapter's limits before any buffer is made. The rows of a big batch are
   * split into chunks of tasks; the per-task scratch (θ', meta-gradients) must still fit one binding. */
  private checkFits(batch: Batch, innerSteps: number): void {
    const limits = this.device.limits;
    const oneTaskBytes = this.dataFloatsPerTask(batch) * 4;
    // An MLP's scratch is per chunk: one task's must fit. GA-MAML's weights need every task's update at once.
    const scratch = this.mlp
      ? this.mlpScratchPerTask(batch, innerSteps)
      : this.scratchSizes(batch, innerSteps);
    const largest = Math.max(oneTaskBytes, ...Object.values(scratch).map((f) => f * 4));
    const cap = this.bindingCap();
    if (largest > cap) {
      throw new LimitError(
        `This batch needs a GPU buffer of ${(largest / 2 ** 20).toFixed(1)} MiB (tasks=${batch.tasks}, shots=${batch.supportShots}+${batch.queryShots}, dim=${this.options.dim}, inner steps=${innerSteps}), ` +
          `over the adapter's storage-binding limit of ${(cap / 2 ** 20).toFixed(1)} MiB.`,
        'Use fewer tasks per batch (e.g. split it in two steps) or the CPU backend.',
      );
    }
    const groupsNeeded = Math.ceil(batch.tasks / limits.maxComputeWorkgroupsPerDimension);
    if (groupsNeeded > limits.maxComputeWorkgroupsPerDimension) {
      throw new LimitError(`tasks = ${batch.tasks} exceeds the adapter's dispatch grid.`, 'Use fewer tasks per batch.');
    }
    if (this.mlp && weighsAcrossTasks(trainPlan(this.options)) && this.tasksPerChunk(batch, innerSteps) < batch.tasks) {
      const perTask = this.mlp.vector * 4;
      throw new LimitError(
        `GA-MAML weighs every task's update against all others, so the ${batch.tasks} tasks' adapted MLP parameters (${(batch.tasks * perTask / 2 ** 20).toFixed(1)} MiB) must fit one storage binding of ${(cap / 2 ** 20).toFixed(1)} MiB.`,
        `Use at most ${Math.floor(cap / perTask)} tasks per batch with ga-maml on this adapter, or the CPU backend.`,
      );
    }
  }

  private slotFor(batch: Batch, innerSteps: number): BatchSlot {
    const key = `${batch.tasks}x${batch.supportShots}x${batch.queryShots}`;
    const needed = Math.max(innerSteps, this.options.innerSteps, 1);
    if (this.slot && this.slot.key === key && this.slot.innerSteps >= needed) return this.slot;
    this.checkFits(batch, needed);
    this.releaseSlot();
    const T = batch.tasks;
    const sizes = this.scratchSizes(batch, needed);
    const buffers: GPUBuffer[] = [];
    const make = (name: string, floats: number) => {
      const b = createBuffer(this.device, `GpuEngine.${name}[${key}]`, floats);
      buffers.push(b);
      return b;
    };
    const perChunk = this.tasksPerChunk(batch, needed);
    const chunks: DataChunk[] = [];
    for (let first = 0; first < T; first += perChunk) {
      const tasks = Math.min(perChunk, T - first);
      const floats = dataLayout(tasks, batch.supportShots, batch.queryShots, this.options.dim).total;
      const name = (what: string) => (perChunk < T ? `${what}@${first}` : what);
      chunks.push({
        first, tasks, data: make(name('data'), floats), advData: make(name('advData'), floats), attackScratch: make(name('attackScratch'), floats),
        joint: this.joint ? make(name('joint'), dataLayout(tasks, batch.supportShots + batch.queryShots, batch.queryShots, this.options.dim).total) : null,
      });
    }
    const V = this.taskVector;
    const mlpSizes = this.mlp ? this.mlpScratchPerTask(batch, needed) : null;
    // MLP: scratch for one chunk (the largest), reused by every chunk in turn; logistic: the whole batch.
    const scratchTasks = this.mlp ? perChunk : T;
    const blocks = this.mlp ? chunks.reduce((b, c) => b + this.sets * Math.ceil(c.tasks / TASK_BLOCK), 0) : Math.ceil(this.sets * T / TASK_BLOCK);
    const slot: BatchSlot = {
      key,
      innerSteps: needed,
      buffers,
      chunks,
      adapted: make('adapted', mlpSizes ? scratchTasks * mlpSizes.adapted : sizes.adapted),
      metaGrad: make('metaGrad', mlpSizes ? scratchTasks * mlpSizes.metaGrad : sizes.metaGrad),
      supportProb: make('supportProb', mlpSizes ? 1 : sizes.supportProb),
      taskStats: make('taskStats', mlpSizes ? this.sets * 2 * T : sizes.taskStats),
      attackedStats: make('attackedStats', 2 * T),
      perturbed: make('perturbed', mlpSizes ? 1 : sizes.perturbed),
      taskWeight: make('taskWeight', this.sets * T),
      updateSum: make('updateSum', V),
      agree: make('agree', 2 * T),
      partial: make('partial', blocks * this.paramFloats),
      mlp: null,
      compiled: new Map(),
    };
    if (mlpSizes) {
      const points = make('points', scratchTasks * mlpSizes.points);
      const tape = make('tape', scratchTasks * mlpSizes.tape);
      const scratch = make('stepScratch', scratchTasks * mlpSizes.scratch);
      const rows = this.passRows(batch);
      const sections = this.options.order === 2 ? needed + 1 : 1;
      const layout = this.mlp!;
      const extra = layout.kind === 'net' ? make('poolChoices', scratchTasks * mlpSizes.poolChoices) : undefined;
      const passBuffers = { tape, adapted: slot.adapted, metaGrad: slot.metaGrad, points, scratch, extra };
      const options = { metaGradWidth: this.gradVector };
      const passes = chunks.map((c) => (layout.kind === 'net'
        ? new NetPass(this.device, layout, c.tasks, rows, sections, passBuffers, `GpuEngine.net[${key}]@${c.first}`, options)
        : new MlpPass(this.device, layout, c.tasks, rows, sections, passBuffers, `GpuEngine.mlp[${key}]@${c.first}`, options)));
      slot.mlp = { passes, points, tape };
    }
    this.slot = slot;
    return slot;
  }

  /** Records a plan's steps for this slot's batch shape (binds buffers and writes uniforms once). Steps
   * that read rows run once per data chunk; outputs are indexed by the task's place in the batch. */
  private compile(slot: BatchSlot, batch: Batch, plan: Plan): CompiledPlan {
    const o = this.options;
    const T = batch.tasks;
    if (plan.steps.some((s) => s.kind === 'update')) writeFloats(this.device, slot.taskWeight, 0, taskWeights(o, T, plan.sets));
    if (slot.mlp) return this.compileMlp(slot, batch, plan);
    const parts: BoundDispatch[] = [];
    for (const step of plan.steps) {
      for (const c of slot.chunks) {
        const part = this.compileChunkStep(slot, batch, plan, step, c);
        if (part) parts.push(part);
      }
      const whole = this.compileBatchStep(slot, batch, plan, step);
      if (whole) parts.push(whole);
    }
    const all: BoundDispatch = { encode: (pass) => parts.forEach((p) => p.encode(pass)) };
    return { ...all, chunks: [all], batch: [] };
  }

  /**
   * An MLP plan: its per-task scratch holds one chunk, so each chunk runs all of the plan's row steps
   * (attacks, task passes, scores, and the partial sums of the update) before the next chunk reuses
   * the scratch; then the steps over the whole batch (GA weights — one chunk only —, the update).
   */
  private compileMlp(slot: BatchSlot, batch: Batch, plan: Plan): CompiledPlan {
    const o = this.options;
    const T = batch.tasks;
    const V = this.taskVector;
    const { supportShots: Ks, queryShots: Kq } = batch;
    const update = this.kernels.update;
    const updateBuffers = { metaGrad: slot.metaGrad, taskWeight: slot.taskWeight, theta: this.params, optState: this.optState, meanGrad: this.meanGrad, partial: slot.partial };
    let blockBase = 0;
    const chunks = slot.chunks.map((c, ci) => {
      const pass = slot.mlp!.passes[ci];
      const off = dataLayout(c.tasks, Ks, Kq, o.dim);
      const rowsOf = (buffer: GPUBuffer, which: 'support' | 'query'): Rows => which === 'support'
        ? { buffer, xOff: off.supportX, yOff: off.supportY, rows: Ks }
        : { buffer, xOff: off.queryX, yOff: off.queryY, rows: Kq };
      const dataOf = (side: 'clean' | 'adv') => (side === 'clean' ? c.data : c.advData);
      const jointOff = dataLayout(c.tasks, Ks + Kq, Kq, o.dim);
      const theta = capabilitiesOf(o).thetaPerTask ? { buffer: this.params, off: c.first * V, taskStride: V } : { buffer: this.params, off: 0, taskStride: 0 };
      // A protonet's episodes: each task's support rows then its query rows, in the chunk's joint buffer
      // (its query part refilled from the adversarial copy for attacks and attacked scores).
      const Dp = this.Dp;
      const episode = capabilitiesOf(o).episode ? {
        rows: { buffer: c.joint!, xOff: jointOff.supportX, yOff: jointOff.supportY, rows: Ks + Kq, episodeSupport: Ks } as Rows,
        refill: (fromAdv: boolean): BoundDispatch[] => [
          this.joinRows(c, Ks, Kq),
          ...(fromAdv ? [pass.copyRows({ buffer: c.advData, off: off.queryX, taskStride: Kq * Dp }, { buffer: c.joint!, off: jointOff.supportX + Ks * Dp, taskStride: (Ks + Kq) * Dp }, Kq * Dp, `episode@${c.first}.adv`)] : []),
        ],
      } : undefined;
      const parts: BoundDispatch[] = [];
      for (const step of plan.steps) {
        switch (step.kind) {
          case 'attack':
            parts.push(...pass.attackStep(step.against === 'theta' ? theta : pass.adaptedSet0(), rowsOf(c.data, step.rows), c.advData, step.attack, episode));
            break;
          case 'tasks': {
            const p = modelTaskParamsFor(batch, o, step, this.mlp!);
            const joint = step.support === 'joint';
            if (joint || step.episode) parts.push(this.joinRows(c, Ks, Kq));
            const support: Rows = joint ? { buffer: c.joint!, xOff: jointOff.supportX, yOff: jointOff.supportY, rows: Ks + Kq } : rowsOf(dataOf(step.support as 'clean' | 'adv'), 'support');
            if (step.episode && step.query !== 'clean') throw new Error('GpuEngine: an episode reads the clean query rows');
            parts.push(...pass.tasksStep({
              support, query: step.episode ? episode!.rows : rowsOf(dataOf(step.query), 'query'), theta,
              innerLr: p.innerLr, innerSteps: p.innerSteps, order: p.order, wantMetaGrad: p.wantMetaGrad, adapt: p.adapt,
              perturb: p.perturb, writeBack: p.writeBack ?? false, outSet: step.outSet,
              // Meta-SGD's α: the second vector of the parameters, in training and evaluation alike.
              stepSizes: this.stepSizes ? { buffer: this.params, off: V, taskStride: 0 } : null,
              stats: { buffer: slot.taskStats, base: step.outSet * T + c.first },
            }));
            break;
          }
          case 'score-attacked':
            parts.push(...pass.scoreStep(rowsOf(c.advData, 'query'), { buffer: slot.attackedStats, base: c.first }, episode));
            break;
          case 'ga-weights':
            // Only with one chunk (checkFits): the GA kernels read every task's θ'_t from set 0 of
            // `adapted`, between the task pass and the update's partial sums that use the weights.
            parts.push(this.kernels.ga.bind({ theta: this.params, adapted: slot.adapted, updateSum: slot.updateSum, agree: slot.agree, taskWeight: slot.taskWeight, partial: slot.partial }, T, V, step.normalization));
            break;
          case 'difference':
            parts.push(this.difference({ buffer: this.params, off: 0, taskStride: 0 }, slot, c.tasks, V, `mlp@${c.first}`));
            break;
          case 'update':
            for (let set = 0; set < plan.sets; set++) {
              const G = this.gradVector;
              parts.push(update.bindPartial(updateBuffers, { tasks: c.tasks, dim: G, taskBase: set * T + c.first, blockBase, gradOff: set * c.tasks * G }, `mlp@${c.first}.set${set}`));
              blockBase += Math.ceil(c.tasks / TASK_BLOCK);
            }
            break;
          default:
            break;
        }
      }
      return { encode: (pass: GPUComputePassEncoder) => parts.forEach((p) => p.encode(pass)) } as BoundDispatch;
    });
    const whole: BoundDispatch[] = [];
    for (const step of plan.steps) {
      if (step.kind === 'update') whole.push(update.bindApply(updateBuffers, updateParamsFor(plan.sets * T, this.paramFloats, o, step.apply), blockBase, 'mlp'));
    }
    return {
      chunks,
      batch: whole,
      encode: (pass) => { chunks.forEach((c) => c.encode(pass)); whole.forEach((w) => w.encode(pass)); },
    };
  }

  /** The steps that read a chunk's rows: attacks, the per-task pass, attacked scores. */
  private compileChunkStep(slot: BatchSlot, batch: Batch, plan: Plan, step: Plan['steps'][number], c: DataChunk): BoundDispatch | null {
    const o = this.options;
    const off = dataLayout(c.tasks, batch.supportShots, batch.queryShots, o.dim);
    const dataOf = (side: 'clean' | 'adv') => (side === 'clean' ? c.data : c.advData);
    const chunkBatch = { ...batch, tasks: c.tasks };
    const chunk = { base: c.first, slotTasks: batch.tasks };
    switch (step.kind) {
      case 'attack': {
        const theta = step.against === 'theta';
        const support = step.rows === 'support';
        const xOff = support ? off.supportX : off.queryX;
        return (this.attackKernel ??= new AttackKernel(this.device, this.workgroup)).bind({
          clean: { buffer: c.data, xOff, labelOff: support ? off.supportY : off.queryY },
          params: theta ? this.params : slot.adapted,
          paramOff: theta ? 0 : c.first * this.Dp,  // θ'_t of set 0 for the chunk's tasks
          paramPerTask: !theta,
          out: { buffer: c.advData, xOff },
          scratch: { buffer: c.attackScratch, xOff },
          tasks: c.tasks, rows: support ? batch.supportShots : batch.queryShots, dim: o.dim,
        }, step.attack, step.rows);
      }
      case 'tasks': {
        const label = `set${step.outSet}@${c.first}`;
        if (step.support === 'joint') {
          // Reptile: the union as the support rows (Ks + Kq), the query as the query, both from `joint`.
          const join = this.joinRows(c, batch.supportShots, batch.queryShots);
          const bound = this.kernels.maml!.bind({
            supportData: c.joint!, queryData: c.joint!, theta: this.params, adapted: slot.adapted,
            metaGrad: slot.metaGrad, supportProb: slot.supportProb, taskStats: slot.taskStats, perturbed: slot.perturbed,
          }, c.tasks, label);
          bound.setParams({ ...taskParamsFor({ ...chunkBatch, supportShots: batch.supportShots + batch.queryShots }, o, step, o.dim), chunk });
          return { encode: (pass) => { join.encode(pass); bound.encode(pass); } };
        }
        if (this.kernels.caml) {
          const bound = this.kernels.caml.bind({
            supportData: dataOf(step.support as 'clean' | 'adv'), queryData: dataOf(step.query), params: this.params, adapted: slot.adapted,
            metaGrad: slot.metaGrad, tape: slot.supportProb, taskStats: slot.taskStats, scratch: slot.perturbed,
          }, c.tasks, label);
          bound.setParams({ ...camlParamsFor(chunkBatch, o, step, o.dim), chunk });
          return bound;
        }
        const bound = this.kernels.maml!.bind({
          supportData: dataOf(step.support as 'clean' | 'adv'), queryData: dataOf(step.query), theta: this.params, adapted: slot.adapted,
          metaGrad: slot.metaGrad, supportProb: slot.supportProb, taskStats: slot.taskStats, perturbed: slot.perturbed,
        }, c.tasks, label);
        bound.setParams({ ...taskParamsFor(chunkBatch, o, step, o.dim), chunk });
        return bound;
      }
      case 'score-attacked':
        return (this.logisticKernels ??= new LogisticKernels(this.device, this.workgroup)).bind(
          { x: c.advData, y: c.advData, params: slot.adapted, out: slot.metaGrad, stats: slot.attackedStats },
          { tasks: c.tasks, rows: batch.queryShots, dim: o.dim, paramStride: o.dim },
          { x: off.queryX, y: off.queryY, params: 0, taskBase: c.first }).forwardGrad;
      default:
        return null;
    }
  }

  /** The steps over the whole batch at once: agreement weights and the outer update. */
  private compileBatchStep(slot: BatchSlot, batch: Batch, plan: Plan, step: Plan['steps'][number]): BoundDispatch | null {
    const T = batch.tasks;
    switch (step.kind) {
      case 'difference':
        // The logistic scratch holds the whole batch: set 0's θ'_t at t·Dp.
        return this.difference({ buffer: this.params, off: 0, taskStride: 0 }, slot, T, this.Dp, 'logistic');
      case 'ga-weights':
        // GA runs before the update in the same pass, so the two can share the partial-sum scratch.
        return this.kernels.ga.bind({ theta: this.params, adapted: slot.adapted, updateSum: slot.updateSum, agree: slot.agree, taskWeight: slot.taskWeight, partial: slot.partial }, T, this.Dp, step.normalization);
      case 'update':
        return this.kernels.update.bind(
          { metaGrad: slot.metaGrad, taskWeight: slot.taskWeight, theta: this.params, optState: this.optState, meanGrad: this.meanGrad, partial: slot.partial },
          updateParamsFor(plan.sets * T, this.vectors * this.Dp, this.options, step.apply), step.apply ? 'update' : 'gradientOnly');
      default:
        return null;
    }
  }

  /** join-rows: chunk c's support then query rows into its `joint` buffer (Reptile's inner-loop rows). */
  private joinRows(c: DataChunk, Ks: number, Kq: number): BoundDispatch {
    this.joinKernel ??= new JoinRowsKernel(this.device);
    return this.joinKernel.bind({ data: c.data, joint: c.joint! }, { tasks: c.tasks, supportRows: Ks, queryRows: Kq, dim: this.options.dim }, `join@${c.first}`);
  }

  /** Reptile's task updates as gradients: metaGrad_t = θ − θ'_t over `tasks` vectors of `length` floats
   * (set 0 of the adapted scratch), one vector op. */
  private difference(theta: { buffer: GPUBuffer; off: number; taskStride: number }, slot: BatchSlot, tasks: number, length: number, label: string): BoundDispatch {
    this.vectorKernel ??= new VectorKernel(this.device);
    return this.vectorKernel.bind({ b0: theta.buffer, b1: slot.adapted, b2: slot.metaGrad }, {
      tasks, length, lo: 0, hi: length, a: 1, b: -1,
      x: { buf: 0, off: theta.off, taskStride: theta.taskStride }, y: { buf: 1, off: 0, taskStride: length }, out: { buf: 2, off: 0, taskStride: length },
    }, `GpuEngine.difference.${label}`);
  }

  private compiled(slot: BatchSlot, batch: Batch, key: string, plan: () => Plan): CompiledPlan {
    let c = slot.compiled.get(key);
    if (!c) {
      // Evaluation plans differ by (steps, lr, attack); keep a few, not one per call ever made.
      if (slot.compiled.size > 16) slot.compiled.clear();
      c = this.compile(slot, batch, plan());
      slot.compiled.set(key, c);
    }
    return c;
  }

  private upload(slot: BatchSlot, batch: Batch, adversarial: boolean): void {
    const D = this.options.dim;
    const { supportShots: Ks, queryShots: Kq } = batch;
    for (const c of slot.chunks) {
      const off = dataLayout(c.tasks, Ks, Kq, D);
      const rows = (a: Float32Array, k: number) => a.subarray(c.first * k * D, (c.first + c.tasks) * k * D);
      const labels = (a: Float32Array, k: number) => a.subarray(c.first * k, (c.first + c.tasks) * k);
      writeFloats(this.device, c.data, off.supportX * 4, padRows(rows(batch.supportX, Ks), c.tasks * Ks, D));
      writeFloats(this.device, c.data, off.queryX * 4, padRows(rows(batch.queryX, Kq), c.tasks * Kq, D));
      // The attacked copy reads its labels from its own buffer (attacks leave labels alone).
      for (const target of adversarial ? [c.data, c.advData] : [c.data]) {
        writeFloats(this.device, target, off.supportY * 4, labels(batch.supportY, Ks));
        writeFloats(this.device, target, off.queryY * 4, labels(batch.queryY, Kq));
      }
    }
  }

  private async submit(label: string, record: (pass: GPUComputePassEncoder) => void): Promise<void> {
    if (this.inFlight) await this.inFlight;
    checkDeviceHealthy(this.acquired);
    const encoder = this.device.createCommandEncoder({ label });
    const t = this.timing;
    const pass = encoder.beginComputePass({ label, ...(t ? { timestampWrites: { querySet: t.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {}) });
    record(pass);
    pass.end();
    if (t) encoder.resolveQuerySet(t.querySet, 0, 2, t.resolve, 0);
    this.device.queue.submit([encoder.finish()]);
    this.inFlight = this.device.queue.onSubmittedWorkDone();
  }

  async step(batch: Batch, iterations: number, want: StepWant): Promise<StepReadback> {
    const plan = trainPlan(this.options);
    const slot = this.slotFor(batch, this.options.innerSteps);
    this.upload(slot, batch, needsAdversarial(plan));
    const run = this.compiled(slot, batch, 'train', () => plan);
    await this.submit('GpuEngine.step', (pass) => {
      for (let i = 0; i < iterations; i++) run.encode(pass);
      if (want.check) this.finiteCheck.encode(pass);
    });
    // Metrics, weights and the check's counts come back together.
    const [stats, weights, counts] = await this.readMany([
      want.stats ? { buffer: slot.taskStats, floats: 2 * batch.tasks } : null,
      want.weights ? { buffer: slot.taskWeight, floats: plan.sets * batch.tasks } : null,
      want.check ? { buffer: this.finiteCounts, floats: 2 } : null,
    ]);
    return { stats, weights, nonFinite: GpuEngine.counts(counts) };
  }

  async evaluate(batch: Batch, steps: number, lr: number, attack: AttackParams | null, detail = false): Promise<EvaluateOutput> {
    const slot = this.slotFor(batch, steps);
    this.upload(slot, batch, attack !== null);
    const run = this.compiled(slot, batch, `evaluate:${steps}:${lr}:${JSON.stringify(attack)}`, () => evaluatePlan(steps, lr, attack, capabilitiesOf(this.options).episode));
    let adapted: Float32Array | undefined;
    if (detail && slot.mlp) {
      // An MLP's θ'_t live in the chunk scratch: run and read back one chunk at a time.
      adapted = new Float32Array(batch.tasks * this.taskVector);
      for (const [i, c] of slot.chunks.entries()) {
        await this.submit('GpuEngine.evaluate', (pass) => run.chunks[i].encode(pass));
        adapted.set(await this.read(slot.adapted, c.tasks * this.taskVector), c.first * this.taskVector);
      }
    } else {
      await this.submit('GpuEngine.evaluate', (pass) => run.encode(pass));
    }
    const out = await this.readScores(slot, batch.tasks, attack !== null);
    if (detail) {
      const D = this.options.dim;
      out.adapted = adapted ?? unpadRows(await this.read(slot.adapted, batch.tasks * this.Dp), batch.tasks, D);
      if (attack) {
        const Kq = batch.queryShots;
        out.attackedQueryX = new Float32Array(batch.queryX.length);
        for (const c of slot.chunks) {
          const off = dataLayout(c.tasks, batch.supportShots, Kq, D);
          const rows = await readFloats(this.device, c.advData, c.tasks * Kq * this.Dp, off.queryX);
          out.attackedQueryX.set(unpadRows(rows, c.tasks * Kq, D), c.first * Kq * D);
        }
      }
    }
    return out;
  }

  async metaGradient(batch: Batch): Promise<Float32Array> {
    if (!capabilitiesOf(this.options).metaGradient) throw new InvalidOptionError(`metaGradient() applies to meta-learning algorithms, not '${this.options.algorithm}'.`, 'Use step() to train AMP models.');
    const plan = trainPlan(this.options, false);
    const slot = this.slotFor(batch, this.options.innerSteps);
    this.upload(slot, batch, needsAdversarial(plan));
    const run = this.compiled(slot, batch, 'gradient', () => plan);
    await this.submit('GpuEngine.metaGradient', (pass) => run.encode(pass));
    const raw = await this.read(this.meanGrad, this.paramFloats);
    return this.mlp ? raw : unpadRows(raw, this.vectors, this.options.dim);
  }

  /** The bound sampler of a (source, seed, split) for this slot's shape. */
  private samplerFor(slot: BatchSlot, source: TaskSource, shape: SampleShape, seed: number, split: Split): BoundDispatch {
    let id = this.sourceIds.get(source);
    if (id === undefined) {
      id = this.sourceData.size + 1;
      this.sourceIds.set(source, id);
      this.sourceData.set(source, packImages(this.device, source));
    }
    const key = `sample:${id}:${seed}:${split}`;
    let bound = slot.compiled.get(key);
    if (!bound) {
      const sampler = (this.sampler ??= new SampleTasksKernel(this.device));
      const images = this.sourceData.get(source)!;
      // One sampling dispatch per chunk; only the last one counts the iteration.
      const parts = slot.chunks.map((c, i) => sampler.bind(
        { data: c.data, advData: c.advData, sampleState: this.sampleState, images }, source, { ...shape, tasks: c.tasks }, seed, split, c.first, i === slot.chunks.length - 1));
      const all: BoundDispatch = { encode: (pass) => parts.forEach((p) => p.encode(pass)) };
      bound = { ...all, chunks: [all], batch: [] };
      slot.compiled.set(key, bound);
    }
    return bound;
  }

  private setSampleIteration(iteration: number): void {
    this.device.queue.writeBuffer(this.sampleState, 0, new Uint32Array([iteration >>> 0, 0, 0, 0]));
  }

  async trainSampled(source: TaskSource, shape: SampleShape, seed: number, first: number, count: number, want: { stats: boolean; check?: boolean }): Promise<StepReadback> {
    const batchShape = shape as Batch;  // slots and plans read only the sizes
    const slot = this.slotFor(batchShape, this.options.innerSteps);
    const sample = this.samplerFor(slot, source, shape, seed, 'train');
    const run = this.compiled(slot, batchShape, 'train', () => trainPlan(this.options));
    if (this.inFlight) await this.inFlight;  // the counter is rewritten: the previous submit must be done with it
    this.setSampleIteration(first);
    await this.submit('GpuEngine.trainSampled', (pass) => {
      for (let i = 0; i < count; i++) {
        sample.encode(pass);
        run.encode(pass);
      }
      if (want.check) this.finiteCheck.encode(pass);
    });
    const [stats, counts] = await this.readMany([
      want.stats ? { buffer: slot.taskStats, floats: 2 * shape.tasks } : null,
      want.check ? { buffer: this.finiteCounts, floats: 2 } : null,
    ]);
    return { stats, nonFinite: GpuEngine.counts(counts) };
  }

  async evaluateSampled(source: TaskSource, shape: SampleShape, seed: number, index: number, split: Split, steps: number, lr: number, attack: AttackParams | null): Promise<EvaluateOutput> {
    const batchShape = shape as Batch;
    const slot = this.slotFor(batchShape, steps);
    const sample = this.samplerFor(slot, source, shape, seed, split);
    const run = this.compiled(slot, batchShape, `evaluate:${steps}:${lr}:${JSON.stringify(attack)}`, () => evaluatePlan(steps, lr, attack, capabilitiesOf(this.options).episode));
    if (this.inFlight) await this.inFlight;
    this.setSampleIteration(index);
    await this.submit('GpuEngine.evaluateSampled', (pass) => {
      sample.encode(pass);
      run.encode(pass);
    });
    return this.readScores(slot, shape.tasks, attack !== null);
  }

  /** Per-task query stats of an evaluation: clean, and attacked when the plan scored an attack. */
  private async readScores(slot: BatchSlot, tasks: number, attacked: boolean): Promise<EvaluateOutput> {
    return {
      clean: await this.read(slot.taskStats, 2 * tasks),
      attacked: attacked ? await this.read(slot.attackedStats, 2 * tasks) : undefined,
    };
  }

  async gpuTimeMs(): Promise<number | null> {
    if (!this.timing) return null;
    if (this.inFlight) await this.inFlight;
    const words = new Uint32Array((await readFloats(this.device, this.timing.resolve, 4)).buffer);
    // Two u64 nanosecond counters (little-endian pairs of u32).
    const begin = words[0] + words[1] * 2 ** 32;
    const end = words[2] + words[3] * 2 ** 32;
    return (end - begin) / 1e6;
  }

  async getOptimizerState(): Promise<Float32Array> {
    const V = this.vectors;
    const P = this.paramFloats;
    const padded = await this.read(this.optState, 2 * P + 1);
    if (this.mlp) return padded;  // already the internal layout of the learner
    const D = this.options.dim;
    const out = new Float32Array(2 * V * D + 1);
    out.set(unpadRows(padded.subarray(0, P), V, D), 0);
    out.set(unpadRows(padded.subarray(P, 2 * P), V, D), V * D);
    out[2 * V * D] = padded[2 * P];
    return out;
  }

  setOptimizerState(state: Float32Array): void {
    checkDeviceHealthy(this.acquired);
    if (this.mlp) {
      writeFloats(this.device, this.optState, 0, state);
      return;
    }
    const V = this.vectors;
    const D = this.options.dim;
    const P = this.paramFloats;
    const padded = new Float32Array(2 * P + 1);
    padded.set(padRows(state.subarray(0, V * D), V, D), 0);
    padded.set(padRows(state.subarray(V * D, 2 * V * D), V, D), P);
    padded[2 * P] = state[2 * V * D];
    writeFloats(this.device, this.optState, 0, padded);
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
    this.params.destroy();
    this.optState.destroy();
    this.meanGrad.destroy();
    this.sampleState.destroy();
    this.finiteCounts.destroy();
    this.timing?.querySet.destroy();
    this.timing?.resolve.destroy();
    for (const b of this.sourceData.values()) b.destroy();
  }
}
