// Shared by the demo pages: the page frame (navigation, backend line, error box), loading the
// embedded Fashion-MNIST subset and Omniglot set in the browser, image drawing, a small MLP forward
// pass (per-row predictions from adapted parameters), and a live SVG chart. Everything else comes from
// the library itself (src/), unmodified.
import { backendReasonInBrief, createLearner, getSharedDevice, type Learner } from '../../src/learner.js';
import { imageSetFromIdx, parseIdx } from '../../src/tasks/idx.js';
import { FASHION_CLASSES, FASHION_SPLIT, type OmniglotSource, type TaskSource } from '../../src/tasks/source.js';
import { parseOmniglot, type OmniglotSet } from '../../src/tasks/omniglot.js';
import type { MlpLayout } from '../../src/models/mlp.js';
import { mlpProbabilities } from '../../src/cpu/mlp.js';
import { svgPlot, type Panel } from '../../src/cli/plot.js';
import { formatSeconds } from '../../src/cli/progress.js';
import type { LearnerOptions, TrainProgress } from '../../src/types.js';

/** What the browser test and curious users can read: window.__metagrad. */
export interface PageState {
  page: string;
  ready: boolean;
  backend?: { kind: string; adapter: string; fallbackReason?: string };
  errors: string[];
  [key: string]: unknown;
}

export const state: PageState = { page: '', ready: false, errors: [] };
(globalThis as unknown as { __metagrad: PageState }).__metagrad = state;

const PAGES = [['train.html', 'Train'], ['adapt.html', 'Adapt'], ['attack.html', 'Attack'], ['sinusoid.html', 'Sinusoid']] as const;

export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

/** Header, navigation, backend line and error box; errors anywhere on the page are shown in the box. */
export function setupPage(name: string, title: string): void {
  state.page = name;
  document.title = `metagrad — ${title}`;
  const header = document.createElement('header');
  header.innerHTML = `<h1>metagrad <span>${title}</span></h1><nav>${PAGES.map(([href, label]) =>
    `<a href="${href}"${href.startsWith(name) ? ' class="here"' : ''}>${label}</a>`).join('')}</nav>` +
    '<p id="backend" class="backend">acquiring a WebGPU device…</p><div id="errors" class="errors" hidden></div>';
  document.body.prepend(header);
  addEventListener('error', (e) => showError(e.error ?? e.message));
  addEventListener('unhandledrejection', (e) => showError(e.reason));
}

/** Empties the error box (a new run starts clean); state.errors keeps the history. */
export function clearErrors(): void {
  const box = $('errors');
  box.hidden = true;
  box.innerHTML = '';
}

export function showError(e: unknown): void {
  const text = e instanceof Error ? e.message : String(e);
  state.errors.push(text);
  const box = $('errors');
  box.hidden = false;
  const p = document.createElement('p');
  p.textContent = text;
  box.append(p);
}

/** The backend the page asks for: ?backend=webgpu|cpu|auto (default auto). */
export const requestedBackend = (): string => new URLSearchParams(location.search).get('backend') ?? 'auto';

/** A learner on WebGPU when the browser has it, else on the CPU backend, with the reason shown. */
export async function makeLearner(options: LearnerOptions): Promise<Learner> {
  const learner = await createLearner({ ...options, backend: requestedBackend() as LearnerOptions['backend'] });
  const b = learner.backend;
  state.backend = { kind: b.kind, adapter: b.adapter, fallbackReason: b.fallbackReason };
  const line = $('backend');
  const reason = b.fallbackReason ?? '';
  if (b.kind === 'webgpu') {
    line.textContent = `WebGPU: ${b.adapter}${b.software ? ' (a software adapter: correct, but slow; leave ?backend=webgpu out of the address for the faster CPU backend)' : ''}`;
    line.className = 'backend ok';
  } else if (/software/.test(reason)) {
    // backend 'auto' chose the CPU: the only adapter is a CPU rasteriser (SwiftShader), which the CPU
    // backend outruns many times over (bench/browser-speed.mjs).
    line.textContent = `Running on metagrad's CPU backend: ${backendReasonInBrief(reason)}. ` +
      'Add ?backend=webgpu to the address to use that adapter anyway.';
    line.className = 'backend warn';
  } else if (b.kind === 'cpu' && requestedBackend() === 'cpu') {
    line.textContent = "Running on metagrad's CPU backend, as the address asks (?backend=cpu).";
    line.className = 'backend warn';
  } else {
    line.textContent = `No WebGPU in this browser — running on metagrad's CPU backend instead (${reason.split('\nHINT')[0].replace(/\n\s*/g, ' ')}). ` +
      'For the GPU path use a recent Chrome, or start it with --enable-unsafe-webgpu.';
    line.className = 'backend warn';
  }
  return learner;
}

/** "iteration 40 of 300 · 5.1 it/s · about 0:51 left" (the rate and time once there is one). */
export function progressText(done: number, total: number, iterationsPerSecond: number): string {
  const left = iterationsPerSecond > 0 && done > 0 ? ` · ${iterationsPerSecond.toFixed(iterationsPerSecond < 10 ? 2 : 1)} it/s · about ${formatSeconds((total - done) / iterationsPerSecond)} left` : '';
  return `iteration ${done} of ${total}${left}`;
}

/**
 * Hands the event loop back to the browser: the CPU backend computes on the page's own thread (no
 * workers there), so a page that trains on it yields between iterations to stay responsive.
 */
export const yieldToBrowser = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/** Enables or disables controls (buttons, inputs, selects) by id; used until a page is ready. */
export function setEnabled(ids: string[], enabled: boolean): void {
  for (const id of ids) ($(id) as HTMLButtonElement).disabled = !enabled;
}

/** Warms up the shared device early so the backend line appears before any training. */
export async function probeBackend(): Promise<void> {
  try {
    await getSharedDevice();
  } catch { /* makeLearner falls back to the CPU and says why */ }
}

async function gunzip(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`Cannot load ${url}: HTTP ${response.status}. Serve the pages with npm run demo:web.`);
  // Read the whole body first: piping the network stream straight into the decompressor lets it stop
  // at the end of the gzip member and cancel the request (Chrome logs net::ERR_ABORTED).
  const stream = new Blob([await response.arrayBuffer()]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

let fashion: Promise<Extract<TaskSource, { kind: 'images' }>> | null = null;

/** The embedded Fashion-MNIST subset (served from /data), parsed by the library's IDX reader. */
export function loadFashion(): Promise<Extract<TaskSource, { kind: 'images' }>> {
  fashion ??= (async () => {
    const base = 'dist/data/fashion-mnist-subset';
    const [images, labels] = await Promise.all([gunzip(`${base}/train-images-idx3-ubyte.gz`), gunzip(`${base}/train-labels-idx1-ubyte.gz`)]);
    const set = imageSetFromIdx(parseIdx(images, 'images'), parseIdx(labels, 'labels'), FASHION_CLASSES);
    return { kind: 'images' as const, images: set, split: FASHION_SPLIT, name: 'embedded Fashion-MNIST subset' };
  })();
  return fashion;
}

let omniglot: Promise<OmniglotSet> | null = null;

/** The embedded Omniglot set (8 alphabets, 28×28; web/dist/data, copied there by scripts/build-web.mjs),
 * parsed by the library's reader. */
export function loadOmniglot(): Promise<OmniglotSet> {
  omniglot ??= (async () => {
    const file = 'dist/data/omniglot/omniglot-28x28.bin.gz';
    return parseOmniglot(await gunzip(file), file);
  })();
  return omniglot;
}

/** N-way K-shot episodes of the embedded Omniglot set (default split: Sanskrit and Tagalog held out). */
export async function omniglotSource(ways: number, shots: number, queries: number): Promise<OmniglotSource> {
  return { kind: 'omniglot', set: await loadOmniglot(), ways, shots, queries, name: 'embedded Omniglot' };
}

/** Softmax probabilities (rows × N) of the MLP at params on the rows of one set, by the float64 reference
 * (src/cpu/mlp.ts), for per-row predictions (the library reports accuracies). */
export function mlpProbs(layout: MlpLayout, params: Float32Array, x: Float32Array, rows: number): Float64Array {
  return mlpProbabilities(layout, params, 0, x, 0, rows);
}

/** The predicted class of each row (the smallest index of the largest probability, as the library scores). */
export function argmaxRows(probs: Float64Array, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < probs.length / classes; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[r * classes + c] > probs[r * classes + best]) best = c;
    out.push(best);
  }
  return out;
}

/** Draws one 28×28 row (pixels in [0, 1], bias dropped) on a canvas, scaled up. `signed` maps [−1, 1]. */
export function drawImage(canvas: HTMLCanvasElement, pixels: ArrayLike<number>, signed = false): void {
  const size = 28;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const v = pixels[i];
    if (signed) {
      // Red for a darker pixel, blue for a brighter one.
      img.data.set(v >= 0 ? [255 - 255 * v, 255 - 255 * v, 255] : [255, 255 + 255 * v, 255 + 255 * v], 4 * i);
    } else {
      const g = 255 - 255 * v;  // ink on paper, as the dataset is usually shown
      img.data.set([g, g, g], 4 * i);
    }
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** A chart element that redraws from its panels (the library's SVG plotter). */
export class LiveChart {
  constructor(private readonly host: HTMLElement, private readonly panels: Panel[], private readonly xLabel: string) {}
  add(panel: number, series: number, point: { x: number; y: number; ci?: number }): void {
    this.panels[panel].series[series].points.push(point);
  }
  clear(): void { for (const p of this.panels) for (const s of p.series) s.points.length = 0; this.draw(); }
  points(): number { return this.panels.reduce((n, p) => n + p.series.reduce((m, s) => m + s.points.length, 0), 0); }
  draw(): void { this.host.innerHTML = svgPlot(this.panels, this.xLabel); }
}

export const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * learner.train options that show progress in `status` ("meta-training MAML: iteration 40 of 300 ·
 * 5.1 it/s · about 0:51 left") and keep the page responsive on the CPU backend (a report, and a yield to
 * the browser, every iteration there; every 10 on WebGPU, whose work is off the page's thread).
 */
export function trainingProgress(learner: Learner, status: HTMLElement, what: string) {
  const cpu = learner.backend.kind === 'cpu';
  return {
    iterationsPerSubmit: cpu ? 1 : 10,
    onProgress: async (p: TrainProgress) => {
      status.textContent = `${what}: ${progressText(p.iteration, p.endIteration, p.iterationsPerSecond)}`;
      state.progress = { iteration: p.iteration, of: p.endIteration, text: status.textContent };
      await yieldToBrowser();
    },
  };
}
