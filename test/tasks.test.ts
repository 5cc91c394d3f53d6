// Task sources: the WGSL sampler against its CPU twin (same bits for the seed and image sources), the
// stated distributions (ranges, label balance, the class split), and the IDX parser on good and
// corrupt files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sampleTasks } from '../src/cpu/sample-tasks.js';
import { embeddedSubsetDir, loadFashionMnist } from '../src/node/images.js';
import { encodeIdx, parseIdx } from '../src/tasks/idx.js';
import { FASHION_SPLIT, type TaskSource } from '../src/tasks/source.js';
import { pcgHash } from '../src/rng.js';
import { FileError } from '../src/errors.js';
import { exactlyEqual, gpuSample, thrown } from './helpers.js';

const fashion: TaskSource = { kind: 'images', images: loadFashionMnist(embeddedSubsetDir()), split: FASHION_SPLIT };


test('WGSL pcgHash gives the bits of the TS pcgHash (through the seed source, which is pure hashing)', async () => {
  const shape = { tasks: 7, supportShots: 5, queryShots: 9 };
  for (const [iteration, split] of [[0, 'train'], [12345, 'train'], [3, 'test']] as const) {
    const gpu = await gpuSample({ kind: 'seed', dim: 13 }, shape, 99, iteration, split);
    const cpu = sampleTasks({ kind: 'seed', dim: 13 }, shape, 99, iteration, split);
    for (const k of ['supportX', 'supportY', 'queryX', 'queryY'] as const) exactlyEqual(`${k} (iteration ${iteration}, ${split})`, gpu[k], cpu[k]);
  }
  // The hash itself against values computed by hand from PCG's RXS-M-XS definition.
  const reference = (x: number) => {
    const state = BigInt.asUintN(32, BigInt(x) * 747796405n + 2891336453n);
    const word = BigInt.asUintN(32, ((state >> ((state >> 28n) + 4n)) ^ state) * 277803737n);
    return Number((word >> 22n) ^ word);
  };
  for (const x of [0, 1, 2, 0xffffffff, 123456789]) assert.is(pcgHash(x), reference(x), `pcgHash(${x})`);
});

test('the image sampler gives the same bits on GPU and CPU, and respects the class split', async () => {
  const shape = { tasks: 40, supportShots: 6, queryShots: 10 };
  for (const split of ['train', 'test'] as const) {
    const gpu = await gpuSample(fashion, shape, 5, 77, split);
    const cpu = sampleTasks(fashion, shape, 5, 77, split);
    for (const k of ['supportX', 'supportY', 'queryX', 'queryY'] as const) exactlyEqual(`${k} (${split})`, gpu[k], cpu[k]);
  }
});

test('the linear sampler: identical rows, labels equal up to float32 rounding of σ(x·w)', async () => {
  const shape = { tasks: 50, supportShots: 10, queryShots: 10 };
  const source: TaskSource = { kind: 'linear', dim: 21 };
  const gpu = await gpuSample(source, shape, 3, 8, 'train');
  const cpu = sampleTasks(source, shape, 3, 8, 'train');
  exactlyEqual('supportX', gpu.supportX, cpu.supportX);
  exactlyEqual('queryX', gpu.queryX, cpu.queryX);
  let differ = 0;
  for (let i = 0; i < cpu.supportY.length; i++) if (gpu.supportY[i] !== cpu.supportY[i]) differ++;
  assert.ok(differ <= 2, `${differ} of ${cpu.supportY.length} labels differ`);
});

test('sampled batches have the stated distributions', () => {
  const seedBatch = sampleTasks({ kind: 'seed', dim: 10 }, { tasks: 200, supportShots: 10, queryShots: 10 }, 1, 0, 'train');
  const inRange = (a: Float32Array, lo: number, hi: number) => a.every((v) => v >= lo && v < hi);
  assert.ok(inRange(seedBatch.supportX, 0, 1), 'seed: x in [0, 1)');
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean(seedBatch.supportX) - 0.5) < 0.01, `seed: mean x ≈ 0.5, got ${mean(seedBatch.supportX)}`);
  assert.ok(Math.abs(mean(seedBatch.supportY) - 0.5) < 0.03, `seed: label rate ≈ 0.5, got ${mean(seedBatch.supportY)}`);

  const lin = sampleTasks({ kind: 'linear', dim: 8 }, { tasks: 100, supportShots: 10, queryShots: 10 }, 1, 0, 'train');
  for (let r = 0; r < 1000; r++) {
    assert.is(lin.supportX[r * 8 + 7], 1, 'linear: bias feature');
    for (let d = 0; d < 7; d++) assert.ok(lin.supportX[r * 8 + d] >= -1 && lin.supportX[r * 8 + d] < 1, 'linear: x in [−1, 1)');
  }

  const shape = { tasks: 300, supportShots: 4, queryShots: 6 };
  const { images } = fashion as Extract<TaskSource, { kind: 'images' }>;
  for (const split of ['train', 'test'] as const) {
    const [lo, hi] = FASHION_SPLIT[split];
    const b = sampleTasks(fashion, shape, 2, 1, split);
    assert.is(mean(b.supportY), 0.5, `${split}: balanced shots`);
    const seen = new Set<number>();
    for (let r = 0; r < shape.tasks * shape.supportShots; r++) {
      const row = b.supportX.subarray(r * 785, (r + 1) * 785);
      assert.is(row[784], 1, 'bias feature');
      assert.ok(row.every((v) => v >= 0 && v <= 1), 'pixels in [0, 1]');
      // Which class did this row come from? Find its image.
      const bytes = Uint8Array.from(row.subarray(0, 784), (v) => Math.round(v * 255));
      let cls = -1;
      for (let c = 0; c < 10 && cls < 0; c++) {
        for (let i = images.classStart[c]; i < images.classStart[c] + images.classCount[c]; i++) {
          if (images.data.subarray(i * 784, (i + 1) * 784).every((v, d) => v === bytes[d])) { cls = c; break; }
        }
      }
      assert.ok(cls >= lo && cls < hi, `${split} row ${r} comes from class ${cls}, outside [${lo}, ${hi})`);
      seen.add(cls);
      if (r > 200) break;
    }
    assert.is(seen.size, hi - lo, `${split}: every class of the split appears`);
  }
});

test('the IDX parser reads good files and names what is wrong with corrupt ones', async () => {
  const good = encodeIdx([2, 2, 2], Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.equal(parseIdx(good, 'good').shape, [2, 2, 2]);
  const cases: Array<[Uint8Array, RegExp]> = [
    [good.slice(0, 3), /has 3 bytes/],
    [Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]), /magic number/],
    [Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 0]), /element type 0xd/],
    [good.slice(0, good.length - 1), /promises 2×2×2 = 8 bytes, the file holds 7/],
  ];
  for (const [bytes, message] of cases) {
    const e = await thrown(() => parseIdx(bytes, 'bad.idx'));
    assert.instance(e, FileError);
    assert.match(e.message, message);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'metagrad-idx-'));
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(encodeIdx([2, 28, 28], new Uint8Array(2 * 784))));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), Buffer.from('not gzip at all, but named .gz'));
  assert.match((await thrown(() => loadFashionMnist(dir))).message, /not a valid IDX file|corrupt gzip/);
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([3], Uint8Array.from([0, 1, 2]))));
  assert.match((await thrown(() => loadFashionMnist(dir))).message, /holds 2 images but .* holds 3 labels/);
  assert.match((await thrown(() => loadFashionMnist(path.join(dir, 'missing')))).message, /No train-images-idx3-ubyte/);
});

test.run();
