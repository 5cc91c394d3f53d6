// One function that yields a WebGPU device in a browser (navigator.gpu) and in Node (the `webgpu`
// package: Dawn). In Node it tries a hardware adapter first, then Mesa llvmpipe through OpenGL ES
// (compatibility mode), and SwiftShader only when asked for (it has crashed Node under load, see
// shared/SOFTWARE-GPU.md). It requests the adapter's own limits, since compatibility-mode defaults
// (4 storage buffers per stage, 128 invocations) are below what the kernels need.
import { DeviceLostError, GpuError, NoAdapterError } from '../errors.js';

export type AdapterPath = 'browser' | 'vulkan' | 'opengles' | 'swiftshader';

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Which path produced the adapter. */
  path: AdapterPath;
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

const VULKAN_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib', '/lib/x86_64-linux-gnu'];
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const INSTALL_HINT =
  'On Debian/Ubuntu install the software adapter: apt-get install libegl1 libegl-mesa0 libgles2 ' +
  "(then metagrad uses Mesa llvmpipe through OpenGL ES), or pass backend: 'cpu'.";

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

function describe(adapter: GPUAdapter, path: AdapterPath): { description: string; software: boolean } {
  const info = adapter.info;
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

async function loadDawn(name: string): Promise<NodeGpu> {
  // The module name arrives in a variable so that browser bundles never try to resolve it.
  const mod = (await import(/* @vite-ignore */ name)) as NodeGpu;
  // Dawn's classes (GPUBufferUsage, …) become globals, as in a browser.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return mod;
}

async function tryNodePath(dawn: NodeGpu, path: AdapterPath): Promise<{ gpu: GPU; adapter: GPUAdapter } | string> {
  try {
    if (path === 'opengles') {
      process.env.EGL_PLATFORM ??= 'surfaceless';
      process.env.XDG_RUNTIME_DIR ??= '/tmp';
      const gpu = dawn.create(['backend=opengles']);
      const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
      return adapter ? { gpu, adapter } : 'no OpenGL ES adapter (is libegl-mesa0 installed?)';
    }
    if (path === 'swiftshader') {
      const fs = await import('node:fs');
      if (!fs.existsSync(SWIFTSHADER_ICD)) return `${SWIFTSHADER_ICD} not found (apt-get install chromium)`;
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
      const gpu = dawn.create(['backend=vulkan']);
      const adapter = await gpu.requestAdapter();
      return adapter ? { gpu, adapter } : 'SwiftShader Vulkan driver gave no adapter';
    }
    const fs = await import('node:fs');
    const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...VULKAN_LIB_DIRS];
    if (!dirs.some((dir) => fs.existsSync(`${dir}/libvulkan.so.1`))) {
      // Dawn would print a stack trace for the same finding; say it in one line instead.
      return `libvulkan.so.1 not found (looked in ${dirs.join(', ')}); a GPU needs its Vulkan driver and the loader (apt-get install libvulkan1)`;
    }
    const gpu = dawn.create([]);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? { gpu, adapter } : 'no hardware adapter (no Vulkan driver or no GPU)';
  } catch (e) {
    return (e as Error).message;
  }
}

/** Acquires a WebGPU device, or throws NoAdapterError naming every path tried and how to install one. */
export async function acquireDevice(options: AcquireOptions = {}): Promise<AcquiredDevice> {
  const tried: string[] = [];
  let found: { gpu: GPU | null; adapter: GPUAdapter; path: AdapterPath; instance: unknown } | null = null;

  if (!isNode()) {
    const gpu = typeof navigator !== 'undefined' ? navigator.gpu : undefined;
    if (!gpu) {
      tried.push('browser: navigator.gpu is undefined (this browser or context has no WebGPU)');
    } else {
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (adapter) found = { gpu, adapter, path: 'browser', instance: null };
      else tried.push('browser: navigator.gpu.requestAdapter() returned null');
    }
  } else {
    const forced = options.path ?? (process.env.METAGRAD_ADAPTER as AdapterPath | undefined);
    const paths: AdapterPath[] = forced ? [forced] : ['vulkan', 'opengles'];
    let dawn: NodeGpu | null = null;
    try {
      dawn = await loadDawn(options.nodeModule ?? 'webgpu');
    } catch (e) {
      tried.push(`${options.nodeModule ?? 'webgpu'} package: ${(e as Error).message.split('\n')[0]}`);
    }
    for (const path of dawn ? paths : []) {
      const r = await tryNodePath(dawn!, path);
      if (typeof r === 'string') tried.push(`${path}: ${r}`);
      else { found = { gpu: r.gpu, adapter: r.adapter, path, instance: r.gpu }; break; }
    }
  }
  if (!found) {
    throw new NoAdapterError(`No WebGPU adapter found. Tried:\n  - ${tried.join('\n  - ')}`, INSTALL_HINT, tried);
  }

  const { adapter, path } = found;
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMITS_WANTED) requiredLimits[name] = adapter.limits[name];
  const hasTimestamps = adapter.features.has('timestamp-query');
  const device = await adapter.requestDevice({
    label: 'metagrad',
    requiredLimits,
    requiredFeatures: hasTimestamps ? ['timestamp-query'] : [],
  });
  const { description, software } = describe(adapter, path);
  const acquired: AcquiredDevice = {
    device, adapter, path, description, software, hasTimestamps, lost: null, uncaptured: null, instance: found.instance,
  };
  device.lost.then((info) => { acquired.lost = { reason: String(info.reason), message: info.message }; });
  device.addEventListener('uncapturederror', (event) => {
    const err = (event as GPUUncapturedErrorEvent).error;
    acquired.uncaptured ??= err.message;
  });
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
