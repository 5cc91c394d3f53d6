// The CPU backend: interprets the same Plans as the GPU engine with the CPU twins of the kernels.
import { attack } from '../cpu/fgsm.js';
import { camlAdaptAndMetaGrad, camlScratchSizes, type CamlOutputs } from '../cpu/caml-task.js';
import { gaWeights } from '../cpu/ga-weights.js';
import { forwardGrad } from '../cpu/logistic.js';
import { adaptAndMetaGrad, taskScratchSizes, type RowSet, type TaskOutputs } from '../cpu/maml-task.js';
import { modelAdaptAndMetaGrad, modelAttack, modelScore, modelTaskScratchSizes, type ModelTaskOutputs } from '../cpu/model-task.js';
import { modelLayoutOf, modelCount, type ModelLayout } from '../models/model.js';
import { forwardMacs } from '../models/layers.js';
import { countStep, metaUpdate } from '../cpu/meta-update.js';
import { evaluatePlan, needsJoint, type Plan, type DataSide } from '../algorithms/plan.js';
import { capabilitiesOf, paramVectors, taskKernelOf, taskWeights, trainPlan } from '../algorithms/index.js';
import { joinRows } from '../cpu/join-rows.js';
import type { AttackParams } from '../cpu/fgsm.js';
import type { CamlParams } from '../cpu/caml-task.js';
import type { TaskParams } from '../cpu/maml-task.js';
import { cpuSimdActive } from '../cpu/wasm/gemm.js';
import { acquirePool, isShared, releasePool, SharedArena, type WorkerPool } from '../cpu/pool.js';
import { isNode } from '../gpu/node-env.js';

/** Batches with fewer multiply-adds per pass (T·(Ks+Kq)·D; MLP: ·parameters; a layer list: ·its forward's) run on one thread: a hop costs ~0.1 ms. */
const PARALLEL_MIN_WORK = 1 << 20;
// Engines see batches after validation: labels as float32 (CheckedBatch).
import type { CheckedBatch as Batch, BackendInfo, ResolvedLearnerOptions } from '../types.js';
import { sampleTasks, type SampleShape } from '../cpu/sample-tasks.js';
import type { Split, TaskSource } from '../tasks/source.js';
import { camlParamsFor, modelTaskParamsFor, taskParamsFor, updateParamsFor, type Engine, type EvaluateOutput, type NonFiniteCounts, type StepReadback, type StepWant } from './engine.js';
import { countNonFinite } from '../cpu/finite-check.js';

/** What one run of a plan leaves behind. */
interface PlanState {
  adapted: Float32Array;        // sets×T×D (MLP: sets×T×vector)
  advQueryX: Float32Array;      // T×Kq×D, after an attack on the queries
  stats: Float32Array;          // sets×T×2
  attackedStats?: Float32Array; // T×2
  weights: Float32Array;        // sets×T
  meanGrad: Float32Array;
}

export class CpuEngine implements Engine {
  // Worker threads exist in Node only; a browser page runs the CPU backend on its own thread. The conv
  // nets' GEMMs run as WebAssembly SIMD where the engine has it (the same bits as without).
  readonly info: BackendInfo = {
    kind: 'cpu', software: true,
    adapter: `cpu (TypeScript${cpuSimdActive() ? ' + WebAssembly SIMD' : ''}${isNode() ? '; worker threads' : ', on the page\'s thread'})`,
  };
  private readonly params: Float32Array;
  private readonly optState: Float32Array;
  private readonly paramLength: number;
  /** The model's layout (an MLP or a list of layers), or null for the logistic unit (whose path is the fused twins). */
  private readonly layout: ModelLayout | null;
  /** Floats of one task's adapted parameters: D (logistic; CAML: w + Wφ_t), or the MLP's vector. */
  private readonly width: number;
  /** Meta-SGD: θ is followed by its learned step sizes α, and meta-gradients by α's. */
  private readonly stepSizes: boolean;

  /** The engine's shared arrays (θ, batch copies, scratch), given back for reuse at destroy(). */
  private readonly arena = new SharedArena();
  /** Worker threads, started on the first batch big enough to be worth splitting. */
  private pool: Promise<WorkerPool> | null = null;

  constructor(private readonly options: ResolvedLearnerOptions, initialParams: Float32Array) {
    this.layout = modelLayoutOf(options);
    this.width = this.layout ? this.layout.vector : options.dim;
    this.stepSizes = capabilitiesOf(options).stepSizes;
    // Meta-SGD's MLP holds [θ | α]: two vectors (the logistic count is the algorithm's paramVectors).
    this.paramLength = this.layout ? modelCount(options) * this.layout.vector * (this.stepSizes ? 2 : 1) : paramVectors(options) * options.dim;
    // Shared memory, so that worker threads read θ and write their tasks' results in place.
    this.params = this.arena.floats(this.paramLength);
    this.params.set(initialParams);
    this.optState = new Float32Array(2 * this.paramLength + 1);
  }

  /** Threads for this batch: 1 for small batches (a thread hop costs more than the work), else the pool's. */
  private async poolFor(batch: Batch): Promise<WorkerPool | null> {
    const perRow = !this.layout ? this.options.dim : this.layout.kind === 'net' ? forwardMacs(this.layout.net) : this.layout.params;
    const work = batch.tasks * (batch.supportShots + batch.queryShots) * perRow;
    if (this.options.threads === 1 || batch.tasks < 2 || (this.options.threads === 0 && work < PARALLEL_MIN_WORK)) return null;
    this.pool ??= acquirePool(this.options.threads);
    const pool = await this.pool;
    return pool.threads > 1 ? pool : null;
  }

  /** Shared copies of the last batch's arrays, reused while the shape stays (allocating fresh shared
   * memory per call cost more than the copy: page faults on 64 MB at T = 1024, D = 784). */
  private sharedInputs: Record<'supportX' | 'supportY' | 'queryX' | 'queryY', Float32Array> | null = null;

  /** The batch in shared memory when threads will read it (copied once per call). */
  private shareBatch(batch: Batch, pool: WorkerPool | null): Batch {
    if (!pool) return batch;
    const keys = ['supportX', 'supportY', 'queryX', 'queryY'] as const;
    if (keys.every((k) => isShared(batch[k]))) return batch;
    if (!this.sharedInputs || keys.some((k) => this.sharedInputs![k].length !== batch[k].length)) {
      if (this.sharedInputs) this.arena.release(Object.values(this.sharedInputs));
      this.sharedInputs = Object.fromEntries(keys.map((k) => [k, this.arena.floats(batch[k].length)])) as Record<(typeof keys)[number], Float32Array>;
    }
    for (const k of keys) this.sharedInputs[k].set(batch[k]);
    return { ...batch, ...this.sharedInputs };
  }

  setParams(params: Float32Array, firstVector = 0): void { this.params.set(params, firstVector * this.width); }

  /** Scratch of the last batch shape, reused across iterations (allocating ~10 MB per meta-iteration
   * at T = 1024, D = 784 made the garbage collector the bottleneck). */
  private scratch: {
    key: string; advSupportX: Float32Array; advQueryX: Float32Array; maml: TaskOutputs | null; caml: CamlOutputs | null; mlp: ModelTaskOutputs | null;
    /** Reptile: each task's support then query rows (and labels), the rows its inner loop adapts on. */
    jointX: Float32Array; jointY: Float32Array;
  } | null = null;

  /** Scratch for `batch`; `joint`: the inner loop reads support ∪ query rows (Reptile). */
  private scratchFor(batch: Batch, innerSteps: number, sets: number, joint: boolean) {
    const key = `${batch.tasks}x${batch.supportShots}x${batch.queryShots}:${innerSteps}:${sets}:${joint}`;
    if (this.scratch?.key === key) return this.scratch;
    if (this.scratch) this.arena.release(scratchArrays(this.scratch));
    const o = this.options;
    const supportRows = batch.supportShots + (joint ? batch.queryShots : 0);
    const shape = { tasks: batch.tasks, supportRows, dim: o.dim, innerSteps, context: o.contextDim, stepSizes: this.stepSizes };
    const zeros = <K extends string>(sizes: Record<K, number>) =>
      Object.fromEntries(Object.entries(sizes).map(([k, n]) => [k, this.arena.floats(n as number)])) as Record<K, Float32Array>;
    const kernel = this.layout ? 'mlp' : taskKernelOf(o.algorithm);
    this.scratch = {
      key,
      advSupportX: this.arena.floats(batch.supportX.length),
      advQueryX: this.arena.floats(batch.queryX.length),
      maml: kernel === 'maml' ? zeros(taskScratchSizes(shape, sets)) : null,
      caml: kernel === 'caml' ? zeros(camlScratchSizes(shape, sets)) : null,
      mlp: this.layout ? zeros(modelTaskScratchSizes({ tasks: batch.tasks, layout: this.layout, stepSizes: this.stepSizes }, sets)) : null,
      jointX: this.arena.floats(joint ? batch.supportX.length + batch.queryX.length : 0),
      jointY: this.arena.floats(joint ? batch.supportY.length + batch.queryY.length : 0),
    };
    return this.scratch;
  }
  async getParams(): Promise<Float32Array> { return Float32Array.from(this.params); }

  private async run(plan: Plan, batch: Batch, pool: WorkerPool | null): Promise<PlanState> {
    const o = this.options;
    const D = o.dim;
    const T = batch.tasks;
    const clean = { support: { x: batch.supportX, y: batch.supportY }, query: { x: batch.queryX, y: batch.queryY } };
    const n = Math.max(o.innerSteps, ...plan.steps.map((s) => (s.kind === 'tasks' ? s.innerSteps : 0)));
    const joint = needsJoint(plan);
    const scratch = this.scratchFor(batch, n, plan.sets, joint);
    const adv = { support: { x: scratch.advSupportX, y: batch.supportY }, query: { x: scratch.advQueryX, y: batch.queryY } };
    const side = (s: DataSide) => (s === 'clean' ? clean : adv);
    // Reptile's rows: task t's Ks support rows then its Kq query rows, a batch of Ks + Kq support shots.
    let jointBatch: Batch | null = null;
    if (joint) {
      joinRows(batch.supportX, batch.supportY, batch.queryX, batch.queryY, { tasks: T, supportRows: batch.supportShots, queryRows: batch.queryShots, dim: D },
        { x: scratch.jointX, y: scratch.jointY });
      jointBatch = { ...batch, supportShots: batch.supportShots + batch.queryShots, supportX: scratch.jointX, supportY: scratch.jointY };
    }
    const { maml, caml: camlOut, mlp: mlpOut } = scratch;
    const layout = this.layout;
    const W = this.width;
    const out = (maml ?? camlOut ?? mlpOut)!;
    const state: PlanState = { adapted: out.adapted, advQueryX: adv.query.x, stats: out.taskStats, weights: taskWeights(o, T, plan.sets), meanGrad: new Float32Array(this.paramLength) };
    // A protonet's attacked and attacked-scored queries go with the support rows of their task (its prototypes).
    const episode = capabilitiesOf(o).episode ? { episode: { x: batch.supportX, y: batch.supportY as Float32Array, rows: batch.supportShots } } : {};
    const rowsOf = (which: 'support' | 'query'): { set: RowSet; rows: number } =>
      ({ set: clean[which], rows: which === 'support' ? batch.supportShots : batch.queryShots });

    for (const step of plan.steps) {
      switch (step.kind) {
        case 'attack': {
          const { set, rows } = rowsOf(step.rows);
          const against = step.against === 'theta' ? this.params : out.adapted;
          // A protonet's queries are attacked through the prototypes of their task's support rows.
          const shape = { tasks: T, rows, dim: D, paramStride: step.against === 'theta' ? 0 : W, ...episode };
          if (layout) {
            if (pool) await pool.run({ kernel: 'mlp-attack', out: adv[step.rows].x, clean: set, params: against, shape, attack: step.attack, layout }, T);
            else modelAttack(adv[step.rows].x, set, against, shape, step.attack, layout);
          } else if (pool) await pool.run({ kernel: 'attack', out: adv[step.rows].x, clean: set, params: against, shape, attack: step.attack }, T);
          else attack(adv[step.rows].x, set.x, set.y, against, shape, step.attack);
          break;
        }
        case 'tasks': {
          const support = step.support === 'joint' ? { x: scratch.jointX, y: scratch.jointY } : side(step.support).support;
          // A protonet's episode: the joint rows are the query pass's rows (its first Ks the support).
          if (step.episode && step.query !== 'clean') throw new Error('CpuEngine: an episode reads the clean query rows');
          const query = step.episode ? { x: scratch.jointX, y: scratch.jointY } : side(step.query).query;
          const rowsBatch = step.support === 'joint' ? jointBatch! : batch;
          if (mlpOut && layout) {
            const p = modelTaskParamsFor(rowsBatch, o, step, layout);
            if (pool) await pool.run({ kernel: 'mlp', out: mlpOut, support, query, params: this.params, p }, T);
            else modelAdaptAndMetaGrad(mlpOut, support, query, this.params, p);
            break;
          }
          const p = camlOut ? camlParamsFor(rowsBatch, o, step, D) : taskParamsFor(rowsBatch, o, step, D);
          if (pool) await pool.run({ kernel: camlOut ? 'caml' : 'maml', out: (maml ?? camlOut)!, support, query, params: this.params, p }, T);
          else if (camlOut) camlAdaptAndMetaGrad(camlOut, support, query, this.params, p as CamlParams);
          else adaptAndMetaGrad(maml!, support, query, this.params, p as TaskParams);
          break;
        }
        case 'difference':
          // g_t = θ − θ'_t (one θ, set 0): Reptile's task update as a gradient.
          for (let t = 0; t < T; t++) {
            for (let k = 0; k < W; k++) out.metaGrad[t * W + k] = this.params[k] - out.adapted[t * W + k];
          }
          break;
        case 'ga-weights':
          gaWeights(state.weights, this.params, out.adapted, T, W, step.normalization);
          break;
        case 'update': {
          const up = updateParamsFor(plan.sets * T, this.paramLength, o, step.apply);
          if (up.rule === 1) countStep(this.optState, this.paramLength);
          metaUpdate(this.params, this.optState, state.meanGrad, out.metaGrad, state.weights, up);
          break;
        }
        case 'score-attacked':
          state.attackedStats = new Float32Array(2 * T);
          if (layout) {
            modelScore(state.attackedStats, adv.query.x, batch.queryY as Float32Array, out.adapted, { tasks: T, rows: batch.queryShots, dim: D, paramStride: W, ...episode }, layout);
            break;
          }
          forwardGrad(new Float32Array(T * D), state.attackedStats, adv.query.x, batch.queryY, out.adapted, { tasks: T, rows: batch.queryShots, dim: D, paramStride: D });
          break;
      }
    }
    return state;
  }

  /** The divergence check, on the values themselves. */
  private nonFinite(): NonFiniteCounts {
    return { params: countNonFinite(this.params), optimizer: countNonFinite(this.optState) };
  }

  async step(batch: Batch, iterations: number, want: StepWant): Promise<StepReadback> {
    const plan = trainPlan(this.options);
    const pool = await this.poolFor(batch);
    const shared = this.shareBatch(batch, pool);
    let state: PlanState | undefined;
    for (let i = 0; i < iterations; i++) state = await this.run(plan, shared, pool);
    return {
      stats: want.stats ? state!.stats.slice(0, 2 * batch.tasks) : undefined,
      weights: want.weights ? state!.weights.slice() : undefined,
      nonFinite: want.check ? this.nonFinite() : undefined,
    };
  }

  async evaluate(batch: Batch, steps: number, lr: number, attackParams: AttackParams | null, detail = false): Promise<EvaluateOutput> {
    const pool = await this.poolFor(batch);
    const state = await this.run(evaluatePlan(steps, lr, attackParams, capabilitiesOf(this.options).episode), this.shareBatch(batch, pool), pool);
    const out: EvaluateOutput = { clean: state.stats.slice(0, 2 * batch.tasks), attacked: state.attackedStats };
    if (detail) {
      out.adapted = state.adapted.slice(0, batch.tasks * this.width);
      if (attackParams) out.attackedQueryX = state.advQueryX.slice(0, batch.queryX.length);
    }
    return out;
  }

  async metaGradient(batch: Batch): Promise<Float32Array> {
    const pool = await this.poolFor(batch);
    return (await this.run(trainPlan(this.options, false), this.shareBatch(batch, pool), pool)).meanGrad;
  }

  async trainSampled(source: TaskSource, shape: SampleShape, seed: number, first: number, count: number, want: { stats: boolean; check?: boolean }): Promise<StepReadback> {
    const plan = trainPlan(this.options);
    let state: PlanState | undefined;
    for (let i = first; i < first + count; i++) {
      const batch = sampleTasks(source, shape, seed, i, 'train');
      const pool = await this.poolFor(batch);
      state = await this.run(plan, this.shareBatch(batch, pool), pool);
    }
    return { stats: want.stats ? state!.stats.slice(0, 2 * shape.tasks) : undefined, nonFinite: want.check ? this.nonFinite() : undefined };
  }

  async evaluateSampled(source: TaskSource, shape: SampleShape, seed: number, index: number, split: Split, steps: number, lr: number, attackParams: AttackParams | null): Promise<EvaluateOutput> {
    return this.evaluate(sampleTasks(source, shape, seed, index, split), steps, lr, attackParams);
  }

  async getOptimizerState(): Promise<Float32Array> { return this.optState.slice(); }
  setOptimizerState(state: Float32Array): void { this.optState.set(state); }

  async gpuTimeMs(): Promise<number | null> { return null; }

  async sync(): Promise<void> {}

  destroy(): void {
    if (this.pool) releasePool(this.pool);
    this.pool = null;
    this.arena.release();
    this.scratch = null;
    this.sharedInputs = null;
  }
}

/** Every array of a scratch set (for giving them back when the batch shape changes). */
function scratchArrays(scratch: object): Float32Array[] {
  const found: Float32Array[] = [];
  for (const v of Object.values(scratch)) {
    if (v instanceof Float32Array) found.push(v);
    else if (v && typeof v === 'object') found.push(...scratchArrays(v));
  }
  return found;
}
