// Attack page: the MLP under FGSM / PGD (ε slider), MAML vs ADML side by side on the query images of a
// 5-way Omniglot task from the held-out alphabets. Both are meta-trained here (same net, same seed), then
// learner.adapt() adapts each on the task's support set and attacks its query rows white-box, against that
// model's own adapted parameters, on the GPU when there is one. Shown: one query image, its perturbation
// and the adversarial image, the probability of its true label before and after, and each model's clean
// and attacked accuracy on the task's queries.
import { sampleTasks } from '../../src/cpu/sample-tasks.js';
import type { Learner } from '../../src/learner.js';
import { mlpLayout } from '../../src/models/mlp.js';
import type { AdmlOptions, CheckedBatch, MamlOptions, MlpModelSpec } from '../../src/types.js';
import { $, drawImage, makeLearner, mlpProbs, omniglotSource, percent, probeBackend, setEnabled, setupPage, showError, state, trainingProgress } from './common.js';

setupPage('attack', 'Attack');
const params = new URLSearchParams(location.search);
const WAYS = 5;
const QUERIES = 2;
const ROWS = WAYS * QUERIES;
const D = 784;
const LR = 0.4;
const STEPS = 1;
const HIDDEN = (params.get('hidden') ?? '64,64').split(',').map(Number);
const MODEL: MlpModelSpec = { kind: 'mlp', hidden: HIDDEN, classes: WAYS, norm: 'task' };
const layout = mlpLayout(D, MODEL.hidden, WAYS, 0, true);
const NAMES = ['maml', 'adml'] as const;
const models: Record<string, Learner> = {};
let task: CheckedBatch;
let row = 0;
let latest = 0;  // slider events outpace the GPU: only the newest render draws

async function render(): Promise<void> {
  const mine = ++latest;
  const epsilon = Number(($('epsilon') as HTMLInputElement).value);
  const kind = ($('kind') as HTMLSelectElement).value as 'fgsm' | 'pgd';
  $('epsilon-value').textContent = `ε = ${epsilon.toFixed(3)}`;
  const attack = kind === 'fgsm' ? { kind, epsilon, clip: [0, 1] as [number, number] } : { kind, epsilon, steps: 10, clip: [0, 1] as [number, number] };
  const results = await Promise.all(NAMES.map((name) => models[name].adapt(task, { steps: STEPS, lr: LR, attack })));
  if (mine !== latest) return;
  const x = task.queryX.slice(row * D, (row + 1) * D);
  const y = task.queryY[row];
  const maxDelta: Record<string, number> = {};
  const accuracy: Record<string, { clean: number; attacked: number }> = {};
  for (const [i, name] of NAMES.entries()) {
    const r = results[i];
    const advAll = r.attackedQueryX!;
    const adv = advAll.slice(row * D, (row + 1) * D);
    const delta = adv.map((v, d) => v - x[d]);
    maxDelta[name] = delta.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    drawImage($(`${name}-clean`) as HTMLCanvasElement, x);
    drawImage($(`${name}-delta`) as HTMLCanvasElement, delta.map((v) => (epsilon > 0 ? v / epsilon : 0)), true);
    drawImage($(`${name}-adv`) as HTMLCanvasElement, adv);
    // The net normalises each hidden unit over the task's query set: score the whole set, read this row.
    const before = mlpProbs(layout, r.adapted, task.queryX, ROWS);
    const after = mlpProbs(layout, r.adapted, advAll, ROWS);
    const argmax = (p: Float64Array) => { let b = 0; for (let c = 1; c < WAYS; c++) if (p[row * WAYS + c] > p[row * WAYS + b]) b = c; return b; };
    const [pb, pa] = [before[row * WAYS + y], after[row * WAYS + y]];
    const [cb, ca] = [argmax(before), argmax(after)];
    $(`${name}-probs`).textContent = `p(true class ${y}) ${pb.toFixed(3)} → ${pa.toFixed(3)}; predicted ${cb} → ${ca}${cb !== ca ? ' (changed)' : ''}`;
    accuracy[name] = { clean: r.accuracy, attacked: r.attacked!.accuracy };
    $(`${name}-acc`).textContent = `accuracy on this task's ${ROWS} query images: ${percent(r.accuracy)} clean → ${percent(r.attacked!.accuracy)} under ${kind.toUpperCase()}`;
  }
  state.epsilon = epsilon;
  state.kind = kind;
  state.maxDelta = maxDelta;
  state.accuracy = accuracy;
  state.renders = ((state.renders as number) ?? 0) + 1;
}

async function init(): Promise<void> {
  await probeBackend();
  $('status').textContent = 'loading the embedded Omniglot set…';
  const source = await omniglotSource(WAYS, 1, 5);
  const iterations = Number(params.get('iterations') ?? 300);
  const tasks = Number(params.get('tasks') ?? 16);
  const variants: Array<[string, MamlOptions | AdmlOptions]> = [['maml', { algorithm: 'maml', dim: D }], ['adml', { algorithm: 'adml', dim: D, epsilon: 0.1, clip: [0, 1] }]];
  for (const [name, extra] of variants) {
    const what = `meta-training ${name.toUpperCase()} (${name === 'maml' ? 1 : 2} of 2; first order, 784-${HIDDEN.join('-')}-${WAYS} MLP with per-task norm, ${tasks} 5-way 1-shot tasks per batch)`;
    $('status').textContent = `${what}…`;
    const learner = await makeLearner({ ...extra, model: MODEL, innerLr: LR, outerLr: 0.002, order: 1, optimizer: 'adam', seed: 1 });
    await learner.train({ source, iterations, tasksPerBatch: tasks, supportShots: WAYS, queryShots: WAYS * 5, ...trainingProgress(learner, $('status'), what) });
    models[name] = learner;
  }
  task = sampleTasks(await omniglotSource(WAYS, 1, QUERIES), { tasks: 1, supportShots: WAYS, queryShots: ROWS }, 7, 0, 'test');
  $('status').textContent = `MAML and ADML (FGSM ε = 0.1 during training) meta-trained: 784-${HIDDEN.join('-')}-${WAYS} MLP with per-task norm, ${iterations} iterations each; both adapted with ${STEPS} step on this held-out 5-way task's support set, then attacked.`;
  await render();
  // The controls need both trained models and a task: disabled (in the HTML) until now.
  setEnabled(['kind', 'epsilon', 'next'], true);
  state.ready = true;
}

const rerender = () => { render().catch(showError); };
$('epsilon').addEventListener('input', rerender);
$('kind').addEventListener('change', rerender);
$('next').addEventListener('click', () => { row = (row + 1) % ROWS; rerender(); });
init().catch(showError);
