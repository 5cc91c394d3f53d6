// Attack page: a held-out image, its FGSM / PGD perturbation (ε slider) and the adversarial image,
// with the probability of the true label before and after, for a MAML and an ADML model side by side.
// Both are meta-trained here, then learner.adapt() adapts each on the image's task and attacks the
// query rows white-box, against that model's own adapted parameters, on the GPU when there is one.
import { sigmoid } from '../../src/cpu/logistic.js';
import { sampleTasks } from '../../src/cpu/sample-tasks.js';
import type { Learner } from '../../src/learner.js';
import type { AdmlOptions, Batch, MamlOptions } from '../../src/types.js';
import { $, drawImage, loadFashion, makeLearner, probeBackend, setupPage, showError, state } from './common.js';

setupPage('attack', 'Attack');
const D = 785;
const SHOTS = 10;
const LR = 0.5;
const models: Record<string, Learner> = {};
let task: Batch;
let row = 0;
let latest = 0;  // slider events outpace the GPU: only the newest render draws

const prob = (x: Float32Array, theta: Float32Array) => sigmoid(x.reduce((a, v, d) => a + v * theta[d], 0));

async function render(): Promise<void> {
  const mine = ++latest;
  const epsilon = Number(($('epsilon') as HTMLInputElement).value);
  const kind = ($('kind') as HTMLSelectElement).value as 'fgsm' | 'pgd';
  $('epsilon-value').textContent = `ε = ${epsilon.toFixed(3)}`;
  const attack = kind === 'fgsm' ? { kind, epsilon, clip: [0, 1] as [number, number] } : { kind, epsilon, steps: 10, clip: [0, 1] as [number, number] };
  const results = await Promise.all(['maml', 'adml'].map((name) => models[name].adapt(task, { steps: 1, lr: LR, attack })));
  if (mine !== latest) return;
  const x = task.queryX.slice(row * D, (row + 1) * D);
  const y = task.queryY.subarray(row, row + 1);
  const maxDelta: Record<string, number> = {};
  for (const [i, name] of ['maml', 'adml'].entries()) {
    const theta = results[i].adapted;
    const adv = results[i].attackedQueryX!.slice(row * D, (row + 1) * D);
    const delta = adv.map((v, d) => v - x[d]);
    maxDelta[name] = delta.subarray(0, 784).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    drawImage($(`${name}-clean`) as HTMLCanvasElement, x);
    drawImage($(`${name}-delta`) as HTMLCanvasElement, delta.map((v) => (epsilon > 0 ? v / epsilon : 0)), true);
    drawImage($(`${name}-adv`) as HTMLCanvasElement, adv);
    const pTrue = (p: number) => (y[0] === 1 ? p : 1 - p);
    const before = pTrue(prob(x, theta));
    const after = pTrue(prob(adv, theta));
    $(`${name}-probs`).textContent = `p(true label ${y[0]}) ${before.toFixed(3)} → ${after.toFixed(3)}${(before >= 0.5) !== (after >= 0.5) ? ' (flipped)' : ''}`;
  }
  state.epsilon = epsilon;
  state.kind = kind;
  state.maxDelta = maxDelta;
  state.renders = ((state.renders as number) ?? 0) + 1;
}

async function init(): Promise<void> {
  await probeBackend();
  const source = await loadFashion();
  const iterations = Number(new URLSearchParams(location.search).get('iterations') ?? 300);
  const variants: Array<[string, MamlOptions | AdmlOptions]> = [['maml', { algorithm: 'maml', dim: D }], ['adml', { algorithm: 'adml', dim: D, epsilon: 0.1, clip: [0, 1] }]];
  for (const [name, extra] of variants) {
    $('status').textContent = `meta-training ${name.toUpperCase()} (${iterations} iterations)…`;
    const learner = await makeLearner({ ...extra, innerLr: LR, outerLr: 0.0003, order: 2, optimizer: 'adam', seed: 1 });
    await learner.train({ source, iterations, tasksPerBatch: 32, supportShots: SHOTS, queryShots: SHOTS });
    models[name] = learner;
  }
  task = sampleTasks(source, { tasks: 1, supportShots: SHOTS, queryShots: SHOTS }, 7, 0, 'test');
  $('status').textContent = `MAML and ADML meta-trained (${iterations} iterations each); both adapted with one step on this held-out task's support set.`;
  await render();
  state.ready = true;
}

const rerender = () => { render().catch(showError); };
$('epsilon').addEventListener('input', rerender);
$('kind').addEventListener('change', rerender);
$('next').addEventListener('click', () => { row = (row + 1) % SHOTS; rerender(); });
init().catch(showError);
