// Quiet and right about the adapter (issue 13 item 6): a child process that acquires a device prints no
// driver noise on stderr (METAGRAD_DEBUG=1 shows it), the environment is prepared before the first
// probe, METAGRAD_ADAPTER is validated, probes leak no environment, a missing `webgpu` package gets a
// clear error, and backend 'auto' on a software-only machine runs the CPU backend and says why.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLearner, getSharedDevice, shortAdapterName } from '../src/learner.js';
import { acquireDevice } from '../src/gpu/device.js';
import { splitCaptured } from '../src/gpu/node-env.js';
import { InvalidOptionError, NoAdapterError } from '../src/errors.js';
import { bundleChildScript, thrown } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** A small program that acquires a device through src/gpu/device.ts, bundled beside this test's bundle
 * (inside the checkout, so that `webgpu` resolves from node_modules). */
let child: string | null = null;
async function childScript(): Promise<string> {
  child ??= await bundleChildScript(`
        import { acquireDevice } from './src/gpu/device.ts';
        // Two acquisitions that overlap share one capture, and stderr is put back once.
        const [acq, other] = await Promise.all([acquireDevice(), acquireDevice()]);
        other.device.destroy();
        console.error('child: acquired');
        console.log(JSON.stringify({ path: acq.path, software: acq.software, xdg: process.env.XDG_RUNTIME_DIR ?? null,
          vk: process.env.VK_ICD_FILENAMES ?? null, egl: process.env.EGL_PLATFORM ?? null }));
        acq.device.destroy();`, path.join(here, 'adapter-child', 'acquire.mjs'));
  return child;
}

let runs = 0;
type ChildResult = { path: string; software: boolean; xdg: string | null; vk: string | null; egl: string | null };
function envOf(env: Record<string, string | undefined>): Record<string, string> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
  return childEnv;
}

function runChild(script: string, env: Record<string, string | undefined>) {
  // stderr to a file of its own, as `node app.js 2>err.log` (a terminal or a pipe take the same path).
  const errFile = path.join(here, 'adapter-child', `stderr-${++runs}.txt`);
  const fd = openSync(errFile, 'w');
  const r = spawnSync(process.execPath, [script], { env: envOf(env), encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', fd] });
  closeSync(fd);
  const stderr = readFileSync(errFile, 'utf8');
  const out = r.stdout.trim();
  return { status: r.status, stderr, result: out ? JSON.parse(out.split('\n').pop()!) as ChildResult : null };
}

/** The child with stdout and stderr in one file, as `node app.js > log 2>&1`: returns the file's text. */
function runChildSharedLog(script: string, env: Record<string, string | undefined>) {
  const logFile = path.join(here, 'adapter-child', `log-${++runs}.txt`);
  const fd = openSync(logFile, 'w');
  const r = spawnSync(process.execPath, [script], { env: envOf(env), timeout: 120_000, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return { status: r.status, log: readFileSync(logFile, 'utf8') };
}

const CLEAN = { METAGRAD_DEBUG: undefined, METAGRAD_ADAPTER: undefined, VK_ICD_FILENAMES: undefined, EGL_PLATFORM: undefined };

test("a child that acquires a device prints nothing of Dawn's on stderr; what it prints itself passes", async () => {
  const script = await childScript();
  const r = runChild(script, { ...CLEAN, XDG_RUNTIME_DIR: undefined });
  assert.is(r.status, 0, r.stderr);
  assert.ok(r.result, 'the child reported its device');
  assert.is(r.stderr, 'child: acquired\n', `stderr holds only the child's own line, got:\n${r.stderr}`);
  // The environment was prepared before the first probe: a private runtime directory.
  assert.ok(r.result!.xdg && r.result!.xdg.startsWith('/'), `XDG_RUNTIME_DIR set: ${r.result!.xdg}`);
  // Probes leave no variable of theirs behind.
  assert.is(r.result!.vk, null, 'VK_ICD_FILENAMES not leaked');
  assert.is(r.result!.egl, null, 'EGL_PLATFORM not leaked');
});

test("`> log 2>&1`: the shared log holds the child's own lines and nothing of Dawn's or the drivers'", async () => {
  const script = await childScript();
  const r = runChildSharedLog(script, { ...CLEAN });
  assert.is(r.status, 0, r.log);
  const lines = r.log.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 2, `two lines, got:\n${r.log}`);
  assert.is(lines[0], 'child: acquired');
  assert.ok((JSON.parse(lines[1]) as ChildResult).path, 'the JSON line comes through whole (stdout\'s offset kept)');
});

test('without ffi-rs (METAGRAD_NO_FFI=1) the close-and-reopen fallback still quiets a stderr of its own', async () => {
  const script = await childScript();
  const r = runChild(script, { ...CLEAN, METAGRAD_NO_FFI: '1' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, 'child: acquired\n', `stderr holds only the child's own line, got:\n${r.stderr}`);
});

test('METAGRAD_DEBUG=1 lets the driver lines through (on the OpenGL ES path, where Dawn prints some)', async () => {
  const script = await childScript();
  const quiet = runChild(script, { ...CLEAN });
  const loud = runChild(script, { ...CLEAN, METAGRAD_DEBUG: '1' });
  assert.is(loud.status, 0, loud.stderr);
  assert.match(loud.stderr, /child: acquired/);
  if (quiet.result?.path === 'opengles') {
    assert.match(loud.stderr, /artificially reduced/, 'Dawn\'s warnings shown under METAGRAD_DEBUG=1');
    assert.not.match(quiet.stderr, /artificially reduced/);
  }
});

test('an invalid XDG_RUNTIME_DIR is replaced by a private directory (mode 0700)', async () => {
  const script = await childScript();
  const r = runChild(script, { ...CLEAN, XDG_RUNTIME_DIR: '/nonexistent/runtime' });
  assert.is(r.status, 0, r.stderr);
  assert.is.not(r.result!.xdg, '/nonexistent/runtime');
  assert.match(r.result!.xdg!, /metagrad-runtime-/);
  // Removed when the child exited.
  assert.not.ok(existsSync(r.result!.xdg!), 'the private runtime directory is removed at exit');
  // A valid one is kept as it is.
  const mine = path.join(here, 'adapter-child', 'runtime');
  mkdirSync(mine, { recursive: true, mode: 0o700 });
  assert.is(statSync(mine).mode & 0o077, 0);
  const kept = runChild(script, { ...CLEAN, XDG_RUNTIME_DIR: mine });
  assert.is(kept.result!.xdg, mine);
});

test('splitCaptured drops Dawn\'s lines and their locations, and keeps everything else', () => {
  const text = [
    'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.',
    "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory",
    '    at operator() (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/BackendVk.cpp:368)',
    '',
    'error: XDG_RUNTIME_DIR is invalid or not set in the environment.',
    ' - While initializing adapter (backend=BackendType::Vulkan)',
    'my program: still here',
    'Error: something of mine',
    '    at main (file:///app/main.js:3:9)',
    '',
  ].join('\n');
  const { native, rest } = splitCaptured(text);
  assert.is(native.length, 5);
  assert.is(rest, 'my program: still here\nError: something of mine\n    at main (file:///app/main.js:3:9)\n');
});

test("backend 'auto' decides in a child process: where the CPU backend wins, Dawn is never loaded in this one", async () => {
  const outfile = await bundleChildScript(`
        import { pickAutoBackend } from './src/learner.ts';
        import { probeAdaptersInChild } from './src/gpu/device.ts';
        const pick = await pickAutoBackend();
        const probe = await probeAdaptersInChild();
        console.log(JSON.stringify({ backend: pick.backend, reason: pick.reason, probe, dawnLoaded: 'GPUBufferUsage' in globalThis }));`,
    path.join(here, 'adapter-child', 'auto.mjs'));
  const r = runChildSharedLog(outfile, { ...CLEAN });
  assert.is(r.status, 0, r.log);
  const lines = r.log.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, `one line, nothing of Dawn's:\n${r.log}`);
  const out = JSON.parse(lines[0]) as { backend: string; reason: string; probe: { hardware: string | null; software: string | null } | null; dawnLoaded: boolean };
  assert.ok(out.probe, 'the child probe answered');
  const acq = await getSharedDevice();
  if (acq.software) {
    // This machine (and CI): a software adapter only. The same verdict as in-process, without Dawn here.
    assert.is(out.backend, 'cpu');
    assert.is(out.probe!.hardware, null);
    assert.ok(out.probe!.software && shortAdapterName(out.probe!.software) === shortAdapterName(acq.description), `the child found ${out.probe!.software}, this process ${acq.description}`);
    assert.match(out.reason, /software one/);
    assert.is(out.dawnLoaded, false, 'Dawn was not loaded in the deciding process');
  } else {
    assert.is(out.backend, 'webgpu', 'a hardware adapter: WebGPU');
    assert.ok(out.probe!.hardware, 'the child saw the hardware adapter');
  }
});

test('METAGRAD_ADAPTER is validated, with the valid values listed', async () => {
  const before = process.env.METAGRAD_ADAPTER;
  process.env.METAGRAD_ADAPTER = 'cuda';
  try {
    const e = await thrown(() => acquireDevice());
    assert.instance(e, InvalidOptionError);
    assert.match(e.message, /METAGRAD_ADAPTER is "cuda"/);
    assert.match(e.message, /vulkan, opengles, swiftshader/);
  } finally {
    if (before === undefined) delete process.env.METAGRAD_ADAPTER; else process.env.METAGRAD_ADAPTER = before;
  }
  const e = await thrown(() => acquireDevice({ path: 'metal' as never }));
  assert.instance(e, InvalidOptionError);
});

test('a SwiftShader probe leaves VK_ICD_FILENAMES as it found it', async () => {
  const before = process.env.VK_ICD_FILENAMES;
  delete process.env.VK_ICD_FILENAMES;
  try {
    const acq = await acquireDevice({ path: 'swiftshader' }).catch((e) => e as Error);
    if (!(acq instanceof Error)) acq.device.destroy();
    else assert.instance(acq, NoAdapterError);
    assert.is(process.env.VK_ICD_FILENAMES, undefined);
  } finally {
    if (before !== undefined) process.env.VK_ICD_FILENAMES = before;
  }
});

test('no webgpu package: a NoAdapterError that says npm install webgpu', async () => {
  const e = await thrown(() => acquireDevice({ nodeModule: 'webgpu-not-installed-here' }));
  assert.instance(e, NoAdapterError);
  assert.match(e.message, /not installed .*npm install webgpu-not-installed-here/);
  assert.match((e as NoAdapterError).hint, /npm install webgpu-not-installed-here/);
});

test("backend 'auto' runs the CPU backend when the only adapter is a software one, and says why; 'webgpu' still runs on it", async () => {
  const acq = await getSharedDevice();
  const auto = await createLearner({ dim: 3 });
  if (acq.software && !acq.named) {
    assert.is(auto.backend.kind, 'cpu');
    assert.match(auto.backend.fallbackReason ?? '', /software/);
    assert.ok((auto.backend.fallbackReason ?? '').includes(shortAdapterName(acq.description)), `the reason names the adapter: ${auto.backend.fallbackReason}`);
    assert.ok((auto.backend.fallbackReason ?? '').length < 200, `in one short sentence and a hint: ${auto.backend.fallbackReason}`);
  } else {
    assert.is(auto.backend.kind, 'webgpu');
  }
  const gpu = await createLearner({ dim: 3, backend: 'webgpu' });
  assert.is(gpu.backend.kind, 'webgpu');
  assert.is(gpu.backend.software, acq.software);
  auto.destroy();
  gpu.destroy();
});

test.run();
