// The main job (`npm start`): ADML against MAML on the embedded Fashion-MNIST subset, both trained
// with the same settings and seed on meta-train classes 0–5, then scored on 600 held-out tasks of
// classes 6–9, clean and under FGSM made against each adapted model, with 95% confidence intervals.
// A zero initialisation is scored alongside as the baseline. Runs on WebGPU when an adapter exists,
// else on the CPU backend.
import { createLearner } from './learner.js';
import { embeddedSubsetDir, loadFashionMnist } from './node/images.js';
import { FASHION_SPLIT, type TaskSource } from './tasks/source.js';
import { sampleTasks } from './cpu/sample-tasks.js';
import type { EvaluateResult, LearnerOptions } from './types.js';

const config = {
  iterations: 1000, tasksPerBatch: 32, supportShots: 10, queryShots: 10, testTasks: 600, seed: 1,
  innerLr: 0.5, outerLr: 0.0003, innerSteps: 1, order: 2 as const, optimizer: 'adam' as const,
  epsilon: 0.1,   // FGSM budget, pixels in [0, 1]: ADML's training samples and the evaluation attack
};

const fmt = (r: { mean: number; ci95: number }) => `${(100 * r.mean).toFixed(1)}% ± ${(100 * r.ci95).toFixed(1)}`;

async function main() {
  const source: TaskSource = { kind: 'images', images: loadFashionMnist(embeddedSubsetDir()), split: FASHION_SPLIT, name: 'embedded Fashion-MNIST subset' };
  const common: LearnerOptions = {
    dim: 785, innerLr: config.innerLr, outerLr: config.outerLr, innerSteps: config.innerSteps, order: config.order,
    optimizer: config.optimizer, seed: config.seed,
  };
  const clip: [number, number] = [0, 1];
  const attack = { kind: 'fgsm' as const, epsilon: config.epsilon, clip };
  const test = sampleTasks(source, { tasks: config.testTasks, supportShots: config.supportShots, queryShots: config.queryShots }, config.seed, 0, 'test');
  console.log(`metagrad demo: ADML vs MAML (order ${config.order}) on the embedded Fashion-MNIST subset (${source.images.data.length / 784} images)`);
  console.log(`meta-train classes ${FASHION_SPLIT.train[0]}–${FASHION_SPLIT.train[1] - 1}, held-out classes ${FASHION_SPLIT.test[0]}–${FASHION_SPLIT.test[1] - 1}; ` +
    `${config.iterations} iterations × ${config.tasksPerBatch} binary tasks, ${config.supportShots}-row support, ${config.queryShots}-row query`);
  const rows: Array<[string, EvaluateResult]> = [];
  for (const [name, extra] of [['MAML', { algorithm: 'maml' }], ['ADML', { algorithm: 'adml', epsilon: config.epsilon, clip }]] as const) {
    const learner = await createLearner({ ...common, ...extra });
    if (rows.length === 0) console.log(`backend: ${learner.backend.kind} — ${learner.backend.adapter}${learner.backend.fallbackReason ? ` (${learner.backend.fallbackReason.split('\nHINT')[0].replace(/\n\s*/g, ' ')})` : ''}`);
    const t0 = performance.now();
    await learner.train({ source, iterations: config.iterations, tasksPerBatch: config.tasksPerBatch, supportShots: config.supportShots, queryShots: config.queryShots });
    const seconds = (performance.now() - t0) / 1000;
    const where = learner.backend.kind === 'webgpu' ? 'tasks sampled on the GPU' : 'tasks sampled by the CPU twin';
    console.log(`trained ${name} in ${seconds.toFixed(1)} s (${(config.iterations / seconds).toFixed(0)} it/s, ${where})`);
    rows.push([name, await learner.evaluate(test, { steps: config.innerSteps, attack })]);
    learner.destroy();
  }
  const zero = await createLearner({ ...common, initScale: 0, backend: 'cpu' });
  rows.push(['zero init', await zero.evaluate(test, { steps: config.innerSteps, attack })]);
  console.log(`\n${config.testTasks} held-out tasks, after ${config.innerSteps} inner step(s) of ${config.innerLr}; accuracy mean ± 95% CI; FGSM ε=${config.epsilon} against each adapted model`);
  console.log('| init | clean accuracy | FGSM accuracy |\n|---|---|---|');
  for (const [name, r] of rows) console.log(`| ${name} | ${fmt(r.accuracyInterval)} | ${fmt(r.attacked!.accuracyInterval)} |`);
  console.log('\nMore: `node bin/metagrad.js train --help`, `metagrad eval` for adaptation curves against baselines.');
}

main().then(() => process.exit(0), (e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
