/// <reference types="@webgpu/types" preserve="true" />
/// <reference lib="dom" preserve="true" />
// (Both references stay in dist/index.d.ts, so that GPUDevice, GPUAdapter … resolve in a user's project
// from the @webgpu/types dependency, with no `types` entry and no skipLibCheck; @webgpu/types itself
// needs the DOM library (EventTarget, ImageBitmap, VideoFrame …), which a Node project's `lib` often
// leaves out.)
// Public entry point (Node and browsers): re-exports only. Node-only helpers (reading Fashion-MNIST files)
// are in 'metagrad/node'.
export { createLearner, getSharedDevice, releaseSharedDevice, pickAutoBackend, type Learner, type CreateLearnerOptions, type AutoBackend } from './learner.js';
export * from './errors.js';
export * from './types.js';
// The algorithms: each one's defaults (ALGORITHMS[name].defaults), option help and capabilities.
export { ALGORITHMS, ALGORITHM_NAMES, DEFAULT_ALGORITHM, optionKeys } from './algorithms/index.js';
// The MLP's flat parameter layout (named views: W_l and b_l offsets of each layer) and its He init.
export { mlpLayout, mlpInit, TASK_NORM_EPS, type MlpLayout, type LayerView } from './models/mlp.js';
// Models as lists of layers: the specs, the papers' Conv-4 presets, the checked layout (shapes and
// parameter offsets of every layer), and the per-task vector of a learner's layer-list model.
export { netLayout, conv4Omniglot, conv4MiniImagenet, mlpLayers, NORM_EPS, type LayerSpec, type LossSpec, type Shape, type NetLayout, type LayerLayout } from './models/layers.js';
export { netModelLayout, modelInit, type NetModelLayout, type ModelLayout } from './models/model.js';
export { acquireDevice, adoptDevice, type AcquiredDevice, type AdapterPath } from './gpu/device.js';
export { meanWithInterval } from './stats.js';
// Task sources: their types, the Fashion-MNIST split, the CPU sampler (the GPU sampler's twin), CSV and IDX readers.
export * from './tasks/source.js';
export { sampleTasks, sampleFileTasks, sinusoidTasks, type SampleShape } from './cpu/sample-tasks.js';
// MAML's sinusoid regression tasks (their ranges, and the grid the device and CPU samplers share).
export { SINUSOID_DEFAULTS, SINUSOID_GRID_BITS, sinusoidGrid, type SinusoidSource, type SinusoidGrid } from './tasks/sinusoid.js';
export { parseTaskCsv, fileSource } from './tasks/file.js';
export { parseIdx, encodeIdx, imageSetFromIdx } from './tasks/idx.js';
// Baselines of the few-shot protocol: nearest neighbour on the inputs, and the transfer baseline
// (pretrain over every meta-train class, a fresh head fine-tuned per task).
export { nearestNeighbourAccuracy, omniglotTrainSet, pretrainMlp, pretrainModel, transferAccuracy, type Pretrained, type PretrainOptions, type TransferOptions, type TransferResult } from './baselines.js';
export { parseOmniglot, type OmniglotSet } from './tasks/omniglot.js';
