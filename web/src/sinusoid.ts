// Sinusoid page (MAML's regression experiment, issue 21): MAML meta-trains the 1-40-40-1 regressor on
// sine waves y = A·sin(x − φ) on this page (live loss plot), beside the MAML paper's baseline, the same
// network pretrained jointly on the same tasks without an inner loop. Then one held-out wave, its K
// points, and each network after k inner SGD steps on those points: the meta-learned one, the
// pretrained one and the untrained one (from scratch). The visitor adds points by clicking and moves
// them by dragging; the curves follow. learner.adapt() adapts (on the GPU when there is one) and returns
// the adapted parameters; the curves are a small forward pass of those (regressorCurve below), whose
// MSE on the grid must agree with the library's query MSE (state.agree).
import { sampleTasks, sinusoidTasks } from '../../src/cpu/sample-tasks.js';
import type { Learner } from '../../src/learner.js';
import { modelLayoutOf, type NetModelLayout } from '../../src/models/model.js';
import { resolveLearnerOptions } from '../../src/validate.js';
import type { SinusoidSource } from '../../src/tasks/sinusoid.js';
import type { CheckedBatch, MlpRegressorSpec } from '../../src/types.js';
import { $, LiveChart, makeLearner, probeBackend, setEnabled, setupPage, showError, state, trainingProgress } from './common.js';

setupPage('sinusoid', 'Sinusoid');
const params = new URLSearchParams(location.search);
const K = Number(params.get('shots') ?? 10);
const ITERATIONS = Number(params.get('iterations') ?? 2000);
const TASKS = 25;
const LR = 0.01;
const GRID = 100;
const X_RANGE: [number, number] = [-5, 5];
const Y_RANGE: [number, number] = [-6, 6];
const MODEL: MlpRegressorSpec = { kind: 'mlp', hidden: [40, 40], loss: 'mse' };
const SOURCE: SinusoidSource = { kind: 'sinusoid', shots: K };
const OPTIONS = { dim: 1, model: MODEL, innerLr: LR, seed: 1 } as const;
const layout = modelLayoutOf(resolveLearnerOptions({ ...OPTIONS })) as NetModelLayout;
const NAMES = ['meta', 'pretrained', 'scratch'] as const;
const COLORS = { meta: '#2563eb', pretrained: '#ea580c', scratch: '#16a34a' };
const LABELS = { meta: 'meta-learned (MAML)', pretrained: 'pretrained (joint)', scratch: 'from scratch' };

const learners: Partial<Record<(typeof NAMES)[number], Learner>> = {};
let waveIndex = 0;
let wave = { amplitude: 1, phase: 0 };
let points: Array<{ x: number; y: number }> = [];
let steps = 1;
let curves: Record<string, Float64Array> = {};
let latest = 0;
let dragging = -1;
state.updates = 0;

/** y of the MLP regressor (dense / relu layers) at `params` on each x, in float64. */
function regressorCurve(p: Float32Array, xs: Float64Array): Float64Array {
  const out = new Float64Array(xs.length);
  for (let r = 0; r < xs.length; r++) {
    let a = [xs[r]];
    for (const l of layout.net.layers) {
      if (l.spec.kind === 'relu') { a = a.map((v) => Math.max(v, 0)); continue; }
      if (l.spec.kind !== 'dense') throw new Error(`the regressor has no ${l.spec.kind} layer`);
      const n = l.output.c, m = a.length;
      const next = new Array<number>(n);
      for (let j = 0; j < n; j++) {
        let z = p[l.offset + l.weights + j];
        for (let i = 0; i < m; i++) z += a[i] * p[l.offset + i * n + j];
        next[j] = z;
      }
      a = next;
    }
    out[r] = a[0];
  }
  return out;
}

const grid = Float64Array.from({ length: GRID }, (_, i) => X_RANGE[0] + (i * (X_RANGE[1] - X_RANGE[0])) / (GRID - 1));
const truth = () => grid.map((x) => wave.amplitude * Math.sin(x - wave.phase));

/** One task: the visitor's points as the support set, the grid with the true wave as the query set. */
function taskOfPoints(): CheckedBatch {
  const t = truth();
  return {
    tasks: 1, supportShots: points.length, queryShots: GRID,
    supportX: Float32Array.from(points, (p) => p.x), supportY: Float32Array.from(points, (p) => p.y),
    queryX: Float32Array.from(grid), queryY: Float32Array.from(t),
  };
}

async function update(): Promise<void> {
  const mine = ++latest;
  $('step-count').textContent = `${steps} step${steps === 1 ? '' : 's'} on ${points.length} point${points.length === 1 ? '' : 's'}`;
  if (points.length === 0) { curves = {}; draw(); return; }
  const task = taskOfPoints();
  const results = await Promise.all(NAMES.map((n) => learners[n]!.adapt(task, { steps, lr: LR })));
  if (mine !== latest) return;
  const mse: Record<string, number> = {};
  const agree: Record<string, boolean> = {};
  const t = truth();
  NAMES.forEach((n, i) => {
    curves[n] = regressorCurve(results[i].adapted, grid);
    const e = curves[n].reduce((s, y, k) => s + (y - t[k]) ** 2, 0) / GRID;
    mse[n] = results[i].mse!;
    agree[n] = Math.abs(e - mse[n]) <= 1e-3 * Math.max(1, mse[n]);
  });
  $('mse').textContent = `MSE against the true wave after ${steps} step${steps === 1 ? '' : 's'}: ` +
    NAMES.map((n) => `${LABELS[n]} ${mse[n].toFixed(3)}`).join(' · ');
  Object.assign(state, { mse, agree, steps, points: points.length, pointList: points.map((p) => ({ ...p })), title: $('task-title').textContent });
  state.updates = (state.updates as number) + 1;
  draw();
}

const W = 760, H = 380, M = 36;
const sx = (x: number) => M + ((x - X_RANGE[0]) / (X_RANGE[1] - X_RANGE[0])) * (W - 2 * M);
const sy = (y: number) => H - M - ((y - Y_RANGE[0]) / (Y_RANGE[1] - Y_RANGE[0])) * (H - 2 * M);
const fromScreen = (px: number, py: number) => ({
  x: X_RANGE[0] + ((px - M) / (W - 2 * M)) * (X_RANGE[1] - X_RANGE[0]),
  y: Y_RANGE[0] + ((H - M - py) / (H - 2 * M)) * (Y_RANGE[1] - Y_RANGE[0]),
});
const clampY = (y: number) => Math.min(Y_RANGE[1], Math.max(Y_RANGE[0], y));

function path(ys: ArrayLike<number>): string {
  return Array.from(grid, (x, i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(clampY(ys[i])).toFixed(1)}`).join('');
}

function draw(): void {
  const axes = [-4, -2, 0, 2, 4].map((v) => `<line x1="${sx(v)}" y1="${M}" x2="${sx(v)}" y2="${H - M}" stroke="#eee"/><text x="${sx(v)}" y="${H - M + 16}" text-anchor="middle">${v}</text>`).join('') +
    [-4, -2, 0, 2, 4].map((v) => `<line x1="${M}" y1="${sy(v)}" x2="${W - M}" y2="${sy(v)}" stroke="#eee"/><text x="${M - 6}" y="${sy(v) + 4}" text-anchor="end">${v}</text>`).join('');
  const lines = [`<path d="${path(truth())}" fill="none" stroke="#9ca3af" stroke-width="3"/>`,
    ...NAMES.filter((n) => curves[n]).map((n) => `<path data-model="${n}" d="${path(curves[n])}" fill="none" stroke="${COLORS[n]}" stroke-width="2"/>`)];
  const dots = points.map((p, i) => `<circle data-point="${i}" cx="${sx(p.x)}" cy="${sy(clampY(p.y))}" r="6" fill="#111" stroke="#fff" stroke-width="2" style="cursor:grab"/>`);
  const legend = [['true wave', '#9ca3af'], ...NAMES.map((n) => [LABELS[n], COLORS[n]])].map(([name, color], i) =>
    `<rect x="${M + 8 + i * 170}" y="8" width="14" height="4" fill="${color}"/><text x="${M + 26 + i * 170}" y="14">${name}</text>`).join('');
  $('wave').innerHTML = `<svg id="wave-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-size="11" style="touch-action:none">` +
    `<rect width="100%" height="100%" fill="white"/>${axes}${lines.join('')}${dots.join('')}${legend}</svg>`;
}

/** The pointer position in the plot's coordinates. */
function pointerAt(e: PointerEvent): { x: number; y: number } {
  const svg = document.getElementById('wave-svg')!;
  const box = svg.getBoundingClientRect();
  const p = fromScreen(((e.clientX - box.left) / box.width) * W, ((e.clientY - box.top) / box.height) * H);
  return { x: Math.min(X_RANGE[1], Math.max(X_RANGE[0], p.x)), y: clampY(p.y) };
}

function setupPointer(): void {
  const host = $('wave');
  host.addEventListener('pointerdown', (e) => {
    if (!state.ready) return;
    const hit = (e.target as Element).getAttribute?.('data-point');
    if (hit !== null && hit !== undefined) {
      dragging = Number(hit);
      host.setPointerCapture(e.pointerId);
      return;
    }
    points.push(pointerAt(e));
    update().catch(showError);
  });
  host.addEventListener('pointermove', (e) => {
    if (dragging < 0) return;
    points[dragging] = pointerAt(e);
    update().catch(showError);
  });
  const stop = () => { dragging = -1; };
  host.addEventListener('pointerup', stop);
  host.addEventListener('pointercancel', stop);
}

/** A new held-out wave (the meta-test split) and its own K points. */
async function newWave(): Promise<void> {
  const batch = sampleTasks(SOURCE, { tasks: 1, supportShots: K, queryShots: K }, 7, waveIndex, 'test');
  const t = sinusoidTasks(SOURCE, 1, 7, waveIndex, 'test');
  wave = { amplitude: t.amplitude[0], phase: t.phase[0] };
  points = Array.from(batch.supportX, (x, i) => ({ x, y: batch.supportY[i] }));
  $('task-title').textContent = `held-out wave #${waveIndex}: A = ${wave.amplitude.toFixed(2)}, φ = ${wave.phase.toFixed(2)}; its ${K} points`;
  await update();
}

async function init(): Promise<void> {
  await probeBackend();
  const chart = new LiveChart($('loss'), [
    { title: 'meta-training: query MSE of the meta-batch after one step', yLabel: 'MSE', series: [{ name: 'MAML', color: COLORS.meta, points: [] }] },
    { title: 'pretraining (joint): MSE of the batch', yLabel: 'MSE', series: [{ name: 'pretrained', color: COLORS.pretrained, points: [] }] },
  ], 'iteration');
  state.chartPoints = () => chart.points();
  const losses: number[] = [];
  state.losses = losses;
  learners.meta = await makeLearner({ ...OPTIONS, algorithm: 'maml', order: 2, outerLr: 0.001, optimizer: 'adam' });
  learners.pretrained = await makeLearner({ ...OPTIONS, algorithm: 'maml', innerSteps: 0, outerLr: 0.001, optimizer: 'adam' });
  learners.scratch = await makeLearner({ ...OPTIONS, algorithm: 'maml' });   // never trained: nn.Linear's init (seed 1)
  for (const [i, n] of (['meta', 'pretrained'] as const).entries()) {
    const learner = learners[n]!;
    const what = n === 'meta' ? `meta-training MAML (order 2, α = ${LR}, Adam 0.001) on sine waves, ${TASKS} tasks of K = ${K} points per batch` : 'pretraining the same network jointly on the same tasks (no inner loop)';
    const progress = trainingProgress(learner, $('status'), what);
    const every = Math.max(1, Math.round(ITERATIONS / 100));
    const p = await learner.train({
      source: SOURCE, iterations: ITERATIONS, tasksPerBatch: TASKS, trackTrainLoss: true,
      iterationsPerSubmit: learner.backend.kind === 'cpu' ? every : Math.min(every, 10),
      onProgress: async (pr) => {
        if (pr.train && pr.iteration % every === 0) {
          chart.add(i, 0, { x: pr.iteration, y: pr.train.loss });
          if (n === 'meta') losses.push(pr.train.loss);
          chart.draw();
        }
        await progress.onProgress(pr);
      },
    });
    state[`${n}Seconds`] = p.elapsedSeconds;
  }
  $('status').textContent = `MAML and the pretrained baseline trained: ${ITERATIONS} iterations of ${TASKS} waves each, in ${(state.metaSeconds as number).toFixed(1)} s and ${(state.pretrainedSeconds as number).toFixed(1)} s (1-40-40-1 MLP, ReLU).`;
  setupPointer();
  await newWave();
  setEnabled(['steps', 'next', 'reset'], true);
  state.ready = true;
}

$('steps').addEventListener('input', () => { steps = Number(($('steps') as HTMLInputElement).value); update().catch(showError); });
$('next').addEventListener('click', () => { waveIndex++; newWave().catch(showError); });
$('reset').addEventListener('click', () => { newWave().catch(showError); });
init().catch(showError);
