// Types of scripts/build-wasm.mjs (for test/cpu-simd.test.ts).
export const GEMM_BINARY_TS: string;
export function assembleGemm(): Promise<Uint8Array>;
export function binaryModuleText(bytes: Uint8Array): string;
