// Adapt page: one 5-way 1-shot Omniglot task from the held-out alphabets (Sanskrit, Tagalog). Its support
// images (one per class, labelled), then adaptation step by step (0 … 5 inner steps) of the same MLP
// from its meta-learned initialisation (MAML, trained on this page) and from scratch (its untrained
// He initialisation), with each query image's predicted label and the query accuracy. learner.adapt()
// adapts on the GPU when there is one and returns the adapted parameters; the per-row predictions are a
// small forward pass of those parameters (mlpProbs in common.ts), which must agree with the library's
// accuracy (state.agree). Beside them a prototypical network on the same body (trained on the page),
// which takes no steps: each query goes to its nearest prototype, computed here from the body's
// embeddings (the oracle's forward of the library's body layout) and checked against the library's
// accuracy likewise.
import { sampleTasks } from '../../src/cpu/sample-tasks.js';
import type { Learner } from '../../src/learner.js';
import { mlpLayout } from '../../src/models/mlp.js';
import { netModelLayout } from '../../src/models/model.js';
import { netOutputs } from '../../src/cpu/net/oracle.js';
import type { CheckedBatch, MlpModelSpec } from '../../src/types.js';
import { $, argmaxRows, drawImage, makeLearner, mlpProbs, omniglotSource, percent, probeBackend, setEnabled, setupPage, showError, state, trainingProgress } from './common.js';

setupPage('adapt', 'Adapt');
const params = new URLSearchParams(location.search);
const WAYS = 5;
const QUERIES = 2;            // query images per class on the shown task
const D = 784;
const LR = 0.4;
const MAX_STEPS = 5;
const HIDDEN = (params.get('hidden') ?? '64,64').split(',').map(Number);
const MODEL: MlpModelSpec = { kind: 'mlp', hidden: HIDDEN, classes: WAYS, norm: 'task' };
const layout = mlpLayout(D, MODEL.hidden, WAYS, 0, true);
const body = netModelLayout(MODEL, D, 0, true)!.net;
let meta: Learner;
let scratch: Learner;
let proto: Learner;
let task: CheckedBatch;
let taskIndex = 0;
let steps = 0;
let latest = 0;

/** Softmax of −squared distances of each query row's embedding to the prototypes (class means of the
 * support embeddings): the protonet's probabilities, from the body at `params`, support then query rows
 * through it together (its per-task norm normalises over the episode, as the library's). */
function protoProbs(params: Float32Array, t: CheckedBatch): Float64Array {
  const Ks = t.supportShots, Kq = t.queryShots;
  const x = new Float64Array((Ks + Kq) * D);
  x.set(t.supportX);
  x.set(t.queryX, Ks * D);
  const z = netOutputs(body, params, x, 0, Ks + Kq);
  const F = body.outputs;
  const protos = new Float64Array(WAYS * F);
  const counts = new Float64Array(WAYS);
  for (let s = 0; s < Ks; s++) {
    counts[t.supportY[s]]++;
    for (let f = 0; f < F; f++) protos[t.supportY[s] * F + f] += z[s * F + f];
  }
  for (let k = 0; k < WAYS; k++) for (let f = 0; f < F; f++) protos[k * F + f] /= counts[k];
  const probs = new Float64Array(Kq * WAYS);
  for (let q = 0; q < Kq; q++) {
    const logits = Array.from({ length: WAYS }, (_, k) => -Array.from({ length: F }, (_, f) => (z[(Ks + q) * F + f] - protos[k * F + f]) ** 2).reduce((a, b) => a + b, 0));
    const max = Math.max(...logits);
    const sum = logits.reduce((a, l) => a + Math.exp(l - max), 0);
    logits.forEach((l, k) => { probs[q * WAYS + k] = Math.exp(l - max) / sum; });
  }
  return probs;
}

function gallery(host: HTMLElement, x: Float32Array, labels: ArrayLike<number>, rows: number, predicted?: number[], probs?: Float64Array): void {
  host.innerHTML = '';
  for (let r = 0; r < rows; r++) {
    const figure = document.createElement('figure');
    const canvas = document.createElement('canvas');
    drawImage(canvas, x.subarray(r * D, (r + 1) * D));
    figure.append(canvas);
    const caption = document.createElement('figcaption');
    if (predicted && probs) {
      const right = predicted[r] === labels[r];
      figure.className = right ? 'right' : 'wrong';
      caption.textContent = `y=${labels[r]} → ${predicted[r]} ${right ? '✓' : '✗'} (${probs[r * WAYS + predicted[r]].toFixed(2)})`;
    } else {
      caption.textContent = `class ${labels[r]}`;
    }
    figure.append(caption);
    host.append(figure);
  }
}

async function show(): Promise<void> {
  const mine = ++latest;
  $('step-count').textContent = `${steps} inner step${steps === 1 ? '' : 's'} of α = ${LR}`;
  document.querySelectorAll<HTMLButtonElement>('#steps button').forEach((b) => b.classList.toggle('here', Number(b.dataset.steps) === steps));
  const results = await Promise.all([meta.adapt(task, { steps, lr: LR }), scratch.adapt(task, { steps, lr: LR }), proto.adapt(task)]);
  if (mine !== latest) return;
  const accuracy: Record<string, number> = {};
  const agree: Record<string, boolean> = {};
  const rows = WAYS * QUERIES;
  for (const [i, name] of (['meta', 'scratch', 'proto'] as const).entries()) {
    const r = results[i];
    const probs = name === 'proto' ? protoProbs(r.adapted, task) : mlpProbs(layout, r.adapted, task.queryX, rows);
    const predicted = argmaxRows(probs, WAYS);
    gallery($(`${name}-query`), task.queryX, task.queryY, rows, predicted, probs);
    const hits = predicted.filter((p, row) => p === task.queryY[row]).length;
    accuracy[name] = r.accuracy;
    agree[name] = Math.abs(hits / rows - r.accuracy) < 1e-6;
    $(`${name}-acc`).textContent = `query accuracy ${percent(r.accuracy)} (${hits} of ${rows}; loss ${r.loss.toFixed(3)})`;
  }
  state.accuracy = accuracy;
  state.agree = agree;
  state.queries = rows;
  state.steps = steps;
}

async function newTask(): Promise<void> {
  const source = await omniglotSource(WAYS, 1, QUERIES);
  task = sampleTasks(source, { tasks: 1, supportShots: WAYS, queryShots: WAYS * QUERIES }, 7, taskIndex, 'test');
  steps = 0;
  $('task-title').textContent = `held-out task #${taskIndex}: ${WAYS} characters of the held-out alphabets (Sanskrit, Tagalog), labelled 0–${WAYS - 1} at random; one support image each`;
  gallery($('support'), task.supportX, task.supportY, WAYS);
  await show();
}

async function init(): Promise<void> {
  await probeBackend();
  $('status').textContent = 'loading the embedded Omniglot set…';
  const train = await omniglotSource(WAYS, 1, 5);
  const common = { dim: D, model: MODEL, innerLr: LR, seed: 1 } as const;
  meta = await makeLearner({ ...common, algorithm: 'maml', outerLr: 0.002, order: 1, optimizer: 'adam' });
  scratch = await makeLearner({ ...common, algorithm: 'maml' });   // never trained: its He initialisation (same seed)
  proto = await makeLearner({ algorithm: 'protonet', dim: D, model: MODEL, seed: 1 });
  const iterations = Number(params.get('iterations') ?? 300);
  const tasks = Number(params.get('tasks') ?? 16);
  const net = `784-${HIDDEN.join('-')}-${WAYS} MLP with per-task norm`;
  const what = `meta-training MAML (first order) on 5-way 1-shot episodes of the meta-train alphabets, ${net}, ${tasks} tasks per batch`;
  $('status').textContent = `${what}…`;
  const p = await meta.train({ source: train, iterations, tasksPerBatch: tasks, supportShots: WAYS, queryShots: WAYS * 5, ...trainingProgress(meta, $('status'), what) });
  const protoWhat = `training the prototypical network (Adam 0.001) on the same episodes, its body 784-${HIDDEN.join('-')} with per-task norm`;
  const pp = await proto.train({ source: train, iterations, tasksPerBatch: tasks, supportShots: WAYS, queryShots: WAYS * 5, ...trainingProgress(proto, $('status'), protoWhat) });
  $('status').textContent = `MAML meta-trained: ${net}, ${iterations} iterations of ${tasks} tasks in ${p.elapsedSeconds.toFixed(1)} s; the prototypical network the same in ${pp.elapsedSeconds.toFixed(1)} s. ` +
    'The network from scratch is the same one before training (He initialisation, seed 1).';
  await newTask();
  setEnabled(CONTROLS, true);
  state.ready = true;
}

/** The step and task buttons: disabled (in the HTML) until MAML is trained and a task is shown. */
const CONTROLS = ['step', 'next'];

for (let k = 0; k <= MAX_STEPS; k++) {
  const b = document.createElement('button');
  b.textContent = String(k);
  b.dataset.steps = String(k);
  b.disabled = true;
  b.addEventListener('click', () => { steps = k; show().catch(showError); });
  $('steps').append(b);
  CONTROLS.push(`step-${k}`);
  b.id = `step-${k}`;
}
$('step').addEventListener('click', () => { steps = Math.min(steps + 1, 100); show().catch(showError); });
$('next').addEventListener('click', () => { taskIndex++; newTask().catch(showError); });
init().catch(showError);
