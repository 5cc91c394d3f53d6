// One function that yields a WebGPU device in a browser (navigator.gpu) and in Node (the `webgpu`
// package: Dawn, an optional dependency loaded only here, by dynamic import). In Node it tries a
// hardware adapter first, then Mesa llvmpipe through OpenGL ES (compatibility mode), and SwiftShader
// only when asked for (it has crashed Node under load, see docs). It requests the adapter's own limits,
// since compatibility-mode defaults (4 storage buffers per stage, 128 invocations) are below what the
// kernels need. In Node the environment is prepared before the first probe and Dawn's own stderr lines
// are held back while acquiring (src/gpu/node-env.ts; METAGRAD_DEBUG=1 shows them). `adoptDevice`
// wraps a GPUDevice that the caller created (createLearner({ device })).
import { DeviceLostError, GpuError, InvalidOptionError, LimitError, NoAdapterError } from '../errors.js';
import { adapterFromEnv, checkAdapterPath, isNode, nodeBuiltin, prepareEnvironment, quietStderr, withEnv, type NodeAdapterPath } from './node-env.js';

/** 'external': a GPUDevice handed to metagrad (createLearner({ device })). */
export type AdapterPath = 'browser' | 'vulkan' | 'opengles' | 'swiftshader' | 'external';

export interface AcquiredDevice {
  device: GPUDevice;
  /** The adapter (null for a device handed to metagrad: a GPUDevice does not expose its adapter). */
  adapter: GPUAdapter | null;
  /** Which path produced the adapter. */
  path: AdapterPath;
  /** The path was asked for by name (METAGRAD_ADAPTER or AcquireOptions.path) rather than probed. */
  named: boolean;
  /** Human-readable adapter description: vendor, architecture, description, path. */
  description: string;
  /** True for CPU rasterisers (llvmpipe, SwiftShader, lavapipe). */
  software: boolean;
  hasTimestamps: boolean;
  /** Set when the device is lost; every later call on a learner throws DeviceLostError. */
  lost: { reason: string; message: string } | null;
  /** First uncaptured WebGPU error since the last check (validation or out-of-memory). */
  uncaptured: string | null;
  /** Keeps the Dawn instance alive as long as the device (Node only). */
  instance: unknown;
  /** metagrad created the device (and may destroy it); false for an adopted one. */
  owned: boolean;
}

export interface AcquireOptions {
  /** Force one path; default: env METAGRAD_ADAPTER, else hardware then opengles. */
  path?: AdapterPath;
  /** The Node package with Dawn's bindings (default 'webgpu'). */
  nodeModule?: string;
}

const LIMITS_WANTED = [
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** The least a device must allow for the kernels: a batch's buffers per stage (the WebGPU default). */
const LIMITS_NEEDED: Partial<Record<(typeof LIMITS_WANTED)[number], number>> = {
  maxStorageBuffersPerShaderStage: 8,
};

const VULKAN_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib', '/lib/x86_64-linux-gnu'];
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const INSTALL_HINT =
  'On Debian/Ubuntu install the software adapter: apt-get install libegl1 libegl-mesa0 libgles2 ' +
  "(then metagrad uses Mesa llvmpipe through OpenGL ES), or pass backend: 'cpu'.";

function describe(info: GPUAdapterInfo | undefined, path: AdapterPath): { description: string; software: boolean } {
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s && s.length > 0);
  const text = `${parts.join(' ') || 'unknown adapter'} (${path})`;
  const software = /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(text) || path === 'swiftshader' ||
    (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter === true;
  return { description: text, software };
}

interface NodeGpu {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Dawn's bindings, or why they could not be loaded (`missing`: the package is not installed). */
async function loadDawn(name: string): Promise<NodeGpu | { missing: boolean; message: string }> {
  let mod: NodeGpu;
  try {
    // The module name arrives in a variable so that browser bundles never try to resolve it.
    mod = (await import(/* @vite-ignore */ name)) as NodeGpu;
  } catch (e) {
    const err = e as Error & { code?: string };
    const missing = (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && err.message.includes(`'${name}'`);
    return { missing, message: err.message.split('\n')[0] };
  }
  // Dawn's classes (GPUBufferUsage, …) become globals, as in a browser.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return mod;
}

type Opened = { gpu: GPU; adapter: GPUAdapter; device: GPUDevice };

/** Whether the Vulkan loader can be found (else Dawn prints a stack trace for the same finding). */
async function vulkanLoaderMissing(): Promise<string | null> {
  const fs = await nodeBuiltin<typeof import('node:fs')>('fs');
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...VULKAN_LIB_DIRS];
  if (dirs.some((dir) => fs.existsSync(`${dir}/libvulkan.so.1`))) return null;
  return `libvulkan.so.1 not found (looked in ${dirs.join(', ')}); a GPU needs its Vulkan driver and the loader (apt-get install libvulkan1)`;
}

/** One Node path: an adapter and its device, or why not. Environment variables a path needs (the
 * SwiftShader ICD, EGL's platform) are set only while its instance, adapter and device are made. */
async function tryNodePath(dawn: NodeGpu, path: NodeAdapterPath): Promise<Opened | string> {
  try {
    if (path === 'opengles') {
      return await withEnv({ EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' }, async () => {
        const gpu = dawn.create(['backend=opengles']);
        const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
        return adapter ? { gpu, adapter, device: await openDevice(adapter) } : 'no OpenGL ES adapter (is libegl-mesa0 installed?)';
      });
    }
    const noLoader = await vulkanLoaderMissing();
    if (path === 'swiftshader') {
      const fs = await nodeBuiltin<typeof import('node:fs')>('fs');
      if (!fs.existsSync(SWIFTSHADER_ICD)) return `${SWIFTSHADER_ICD} not found (apt-get install chromium)`;
      if (noLoader) return noLoader;
      return await withEnv({ VK_ICD_FILENAMES: SWIFTSHADER_ICD }, async () => {
        const gpu = dawn.create(['backend=vulkan']);
        const adapter = await gpu.requestAdapter();
        return adapter ? { gpu, adapter, device: await openDevice(adapter) } : 'SwiftShader Vulkan driver gave no adapter';
      });
    }
    if (noLoader) return noLoader;
    const gpu = dawn.create([]);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? { gpu, adapter, device: await openDevice(adapter) } : 'no hardware adapter (no Vulkan driver or no GPU)';
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

/** The device, with the adapter's own limits (compatibility-mode defaults are too low for the kernels). */
async function openDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMITS_WANTED) requiredLimits[name] = adapter.limits[name];
  const hasTimestamps = adapter.features.has('timestamp-query');
  return adapter.requestDevice({
    label: 'metagrad',
    requiredLimits,
    requiredFeatures: hasTimestamps ? ['timestamp-query'] : [],
  });
}

/** What a child process found (probeAdaptersInChild): a hardware adapter, a software one, or none. */
export interface ChildProbe {
  /** A hardware adapter's description (the in-process acquisition will find it too). */
  hardware: string | null;
  /** The software adapter's description (llvmpipe through OpenGL ES) when there is no hardware one. */
  software: string | null;
  /** Why each path gave no adapter. */
  tried: string[];
}

// Runs in the child: Dawn's default (Vulkan) adapter, then OpenGL ES (what acquireDevice tries, in its
// order), each adapter's info as JSON on stdout. The child's stderr goes nowhere, so whatever Dawn and
// the drivers print there never reaches the user, whatever fd 2 is.
const PROBE_SCRIPT = `
const dawn = await import(process.argv[1]);
const info = (a) => a && { vendor: a.info.vendor, architecture: a.info.architecture, device: a.info.device, description: a.info.description, isFallbackAdapter: a.info.isFallbackAdapter === true };
const out = {};
try { out.vulkan = info(await dawn.create([]).requestAdapter({ powerPreference: 'high-performance' })); } catch (e) { out.vulkan = String(e && e.message).split('\\n')[0]; }
try {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  out.opengles = info(await dawn.create(['backend=opengles']).requestAdapter({ featureLevel: 'compatibility' }));
} catch (e) { out.opengles = String(e && e.message).split('\\n')[0]; }
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;

/**
 * Node: which adapters this machine has, found by a short child process (≈ 0.2 s) instead of in this
 * one, so that backend 'auto' can choose the CPU backend without ever loading Dawn here (no driver
 * threads, ~70 MiB less, nothing printed). Null when the child cannot tell (no webgpu package, a
 * crash, 30 s without an answer): the caller then acquires in-process as before. The answer is kept
 * for the process's life.
 */
export function probeAdaptersInChild(moduleName = 'webgpu'): Promise<ChildProbe | null> {
  // Once per process and package: a program creating many 'auto' learners asks once.
  let probe = childProbes.get(moduleName);
  if (!probe) {
    probe = runChildProbe(moduleName);
    childProbes.set(moduleName, probe);
  }
  return probe;
}

const childProbes = new Map<string, Promise<ChildProbe | null>>();

async function runChildProbe(moduleName: string): Promise<ChildProbe | null> {
  if (!isNode()) return null;
  await prepareEnvironment();
  let url: string;
  try {
    const { createRequire } = await nodeBuiltin<typeof import('node:module')>('module');
    const { pathToFileURL } = await nodeBuiltin<typeof import('node:url')>('url');
    url = pathToFileURL(createRequire(import.meta.url).resolve(moduleName)).href;
  } catch {
    return null;
  }
  const { execFile } = await nodeBuiltin<typeof import('node:child_process')>('child_process');
  const stdout = await new Promise<string | null>((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', PROBE_SCRIPT, url], { timeout: 30_000, maxBuffer: 1 << 20, env: process.env },
      (error, out) => resolve(error ? null : out));
  });
  if (!stdout) return null;
  let found: Record<'vulkan' | 'opengles', GPUAdapterInfo | string | null>;
  try { found = JSON.parse(stdout); } catch { return null; }
  const result: ChildProbe = { hardware: null, software: null, tried: [] };
  for (const path of ['vulkan', 'opengles'] as const) {
    const r = found[path];
    if (r === null || typeof r === 'string') { result.tried.push(`${path}: ${r ?? 'no adapter'}`); continue; }
    const { description, software } = describe(r, path);
    if (!software) { result.hardware ??= description; break; }
    result.software ??= description;
  }
  return result;
}

let nodeTurn: Promise<void> = Promise.resolve();

/** Acquires a WebGPU device, or throws NoAdapterError naming every path tried and how to install one
 * (InvalidOptionError for a METAGRAD_ADAPTER or `path` that names no path). */
export async function acquireDevice(options: AcquireOptions = {}): Promise<AcquiredDevice> {
  const tried: string[] = [];
  let hint = INSTALL_HINT;
  let found: (Opened & { path: AdapterPath; instance: unknown }) | null = null;
  let named = false;

  if (!isNode()) {
    const gpu = typeof navigator !== 'undefined' ? navigator.gpu : undefined;
    if (!gpu) {
      tried.push('browser: navigator.gpu is undefined (this browser or context has no WebGPU)');
    } else {
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (adapter) found = { gpu, adapter, device: await openDevice(adapter), path: 'browser', instance: null };
      else tried.push('browser: navigator.gpu.requestAdapter() returned null');
    }
  } else {
    const forced = options.path !== undefined ? checkAdapterPath(options.path, 'path') : adapterFromEnv();
    named = forced !== undefined;
    const paths: NodeAdapterPath[] = forced ? [forced] : ['vulkan', 'opengles'];
    const moduleName = options.nodeModule ?? 'webgpu';
    await prepareEnvironment();
    // One acquisition at a time: each sets and restores process-wide variables (withEnv) and fd 2.
    const turn = nodeTurn;
    let done!: () => void;
    nodeTurn = new Promise<void>((resolve) => { done = resolve; });
    await turn;
    let native: string[] = [];
    try {
      ({ native } = await quietStderr(async () => {
        const dawn = await loadDawn(moduleName);
        if (!('create' in dawn)) {
          if (dawn.missing) {
            tried.push(`${moduleName} package: not installed (metagrad needs it for WebGPU in Node: npm install ${moduleName})`);
            hint = `Run \`npm install ${moduleName}\` (Dawn's WebGPU bindings for Node, an optional dependency of metagrad); then, without a GPU: ${INSTALL_HINT}`;
          } else {
            tried.push(`${moduleName} package: ${dawn.message}`);
          }
          return;
        }
        for (const path of paths) {
          const r = await tryNodePath(dawn, path);
          if (typeof r === 'string') tried.push(`${path}: ${r}`);
          else { found = { ...r, path, instance: r.gpu }; break; }
        }
      }));
    } finally {
      done();
    }
    // What the drivers said, without Dawn's source locations (a build machine's paths) and context lines.
    const said = [...new Set(native.filter((l) => !/^\s+at |^ - While /.test(l)).map((l) => l.replace(/^(Warning|Info|Error): /, '').trim()))];
    if (!found && said.length > 0) tried.push(`the driver said: ${said.slice(0, 4).join(' | ')}`);
  }
  if (!found) {
    throw new NoAdapterError(`No WebGPU adapter found. Tried:\n  - ${tried.join('\n  - ')}`, hint, tried);
  }
  const { adapter, device, path, instance } = found as Opened & { path: AdapterPath; instance: unknown };
  const { description, software } = describe(adapter.info, path);
  return watch({
    device, adapter, path, named, description, software, hasTimestamps: device.features.has('timestamp-query'),
    lost: null, uncaptured: null, instance, owned: true,
  });
}

function watch(acquired: AcquiredDevice): AcquiredDevice {
  const { device } = acquired;
  device.lost.then((info) => { acquired.lost = { reason: String(info.reason), message: info.message }; });
  device.addEventListener('uncapturederror', (event) => {
    const err = (event as GPUUncapturedErrorEvent).error;
    acquired.uncaptured ??= err.message;
  });
  return acquired;
}

const adopted = new WeakMap<GPUDevice, AcquiredDevice>();

/**
 * Wraps a GPUDevice that the caller made (a page that already uses WebGPU; several learners sharing
 * one device). metagrad never destroys it. One wrapper per device, so learners on it share its health
 * state: an uncaptured error on the device is reported by the next call of any of them.
 */
export function adoptDevice(device: GPUDevice): AcquiredDevice {
  const known = adopted.get(device);
  if (known) return known;
  const looksLikeDevice = device !== null && typeof device === 'object' &&
    typeof (device as GPUDevice).createBuffer === 'function' && typeof (device as GPUDevice).queue === 'object' && !!device.limits && !!device.lost;
  if (!looksLikeDevice) {
    throw new InvalidOptionError('The device option must be a GPUDevice (from adapter.requestDevice()).', 'Pass the GPUDevice itself, or leave device out to let metagrad acquire one.');
  }
  const short = Object.entries(LIMITS_NEEDED).filter(([name, least]) => (device.limits[name as keyof GPUSupportedLimits] as number) < least!);
  if (short.length > 0) {
    throw new LimitError(
      `The GPUDevice passed as device allows too little for metagrad's kernels: ${short.map(([n, least]) => `${n} ${device.limits[n as keyof GPUSupportedLimits]} < ${least}`).join(', ')}.`,
      `Request the adapter's limits when creating it: adapter.requestDevice({ requiredLimits: { ${short.map(([n]) => `${n}: adapter.limits.${n}`).join(', ')} } }).`,
    );
  }
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const { description, software } = describe(info, 'external');
  const acquired = watch({
    device, adapter: null, path: 'external', named: true, description, software, hasTimestamps: device.features.has('timestamp-query'),
    lost: null, uncaptured: null, instance: null, owned: false,
  });
  adopted.set(device, acquired);
  return acquired;
}

/** Throws if the device was lost or reported an uncaptured error since the last check. */
export function checkDeviceHealthy(acq: AcquiredDevice): void {
  if (acq.lost) {
    throw new DeviceLostError(
      `The WebGPU device was lost (${acq.lost.reason}): ${acq.lost.message}`,
      'Create a new learner; restore parameters from your last checkpoint or getParams() copy.',
    );
  }
  if (acq.uncaptured) {
    const message = acq.uncaptured;
    acq.uncaptured = null;
    throw new GpuError(`WebGPU reported an error: ${message}`, 'This is a metagrad bug or an exhausted device; please report it with the batch sizes.');
  }
}
