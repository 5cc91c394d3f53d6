/**
 * Every error metagrad throws on purpose is a MetagradError with a stable `code`, a message that says
 * what was wrong (with the sizes involved) and a `hint` that says what to do. The hint is its own
 * property, never part of `message`: show both with `formatError(e)` (or `${e.message}\n${e.hint}`).
 */
export type MetagradErrorCode =
  | 'INVALID_OPTION'
  | 'SHAPE'
  | 'NON_FINITE'
  | 'LABEL'
  | 'LIMIT'
  | 'NO_ADAPTER'
  | 'DEVICE_LOST'
  | 'GPU_ERROR'
  | 'DESTROYED'
  | 'FILE'
  | 'DIVERGED';

export class MetagradError extends Error {
  readonly code: MetagradErrorCode;
  readonly hint: string;
  constructor(code: MetagradErrorCode, message: string, hint: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.hint = hint;
  }
}

/** A learner or evaluation option is missing, of the wrong type or out of range. */
export class InvalidOptionError extends MetagradError {
  constructor(message: string, hint: string) { super('INVALID_OPTION', message, hint); }
}
/** A batch or parameter array has the wrong length or inconsistent sizes. */
export class ShapeError extends MetagradError {
  constructor(message: string, hint: string) { super('SHAPE', message, hint); }
}
/** An input holds NaN or ±Infinity. */
export class NonFiniteError extends MetagradError {
  constructor(message: string, hint: string) { super('NON_FINITE', message, hint); }
}
/** A label is not exactly 0 or 1. */
export class LabelError extends MetagradError {
  constructor(message: string, hint: string) { super('LABEL', message, hint); }
}
/** A size exceeds what the kernels or the adapter support. */
export class LimitError extends MetagradError {
  constructor(message: string, hint: string) { super('LIMIT', message, hint); }
}
/** No WebGPU adapter could be obtained (lists the paths tried). */
export class NoAdapterError extends MetagradError {
  readonly tried: string[];
  constructor(message: string, hint: string, tried: string[]) {
    super('NO_ADAPTER', message, hint);
    this.tried = tried;
  }
}
/** The GPU device was lost (driver reset, destroy, out of memory); the learner cannot continue. */
export class DeviceLostError extends MetagradError {
  constructor(message: string, hint: string) { super('DEVICE_LOST', message, hint); }
}
/** WebGPU reported a validation or out-of-memory error: a bug in metagrad, or an exhausted device. */
export class GpuError extends MetagradError {
  constructor(message: string, hint: string) { super('GPU_ERROR', message, hint); }
}
/** The learner was used after destroy(). */
export class DestroyedError extends MetagradError {
  constructor(message: string, hint: string) { super('DESTROYED', message, hint); }
}
/** A file is missing, unreadable or corrupt. */
export class FileError extends MetagradError {
  constructor(message: string, hint: string) { super('FILE', message, hint); }
}
/** Training diverged: the parameters or the optimizer state hold NaN or ±Infinity (found at a metric
 * readback or by getState(), which refuses to hand such a state out). `iteration` is the meta-iteration
 * the learner had reached. */
export class DivergenceError extends MetagradError {
  readonly iteration: number;
  constructor(message: string, hint: string, iteration: number) {
    super('DIVERGED', message, hint);
    this.iteration = iteration;
  }
}

/** An error as a person reads it: the message, then (for a MetagradError) `hint: …` on its own line. */
export function formatError(e: unknown): string {
  if (e instanceof MetagradError) return `${e.message}\nhint: ${e.hint}`;
  return e instanceof Error ? e.message : String(e);
}
