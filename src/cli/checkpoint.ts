// Checkpoints: JSON with the learner's options, the training configuration, the iteration reached, the
// training time so far and the exact state (parameters and optimizer, float32 as base64). Written
// atomically: a temporary file in the same directory, fsync, then rename over the old checkpoint, so a
// crash at any moment leaves either the previous checkpoint or the new one, never a torn file (and at
// most a stale temporary file, which removeStaleTemps clears when the run folder is used again).
import { describeLayout, modelLayoutOf } from '../models/model.js';
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { FileError, MetagradError } from '../errors.js';
import type { LearnerState, ResolvedLearnerOptions } from '../types.js';
import type { Learner } from '../learner.js';
import { ALGORITHM_NAMES, pickOptions } from '../algorithms/index.js';
import { resolveLearnerOptions } from '../validate.js';

export const CHECKPOINT_FORMAT = 'metagrad-checkpoint/1';

export interface Checkpoint {
  format: typeof CHECKPOINT_FORMAT;
  iteration: number;
  /** Seconds of training that led to this state, over every session of the run (0 in older files). */
  elapsedSeconds?: number;
  /** Resolved options. In the file: only those of its algorithm (storedOptions), without the backend;
   * loadCheckpoint resolves them again (files that stored every algorithm's options read the same). */
  options: Omit<ResolvedLearnerOptions, 'backend'>;
  /** The command-line training configuration (source, shots, …) that produced it. */
  config: Record<string, unknown>;
  state: LearnerState;
}

const toBase64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** The temporary file writeAtomic writes `file` through (per process, so writers never share one). */
const tempOf = (file: string, pid = process.pid) => path.join(path.dirname(file), `.${path.basename(file)}.${pid}.tmp`);
const TEMP = /^\..+\.(\d+)\.tmp$/;

export function writeAtomic(file: string, text: string): void {
  const tmp = tempOf(file);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* never created, or already renamed */ }
    throw e;
  }
  // Make the rename itself durable where the platform allows syncing a directory.
  try {
    const dir = openSync(path.dirname(file), 'r');
    try { fsyncSync(dir); } finally { closeSync(dir); }
  } catch { /* not supported here (e.g. Windows): the rename is still atomic */ }
}

/** Removes the temporary files that writers killed mid-write left in `dir` (`.<name>.<pid>.tmp` of a
 * process that is no longer running). Returns their names. */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m || Number(m[1]) === process.pid || isRunning(Number(m[1]))) continue;
    try { unlinkSync(path.join(dir, name)); removed.push(name); } catch { /* gone already */ }
  }
  return removed;
}

function isRunning(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The options a checkpoint stores: those of its algorithm (a MAML run stores no ADML ε or CAML context
 * size), resolved (so a later change of a default does not change the run), without the backend (where
 * it runs is not what it is). */
export function storedOptions(o: ResolvedLearnerOptions | Checkpoint['options']): Checkpoint['options'] {
  const { backend: _, ...rest } = pickOptions(o.algorithm, o as unknown as Record<string, unknown>) as unknown as Record<string, unknown>;
  return rest as unknown as Checkpoint['options'];
}

export function saveCheckpoint(file: string, c: Checkpoint): void {
  const { params, optimizer, stepSizes } = c.state;
  // Meta-SGD's learned step sizes α travel with θ.
  const state = { params: toBase64(params), ...(stepSizes ? { stepSizes: toBase64(stepSizes) } : {}), optimizer: toBase64(optimizer) };
  writeAtomic(file, JSON.stringify({ ...c, options: storedOptions(c.options), state }));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `the string "${v.length > 20 ? v.slice(0, 20) + '…' : v}"` : typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`);

/** Reads and checks a checkpoint: every damage (not JSON, JSON of another shape, a field missing or of
 * the wrong type, base64 that is not whole float32 values, options no learner accepts) is one FileError
 * that names the file and what is wrong. Whether the state fits the options is restoreState's check. */
export function loadCheckpoint(file: string): Checkpoint {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileError(`Cannot read checkpoint ${file}: ${(e as Error).message}.`, 'Pass the checkpoint.json of a run folder (metagrad train --out DIR writes DIR/checkpoint.json).');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FileError(`Checkpoint ${file} is not valid JSON (${(e as Error).message}).`, 'The file is damaged; metagrad writes checkpoints atomically, so restore it from the run folder or retrain.');
  }
  const damaged = (what: string) => new FileError(`Checkpoint ${file} is damaged: ${what}.`, 'Restore the file from a copy of the run folder, or retrain (metagrad train --force --out DIR starts the run over).');
  if (!isObject(raw)) throw new FileError(`${file} is not a metagrad checkpoint: it holds ${describe(raw)}, not an object.`, `Expected a JSON object of format "${CHECKPOINT_FORMAT}" (metagrad train writes one).`);
  if (raw.format !== CHECKPOINT_FORMAT) throw new FileError(`${file} is not a metagrad checkpoint (format "${String(raw.format)}").`, `Expected format "${CHECKPOINT_FORMAT}".`);
  if (typeof raw.iteration !== 'number' || !Number.isSafeInteger(raw.iteration) || raw.iteration < 0) throw damaged(`"iteration" is ${describe(raw.iteration)}, not an iteration count`);
  const elapsed = raw.elapsedSeconds ?? 0;
  if (typeof elapsed !== 'number' || !Number.isFinite(elapsed) || elapsed < 0) throw damaged(`"elapsedSeconds" is ${describe(elapsed)}, not a number of seconds`);
  if (!isObject(raw.options)) throw damaged(`"options" (the learner's options) is ${raw.options === undefined ? 'missing' : describe(raw.options)}`);
  const options = raw.options;
  if (!ALGORITHM_NAMES.includes(options.algorithm as never)) throw damaged(`options.algorithm is ${describe(options.algorithm)}, not one of ${ALGORITHM_NAMES.join(', ')}`);
  let resolved: Checkpoint['options'];
  try {
    const { backend: _, ...rest } = options;
    const { backend: __, ...full } = resolveLearnerOptions(pickOptions(options.algorithm as ResolvedLearnerOptions['algorithm'], rest));
    resolved = full;
  } catch (e) {
    if (!(e instanceof MetagradError)) throw e;
    throw damaged(`its learner options are invalid: ${firstLine(e)}`);
  }
  if (!isObject(raw.config)) throw damaged(`"config" (the training configuration) is ${raw.config === undefined ? 'missing' : describe(raw.config)}`);
  if (!isObject(raw.config.flags)) throw damaged(`config.flags (the train flags of the run) is ${raw.config.flags === undefined ? 'missing' : describe(raw.config.flags)}`);
  if (!isObject(raw.state)) throw damaged(`"state" (parameters and optimizer) is ${raw.state === undefined ? 'missing' : describe(raw.state)}`);
  const floats = (key: 'params' | 'optimizer' | 'stepSizes'): Float32Array => {
    const v = (raw.state as Record<string, unknown>)[key];
    if (typeof v !== 'string') throw damaged(`state.${key} is ${v === undefined ? 'missing' : describe(v)}, not base64 float32 values`);
    if (v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw damaged(`state.${key} is not whole base64 (${v.length} characters${v.length % 4 ? ', not a multiple of 4: truncated?' : ''})`);
    const bytes = Buffer.from(v, 'base64');
    if (bytes.byteLength % 4 !== 0) throw damaged(`state.${key} holds ${bytes.byteLength} bytes, not whole float32 values (truncated?)`);
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  };
  return {
    format: CHECKPOINT_FORMAT, iteration: raw.iteration, elapsedSeconds: elapsed, options: resolved, config: raw.config,
    state: {
      params: floats('params'), optimizer: floats('optimizer'),
      // Meta-SGD's α: required there (setState names a missing one), absent elsewhere.
      ...((raw.state as Record<string, unknown>).stepSizes !== undefined || options.algorithm === 'meta-sgd' ? { stepSizes: floats('stepSizes') } : {}),
    },
  };
}

const firstLine = (e: Error) => e.message.split('\nHINT: ')[0].replace(/\n/g, ' ');

/** learner.setState(checkpoint's state), where a state that does not fit the learner (another dim,
 * algorithm or model; non-finite values) is a FileError naming the checkpoint. */
export function restoreState(learner: Learner, c: Checkpoint, file: string): void {
  try {
    learner.setState(c.state);
  } catch (e) {
    if (!(e instanceof MetagradError)) throw e;
    const o = learner.options;
    const layout = modelLayoutOf(o);
    const model = layout ? `the ${describeLayout(layout)}` : 'the logistic unit';
    throw new FileError(`Checkpoint ${file} is damaged: its state does not fit its ${o.algorithm} learner (D=${o.dim}, ${model}, ${learner.paramCount} parameters): ${firstLine(e)}`,
      'The state was written by another run (another dim, algorithm or model) or was altered: restore the file from a copy of the run folder, or retrain.');
  }
}
