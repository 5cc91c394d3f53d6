// A worker thread of the CPU backend (src/cpu/pool.ts): runs the per-task kernels on a range of tasks,
// reading and writing the engine's SharedArrayBuffer-backed arrays in place. Per-task results do not
// depend on which thread computed them, so any thread count gives the same bits.
import { parentPort } from 'node:worker_threads';
import { adaptAndMetaGrad, type TaskOutputs, type TaskParams, type RowSet } from './maml-task.js';
import { camlAdaptAndMetaGrad, type CamlOutputs, type CamlParams } from './caml-task.js';
import { attack, type AttackParams } from './fgsm.js';
import { modelAdaptAndMetaGrad, modelAttack, type ModelRowsShape, type ModelTaskOutputs, type ModelTaskParams } from './model-task.js';
import type { ModelLayout } from '../models/model.js';

/** The per-task pass on a task range. */
export interface TaskJob {
  id: number;
  kernel: 'maml' | 'caml';
  out: TaskOutputs | CamlOutputs;
  support: RowSet;
  query: RowSet;
  params: Float32Array;
  p: TaskParams | CamlParams;
  range: [number, number];
}

/** An FGSM / PGD attack on a task range (src/cpu/fgsm.ts attack). */
export interface AttackJob {
  id: number;
  kernel: 'attack';
  out: Float32Array;
  clean: RowSet;
  params: Float32Array;
  shape: { tasks: number; rows: number; dim: number; paramStride: number };
  attack: AttackParams;
  range: [number, number];
}

/** The MLP's per-task pass (src/cpu/model-task.ts) on a task range. */
export interface MlpTaskJob {
  id: number;
  kernel: 'mlp';
  out: ModelTaskOutputs;
  support: RowSet;
  query: RowSet;
  params: Float32Array;
  p: ModelTaskParams;
  range: [number, number];
}

/** An FGSM / PGD attack through the MLP on a task range (src/cpu/model-task.ts modelAttack). */
export interface MlpAttackJob {
  id: number;
  kernel: 'mlp-attack';
  out: Float32Array;
  clean: RowSet;
  params: Float32Array;
  shape: ModelRowsShape;
  attack: AttackParams;
  layout: ModelLayout;
  range: [number, number];
}

export type WorkerJob = TaskJob | AttackJob | MlpTaskJob | MlpAttackJob;

parentPort?.on('message', (job: WorkerJob) => {
  try {
    if (job.kernel === 'attack') attack(job.out, job.clean.x, job.clean.y, job.params, job.shape, job.attack, job.range);
    else if (job.kernel === 'mlp') modelAdaptAndMetaGrad(job.out, job.support, job.query, job.params, job.p, job.range);
    else if (job.kernel === 'mlp-attack') modelAttack(job.out, job.clean, job.params, job.shape, job.attack, job.layout, job.range);
    else if (job.kernel === 'caml') camlAdaptAndMetaGrad(job.out as CamlOutputs, job.support, job.query, job.params, job.p as CamlParams, job.range);
    else adaptAndMetaGrad(job.out as TaskOutputs, job.support, job.query, job.params, job.p as TaskParams, job.range);
    parentPort!.postMessage({ id: job.id });
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});
