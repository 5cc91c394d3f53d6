// Public entry point: re-exports only.
export { createLearner, getSharedDevice, releaseSharedDevice, type Learner } from './learner.js';
export * from './errors.js';
export * from './types.js';
export { acquireDevice, type AcquiredDevice, type AdapterPath } from './gpu/device.js';
export { meanWithInterval } from './stats.js';
