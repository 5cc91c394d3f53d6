// The CPU backend: interprets the same Plans as the GPU engine with the CPU twins of the kernels.
import { attack } from '../cpu/fgsm.js';
import { camlAdaptAndMetaGrad, camlScratchSizes, type CamlOutputs } from '../cpu/caml-task.js';
import { gaWeights } from '../cpu/ga-weights.js';
import { forwardGrad } from '../cpu/logistic.js';
import { adaptAndMetaGrad, taskScratchSizes, type RowSet, type TaskOutputs } from '../cpu/maml-task.js';
import { countStep, metaUpdate } from '../cpu/meta-update.js';
import { paramVectors, taskKernelOf, taskWeights, trainPlan, evaluatePlan, type Plan, type DataSide } from '../algorithms/plan.js';
import type { AttackParams } from '../cpu/fgsm.js';
import type { Batch, BackendInfo, ResolvedLearnerOptions } from '../types.js';
import { sampleTasks, type SampleShape } from '../cpu/sample-tasks.js';
import type { Split, TaskSource } from '../tasks/source.js';
import { camlParamsFor, taskParamsFor, updateParamsFor, type Engine, type EvaluateOutput, type StepReadback } from './engine.js';

/** What one run of a plan leaves behind. */
interface PlanState {
  stats: Float32Array;          // sets×T×2
  attackedStats?: Float32Array; // T×2
  weights: Float32Array;        // sets×T
  meanGrad: Float32Array;
}

export class CpuEngine implements Engine {
  readonly info: BackendInfo = { kind: 'cpu', adapter: 'cpu', software: true };
  private readonly params: Float32Array;
  private readonly optState: Float32Array;
  private readonly paramLength: number;

  constructor(private readonly options: ResolvedLearnerOptions, initialParams: Float32Array) {
    this.paramLength = paramVectors(options) * options.dim;
    this.params = Float32Array.from(initialParams);
    this.optState = new Float32Array(2 * this.paramLength + 1);
  }

  setParams(params: Float32Array): void { this.params.set(params); }

  /** Scratch of the last batch shape, reused across iterations (allocating ~10 MB per meta-iteration
   * at T = 1024, D = 784 made the garbage collector the bottleneck). */
  private scratch: { key: string; advSupportX: Float32Array; advQueryX: Float32Array; maml: TaskOutputs | null; caml: CamlOutputs | null } | null = null;

  private scratchFor(batch: Batch, innerSteps: number, sets: number) {
    const key = `${batch.tasks}x${batch.supportShots}x${batch.queryShots}:${innerSteps}:${sets}`;
    if (this.scratch?.key === key) return this.scratch;
    const o = this.options;
    const shape = { tasks: batch.tasks, supportRows: batch.supportShots, dim: o.dim, innerSteps, context: o.contextDim };
    const zeros = <K extends string>(sizes: Record<K, number>) =>
      Object.fromEntries(Object.entries(sizes).map(([k, n]) => [k, new Float32Array(n as number)])) as Record<K, Float32Array>;
    const caml = taskKernelOf(o.algorithm) === 'caml';
    this.scratch = {
      key,
      advSupportX: new Float32Array(batch.supportX.length),
      advQueryX: new Float32Array(batch.queryX.length),
      maml: caml ? null : zeros(taskScratchSizes(shape, sets)),
      caml: caml ? zeros(camlScratchSizes(shape, sets)) : null,
    };
    return this.scratch;
  }
  async getParams(): Promise<Float32Array> { return Float32Array.from(this.params); }

  private run(plan: Plan, batch: Batch): PlanState {
    const o = this.options;
    const D = o.dim;
    const T = batch.tasks;
    const clean = { support: { x: batch.supportX, y: batch.supportY }, query: { x: batch.queryX, y: batch.queryY } };
    const n = Math.max(o.innerSteps, ...plan.steps.map((s) => (s.kind === 'tasks' ? s.innerSteps : 0)));
    const scratch = this.scratchFor(batch, n, plan.sets);
    const adv = { support: { x: scratch.advSupportX, y: batch.supportY }, query: { x: scratch.advQueryX, y: batch.queryY } };
    const side = (s: DataSide) => (s === 'clean' ? clean : adv);
    const { maml, caml: camlOut } = scratch;
    const out = (maml ?? camlOut)!;
    const state: PlanState = { stats: out.taskStats, weights: taskWeights(o, T, plan.sets), meanGrad: new Float32Array(this.paramLength) };
    const rowsOf = (which: 'support' | 'query'): { set: RowSet; rows: number } =>
      ({ set: clean[which], rows: which === 'support' ? batch.supportShots : batch.queryShots });

    for (const step of plan.steps) {
      switch (step.kind) {
        case 'attack': {
          const { set, rows } = rowsOf(step.rows);
          const against = step.against === 'theta' ? this.params : out.adapted;
          attack(adv[step.rows].x, set.x, set.y, against, { tasks: T, rows, dim: D, paramStride: step.against === 'theta' ? 0 : D }, step.attack);
          break;
        }
        case 'tasks':
          if (camlOut) camlAdaptAndMetaGrad(camlOut, side(step.support).support, side(step.query).query, this.params, camlParamsFor(batch, o, step, D));
          else adaptAndMetaGrad(maml!, side(step.support).support, side(step.query).query, this.params, taskParamsFor(batch, o, step, D));
          break;
        case 'ga-weights':
          gaWeights(state.weights, this.params, out.adapted, T, D, step.normalization);
          break;
        case 'update': {
          const up = updateParamsFor(plan.sets * T, this.paramLength, o, step.apply);
          if (up.rule === 1) countStep(this.optState, this.paramLength);
          metaUpdate(this.params, this.optState, state.meanGrad, out.metaGrad, state.weights, up);
          break;
        }
        case 'score-attacked':
          state.attackedStats = new Float32Array(2 * T);
          forwardGrad(new Float32Array(T * D), state.attackedStats, adv.query.x, batch.queryY, out.adapted, { tasks: T, rows: batch.queryShots, dim: D, paramStride: D });
          break;
      }
    }
    return state;
  }

  async step(batch: Batch, iterations: number, want: { stats: boolean; weights: boolean }): Promise<StepReadback> {
    const plan = trainPlan(this.options);
    let state: PlanState | undefined;
    for (let i = 0; i < iterations; i++) state = this.run(plan, batch);
    return {
      stats: want.stats ? state!.stats.slice(0, 2 * batch.tasks) : undefined,
      weights: want.weights ? state!.weights.slice() : undefined,
    };
  }

  async evaluate(batch: Batch, steps: number, lr: number, attackParams: AttackParams | null): Promise<EvaluateOutput> {
    const state = this.run(evaluatePlan(steps, lr, attackParams), batch);
    return { clean: state.stats.slice(0, 2 * batch.tasks), attacked: state.attackedStats };
  }

  async metaGradient(batch: Batch): Promise<Float32Array> {
    return this.run(trainPlan(this.options, false), batch).meanGrad;
  }

  async trainSampled(source: TaskSource, shape: SampleShape, seed: number, first: number, count: number, want: { stats: boolean }): Promise<StepReadback> {
    const plan = trainPlan(this.options);
    let state: PlanState | undefined;
    for (let i = first; i < first + count; i++) state = this.run(plan, sampleTasks(source, shape, seed, i, 'train'));
    return { stats: want.stats ? state!.stats.slice(0, 2 * shape.tasks) : undefined };
  }

  async evaluateSampled(source: TaskSource, shape: SampleShape, seed: number, index: number, split: Split, steps: number, lr: number, attackParams: AttackParams | null): Promise<EvaluateOutput> {
    return this.evaluate(sampleTasks(source, shape, seed, index, split), steps, lr, attackParams);
  }

  async getOptimizerState(): Promise<Float32Array> { return this.optState.slice(); }
  setOptimizerState(state: Float32Array): void { this.optState.set(state); }

  async gpuTimeMs(): Promise<number | null> { return null; }

  async sync(): Promise<void> {}

  destroy(): void {}
}
