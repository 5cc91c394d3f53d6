// WGSL sources, imported as text by esbuild. WGSL has no #include: shaders that use shared pieces get
// them put in front (logistic-common: row dots and stable BCE; norm-clip: the L2-ball projection;
// rng: the counter-based generator).
import logisticCommon from '../../shaders/logistic-common.wgsl';
import logistic from '../../shaders/logistic.wgsl';
import mamlTask from '../../shaders/maml-task.wgsl';
import camlTask from '../../shaders/caml-task.wgsl';
import metaUpdate from '../../shaders/meta-update.wgsl';
import normClip from '../../shaders/norm-clip.wgsl';
import fgsm from '../../shaders/fgsm.wgsl';
import gaWeights from '../../shaders/ga-weights.wgsl';
import rng from '../../shaders/rng.wgsl';
import sampleTasks from '../../shaders/sample-tasks.wgsl';
import mlpGemm from '../../shaders/mlp-gemm.wgsl';
import mlpSoftmax from '../../shaders/mlp-softmax.wgsl';
import mlpVector from '../../shaders/mlp-vector.wgsl';
import mlpNormClip from '../../shaders/mlp-norm-clip.wgsl';
import mlpSignStep from '../../shaders/mlp-sign-step.wgsl';
import mlpTaskNorm from '../../shaders/mlp-task-norm.wgsl';
import finiteCheck from '../../shaders/finite-check.wgsl';
import joinRows from '../../shaders/join-rows.wgsl';
import conv2d from '../../shaders/conv2d.wgsl';
import pool from '../../shaders/pool.wgsl';
import proto from '../../shaders/proto.wgsl';

export const SHADERS = {
  logistic: `${logisticCommon}\n${logistic}`,
  mamlTask: `${logisticCommon}\n${normClip}\n${mamlTask}`,
  camlTask: `${logisticCommon}\n${camlTask}`,
  fgsm: `${logisticCommon}\n${fgsm}`,
  gaWeights,
  sampleTasks: `${rng}\n${sampleTasks}`,
  metaUpdate,
  mlpGemm,
  mlpSoftmax,
  mlpVector,
  mlpNormClip,
  mlpSignStep,
  mlpTaskNorm,
  finiteCheck,
  joinRows,
  proto,
  conv2d,
  pool,
} as const;

/** Workgroup size of the per-task kernels (override WG): invocations that split D. */
export const DEFAULT_TASK_WORKGROUP = 64;
