// The CPU backend's WebAssembly SIMD GEMM (scripts/gemm-wat.mjs): loaded once per thread, with its own
// linear memory as a scratch heap that operands are copied into. The kernel gives the same bits as the
// JavaScript gemmAcc it stands in for (same operation order per element), so a thread without
// WebAssembly SIMD (an old browser), or a user who switches it off (METAGRAD_CPU_SIMD=0, or
// setCpuSimd(false)), gets the same results, only slower.
import { GEMM_WASM_BASE64 } from './gemm-binary.js';

interface GemmKernel {
  memory: WebAssembly.Memory;
  /** A float64 view of the whole memory (replaced when the memory grows). */
  heap: Float64Array;
  /** Y[m·N + n] += Σ_k A[m·K + k]·W[k·N + n]; y, a, w byte offsets into the memory. */
  gemmAcc: (y: number, a: number, w: number, M: number, K: number, N: number) => void;
}

const PAGE = 65536;
/** Growing beyond this (per thread) is refused and the caller runs the JavaScript GEMM instead. */
const MAX_BYTES = 1 << 30;

let enabled = !(typeof process !== 'undefined' && process.env?.METAGRAD_CPU_SIMD === '0');
/** undefined: not tried yet; null: unavailable here. */
let kernel: GemmKernel | null | undefined;

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const text = atob(s);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function load(): GemmKernel | null {
  if (kernel !== undefined) return kernel;
  kernel = null;
  if (typeof WebAssembly === 'undefined') return null;
  try {
    const bytes = decodeBase64(GEMM_WASM_BASE64);
    // False where the engine lacks fixed-width SIMD; the module is under 4 KB, which browsers also
    // compile synchronously on the page's thread.
    if (!WebAssembly.validate(bytes)) return null;
    const memory = new WebAssembly.Memory({ initial: 16 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    kernel = { memory, heap: new Float64Array(memory.buffer), gemmAcc: instance.exports.gemm_acc as GemmKernel['gemmAcc'] };
  } catch {
    kernel = null;
  }
  return kernel;
}

/** The kernel with a heap of at least `floats` float64s, or null (unavailable, switched off, or the heap
 * would exceed MAX_BYTES): the caller then runs the JavaScript GEMM. */
export function simdGemm(floats: number): GemmKernel | null {
  if (!enabled) return null;
  const k = load();
  if (!k) return null;
  const bytes = floats * 8;
  if (bytes > k.memory.buffer.byteLength) {
    if (bytes > MAX_BYTES) return null;
    try {
      k.memory.grow(Math.ceil((bytes - k.memory.buffer.byteLength) / PAGE));
    } catch {
      return null;
    }
    k.heap = new Float64Array(k.memory.buffer);
  }
  return k;
}

/** Whether this thread's GEMMs run as WebAssembly SIMD. */
export function cpuSimdActive(): boolean {
  return enabled && load() !== null;
}

/** Switches the SIMD GEMM on or off for this thread (the bench compares the two; results are the same
 * bits either way). */
export function setCpuSimd(on: boolean): void {
  enabled = on;
}
