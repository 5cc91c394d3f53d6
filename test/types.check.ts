// Type-level tests, checked by `tsc --noEmit -p tsconfig.json` (npm test) and never run: options of
// another algorithm are type errors, as they are InvalidOptionErrors at run time (test/learner.test.ts,
// test/algorithms.test.ts). Each @ts-expect-error fails the type check if its line compiles.
import { createLearner } from '../src/learner.js';
import type { LearnerOptions } from '../src/types.js';

export async function typeChecks(): Promise<void> {
  // Accepted: each algorithm with its own options; maml by default.
  await createLearner({ dim: 4, innerLr: 0.1, order: 2, innerOptimizer: 'amp', perturbEpsilon: 0.1 });
  await createLearner({ algorithm: 'adml', dim: 4, epsilon: 0.1, clip: [0, 1], pairing: 'same', innerLrAdv: 0.2 });
  await createLearner({ algorithm: 'ga-maml', dim: 4, normalization: 'notebook' });
  await createLearner({ algorithm: 'caml', dim: 4, contextDim: 3, order: 1 });
  await createLearner({ algorithm: 'amp', dim: 4, models: 8, lr: 0.2, epsilon: 0.5, perturbSteps: 2 });
  const spread: LearnerOptions = { dim: 4, seed: 2 };
  await createLearner({ ...spread, backend: 'cpu' });

  // @ts-expect-error contextDim is CAML's: it needs algorithm: 'caml'
  await createLearner({ dim: 4, contextDim: 3 });
  // @ts-expect-error contextDim is CAML's, not MAML's
  await createLearner({ algorithm: 'maml', dim: 4, contextDim: 3 });
  // @ts-expect-error epsilon is ADML's or AMP's
  await createLearner({ algorithm: 'ga-maml', dim: 4, epsilon: 0.1 });
  // @ts-expect-error models is AMP's
  await createLearner({ dim: 4, models: 3 });
  // @ts-expect-error AMP has no outer optimizer
  await createLearner({ algorithm: 'amp', dim: 4, optimizer: 'adam' });
  // @ts-expect-error AMP has no inner loop of its own
  await createLearner({ algorithm: 'amp', dim: 4, innerLr: 0.1 });
  // @ts-expect-error CAML adapts only its context: no AMP inner optimizer
  await createLearner({ algorithm: 'caml', dim: 4, innerOptimizer: 'amp' });
  // @ts-expect-error normalization is GA-MAML's
  await createLearner({ algorithm: 'adml', dim: 4, normalization: 'paper' });
  // @ts-expect-error dim is required
  await createLearner({ algorithm: 'maml' });
  // @ts-expect-error no such algorithm
  await createLearner({ algorithm: 'matching-net', dim: 4 });
  // @ts-expect-error a protonet has no inner loop
  await createLearner({ algorithm: 'protonet', dim: 4, innerLr: 0.1 });
  // @ts-expect-error Reptile has no second order
  await createLearner({ algorithm: 'reptile', dim: 4, order: 2 });
  // @ts-expect-error Meta-SGD's inner loop is plain SGD with learned step sizes
  await createLearner({ algorithm: 'meta-sgd', dim: 4, innerOptimizer: 'amp' });
  await createLearner({ algorithm: 'anil', dim: 4, order: 2, model: { kind: 'mlp', hidden: [8], classes: 3 } });
}
