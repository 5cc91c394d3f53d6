// The package as a user gets it: `npm pack` (whose `prepare` script builds dist/), the tarball's file
// list, `npm install <tarball>` into a fresh project outside this tree, then from that project: import
// 'metagrad' and 'metagrad/node' (one module graph: an error thrown through 'metagrad/node' is an
// instance of the classes 'metagrad' exports), type-check a TypeScript file against the shipped .d.ts
// (no skipLibCheck), bundle it for the browser and train in headless Chromium (and load it by an import
// map), and `npx metagrad --help` / `npx metagrad train`.
//
// Offline and independent of npm's cache: the dependencies of the tarball are given to the same
// `npm install --offline` as `file:` links to this checkout's node_modules (what `npm ci` installed), so
// npm resolves metagrad's dependency ranges against them (a range they do not satisfy would need the
// registry and fail here) and fetches nothing. A link outside the project is not installed into, and
// the project lives in the OS temp folder, so nothing of this tree's node_modules is found by walking up.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = process.cwd();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'metagrad-package-'));
const app = path.join(tmp, 'app');

/** The environment without what an outer `npm test` exports (npm_config_local_prefix, npm_package_…),
 * which would make the inner npm act on this checkout. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
}

function sh(cmd: string, args: string[], options: SpawnSyncOptions & { cwd: string }, what: string) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: cleanEnv(), timeout: 300_000, ...options });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  assert.is(r.status, 0, `${what} exited with ${r.status} ${r.signal ?? ''}:\n${out.slice(-3000)}`);
  return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), out };
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
let tarball = '';

test('npm pack builds dist/ (prepare) and ships what a user needs, and no more', () => {
  const { stdout } = sh(npm, ['pack', '--json', '--pack-destination', tmp], { cwd: root }, 'npm pack');
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(tmp, info.filename);
  assert.ok(existsSync(tarball), 'the tarball was written');
  const files = info.files.map((f) => f.path);
  for (const needed of ['package.json', 'README.md', 'bin/metagrad.js', 'dist/index.js', 'dist/node.js', 'dist/cli.js', 'dist/cpu-worker.js',
    'dist/index.d.ts', 'dist/node/index.d.ts', 'dist/learner.d.ts', 'data/omniglot/omniglot-28x28.bin.gz', 'data/fashion-mnist-subset/train-images-idx3-ubyte.gz', 'docs/math.md']) {
    assert.ok(files.includes(needed), `the tarball holds ${needed}`);
  }
  assert.ok(files.some((f) => /^dist\/chunk-[\w-]+\.js$/.test(f)), 'the shared chunks are shipped');
  const extra = files.filter((f) => /\.map$/.test(f) || /^dist\/(demo|bench)\./.test(f) || /^(src|test|web|bench|scripts|shaders|\.ci)\//.test(f) || f.endsWith('.wgsl'));
  assert.equal(extra, [], 'no source maps, demo/bench bundles, sources, WGSL (inlined in the bundles) or web pages');
  // Every module the bundles import relatively is in the tarball (a chunk left out would only fail at import).
  for (const f of files.filter((f) => f.startsWith('dist/') && f.endsWith('.js'))) {
    const code = readFileSync(path.join(root, f), 'utf8');
    for (const m of code.matchAll(/(?:from|import)\s*\(?\s*["'](\.\.?\/[^"']+)["']/g)) {
      const target = path.posix.join(path.posix.dirname(f), m[1]);
      assert.ok(files.includes(target), `${f} imports ${m[1]}, which is shipped`);
    }
  }
});

test('npm install <tarball> into a fresh project, offline', () => {
  assert.ok(tarball, 'packed');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'metagrad-user', version: '1.0.0', private: true, type: 'module' }, null, 2));
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; optionalDependencies?: Record<string, string> };
  // The tarball's dependencies, and @types/node for the user's type-check, from this checkout.
  const deps = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})];
  for (const d of deps) assert.ok(existsSync(path.join(root, 'node_modules', d, 'package.json')), `dependency ${d} is installed in this checkout (npm ci)`);
  const typesOnly = ['@types/node', 'undici-types'].filter((d) => existsSync(path.join(root, 'node_modules', d, 'package.json')));
  const links = [...deps, ...typesOnly].map((d) => `file:${path.join(root, 'node_modules', d)}`);
  sh(npm, ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--install-links=false', tarball, ...links], { cwd: app }, 'npm install');
  const installed = path.join(app, 'node_modules', 'metagrad');
  assert.ok(!lstatSync(installed).isSymbolicLink(), 'metagrad is installed as a copy of the tarball');
  assert.ok(existsSync(path.join(installed, 'dist', 'index.js')), 'dist/ is installed');
  assert.ok(existsSync(path.join(app, 'node_modules', '.bin', 'metagrad')), 'the command is linked');
});

test("import 'metagrad' and 'metagrad/node': one module graph, the embedded data, a CPU step", () => {
  writeFileSync(path.join(app, 'use.mjs'), `
    import * as metagrad from 'metagrad';
    import * as node from 'metagrad/node';
    const out = {};
    try { node.loadFashionMnist(${JSON.stringify(path.join(tmp, 'no-such-folder'))}); } catch (e) {
      out.name = e.name;
      out.file = e instanceof metagrad.FileError;
      out.base = e instanceof metagrad.MetagradError;
      out.hintApart = typeof e.hint === 'string' && e.hint.length > 0 && !e.message.includes(e.hint) && !/HINT/.test(e.message);
    }
    out.omniglotImages = node.loadOmniglotEmbedded().drawer.length;
    const learner = await metagrad.createLearner({ backend: 'cpu', dim: 3, threads: 1 });
    const x = Float32Array.from({ length: 2 * 4 * 3 }, (_, i) => (i % 5) / 5), y = Float32Array.from({ length: 8 }, (_, i) => i % 2);
    const m = await learner.step({ tasks: 2, supportShots: 4, queryShots: 4, supportX: x, supportY: y, queryX: x, queryY: y }, { readback: true });
    out.loss = m.loss;
    learner.destroy();
    console.log(JSON.stringify(out));`);
  const { stdout } = sh(process.execPath, ['use.mjs'], { cwd: app }, 'node use.mjs');
  const out = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.is(out.name, 'FileError');
  assert.ok(out.file, "the FileError thrown by 'metagrad/node' is instanceof metagrad's FileError");
  assert.ok(out.base, "… and of metagrad's MetagradError");
  assert.ok(out.hintApart, 'the hint is its own property, not part of the message');
  assert.ok(out.omniglotImages > 0, `the embedded Omniglot set loads from the install: ${out.omniglotImages} images`);
  assert.ok(Number.isFinite(out.loss), `a CPU step reads back a loss: ${out.loss}`);
});

// What a web app does: its bundler (esbuild's JS API here, resolving as Vite does: the 'browser' export
// condition and main fields) bundles an entry that imports 'metagrad' from the project's node_modules;
// the bundle must import no Node built-in and must train in a real browser (Debian's headless Chromium
// with WebGPU on SwiftShader, as in browser.test.ts): a CPU step, and a WebGPU step when the browser
// has an adapter. The same entry, unbundled, also runs from an import map onto the installed dist/
// (README, Install). One static server on 127.0.0.1 (a secure context, which WebGPU needs).
test('bundled for the browser from the install: no node: import; a CPU and a WebGPU step in headless Chromium, and by an import map', async () => {
  const chromium = process.env.METAGRAD_BROWSER ?? '/usr/bin/chromium';
  assert.ok(existsSync(chromium), `No browser at ${chromium}: this test needs Debian's chromium (apt-get install chromium; .ci/run does it) or METAGRAD_BROWSER.`);
  // One step on a small random batch (2 tasks of 4 + 4 points in 3 dimensions); its loss, read back.
  const entry = `
    import { createLearner } from 'metagrad';
    globalThis.metagradStep = async (backend) => {
      let s = 7;
      const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
      const x = Float32Array.from({ length: 2 * 4 * 3 }, rand), y = Float32Array.from({ length: 2 * 4 }, () => (rand() < 0.5 ? 0 : 1));
      const learner = await createLearner({ backend, dim: 3 });
      try {
        const m = await learner.step({ tasks: 2, supportShots: 4, queryShots: 4, supportX: x, supportY: y, queryX: x, queryY: y }, { readback: true });
        return { loss: m.loss, kind: learner.backend.kind, adapter: learner.backend.adapter };
      } finally {
        learner.destroy();
      }
    };
    globalThis.metagradHasWebGpu = async () => !!(navigator.gpu && (await navigator.gpu.requestAdapter()));`;
  writeFileSync(path.join(app, 'web.js'), entry);
  const esbuild = await import('esbuild');
  const bundled = await esbuild.build({
    absWorkingDir: app, entryPoints: ['web.js'], outfile: 'public/app.js', write: false, metafile: true, logLevel: 'silent',
    bundle: true, platform: 'browser', format: 'esm', conditions: ['browser'], mainFields: ['browser', 'module', 'main'],
  });
  assert.equal(bundled.errors, []);
  assert.equal(bundled.warnings.map((w) => w.text), [], 'esbuild bundles it without a warning');
  const code = bundled.outputFiles[0].text;
  const inputs = Object.keys(bundled.metafile.inputs);
  assert.ok(inputs.includes('node_modules/metagrad/dist/index.js'), `'metagrad' resolves to the install's dist/index.js: ${inputs.join(', ')}`);
  const nodeImports = [...code.matchAll(/\b(?:from|import|require)\s*\(?\s*["'`](node:[^"'`]*)/g)].map((m) => m[1]);
  assert.equal(nodeImports, [], 'the browser bundle imports no Node built-in');

  const dist = path.join(app, 'node_modules', 'metagrad', 'dist');
  const head = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">';
  const pages: Record<string, [string, string]> = {
    '/': ['text/html; charset=utf-8', `${head}<script type="module" src="/app.js"></script>`],
    '/app.js': ['text/javascript', code],
    '/importmap.html': ['text/html; charset=utf-8',
      `${head}<script type="importmap">{ "imports": { "metagrad": "/node_modules/metagrad/dist/index.js" } }</script><script type="module">${entry}</script>`],
  };
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const file = url.startsWith('/node_modules/metagrad/dist/') ? path.join(dist, path.basename(url)) : '';
    if (pages[url]) res.writeHead(200, { 'content-type': pages[url][0] }).end(pages[url][1]);
    else if (file.endsWith('.js') && existsSync(file)) res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(file));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${mkdtempSync(path.join(tmp, 'chromium-'))}`],
  });
  type Step = { loss: number; kind: string; adapter: string };
  try {
    for (const [url, what] of [['/', 'the bundle'], ['/importmap.html', 'the import map']]) {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`uncaught: ${e instanceof Error ? e.message : String(e)}`));
      page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
      await page.goto(base + url, { waitUntil: 'load' });
      await page.waitForFunction('typeof globalThis.metagradStep === "function"', { timeout: 20_000 });
      const cpu = await page.evaluate('metagradStep("cpu")') as Step;
      assert.is(cpu.kind, 'cpu');
      assert.ok(Number.isFinite(cpu.loss), `${what}: a CPU step in the browser reads back a loss: ${cpu.loss}`);
      if (url === '/') {
        if (await page.evaluate('metagradHasWebGpu()')) {
          const gpu = await page.evaluate('metagradStep("webgpu")') as Step;
          assert.is(gpu.kind, 'webgpu');
          assert.ok(Number.isFinite(gpu.loss), `${what}: a WebGPU step in the browser (${gpu.adapter}) reads back a loss: ${gpu.loss}`);
          assert.ok(Math.abs(gpu.loss - cpu.loss) <= 1e-4 * Math.max(1, Math.abs(cpu.loss)), `the same step's loss on WebGPU ${gpu.loss} and on the CPU ${cpu.loss}`);
        } else {
          console.log('  (no WebGPU adapter in this Chromium: the WebGPU step of the bundle was not run)');
        }
      }
      assert.equal(problems, [], `${what}: no console error, uncaught exception or failed request`);
      await page.close();
    }
  } finally {
    await browser.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** The TypeScript versions a user may have (devDependencies: typescript is 5.x; the aliases pin 6.x and
 * npm's latest when this was written, 7.0.2). TypeScript ≥ 6 declares WebGPU in lib.dom, which
 * conflicts with @webgpu/types: the package picks its declarations by version (scripts/build.mjs). */
const TYPESCRIPTS = [
  { name: 'typescript 5', dir: 'typescript' },
  { name: 'typescript 6', dir: 'typescript-6' },
  { name: 'typescript latest (7)', dir: 'typescript-7' },
];

const USER_CODE = `
    import { createLearner, FileError, MetagradError, type Batch, type Learner, type LearnerOptions, type StepMetrics } from 'metagrad';
    import { loadOmniglotEmbedded } from 'metagrad/node';
    const options: LearnerOptions = { algorithm: 'adml', dim: 4, epsilon: 0.1, clip: [0, 1] };
    const learner: Learner = await createLearner(options);
    declare const batch: Batch;
    const m: StepMetrics = await learner.step(batch, { readback: true });  // the readback overload: no undefined
    const device: GPUDevice | undefined = undefined;
    const e: MetagradError = new FileError('message', 'hint');
    const hint: string = e.hint;
    const images = loadOmniglotEmbedded();
    export { m, device, hint, images };
  `;

// Two projects: lib without DOM (a Node project's usual lib), and the issue's: no lib, types: ["node"].
const PROJECTS = [
  { name: 'lib ES2022', compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'], strict: true, noEmit: true, skipLibCheck: false } },
  { name: 'default lib', compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', types: ['node'], strict: true, noEmit: true } },
];

for (const ts of TYPESCRIPTS) {
  test(`the shipped declarations type-check in strict projects with ${ts.name}, without skipLibCheck`, () => {
    const bin = path.join(root, 'node_modules', ts.dir, 'bin', 'tsc');
    assert.ok(existsSync(bin), `${ts.dir} is installed (npm ci)`);
    const version = sh(process.execPath, [bin, '--version'], { cwd: app }, `${ts.name} --version`).stdout.trim();
    writeFileSync(path.join(app, 'check.ts'), USER_CODE);
    for (const project of PROJECTS) {
      const config = path.join(app, `tsconfig.${ts.dir}.json`);
      writeFileSync(config, JSON.stringify({ compilerOptions: project.compilerOptions, files: ['check.ts'] }, null, 2));
      sh(process.execPath, [bin, '-p', config], { cwd: app }, `${version}, ${project.name}: tsc`);
    }
  });
}

test('npx metagrad --help and a short npx metagrad train', () => {
  const help = sh(npx, ['--offline', 'metagrad', '--help'], { cwd: app }, 'npx metagrad --help');
  assert.match(help.out, /usage: metagrad <command>/);
  const out = path.join(tmp, 'run');
  sh(npx, ['--offline', 'metagrad', 'train', '--backend', 'cpu', '--source', 'linear', '--dim', '5', '--iterations', '2', '--tasks', '4',
    '--eval-every', '0', '--eval-tasks', '8', '--attack', 'none', '--quiet', '--out', out], { cwd: app }, 'npx metagrad train');
  assert.ok(existsSync(path.join(out, 'checkpoint.json')), 'train wrote its checkpoint');
});

// METAGRAD_KEEP_PACKAGE_TEST=1 keeps the folder (printed) for a look.
test.after(() => { if (process.env.METAGRAD_KEEP_PACKAGE_TEST) console.log(`kept ${tmp}`); else rmSync(tmp, { recursive: true, force: true }); });

test.run();
