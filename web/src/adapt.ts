// Adapt page: one held-out Fashion-MNIST task (classes 6–9). Its support images, then adaptation step
// by step from the meta-learned initialisation and from a zero initialisation, with the query
// predictions and accuracy after each step, from learner.adapt() (WebGPU when present): the adapted
// parameters it returns give each query image's probability.
import { sigmoid } from '../../src/cpu/logistic.js';
import { sampleTasks } from '../../src/cpu/sample-tasks.js';
import type { Learner } from '../../src/learner.js';
import type { CheckedBatch } from '../../src/types.js';
import { FASHION_CLASSES } from '../../src/tasks/source.js';
import { $, drawImage, loadFashion, makeLearner, percent, probeBackend, setupPage, showError, state } from './common.js';

setupPage('adapt', 'Adapt');
const D = 785;
const SHOTS = 10;
const LR = 0.5;
let meta: Learner;
let zero: Learner;
let task: CheckedBatch;
let taskIndex = 0;
let steps = 0;

function gallery(host: HTMLElement, x: Float32Array, y: Float32Array, rows: number, probs?: Float32Array): void {
  host.innerHTML = '';
  for (let r = 0; r < rows; r++) {
    const figure = document.createElement('figure');
    const canvas = document.createElement('canvas');
    drawImage(canvas, x.subarray(r * D, r * D + 784));
    figure.append(canvas);
    const caption = document.createElement('figcaption');
    if (probs) {
      const right = (probs[r] >= 0.5 ? 1 : 0) === y[r];
      figure.className = right ? 'right' : 'wrong';
      caption.textContent = `y=${y[r]} p=${probs[r].toFixed(2)}`;
    } else {
      caption.textContent = `y=${y[r]}`;
    }
    figure.append(caption);
    host.append(figure);
  }
}

function queryProbs(theta: Float32Array): Float32Array {
  return Float32Array.from({ length: SHOTS }, (_, r) => {
    let a = 0;
    for (let d = 0; d < D; d++) a += task.queryX[r * D + d] * theta[d];
    return sigmoid(a);
  });
}

async function show(): Promise<void> {
  $('step-count').textContent = `${steps} inner step${steps === 1 ? '' : 's'} of α = ${LR}`;
  const results: Record<string, number> = {};
  for (const [name, learner] of [['meta', meta], ['zero', zero]] as const) {
    const r = await learner.adapt(task, { steps, lr: LR });
    gallery($(`${name}-query`), task.queryX, task.queryY, SHOTS, queryProbs(r.adapted));
    results[name] = r.accuracy;
    $(`${name}-acc`).textContent = `query accuracy ${percent(r.accuracy)} (loss ${r.loss.toFixed(3)})`;
  }
  state.accuracy = results;
  state.steps = steps;
}

async function newTask(): Promise<void> {
  const source = await loadFashion();
  task = sampleTasks(source, { tasks: 1, supportShots: SHOTS, queryShots: SHOTS }, 7, taskIndex, 'test');
  steps = 0;
  $('task-title').textContent = `held-out task #${taskIndex}: two held-out classes, which one is labelled 1 drawn per task`;
  gallery($('support'), task.supportX, task.supportY, SHOTS);
  await show();
}

async function init(): Promise<void> {
  await probeBackend();
  const source = await loadFashion();
  meta = await makeLearner({ algorithm: 'maml', dim: D, innerLr: LR, outerLr: 0.0003, order: 2, optimizer: 'adam', seed: 1 });
  zero = await makeLearner({ dim: D, initScale: 0, innerLr: LR });
  const iterations = Number(new URLSearchParams(location.search).get('iterations') ?? 300);
  $('status').textContent = `meta-training MAML on classes 0–5 (${iterations} iterations)…`;
  const p = await meta.train({ source, iterations, tasksPerBatch: 32, supportShots: SHOTS, queryShots: SHOTS });
  $('status').textContent = `MAML meta-trained: ${iterations} iterations in ${p.elapsedSeconds.toFixed(1)} s. Class names: ${FASHION_CLASSES.slice(6).join(', ')} are held out.`;
  await newTask();
  state.ready = true;
}

$('step').addEventListener('click', () => { steps++; show().catch(showError); });
$('restart').addEventListener('click', () => { steps = 0; show().catch(showError); });
$('next').addEventListener('click', () => { taskIndex++; newTask().catch(showError); });
init().catch(showError);
