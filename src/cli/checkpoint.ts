// Checkpoints: JSON with the learner's options, the training configuration, the iteration reached and
// the exact state (parameters and optimizer, float32 as base64). Written atomically: a temporary file
// in the same directory, fsync, then rename over the old checkpoint, so a crash at any moment leaves
// either the previous checkpoint or the new one, never a torn file.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { FileError } from '../errors.js';
import type { LearnerState, ResolvedLearnerOptions } from '../types.js';

export const CHECKPOINT_FORMAT = 'metagrad-checkpoint/1';

export interface Checkpoint {
  format: typeof CHECKPOINT_FORMAT;
  iteration: number;
  options: Omit<ResolvedLearnerOptions, 'backend'>;
  /** The command-line training configuration (source, shots, …) that produced it. */
  config: Record<string, unknown>;
  state: LearnerState;
}

const toBase64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function fromBase64(s: string): Float32Array {
  const bytes = Buffer.from(s, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

export function writeAtomic(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  // Make the rename itself durable where the platform allows syncing a directory.
  try {
    const dir = openSync(path.dirname(file), 'r');
    try { fsyncSync(dir); } finally { closeSync(dir); }
  } catch { /* not supported here (e.g. Windows): the rename is still atomic */ }
}

export function saveCheckpoint(file: string, c: Checkpoint): void {
  const { params, optimizer } = c.state;
  writeAtomic(file, JSON.stringify({ ...c, state: { params: toBase64(params), optimizer: toBase64(optimizer) } }));
}

export function loadCheckpoint(file: string): Checkpoint {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileError(`Cannot read checkpoint ${file}: ${(e as Error).message}.`, 'Pass the checkpoint.json of a run folder (metagrad train --out DIR writes DIR/checkpoint.json).');
  }
  let raw: { format?: string; iteration?: number; options?: unknown; config?: unknown; state?: { params?: string; optimizer?: string } };
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FileError(`Checkpoint ${file} is not valid JSON (${(e as Error).message}).`, 'The file is damaged; metagrad writes checkpoints atomically, so restore it from the run folder or retrain.');
  }
  if (raw.format !== CHECKPOINT_FORMAT || typeof raw.iteration !== 'number' || !raw.options || !raw.state?.params || !raw.state?.optimizer) {
    throw new FileError(`${file} is not a metagrad checkpoint (format "${String(raw.format)}").`, `Expected format "${CHECKPOINT_FORMAT}".`);
  }
  return {
    format: CHECKPOINT_FORMAT, iteration: raw.iteration, options: raw.options as Checkpoint['options'], config: (raw.config ?? {}) as Record<string, unknown>,
    state: { params: fromBase64(raw.state.params), optimizer: fromBase64(raw.state.optimizer) },
  };
}
