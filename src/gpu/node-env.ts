// Node-only setup around Dawn: the process environment its drivers read, and the lines they print.
// Nothing here is imported statically from a `node:` module, so browser bundles of metagrad resolve no
// Node built-in (the built-ins are loaded by a name held in a variable, which bundlers leave alone).
//
// Dawn and the drivers under it (Mesa, the Vulkan loader) print diagnostics straight to file
// descriptor 2 from native code ("Warning: maxDynamicUniformBuffersPerPipelineLayout artificially
// reduced …", " - While initializing adapter …", "error: XDG_RUNTIME_DIR is invalid …"), which no
// JavaScript stream sees. `quietStderr` points fd 2 at a capture file while an adapter and a device are
// acquired, then puts stderr back, drops the lines in Dawn's and the drivers' formats (unless
// METAGRAD_DEBUG=1) and writes the rest (whatever JavaScript printed meanwhile) to stderr.
// How fd 2 is moved:
//  - dup/dup2 from libc through ffi-rs (an optional dependency: a small N-API FFI with prebuilt
//    binaries and no install script). The saved descriptor is the same open file, so this works for a
//    terminal, a pipe, a socket and a file that stdout shares (`> log 2>&1`: same offset), and no other
//    thread can take descriptor 2 in between.
//  - Without ffi-rs (not installed, an unsupported platform): Node has no dup2, so fd 2 is closed and
//    the capture file opened (POSIX gives the lowest free descriptor: 2), and stderr is put back by
//    reopening /dev/fd/<saved>. That is a new open file for a regular file, so it is not done when
//    stdout shares stderr's file (the offsets would part) nor for a socket: there the lines pass.
// Only while acquiring (what Dawn prints later, e.g. about a shader, passes); POSIX only.
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
  // Dawn's context lines under a message (" - While initializing adapter (backend=…)").
  /^ - While /,
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
  /** Puts the real stderr back as fd 2. */
  restore: () => void;
  file: string;
  fd: number;
  dir: string;
}

type Libc = { dup(fd: number): number; dup2(from: number, to: number): number; close(fd: number): number };
let libc: Promise<Libc | null> | null = null;

/** dup, dup2 and close from the C library through ffi-rs, or null where that is unavailable. */
function loadLibc(): Promise<Libc | null> {
  libc ??= (async () => {
    if (process.platform === 'win32' || process.env.METAGRAD_NO_FFI === '1') return null;
    try {
      const name = 'ffi-rs';
      const ffi = (await import(/* @vite-ignore */ name)) as typeof import('ffi-rs');
      // '' opens the program itself, whose symbols include libc's (any libc: glibc, musl, macOS).
      ffi.open({ library: 'metagrad-libc', path: '' });
      const call = (funcName: string, args: number[]) => ffi.load({
        library: 'metagrad-libc', funcName, retType: ffi.DataType.I32, paramsType: args.map(() => ffi.DataType.I32), paramsValue: args,
      }) as number;
      return { dup: (fd) => call('dup', [fd]), dup2: (from, to) => call('dup2', [from, to]), close: (fd) => call('close', [fd]) };
    } catch {
      return null;
    }
  })();
  return libc;
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
  const c = await loadLibc();
  // Node makes process.stderr's stream on first use, by the type of fd 2: make it now, while fd 2 is
  // still the real stderr (a terminal stays a terminal stream).
  void process.stderr.fd;
  let dir = '';
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metagrad-stderr-'));
    const file = path.join(dir, 'native.log');
    if (c) {
      const fd = fs.openSync(file, 'w+');
      const saved = c.dup(2);
      if (saved < 0 || c.dup2(fd, 2) < 0) {
        if (saved >= 0) c.close(saved);
        fs.closeSync(fd);
        fs.rmSync(dir, { recursive: true, force: true });
        return null;
      }
      return { fs, file, fd, dir, restore: () => { c.dup2(saved, 2); c.close(saved); } };
    }
    return closeAndReopen(fs, file, dir);
  } catch {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

/** The fallback without dup2 (see the top of this file). */
function closeAndReopen(fs: Fs, file: string, dir: string): Capture | null {
  // fds 0 and 1 must be open, so that the lowest free descriptor is 2 once it is closed.
  fs.fstatSync(0);
  const out = fs.fstatSync(1);
  const err = fs.fstatSync(2);
  const shared = err.isFile() && out.dev === err.dev && out.ino === err.ino;
  if (err.isSocket() || shared || !(err.isCharacterDevice() || err.isFIFO() || err.isFile())) {
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
  const saved = fs.openSync('/dev/fd/2', 'a');
  const fd = fs.openSync(file, 'w+');
  fs.closeSync(2);
  const two = fs.openSync(file, 'a');
  if (two !== 2) {
    // Another thread's open took descriptor 2 in between: it is not ours to close, so stderr cannot
    // be put back; stop here without touching it.
    fs.closeSync(two);
    fs.closeSync(fd);
    fs.closeSync(saved);
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
  return { fs, file, fd, dir, restore: () => reopenStderr(fs, saved) };
}

/** Reopens the saved stderr as fd 2 (the lowest free descriptor once 2 is closed). */
function reopenStderr(fs: Fs, saved: number): void {
  try { fs.fstatSync(2); fs.closeSync(2); } catch { /* already closed */ }
  const back = fs.openSync(`/dev/fd/${saved}`, 'a');
  if (back !== 2) fs.closeSync(back);
  fs.closeSync(saved);
}

function finishCapture(c: Capture): string[] {
  const { fs } = c;
  c.restore();
  let text = '';
  try { text = fs.readFileSync(c.file, 'utf8'); } catch { /* nothing captured */ }
  try { fs.closeSync(c.fd); } catch { /* closed */ }
  fs.rmSync(c.dir, { recursive: true, force: true });
  const { native, rest } = splitCaptured(text);
  if (rest) process.stderr.write(rest);
  return native;
}
