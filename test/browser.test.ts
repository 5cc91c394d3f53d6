// The demo pages in a real browser: Debian's headless Chromium with WebGPU on SwiftShader (flags of
// shared/SOFTWARE-GPU.md), driven by puppeteer-core, pages served by scripts/serve-web.mjs. Each page
// must load with no console error and no uncaught exception, run on WebGPU when the address asks for it
// (?backend=webgpu: on SwiftShader, backend 'auto' picks the much faster CPU backend, tested too), and
// do its job: training an MLP on Omniglot lowers the loss, draws the chart and reports held-out accuracy;
// adaptation shows the support set and judged query images; attacks stay within ε. Screenshots go to
// test-output/ (README shows them). METAGRAD_BROWSER=/path/to/chromium overrides the browser.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
// @ts-expect-error: plain ES module scripts without declarations
import { buildWeb } from '../scripts/build-web.mjs';
// @ts-expect-error: plain ES module scripts without declarations
import { startServer } from '../scripts/serve-web.mjs';

const CHROMIUM = process.env.METAGRAD_BROWSER ?? '/usr/bin/chromium';
const OUT = path.resolve('test-output');
let browser: Browser;
let server: Server;
let base = '';

test.before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No browser at ${CHROMIUM}: the browser test needs Debian's chromium (apt-get install chromium; .ci/run does it) or METAGRAD_BROWSER.`);
  }
  await buildWeb();
  server = await startServer(0);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  mkdirSync(OUT, { recursive: true });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${mkdtempSync(path.join(os.tmpdir(), 'metagrad-chromium-'))}`,
      '--window-size=1200,900',
    ],
  });
});

test.after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

/** Opens a page on WebGPU (?backend=webgpu), collecting console errors and uncaught exceptions; waits
 * until it says it is ready. */
async function open(name: string, query = ''): Promise<{ page: Page; problems: string[] }> {
  query = `${query ? `${query}&` : '?'}backend=webgpu`;
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e instanceof Error ? e.message : String(e)}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  await page.goto(`${base}/${name}.html${query}`, { waitUntil: 'load' });
  await page.waitForFunction('window.__metagrad && (window.__metagrad.ready || window.__metagrad.errors.length > 0)', { timeout: 240_000 });
  const errors = await page.evaluate('window.__metagrad.errors') as string[];
  assert.equal(errors, [], `${name}: errors shown on the page`);
  const backend = await page.evaluate('window.__metagrad.backend') as { kind: string; adapter: string };
  assert.is(backend.kind, 'webgpu', `${name}: runs on WebGPU (got ${JSON.stringify(backend)})`);
  assert.match(backend.adapter.toLowerCase(), /swiftshader/, `${name}: the adapter is SwiftShader`);
  return { page, problems };
}

test('train page: CAML with per-task norm is refused in the error box; MAML trains an MLP on Omniglot, on WebGPU', async () => {
  const { page, problems } = await open('train');
  // Defaults: the MLP with per-task norm on 5-way 1-shot Omniglot. CAML cannot adapt through that norm.
  assert.is(await page.$eval('#source', (el) => (el as HTMLSelectElement).value), 'omniglot');
  assert.is(await page.$eval('#model', (el) => (el as HTMLSelectElement).value), 'mlp');
  await page.select('#algorithm', 'caml');
  await page.click('#start');
  await page.waitForFunction('window.__metagrad.errors.length > 0', { timeout: 60_000 });
  assert.match(await page.$eval('#errors', (el) => el.textContent ?? ''), /CAML with norm: 'task' cannot adapt/);
  assert.is(await page.$eval('#start', (el) => (el as HTMLButtonElement).disabled), false, 'the page is usable after the refusal');
  const refused = (await page.evaluate('window.__metagrad.errors') as string[]).length;

  await page.select('#algorithm', 'maml');  // resets, and clears the error box
  assert.is(await page.$eval('#errors', (el) => (el as HTMLElement).hidden), true);
  const set = (id: string, v: string) => page.$eval(`#${id}`, (el, value) => { (el as HTMLInputElement).value = value; }, v);
  await set('hidden', '32,32');
  await page.select('#order', '1');
  await set('iterations', '30');
  await set('evalEvery', '30');
  await set('evalTasks', '20');
  await set('tasks', '8');
  await set('outerLr', '0.005');
  await page.click('#start');
  await page.waitForFunction('window.__metagrad.done === true || window.__metagrad.errors.length > ' + refused, { timeout: 240_000 });
  const s = await page.evaluate('({ losses: window.__metagrad.losses, evals: window.__metagrad.evals, points: window.__metagrad.chartPoints(), errors: window.__metagrad.errors, model: window.__metagrad.model, source: window.__metagrad.source })') as { losses: number[]; evals: number[]; points: number; errors: string[]; model: unknown; source: string };
  assert.is(s.errors.length, refused, `no new error: ${s.errors.slice(refused).join('; ')}`);
  assert.equal(s.model, { kind: 'mlp', hidden: [32, 32], classes: 5, norm: 'task' });
  assert.is(s.source, 'omniglot');
  assert.is(s.losses.length, 3, 'a loss every 10 iterations');
  assert.ok(s.losses.every((l) => Number.isFinite(l) && l > 0), `losses ${s.losses}`);
  assert.ok(s.losses[s.losses.length - 1] < s.losses[0], `loss went down: ${s.losses.map((l) => l.toFixed(3)).join(' → ')}`);
  assert.is(s.evals.length, 1);
  assert.ok(s.evals[0] > 0 && s.evals[0] <= 1, `held-out accuracy ${s.evals[0]}`);
  assert.match(await page.$eval('#heldout', (el) => el.textContent ?? ''), /held-out: \d+\.\d% ± \d+\.\d% clean, \d+\.\d% under FGSM \(20 5-way 1-shot tasks of the held-out alphabets/);
  assert.ok(s.points >= 5, `the chart drew ${s.points} points`);
  assert.ok(await page.$$eval('#chart circle', (c) => c.length) >= 5, 'points are in the SVG');
  await page.screenshot({ path: path.join(OUT, 'train.png') });
  // A prototypical network on the same page: it trains, and its held-out figure is by nearest prototype.
  await page.select('#algorithm', 'protonet');  // resets
  await set('iterations', '10');
  await set('evalEvery', '10');
  await page.click('#start');
  await page.waitForFunction(`window.__metagrad.done === true && window.__metagrad.evals.length > 0 || window.__metagrad.errors.length > ${refused}`, { timeout: 240_000 });
  assert.equal((await page.evaluate('window.__metagrad.errors') as string[]).slice(refused), []);
  assert.match(await page.$eval('#heldout', (el) => el.textContent ?? ''), /held-out: \d+\.\d% ± \d+\.\d% clean, \d+\.\d% under FGSM \(20 5-way 1-shot tasks of the held-out alphabets, nearest prototype\)/);
  assert.equal(problems, []);
  await page.close();
});

test('train page: Conv-4 trains on WebGPU (SwiftShader) when the address asks, and on the CPU backend when it leaves the backend to the page', async () => {
  const { page, problems } = await open('train');
  await page.select('#model', 'conv4');
  assert.is(await page.$eval('#filters', (el) => (el as HTMLInputElement).disabled), false, 'the filters box is live for Conv-4');
  assert.is(await page.$eval('#hidden', (el) => (el as HTMLInputElement).disabled), true, "the MLP's widths are not");
  const setOn = (p: Page, id: string, v: string) => p.$eval(`#${id}`, (el, value) => { (el as HTMLInputElement).value = value; }, v);
  for (const [id, v] of [['filters', '2'], ['iterations', '4'], ['evalEvery', '4'], ['evalTasks', '4'], ['tasks', '2']]) await setOn(page, id, v);
  await page.click('#start');
  await page.waitForFunction('window.__metagrad.done === true || window.__metagrad.errors.length > 0', { timeout: 240_000 });
  const g = await page.evaluate('({ errors: window.__metagrad.errors, model: window.__metagrad.model, evals: window.__metagrad.evals })') as { errors: string[]; model: unknown; evals: number[] };
  assert.equal(g.errors, []);
  assert.equal(g.model, { kind: 'conv4', classes: 5, filters: 2, pooling: 'stride' });
  assert.ok(g.evals.length === 1 && g.evals[0] >= 0 && g.evals[0] <= 1, `held-out accuracy on WebGPU ${g.evals}`);
  assert.equal(problems, []);
  await page.close();

  const auto = await browser.newPage();
  const autoProblems: string[] = [];
  auto.on('pageerror', (e) => autoProblems.push(`uncaught: ${e instanceof Error ? e.message : String(e)}`));
  await auto.goto(`${base}/train.html`, { waitUntil: 'load' });
  await auto.waitForFunction('window.__metagrad && (window.__metagrad.ready || window.__metagrad.errors.length > 0)', { timeout: 240_000 });
  await auto.select('#model', 'conv4');
  const set = (id: string, v: string) => auto.$eval(`#${id}`, (el, value) => { (el as HTMLInputElement).value = value; }, v);
  await set('filters', '4');
  await set('iterations', '20');
  await set('evalEvery', '20');
  await set('evalTasks', '10');
  await set('tasks', '4');
  await auto.click('#start');
  await auto.waitForFunction('window.__metagrad.done === true || window.__metagrad.errors.length > 0', { timeout: 240_000 });
  const s = await auto.evaluate('({ losses: window.__metagrad.losses, evals: window.__metagrad.evals, errors: window.__metagrad.errors, model: window.__metagrad.model, backend: window.__metagrad.backend })') as { losses: number[]; evals: number[]; errors: string[]; model: unknown; backend: { kind: string } };
  assert.equal(s.errors, []);
  assert.is(s.backend.kind, 'cpu');
  assert.equal(s.model, { kind: 'conv4', classes: 5, filters: 4, pooling: 'stride' });
  assert.ok(s.losses.length >= 2 && s.losses.every((l) => Number.isFinite(l) && l > 0), `losses ${s.losses}`);
  assert.ok(s.evals.length === 1 && s.evals[0] > 0 && s.evals[0] <= 1, `held-out accuracy ${s.evals}`);
  assert.equal(autoProblems, []);
  await auto.close();
});

test('adapt page: a held-out 5-way Omniglot task, adapted step by step from MAML and from scratch, beside a protonet\'s nearest-prototype predictions', async () => {
  const { page, problems } = await open('adapt', '?iterations=20&tasks=8&hidden=32,32');
  assert.match(await page.$eval('#backend', (el) => el.textContent ?? ''), /WebGPU: .*software adapter: correct, but slow/);
  assert.is(await page.$$eval('#support canvas', (c) => c.length), 5, 'five support images, one per class');
  assert.equal(await page.$$eval('#support figcaption', (c) => c.map((e) => e.textContent).sort()), ['class 0', 'class 1', 'class 2', 'class 3', 'class 4']);
  for (const steps of [1, 5]) {
    await page.click(steps === 1 ? '#step' : `#steps button[data-steps="${steps}"]`);
    await page.waitForFunction(`window.__metagrad.steps === ${steps}`, { timeout: 60_000 });
    const s = await page.evaluate('({ accuracy: window.__metagrad.accuracy, agree: window.__metagrad.agree, errors: window.__metagrad.errors })') as { accuracy: Record<string, number>; agree: Record<string, boolean>; errors: string[] };
    assert.equal(s.errors, []);
    for (const name of ['meta', 'scratch', 'proto']) {
      assert.ok(s.accuracy[name] >= 0 && s.accuracy[name] <= 1, `${name} accuracy ${s.accuracy[name]}`);
      assert.ok(s.agree[name], `${name}: the page's predictions agree with the library's accuracy`);
      assert.is(await page.$$eval(`#${name}-query figure.right, #${name}-query figure.wrong`, (c) => c.length), 10, `${name}: ten judged query images`);
      assert.match(await page.$eval(`#${name}-acc`, (el) => el.textContent ?? ''), /query accuracy \d+\.\d% \(\d+ of 10/);
    }
  }
  await page.click('#steps button[data-steps="1"]');
  await page.waitForFunction('window.__metagrad.steps === 1', { timeout: 60_000 });
  await page.screenshot({ path: path.join(OUT, 'adapt.png'), fullPage: true });
  assert.equal(problems, []);
  await page.close();
});

test('sinusoid page: MAML and the pretrained baseline train on WebGPU with a live loss plot; a click adds a point, a drag moves one, the slider sets the steps, and the curves follow, agreeing with the library', async () => {
  const { page, problems } = await open('sinusoid', '?iterations=300');
  type S = { agree: Record<string, boolean>; mse: Record<string, number>; points: number; pointList: Array<{ x: number; y: number }>; steps: number; losses: number[]; chart: number; updates: number; title: string };
  const read = () => page.evaluate('({ agree: window.__metagrad.agree, mse: window.__metagrad.mse, points: window.__metagrad.points, pointList: window.__metagrad.pointList, steps: window.__metagrad.steps, losses: window.__metagrad.losses, chart: window.__metagrad.chartPoints(), updates: window.__metagrad.updates, title: window.__metagrad.title })') as Promise<S>;
  const allAgree = (s: S) => ['meta', 'pretrained', 'scratch'].every((n) => s.agree[n] === true);
  let s = await read();
  assert.is(s.points, 10, "the wave's own K = 10 points");
  assert.is(s.steps, 1);
  assert.ok(allAgree(s), `the page's curves agree with the library's MSE: ${JSON.stringify(s.agree)}`);
  assert.ok(s.losses.length >= 10 && s.losses.every((l) => Number.isFinite(l) && l > 0), `losses ${s.losses}`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(s.losses.slice(-5)) < mean(s.losses.slice(0, 5)), `MAML's loss went down: ${s.losses.map((l) => l.toFixed(2)).join(' ')}`);
  assert.ok(s.chart >= 20, `the loss chart drew ${s.chart} points`);
  assert.is(await page.$$eval('#wave-svg path[data-model]', (p) => p.length), 3, 'three model curves');
  // A click on empty plot adds a point there.
  await page.$eval('#wave-svg', (el) => el.scrollIntoView());
  const box = (await (await page.$('#wave-svg'))!.boundingBox())!;
  let before = s.updates;
  await page.mouse.click(box.x + box.width * 0.5, box.y + box.height * 0.2);
  await page.waitForFunction(`window.__metagrad.updates > ${before} && window.__metagrad.points === 11`, { timeout: 60_000 });
  s = await read();
  const added = s.pointList[10];
  assert.ok(Math.abs(added.x) < 0.2 && added.y > 2, `the point lands where the click was: ${JSON.stringify(added)}`);
  // Dragging the added point (alone up there; the wave's own points may overlap) downwards moves it.
  const dot = (await (await page.$('#wave-svg circle[data-point="10"]'))!.boundingBox())!;
  before = s.updates;
  await page.mouse.move(dot.x + dot.width / 2, dot.y + dot.height / 2);
  await page.mouse.down();
  await page.mouse.move(dot.x + dot.width / 2, dot.y + dot.height / 2 + 60, { steps: 3 });
  await page.mouse.up();
  await page.waitForFunction(`window.__metagrad.updates > ${before} && window.__metagrad.pointList[10].y < ${added.y - 1}`, { timeout: 60_000 });
  s = await read();
  assert.is(s.points, 11, 'a drag moves a point, it adds none');
  assert.ok(allAgree(s), 'the curves still agree with the library');
  // The slider: 5 steps.
  await page.$eval('#steps', (el) => { (el as HTMLInputElement).value = '5'; el.dispatchEvent(new Event('input')); });
  await page.waitForFunction('window.__metagrad.steps === 5', { timeout: 60_000 });
  assert.match(await page.$eval('#mse', (el) => el.textContent ?? ''), /after 5 steps: meta-learned \(MAML\) \d+\.\d{3} · pretrained \(joint\) \d+\.\d{3} · from scratch \d+\.\d{3}/);
  await page.screenshot({ path: path.join(OUT, 'sinusoid.png') });
  // A new wave brings its own 10 points.
  await page.click('#next');
  await page.waitForFunction(`window.__metagrad.title !== ${JSON.stringify(s.title)} && window.__metagrad.points === 10`, { timeout: 60_000 });
  assert.equal(problems, []);
  await page.close();
});

test('attack page: FGSM and PGD on Omniglot queries stay within ε; MAML and ADML accuracies, clean and attacked', async () => {
  const { page, problems } = await open('attack', '?iterations=20&tasks=8&hidden=32,32');
  for (const [kind, epsilon] of [['fgsm', '0.05'], ['pgd', '0.2']] as const) {
    await page.select('#kind', kind);
    await page.$eval('#epsilon', (el, v) => { (el as HTMLInputElement).value = v; el.dispatchEvent(new Event('input')); }, epsilon);
    // The page re-adapts and re-attacks on the GPU; wait for the render of these settings.
    await page.waitForFunction(`window.__metagrad.kind === '${kind}' && window.__metagrad.epsilon === ${Number(epsilon)}`, { timeout: 60_000 });
    const s = await page.evaluate('({ kind: window.__metagrad.kind, epsilon: window.__metagrad.epsilon, maxDelta: window.__metagrad.maxDelta, accuracy: window.__metagrad.accuracy })') as { kind: string; epsilon: number; maxDelta: Record<string, number>; accuracy: Record<string, { clean: number; attacked: number }> };
    assert.is(s.kind, kind);
    assert.is(s.epsilon, Number(epsilon));
    for (const model of ['maml', 'adml']) {
      assert.ok(s.maxDelta[model] <= s.epsilon + 1e-6, `${kind} ${model}: max |δ| = ${s.maxDelta[model]} ≤ ε = ${s.epsilon}`);
      assert.ok(s.maxDelta[model] > 0, `${kind} ${model}: the attack moved the image`);
      const a = s.accuracy[model];
      assert.ok(a.clean >= 0 && a.clean <= 1 && a.attacked >= 0 && a.attacked <= 1, `${model} accuracies ${JSON.stringify(a)}`);
      assert.match(await page.$eval(`#${model}-acc`, (el) => el.textContent ?? ''), new RegExp(`\\d+\\.\\d% clean → \\d+\\.\\d% under ${kind.toUpperCase()}`));
      assert.match(await page.$eval(`#${model}-probs`, (el) => el.textContent ?? ''), /p\(true class \d\) \d\.\d{3} → \d\.\d{3}/);
    }
  }
  await page.select('#kind', 'fgsm');
  await page.$eval('#epsilon', (el) => { (el as HTMLInputElement).value = '0.1'; el.dispatchEvent(new Event('input')); });
  await page.waitForFunction(`window.__metagrad.kind === 'fgsm' && window.__metagrad.epsilon === 0.1`, { timeout: 60_000 });
  await page.screenshot({ path: path.join(OUT, 'attack.png'), fullPage: true });
  assert.equal(problems, []);
  await page.close();
});

/** Opens a page as a visitor does (backend 'auto'), collecting problems; does not wait for readiness. */
async function visit(url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e instanceof Error ? e.message : String(e)}`));
  await page.goto(`${base}/${url}`, { waitUntil: 'load' });
  return { page, problems };
}

const disabled = (page: Page, selector: string) => page.$$eval(selector, (els) => els.map((e) => (e as HTMLButtonElement).disabled));

test("SwiftShader as the browser's only adapter: backend 'auto' runs the CPU backend and says why (as in Node)", async () => {
  const { page, problems } = await visit('train.html');
  await page.waitForFunction('window.__metagrad && window.__metagrad.ready', { timeout: 60_000 });
  assert.equal(await page.evaluate('window.__metagrad.errors'), []);
  const backend = await page.evaluate('window.__metagrad.backend') as { kind: string; fallbackReason?: string };
  assert.is(backend.kind, 'cpu', `auto on SwiftShader: ${JSON.stringify(backend)}`);
  const line = await page.$eval('#backend', (el) => el.textContent ?? '');
  assert.match(line, /Running on metagrad's CPU backend: the only WebGPU adapter is a software one \(swiftshader\), slower than the CPU backend/);
  assert.match(line, /\?backend=webgpu/);
  assert.not.match(line, /backend: '/, 'no API syntax on the page');
  await page.$eval('#hidden', (el) => { (el as HTMLInputElement).value = '16'; });
  await page.$eval('#iterations', (el) => { (el as HTMLInputElement).value = '20'; });
  await page.$eval('#evalEvery', (el) => { (el as HTMLInputElement).value = '20'; });
  await page.$eval('#evalTasks', (el) => { (el as HTMLInputElement).value = '10'; });
  await page.click('#start');
  await page.waitForFunction('window.__metagrad.done === true || window.__metagrad.errors.length > 0', { timeout: 120_000 });
  assert.equal(await page.evaluate('window.__metagrad.errors'), []);
  assert.match(await page.$eval('#speed', (el) => el.textContent ?? ''), /iteration 20 of 20/);
  assert.equal(problems, []);
  await page.close();
});

test('adapt and attack pages: controls stay disabled while the models train, with progress and time left; then they work', async () => {
  for (const [name, controls, use] of [
    ['adapt', '#steps button, #step, #next', async (page: Page) => {
      await page.click('#steps button[data-steps="0"]');
      await page.waitForFunction('window.__metagrad.steps === 0 && window.__metagrad.accuracy !== undefined', { timeout: 60_000 });
    }],
    ['attack', '#kind, #epsilon, #next', async (page: Page) => {
      const before = await page.evaluate('window.__metagrad.renders') as number;
      await page.click('#next');
      await page.waitForFunction(`window.__metagrad.renders > ${before}`, { timeout: 60_000 });
    }],
  ] as const) {
    const { page, problems } = await visit(`${name}.html?iterations=200&tasks=4&hidden=16`);
    // While meta-training: a progress line with the rate and the time left, and nothing to click.
    await page.waitForFunction('window.__metagrad.progress && window.__metagrad.progress.iteration > 0 || window.__metagrad.errors.length > 0', { timeout: 120_000 });
    const progress = await page.$eval('#status', (el) => el.textContent ?? '');
    const off = await disabled(page, controls);
    assert.not.ok(await page.evaluate('window.__metagrad.ready'), `${name}: still training when its first progress line shows`);
    assert.match(progress, /meta-training .*: iteration \d+ of 200 · [\d.]+ it\/s · about \d+:\d\d left/, `${name}: progress, got ${progress}`);
    assert.ok(off.length >= 3 && off.every(Boolean), `${name}: every control is disabled while training (${off})`);
    await page.waitForFunction('window.__metagrad.ready || window.__metagrad.errors.length > 0', { timeout: 240_000 });
    assert.equal(await page.evaluate('window.__metagrad.errors'), [], `${name}: no error`);
    assert.ok((await disabled(page, controls)).every((d) => !d), `${name}: the controls are enabled once ready`);
    await use(page);
    assert.equal(await page.evaluate('window.__metagrad.errors'), [], `${name}: using a control shows no error`);
    assert.equal(problems, []);
    await page.close();
  }
});

test('no WebGPU in the browser: the page says so and trains on the CPU backend', async () => {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`uncaught: ${String(e)}`));
  // A browser without WebGPU: navigator.gpu is undefined before any page script runs.
  await page.evaluateOnNewDocument(() => { Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }); });
  await page.goto(`${base}/train.html`, { waitUntil: 'load' });
  await page.waitForFunction('window.__metagrad && window.__metagrad.ready', { timeout: 60_000 });
  const backend = await page.evaluate('window.__metagrad.backend') as { kind: string };
  assert.is(backend.kind, 'cpu');
  assert.match(await page.$eval('#backend', (el) => el.textContent ?? ''), /No WebGPU in this browser — running on metagrad's CPU backend/);
  await page.select('#source', 'linear');
  await page.select('#model', 'logistic');
  await page.$eval('#iterations', (el) => { (el as HTMLInputElement).value = '20'; });
  await page.click('#start');
  await page.waitForFunction('window.__metagrad.done === true || window.__metagrad.errors.length > 0', { timeout: 60_000 });
  assert.equal(await page.evaluate('window.__metagrad.errors'), []);
  assert.is((await page.evaluate('window.__metagrad.losses') as number[]).length, 2);
  await page.screenshot({ path: path.join(OUT, 'train-no-webgpu.png') });
  assert.equal(problems, []);
  await page.close();
});

test.run();
