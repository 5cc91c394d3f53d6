// A worker thread of the CPU backend (src/cpu/pool.ts): runs the per-task kernels on a range of tasks,
// reading and writing the engine's SharedArrayBuffer-backed arrays in place. Per-task results do not
// depend on which thread computed them, so any thread count gives the same bits.
import { parentPort } from 'node:worker_threads';
import { adaptAndMetaGrad, type TaskOutputs, type TaskParams, type RowSet } from './maml-task.js';
import { camlAdaptAndMetaGrad, type CamlOutputs, type CamlParams } from './caml-task.js';

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

parentPort?.on('message', (job: TaskJob) => {
  try {
    if (job.kernel === 'caml') camlAdaptAndMetaGrad(job.out as CamlOutputs, job.support, job.query, job.params, job.p as CamlParams, job.range);
    else adaptAndMetaGrad(job.out as TaskOutputs, job.support, job.query, job.params, job.p as TaskParams, job.range);
    parentPort!.postMessage({ id: job.id });
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});
