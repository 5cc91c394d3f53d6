// Attack page: a held-out image, its FGSM / PGD perturbation (ε slider) and the adversarial image,
// with the probability of the true label before and after, for a MAML and an ADML model side by side.
// Both are meta-trained here (WebGPU when present), adapted on the image's task, and attacked
// white-box: the perturbation is computed against each model's own adapted parameters by the
// library's attack (src/cpu/fgsm.ts, the CPU twin of shaders/fgsm.wgsl).
import { attack } from '../../src/cpu/fgsm.js';
import { forwardGrad, sigmoid } from '../../src/cpu/logistic.js';
import { sampleTasks } from '../../src/cpu/sample-tasks.js';
import type { Batch, LearnerOptions } from '../../src/types.js';
import { $, drawImage, loadFashion, makeLearner, probeBackend, setupPage, showError, state } from './common.js';

setupPage('attack', 'Attack');
const D = 785;
const SHOTS = 10;
const LR = 0.5;
const models: Record<string, Float32Array> = {};
let task: Batch;
let row = 0;

function adapt(theta0: Float32Array): Float32Array {
  const grad = new Float32Array(D);
  forwardGrad(grad, new Float32Array(2), task.supportX, task.supportY, theta0, { tasks: 1, rows: SHOTS, dim: D, paramStride: 0 });
  return theta0.map((v, d) => v - LR * grad[d]);
}

const prob = (x: Float32Array, theta: Float32Array) => sigmoid(x.reduce((a, v, d) => a + v * theta[d], 0));

function render(): void {
  const epsilon = Number(($('epsilon') as HTMLInputElement).value);
  const kind = ($('kind') as HTMLSelectElement).value as 'fgsm' | 'pgd';
  $('epsilon-value').textContent = `ε = ${epsilon.toFixed(3)}`;
  const x = task.queryX.slice(row * D, (row + 1) * D);
  const y = task.queryY.subarray(row, row + 1);
  const steps = kind === 'fgsm' ? 1 : 10;
  const maxDelta: Record<string, number> = {};
  for (const name of ['maml', 'adml']) {
    const theta = adapt(models[name]);
    const adv = new Float32Array(D);
    attack(adv, x, y, theta, { tasks: 1, rows: 1, dim: D, paramStride: 0 }, { kind, epsilon, steps, stepSize: kind === 'fgsm' ? epsilon : (2.5 * epsilon) / steps, lo: 0, hi: 1 });
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
  const variants: Array<[string, LearnerOptions]> = [['maml', { algorithm: 'maml', dim: D }], ['adml', { algorithm: 'adml', dim: D, epsilon: 0.1, clip: [0, 1] }]];
  for (const [name, extra] of variants) {
    $('status').textContent = `meta-training ${name.toUpperCase()} (${iterations} iterations)…`;
    const learner = await makeLearner({ ...extra, innerLr: LR, outerLr: 0.0003, order: 2, optimizer: 'adam', seed: 1 });
    await learner.train({ source, iterations, tasksPerBatch: 32, supportShots: SHOTS, queryShots: SHOTS });
    models[name] = await learner.getParams();
    learner.destroy();
  }
  task = sampleTasks(source, { tasks: 1, supportShots: SHOTS, queryShots: SHOTS }, 7, 0, 'test');
  $('status').textContent = `MAML and ADML meta-trained (${iterations} iterations each); both adapted with one step on this held-out task's support set.`;
  render();
  state.ready = true;
}

$('epsilon').addEventListener('input', () => render());
$('kind').addEventListener('change', () => render());
$('next').addEventListener('click', () => { row = (row + 1) % SHOTS; render(); });
init().catch(showError);
