// The CPU backend's WebAssembly SIMD GEMM (scripts/gemm-wat.mjs → src/cpu/wasm/gemm-binary.ts, used by
// src/cpu/net/gemm.ts): the committed bytes are what the generator assembles to; the kernel gives the
// same bits as the JavaScript GEMMs it stands in for, over shapes that reach every tail of its blocking
// (odd rows, columns not a multiple of 8 or 2, K not a multiple of 4) and inputs with zero blocks (which
// both skip); and a whole order-2 MAML step on a Conv-4 gives the same parameters with SIMD on and off.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assembleGemm, binaryModuleText, GEMM_BINARY_TS } from '../scripts/build-wasm.mjs';
import { readFileSync } from 'node:fs';
import { gemmAcc, gemmAccJs, gemmAtB, gemmAtBJs } from '../src/cpu/net/gemm.js';
import { cpuSimdActive, setCpuSimd } from '../src/cpu/wasm/gemm.js';
import { createLearner } from '../src/learner.js';
import { randomArray } from './helpers.js';
import { uniform01 } from '../src/rng.js';

/** Random float64 values in [−1, 1], about `zeros` of them zero (ReLU outputs, padding taps). */
function values(n: number, seed: number, zeros: number): Float64Array {
  const a = Float64Array.from(randomArray(n, seed, 1), (v) => v + 1e-9 * v * v);
  for (let i = 0; i < n; i++) if (uniform01(seed, 2, i) < zeros) a[i] = 0;
  return a;
}

function sameBits(a: Float64Array, b: Float64Array, what: string): void {
  assert.is(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i]) && !(a[i] === 0 && b[i] === 0)) assert.unreachable(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
  }
}

const SHAPES: Array<[number, number, number]> = [
  [1, 4, 8], [2, 4, 8], [3, 5, 9], [7, 13, 11], [16, 9, 64], [25, 576, 64], [49, 576, 64], [5, 64, 5], [33, 17, 3], [4, 1225, 2],
];

test('the committed WebAssembly is what scripts/gemm-wat.mjs assembles to (run scripts/build-wasm.mjs after changing it)', async () => {
  const bytes = await assembleGemm();
  assert.is(readFileSync(GEMM_BINARY_TS, 'utf8'), binaryModuleText(bytes));
});

test('Node has WebAssembly SIMD: the CPU backend uses the kernel', () => {
  assert.ok(cpuSimdActive(), 'WebAssembly SIMD unavailable or switched off (METAGRAD_CPU_SIMD=0?)');
});

test('gemmAcc on the SIMD kernel gives the JavaScript GEMM\'s bits (every blocking tail, zero blocks, an offset W)', () => {
  for (const [M, K, N] of SHAPES) {
    for (const zeros of [0, 0.6]) {
      const A = values(M * K, M + K, zeros);
      const wOff = 5;
      const W = values(wOff + K * N, K + N + 1, 0);
      const Y0 = values(M * N, M * N, 0);
      const yJs = Y0.slice(), ySimd = Y0.slice();
      gemmAccJs(yJs, A, M, K, W, wOff, N);
      gemmAcc(ySimd, A, M, K, W, wOff, N);
      sameBits(ySimd, yJs, `gemmAcc ${M}×${K}×${N} zeros ${zeros}`);
      assert.not.equal(Array.from(ySimd), Array.from(Y0), 'the product changed Y');
    }
  }
});

test('gemmAtB (a weight gradient, Aᵀ·dY) on the SIMD kernel gives the JavaScript GEMM\'s bits', () => {
  for (const [M, K, N] of SHAPES) {
    const A = values(M * K, 3 * M + K, 0.5);
    const dY = values(M * N, M + 2 * N, 0.1);
    const gOff = 3;
    const G0 = values(gOff + K * N + 2, K * N, 0);
    const gJs = G0.slice(), gSimd = G0.slice();
    gemmAtBJs(gJs, gOff, A, M, K, dY, N);
    gemmAtB(gSimd, gOff, A, M, K, dY, N);
    sameBits(gSimd, gJs, `gemmAtB ${M}×${K}×${N}`);
  }
});

test('an order-2 MAML step on a Conv-4 (16 filters) gives the same parameters with SIMD on and off', async () => {
  const D = 784, T = 3, N = 5;
  const x = (rows: number, stream: number) => Float32Array.from({ length: T * rows * D }, (_, i) => (uniform01(9, stream, i) < 0.25 ? uniform01(9, stream + 1, i) : 0));
  const batch = {
    tasks: T, supportShots: N, queryShots: 2 * N,
    supportX: x(N, 1), supportY: Float32Array.from({ length: T * N }, (_, i) => i % N),
    queryX: x(2 * N, 3), queryY: Float32Array.from({ length: T * 2 * N }, (_, i) => i % N),
  };
  const run = async (simd: boolean) => {
    setCpuSimd(simd);
    try {
      const learner = await createLearner({ algorithm: 'maml', dim: D, model: { kind: 'conv4', classes: N, filters: 16 }, backend: 'cpu', threads: 1, order: 2, innerLr: 0.4, outerLr: 0.01, seed: 4 });
      try {
        await learner.step(batch);
        await learner.step(batch);
        return Float64Array.from(await learner.getParams());
      } finally {
        learner.destroy();
      }
    } finally {
      setCpuSimd(true);
    }
  };
  const on = await run(true), off = await run(false);
  sameBits(on, off, 'θ after two steps');
});

test.run();
