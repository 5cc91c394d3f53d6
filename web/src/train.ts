// Train page: pick an algorithm, a task source and hyperparameters; start, pause, reset; a live chart
// of the training query loss and of held-out accuracy (clean and under FGSM) while the GPU trains.
import type { Learner } from '../../src/learner.js';
import type { Algorithm, LearnerOptions } from '../../src/types.js';
import { pickOptions } from '../../src/algorithms/index.js';
import type { TaskSource } from '../../src/tasks/source.js';
import { $, LiveChart, loadFashion, makeLearner, percent, probeBackend, setupPage, showError, state } from './common.js';

setupPage('train', 'Train');
const input = (id: string) => $(id) as HTMLInputElement;
const chart = new LiveChart($('chart'), [
  { title: 'training query loss', yLabel: 'loss', series: [{ name: 'meta-batch', color: '#2ca02c', points: [] }] },
  {
    title: 'held-out accuracy (95% CI)', yLabel: 'accuracy', yRange: [0, 1], series: [
      { name: 'clean', color: '#1f77b4', points: [] }, { name: 'FGSM', color: '#d62728', points: [] },
    ],
  },
], 'meta-iteration');
chart.draw();

let learner: Learner | null = null;
let iteration = 0;
let running = false;
state.losses = [] as number[];
state.evals = [] as number[];
state.iteration = 0;

function setRunning(on: boolean) {
  running = on;
  state.running = on;
  (input('start') as HTMLButtonElement).disabled = on;
  (input('pause') as HTMLButtonElement).disabled = !on;
}

async function sourceOf(kind: string): Promise<TaskSource> {
  return kind === 'fashion' ? loadFashion() : { kind: 'linear', dim: 21 };
}

function learnerOptions(algorithm: Algorithm, dim: number): LearnerOptions {
  // The page's controls, of which each algorithm takes its own.
  return pickOptions(algorithm, {
    algorithm, dim, innerLr: Number(input('innerLr').value), outerLr: Number(input('outerLr').value),
    order: Number(input('order').value) as 1 | 2, optimizer: 'adam', seed: 1, epsilon: algorithm === 'adml' ? Number(input('epsilon').value) : undefined,
    models: Number(input('tasks').value), lr: Number(input('innerLr').value),
  });
}

async function run(): Promise<void> {
  const algorithm = (input('algorithm') as unknown as HTMLSelectElement).value as Algorithm;
  const source = await sourceOf((input('source') as unknown as HTMLSelectElement).value);
  const dim = source.kind === 'images' ? source.images.pixels + 1 : 21;
  learner ??= await makeLearner(learnerOptions(algorithm, dim));
  const total = Number(input('iterations').value);
  const evalEvery = Number(input('evalEvery').value);
  const images = source.kind === 'images';
  setRunning(true);
  const started = performance.now();
  const startIteration = iteration;
  while (running && iteration < total) {
    const chunk = Math.min(10, total - iteration);
    const evalNow = (iteration + chunk) % evalEvery === 0 || iteration + chunk === total;
    const p = await learner.train({
      source, iterations: chunk, startIteration: iteration, tasksPerBatch: Number(input('tasks').value),
      supportShots: 10, queryShots: 10, trackTrainLoss: true, evalEvery: evalNow ? chunk : 0,
      evalTasks: algorithm === 'amp' ? Number(input('tasks').value) : 200,  // AMP: model i on held-out task i
      evalAttack: { kind: 'fgsm', epsilon: Number(input('epsilon').value), ...(images ? { clip: [0, 1] as [number, number] } : {}) },
    });
    iteration = p.iteration;
    state.iteration = iteration;
    if (p.train) { chart.add(0, 0, { x: iteration, y: p.train.loss }); (state.losses as number[]).push(p.train.loss); }
    if (p.eval) {
      chart.add(1, 0, { x: iteration, y: p.eval.accuracy, ci: p.eval.accuracyInterval.ci95 });
      if (p.eval.attacked) chart.add(1, 1, { x: iteration, y: p.eval.attacked.accuracy, ci: p.eval.attacked.accuracyInterval.ci95 });
      (state.evals as number[]).push(p.eval.accuracy);
      $('heldout').textContent = `held-out: ${percent(p.eval.accuracy)} ± ${percent(p.eval.accuracyInterval.ci95)} clean, ${percent(p.eval.attacked?.accuracy ?? NaN)} under FGSM (${p.eval.taskLoss.length} tasks of the meta-test split)`;
    }
    chart.draw();
    const rate = (iteration - startIteration) / ((performance.now() - started) / 1000);
    $('speed').textContent = `${iteration} / ${total} iterations · ${rate.toFixed(1)} it/s`;
  }
  setRunning(false);
  state.done = iteration >= total;
}

input('start').addEventListener('click', () => run().catch((e) => { setRunning(false); showError(e); }));
input('pause').addEventListener('click', () => { running = false; });
input('reset').addEventListener('click', () => {
  running = false;
  learner?.destroy();
  learner = null;
  iteration = 0;
  state.losses = [];
  state.evals = [];
  state.done = false;
  chart.clear();
  $('speed').textContent = '';
  $('heldout').textContent = '';
});
// The learner is rebuilt with the new settings on the next start.
for (const id of ['algorithm', 'source', 'innerLr', 'outerLr', 'order', 'epsilon', 'tasks']) input(id).addEventListener('change', () => $('reset').click());
state.chartPoints = () => chart.points();

probeBackend().then(async () => {
  // Show which backend will run before the first start.
  const probe = await makeLearner({ dim: 4 });
  probe.destroy();
  state.ready = true;
});
