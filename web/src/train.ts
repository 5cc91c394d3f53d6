// Train page: pick an algorithm, a model (the logistic unit, an MLP with or without per-task
// normalisation, or MAML's Conv-4), a task source (Omniglot N-way K-shot episodes,
// the Fashion-MNIST subset, the linear family) and hyperparameters; start, pause, reset; a live chart of the training query loss and of
// held-out accuracy (clean and under FGSM) while the GPU trains. Options the library refuses (e.g. CAML
// with norm 'task') are shown in the error box.
import type { Learner } from '../../src/learner.js';
import type { Algorithm, LearnerOptions, ModelSpec } from '../../src/types.js';
import { pickOptions } from '../../src/algorithms/index.js';
import { sourceDim, type TaskSource } from '../../src/tasks/source.js';
import { InvalidOptionError } from '../../src/errors.js';
import { $, clearErrors, LiveChart, loadFashion, makeLearner, omniglotSource, percent, probeBackend, progressText, setEnabled, setupPage, showError, state, yieldToBrowser } from './common.js';

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
  setEnabled(['start'], !on);
  setEnabled(['pause'], on);
}

const select = (id: string) => $(id) as HTMLSelectElement;
const episodes = () => ({ ways: Number(input('ways').value), shots: Number(input('shots').value), queries: Number(input('queries').value) });

async function sourceOf(kind: string): Promise<TaskSource> {
  if (kind === 'omniglot') {
    const { ways, shots, queries } = episodes();
    return omniglotSource(ways, shots, queries);
  }
  return kind === 'fashion' ? loadFashion() : { kind: 'linear', dim: 21 };
}

/** Support and query rows per task: N·K and N·Q for episodes, 10 and 10 for the binary sources. */
function shotsOf(source: TaskSource): { supportShots: number; queryShots: number } {
  return source.kind === 'omniglot' ? { supportShots: source.ways * source.shots, queryShots: source.ways * source.queries } : { supportShots: 10, queryShots: 10 };
}

function modelOf(source: TaskSource): ModelSpec {
  const classes = source.kind === 'omniglot' ? source.ways : 2;
  if (select('model').value === 'logistic') {
    if (classes !== 2) {
      throw new InvalidOptionError(`The logistic unit is a binary classifier; ${classes}-way Omniglot episodes need the MLP (or ways = 2).`, 'Pick the MLP model, or 2 ways.');
    }
    return { kind: 'logistic' };
  }
  if (select('model').value === 'conv4') return { kind: 'conv4', classes, filters: Number(input('filters').value) };
  const text = input('hidden').value.trim();
  const hidden = text === '' ? [] : text.split(',').map((w) => Number(w.trim()));
  if (hidden.some((w) => !Number.isInteger(w) || w < 1)) throw new InvalidOptionError(`hidden widths must be positive integers separated by commas, got "${text}".`, 'e.g. 256,128,64,64 or 64,64.');
  return { kind: 'mlp', hidden, classes, norm: select('norm').value as 'task' | 'none' };
}

function learnerOptions(algorithm: Algorithm, source: TaskSource): LearnerOptions {
  // The page's controls, of which each algorithm takes its own.
  const model = modelOf(source);
  return pickOptions(algorithm, {
    algorithm, dim: sourceDim(source), model, innerLr: Number(input('innerLr').value), outerLr: Number(input('outerLr').value),
    order: Number(input('order').value) as 1 | 2, optimizer: 'adam', seed: 1, epsilon: algorithm === 'adml' ? Number(input('epsilon').value) : undefined,
    clip: algorithm === 'adml' && source.kind !== 'linear' ? [0, 1] : undefined,
    models: Number(input('tasks').value), lr: Number(input('innerLr').value),
  });
}

async function run(): Promise<void> {
  clearErrors();
  const algorithm = select('algorithm').value as Algorithm;
  const source = await sourceOf(select('source').value);
  learner ??= await makeLearner(learnerOptions(algorithm, source));
  state.model = learner.options.model;
  state.source = source.kind;
  const total = Number(input('iterations').value);
  const evalEvery = Number(input('evalEvery').value);
  const images = source.kind !== 'linear';
  const tasks = Number(input('tasks').value);
  setRunning(true);
  const started = performance.now();
  const startIteration = iteration;
  while (running && iteration < total) {
    const chunk = Math.min(10, total - iteration);
    const evalNow = (iteration + chunk) % evalEvery === 0 || iteration + chunk === total;
    const p = await learner.train({
      source, iterations: chunk, startIteration: iteration, tasksPerBatch: tasks,
      ...shotsOf(source), trackTrainLoss: true, evalEvery: evalNow ? chunk : 0,
      evalTasks: algorithm === 'amp' ? tasks : Number(input('evalTasks').value),  // AMP: model i on held-out task i
      evalAttack: { kind: 'fgsm', epsilon: Number(input('epsilon').value), ...(images ? { clip: [0, 1] as [number, number] } : {}) },
      // The CPU backend computes on this page's thread: yield to the browser after every iteration.
      ...(learner.backend.kind === 'cpu' ? { iterationsPerSubmit: 1, onProgress: yieldToBrowser } : {}),
    });
    iteration = p.iteration;
    state.iteration = iteration;
    if (p.train) { chart.add(0, 0, { x: iteration, y: p.train.loss }); (state.losses as number[]).push(p.train.loss); }
    if (p.eval) {
      chart.add(1, 0, { x: iteration, y: p.eval.accuracy, ci: p.eval.accuracyInterval.ci95 });
      if (p.eval.attacked) chart.add(1, 1, { x: iteration, y: p.eval.attacked.accuracy, ci: p.eval.attacked.accuracyInterval.ci95 });
      (state.evals as number[]).push(p.eval.accuracy);
      // (A protonet takes no steps: its queries go to their nearest prototype.)
      const steps = algorithm === 'protonet' ? undefined : learner.options.innerSteps as number | undefined;
      const what = source.kind === 'omniglot' ? `${source.ways}-way ${source.shots}-shot tasks of the held-out alphabets` : 'tasks of the meta-test split';
      $('heldout').textContent = `held-out: ${percent(p.eval.accuracy)} ± ${percent(p.eval.accuracyInterval.ci95)} clean, ${percent(p.eval.attacked?.accuracy ?? NaN)} under FGSM (${p.eval.taskLoss.length} ${what}${steps === undefined ? (algorithm === 'protonet' ? ', nearest prototype' : '') : `, after ${steps} inner step${steps === 1 ? '' : 's'}`})`;
    }
    chart.draw();
    const rate = (iteration - startIteration) / ((performance.now() - started) / 1000);
    $('speed').textContent = progressText(iteration, total, rate);
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
  clearErrors();
  state.losses = [];
  state.evals = [];
  state.done = false;
  chart.clear();
  $('speed').textContent = '';
  $('heldout').textContent = '';
});
// The learner is rebuilt with the new settings on the next start.
for (const id of ['algorithm', 'model', 'hidden', 'norm', 'filters', 'source', 'ways', 'shots', 'queries', 'innerLr', 'outerLr', 'order', 'epsilon', 'tasks']) $(id).addEventListener('change', () => $('reset').click());
// The MLP's controls only matter for the MLP, the filters for Conv-4; episode sizes only for Omniglot.
const sync = () => {
  for (const id of ['hidden', 'norm']) (($(id) as HTMLInputElement).disabled = select('model').value !== 'mlp');
  (($('filters') as HTMLInputElement).disabled = select('model').value !== 'conv4');
  for (const id of ['ways', 'shots', 'queries']) (($(id) as HTMLInputElement).disabled = select('source').value !== 'omniglot');
};
select('model').addEventListener('change', sync);
select('source').addEventListener('change', sync);
sync();
state.chartPoints = () => chart.points();

// Start is disabled (in the HTML) until the page knows which backend will run, and says so.
probeBackend().then(async () => {
  const probe = await makeLearner({ dim: 4 });
  probe.destroy();
}).catch(showError).finally(() => {
  setEnabled(['start'], true);
  state.ready = true;
});
