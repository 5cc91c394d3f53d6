// WGSL sources, imported as text by esbuild. Shaders that use the shared logistic pieces get
// logistic-common.wgsl put in front of them (WGSL has no #include).
import logisticCommon from '../../shaders/logistic-common.wgsl';
import logistic from '../../shaders/logistic.wgsl';
import mamlTask from '../../shaders/maml-task.wgsl';
import metaUpdate from '../../shaders/meta-update.wgsl';

export const SHADERS = {
  logistic: `${logisticCommon}\n${logistic}`,
  mamlTask: `${logisticCommon}\n${mamlTask}`,
  metaUpdate,
} as const;

/** Workgroup size of the per-task kernels (override WG): invocations that split D. */
export const DEFAULT_TASK_WORKGROUP = 64;
