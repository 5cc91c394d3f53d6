// Node-only setup around Dawn: the process environment its drivers read, and the lines they print.
// Nothing here is imported statically from a `node:` module, so browser bundles of metagrad resolve no
// Node built-in (the built-ins are loaded by a name held in a variable, which bundlers leave alone).
//
// Dawn and the drivers under it (Mesa, the Vulkan loader) print diagnostics straight to file
// descriptor 2 from native code ("Warning: maxDynamicUniformBuffersPerPipelineLayout artificially
// reduced …", "error: XDG_RUNTIME_DIR is invalid …"), which no JavaScript stream sees. Node has no
// dup2, so `quietStderr` moves fd 2 by hand: it opens a second descriptor on the same stderr
// (/dev/fd/2: on Linux a fresh open of the same terminal, pipe or file), closes fd 2 and opens a
// capture file, which POSIX gives the lowest free descriptor: 2. Afterwards it puts stderr back the same
// way, drops the lines in Dawn's and the drivers' formats (unless METAGRAD_DEBUG=1) and writes the rest
// (whatever JavaScript printed meanwhile) to stderr. Limits, by design:
//  - only while acquiring an adapter and a device (what Dawn prints later, e.g. about a shader, passes);
//  - only when stderr is a terminal, a pipe, or a file that stdout does not share (reopening a file
//    that `>log 2>&1` shares would give stderr its own offset); a socket is left alone;
//  - POSIX only (Linux, macOS); on Windows nothing is captured;
//  - another thread that opens a file in the instant between the close and the open would get fd 2;
//    metagrad opens nothing then, but a program with file reads in flight on libuv's thread pool
//    could in principle lose that race (a dup2 through an FFI library such as koffi would close it).
import { InvalidOptionError } from '../errors.js';

export function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

/** METAGRAD_DEBUG=1 (or any value but '' and '0') shows Dawn's and the drivers' own stderr lines. */
export function debugEnabled(): boolean {
  const v = isNode() ? process.env.METAGRAD_DEBUG : undefined;
  return v !== undefined && v !== '' && v !== '0';
}

/** A Node built-in, loaded by a name that bundlers do not try to resolve for a browser. */
export async function nodeBuiltin<T>(name: string): Promise<T> {
  const spec = `node:${name}`;
  return (await import(/* @vite-ignore */ spec)) as T;
}

type Fs = typeof import('node:fs');
type Os = typeof import('node:os');
type Path = typeof import('node:path');

export const ADAPTER_PATHS = ['vulkan', 'opengles', 'swiftshader'] as const;
export type NodeAdapterPath = (typeof ADAPTER_PATHS)[number];

/** METAGRAD_ADAPTER, checked: a path name, or undefined when unset, empty or 'auto' (the default order). */
export function adapterFromEnv(): NodeAdapterPath | undefined {
  const raw = isNode() ? process.env.METAGRAD_ADAPTER : undefined;
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'auto') return undefined;
  return checkAdapterPath(raw.trim(), 'METAGRAD_ADAPTER');
}

export function checkAdapterPath(value: string, where: string): NodeAdapterPath {
  if ((ADAPTER_PATHS as readonly string[]).includes(value)) return value as NodeAdapterPath;
  throw new InvalidOptionError(
    `${where} is ${JSON.stringify(value)}, which is not a WebGPU adapter path. Valid values: ${ADAPTER_PATHS.join(', ')}` +
      `${where === 'METAGRAD_ADAPTER' ? " (or leave it unset, or 'auto', for hardware Vulkan then OpenGL ES)" : ''}.`,
    `Use one of ${ADAPTER_PATHS.join(', ')}; \`metagrad info\` lists which ones work on this machine.`,
  );
}

let environmentReady = false;

/**
 * Prepares the environment the drivers read, once, before the first probe: XDG_RUNTIME_DIR must name
 * a directory of this user that only this user can enter (Mesa's EGL and libwayland complain on
 * stderr otherwise); when it does not, a private temporary one (mode 0700) is made and removed at exit.
 */
export async function prepareEnvironment(): Promise<void> {
  if (environmentReady || !isNode()) return;
  environmentReady = true;
  const fs = await nodeBuiltin<Fs>('fs');
  const current = process.env.XDG_RUNTIME_DIR;
  if (current && validRuntimeDir(fs, current)) return;
  try {
    const os = await nodeBuiltin<Os>('os');
    const path = await nodeBuiltin<Path>('path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metagrad-runtime-'));
    fs.chmodSync(dir, 0o700);
    process.env.XDG_RUNTIME_DIR = dir;
    process.once('exit', () => { try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ } });
  } catch {
    // No writable temporary directory: the drivers may complain, nothing else depends on it.
  }
}

function validRuntimeDir(fs: Fs, dir: string): boolean {
  try {
    if (!dir.startsWith('/')) return false;
    const st = fs.statSync(dir);
    const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
    return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/** Sets environment variables for the duration of `fn` and restores them after (unset stays unset). */
export async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const before: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    before[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Lines in the formats of Dawn (dawn/common/Log.cpp: "Warning: …", then the source location) and of
 * the drivers under it. Anything else captured (what JavaScript printed meanwhile) is written back. */
const NATIVE_LINE = [
  /^(Warning|Info|Debug): /,
  /^\s+at .*\.(cpp|cc|c|h|mm):\d+\)\s*$/,
  /^error: XDG_RUNTIME_DIR/,
  /^(MESA-LOADER|MESA|libEGL|libGL|EGL|WARNING: lavapipe|radv|ANV|INTEL-MESA|amdgpu)[:\s]/,
  /^ICD|^Loader Message|^VUID|^Validation (Error|Warning)/,
];

export function isNativeNoise(line: string): boolean {
  return NATIVE_LINE.some((re) => re.test(line));
}

/** Splits captured text into the lines to drop (Dawn's and the drivers') and the text to write back. */
export function splitCaptured(text: string): { native: string[]; rest: string } {
  const native: string[] = [];
  const rest: string[] = [];
  let lastNative = false;
  const lines = text.split('\n');
  const trailing = lines[lines.length - 1] === '';
  if (trailing) lines.pop();
  for (const line of lines) {
    if (isNativeNoise(line) || (lastNative && line.trim() === '')) {
      native.push(line);
      lastNative = true;
    } else {
      rest.push(line);
      lastNative = false;
    }
  }
  return { native: native.filter((l) => l.trim() !== ''), rest: rest.length ? rest.join('\n') + (trailing ? '\n' : '') : '' };
}

interface Capture {
  fs: Fs;
  saved: number;
  file: string;
  fd: number;
  dir: string;
}

let depth = 0;
let opening: Promise<Capture | null> | null = null;
let current: Capture | null = null;
/** The native lines dropped by the last capture (for error messages when acquisition fails). */
let dropped: string[] = [];

/**
 * Runs `fn` (an adapter or device acquisition) with Dawn's and the drivers' stderr lines held back;
 * returns its result and the native lines it dropped. Calls that overlap share one capture.
 */
export async function quietStderr<T>(fn: () => Promise<T>): Promise<{ value: T; native: string[] }> {
  if (!isNode() || debugEnabled()) return { value: await fn(), native: [] };
  depth++;
  if (depth === 1) {
    opening = startCapture();
    dropped = [];
  }
  let value: T;
  try {
    current = await opening;
    value = await fn();
  } finally {
    depth--;
    // Every caller has passed the await above before any reaches here with depth 0, so `current` is
    // the capture they shared; it is finished synchronously, before a new caller can open another.
    if (depth === 0) {
      const c = current;
      opening = null;
      current = null;
      if (c) dropped = finishCapture(c);
    }
  }
  return { value, native: depth === 0 ? dropped : [] };
}

async function startCapture(): Promise<Capture | null> {
  if (process.platform === 'win32') return null;
  const fs = await nodeBuiltin<Fs>('fs');
  const os = await nodeBuiltin<Os>('os');
  const path = await nodeBuiltin<Path>('path');
  let saved = -1;
  let dir = '';
  // Node makes process.stderr's stream on first use, by the type of fd 2: make it now, while fd 2 is
  // still the real stderr (a terminal stays a terminal stream).
  void process.stderr.fd;
  try {
    // fds 0 and 1 must be open, so that the lowest free descriptor is 2 once it is closed.
    fs.fstatSync(0);
    const out = fs.fstatSync(1);
    const err = fs.fstatSync(2);
    if (err.isSocket()) return null;
    if (err.isFile() && out.dev === err.dev && out.ino === err.ino) return null;
    if (!(err.isCharacterDevice() || err.isFIFO() || err.isFile())) return null;
    saved = fs.openSync('/dev/fd/2', 'a');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metagrad-stderr-'));
    const file = path.join(dir, 'native.log');
    const fd = fs.openSync(file, 'w+');
    fs.closeSync(2);
    const two = fs.openSync(file, 'a');
    if (two !== 2) {
      // Another thread's open took descriptor 2 in between (see the limits above): it is not ours to
      // close, so stderr cannot be put back; stop here without touching it.
      fs.closeSync(two);
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
      return null;
    }
    return { fs, saved, file, fd, dir };
  } catch {
    if (saved >= 0) { try { fs.closeSync(saved); } catch { /* nothing to undo */ } }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

/** Reopens the saved stderr as fd 2 (the lowest free descriptor once 2 is closed). */
function restore(fs: Fs, saved: number): void {
  try { fs.fstatSync(2); fs.closeSync(2); } catch { /* already closed */ }
  const back = fs.openSync(`/dev/fd/${saved}`, 'a');
  if (back !== 2) fs.closeSync(back);
  fs.closeSync(saved);
}

function finishCapture(c: Capture): string[] {
  const { fs } = c;
  restore(fs, c.saved);
  let text = '';
  try { text = fs.readFileSync(c.file, 'utf8'); } catch { /* nothing captured */ }
  try { fs.closeSync(c.fd); } catch { /* closed */ }
  fs.rmSync(c.dir, { recursive: true, force: true });
  const { native, rest } = splitCaptured(text);
  if (rest) process.stderr.write(rest);
  return native;
}
