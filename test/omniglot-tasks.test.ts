// Omniglot N-way K-shot episodes (src/tasks/source.ts OmniglotSource): the WGSL sampler against its CPU
// twin (same bits, train and test splits, several iterations), the episode structure (N distinct
// classes, labels a relabelling consistent across support and query, distinct drawers within a class),
// disjoint alphabet splits, rotations against a direct rotation, and a tiny MLP trained on the source
// on both backends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sampleTasks, type SampleShape } from '../src/cpu/sample-tasks.js';
import { loadOmniglotEmbedded } from '../src/node/omniglot.js';
import { embeddedSubsetDir, loadFashionMnist } from '../src/node/images.js';
import { fashionEpisodes, OMNIGLOT_EMBEDDED_SPLIT, OMNIGLOT_TUNING_SPLIT, omniglotPool, withValidation, type OmniglotSource, type Split } from '../src/tasks/source.js';
import { createLearner } from '../src/learner.js';
import { InvalidOptionError, ShapeError } from '../src/errors.js';
import { assertClose, exactlyEqual, gpuSample, maxAbs, thrown, withGpu } from './helpers.js';

const set = loadOmniglotEmbedded();
const N = 5, K = 2, Q = 3;
const source: OmniglotSource = { kind: 'omniglot', set, ways: N, shots: K, queries: Q };
const shapeOf = (tasks: number): SampleShape => ({ tasks, supportShots: N * K, queryShots: N * Q });
const P = 784;


/** The 28×28 image turned clockwise by rot·90°, by repeated direct quarter turns: out[y][x] = in[S−1−x][y]. */
function rotateDirect(img: Uint8Array, rot: number): Uint8Array {
  let cur = img;
  for (let r = 0; r < rot; r++) {
    const out = new Uint8Array(P);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) out[y * 28 + x] = cur[(27 - x) * 28 + y];
    cur = out;
  }
  return cur;
}

/** Every (image, rotation) of the set, by its bytes: which images and rotations a row can be. */
const byBytes = new Map<string, { image: number; rot: number }[]>();
for (let i = 0; i < set.drawer.length; i++) {
  for (let rot = 0; rot < 4; rot++) {
    const key = Buffer.from(rotateDirect(set.images.subarray(i * P, (i + 1) * P), rot)).toString('base64');
    const list = byBytes.get(key) ?? [];
    list.push({ image: i, rot });
    byBytes.set(key, list);
  }
}
const rowBytes = (x: Float32Array, row: number) => Uint8Array.from(x.subarray(row * P, (row + 1) * P), (v) => Math.round(v * 255));
/** The (image, rotation) pairs a row can be (several where a character looks the same turned, or two
 * drawings coincide); meta-test rows only unrotated. */
function identify(x: Float32Array, row: number, split: Split): { image: number; rot: number }[] {
  const found = byBytes.get(Buffer.from(rowBytes(x, row)).toString('base64')) ?? [];
  return found.filter((f) => split === 'train' || f.rot === 0);
}

test('the Omniglot sampler gives the same bits on GPU and CPU (train and test, several iterations)', async () => {
  for (const split of ['train', 'test'] as const) {
    for (const iteration of [0, 1, 17]) {
      const gpu = await gpuSample(source, shapeOf(12), 9, iteration, split);
      const cpu = sampleTasks(source, shapeOf(12), 9, iteration, split);
      for (const k of ['supportX', 'supportY', 'queryX', 'queryY'] as const) exactlyEqual(`${k} (${split}, iteration ${iteration})`, gpu[k], cpu[k]);
    }
  }
  // A 20-way task with 1 shot and 19 queries: every drawer of a character, more rows than a workgroup.
  const wide: OmniglotSource = { kind: 'omniglot', set, ways: 20, shots: 1, queries: 19 };
  const shape = { tasks: 3, supportShots: 20, queryShots: 380 };
  const gpu = await gpuSample(wide, shape, 4, 2, 'train');
  const cpu = sampleTasks(wide, shape, 4, 2, 'train');
  for (const k of ['supportX', 'supportY', 'queryX', 'queryY'] as const) exactlyEqual(`${k} (20-way)`, gpu[k], cpu[k]);
});

test('episodes: N distinct classes, consistent relabelling, distinct drawers, split alphabets', () => {
  const testAlphabets = new Set(OMNIGLOT_EMBEDDED_SPLIT.test.map((a) => set.alphabets.indexOf(a)));
  assert.is(testAlphabets.size, 2);
  assert.ok(OMNIGLOT_EMBEDDED_SPLIT.train.every((a) => set.alphabets.includes(a) && !OMNIGLOT_EMBEDDED_SPLIT.test.includes(a)), 'train alphabets known and disjoint from test');
  const trainPool = omniglotPool(source, 'train').characters, testPool = omniglotPool(source, 'test').characters;
  assert.ok(trainPool.every((c) => !testPool.includes(c)), 'character pools disjoint');
  assert.ok(testPool.every((c) => testAlphabets.has(set.characters[c].alphabet)), 'test pool is the test alphabets');
  assert.ok(trainPool.every((c) => !testAlphabets.has(set.characters[c].alphabet)), 'train pool avoids the test alphabets');
  for (const split of ['train', 'test'] as const) {
    const T = 30;
    const b = sampleTasks(source, shapeOf(T), 3, 5, split);
    const rotationsSeen = new Set<number>();
    const labelOrder = new Set<string>();
    for (let t = 0; t < T; t++) {
      const classOf = new Map<number, Set<string>>();  // label → candidate (character, rotation) keys
      const drawersOf = new Map<number, number[][]>();
      const rows = [...Array.from({ length: N * K }, (_, i) => ({ x: b.supportX, y: b.supportY, row: t * N * K + i, i })),
        ...Array.from({ length: N * Q }, (_, i) => ({ x: b.queryX, y: b.queryY, row: t * N * Q + i, i }))];
      for (const { x, y, row, i } of rows) {
        const label = y[row];
        assert.is(label, i % N, `${split} task ${t}: row ${i} has label ${label}, rows cycle through the labels`);
        const found = identify(x, row, split);
        assert.ok(found.length > 0, `${split} task ${t} row ${i} is an image of the set, turned by a right angle`);
        const pool = split === 'train' ? trainPool : testPool;
        assert.ok(found.some((f) => pool.includes(set.character[f.image])), `${split} task ${t} row ${i} comes from the ${split} pool`);
        const keys = new Set(found.map((f) => `${set.character[f.image]}:${f.rot}`));
        const prev = classOf.get(label);
        classOf.set(label, prev ? new Set([...prev].filter((k) => keys.has(k))) : keys);
        assert.ok(classOf.get(label)!.size > 0, `${split} task ${t}: label ${label} means one (character, rotation) in support and query`);
        (drawersOf.get(label) ?? drawersOf.set(label, []).get(label)!).push(found.map((f) => set.drawer[f.image]));
        for (const f of found) rotationsSeen.add(f.rot);
      }
      // N distinct classes: the labels whose rows pin down one (character, rotation) name different ones.
      const resolved = [...classOf.values()].filter((s) => s.size === 1).map((s) => [...s][0]);
      assert.is(classOf.size, N);
      assert.is(new Set(resolved).size, resolved.length, `${split} task ${t}: labels name distinct classes (${resolved})`);
      assert.ok(resolved.length >= N - 1, `${split} task ${t}: ${resolved.length} of ${N} labels resolved to one class`);
      labelOrder.add([...classOf.values()].map((s) => [...s].sort()[0]).join('|'));
      // Distinct drawers within a class (images that match several drawers count as any of them).
      for (const [label, lists] of drawersOf) {
        const unique = lists.filter((l) => l.length === 1).map((l) => l[0]);
        assert.is(new Set(unique).size, unique.length, `${split} task ${t} label ${label}: drawers ${unique} distinct`);
        assert.is(lists.length, K + Q);
      }
    }
    if (split === 'train') assert.is(rotationsSeen.size, 4, 'meta-train uses all four rotations');
    else assert.equal([...rotationsSeen], [0], 'meta-test does not rotate');
    assert.is(labelOrder.size, T, `${split}: each task its own classes`);
  }
});

test('a validation split: its own alphabets, unrotated, same bits on GPU and CPU; errors where there is none', async () => {
  const tuning: OmniglotSource = { ...source, split: OMNIGLOT_TUNING_SPLIT };
  assert.equal(withValidation(OMNIGLOT_EMBEDDED_SPLIT, ['Greek']), OMNIGLOT_TUNING_SPLIT);
  const pools = Object.fromEntries((['train', 'val', 'test'] as const).map((s) => [s, omniglotPool(tuning, s).characters]));
  const alphabetsOf = (cs: number[]) => new Set(cs.map((c) => set.alphabets[set.characters[c].alphabet]));
  assert.equal([...alphabetsOf(pools.val)], ['Greek']);
  assert.equal([...alphabetsOf(pools.test)].sort(), ['Sanskrit', 'Tagalog']);
  assert.not.ok(alphabetsOf(pools.train).has('Greek'), 'Greek is no longer meta-train');
  // The test split of the tuning split is the embedded split's test split: same tasks, bit for bit.
  exactlyEqual('test batch unchanged by a val split', sampleTasks(tuning, shapeOf(6), 2, 0, 'test').queryX, sampleTasks(source, shapeOf(6), 2, 0, 'test').queryX);
  const val = sampleTasks(tuning, shapeOf(8), 2, 0, 'val');
  for (let row = 0; row < 8 * N * Q; row++) {
    const found = identify(val.queryX, row, 'val');
    assert.ok(found.some((f) => pools.val.includes(set.character[f.image])), `val row ${row} comes from Greek, unrotated`);
  }
  for (const iteration of [0, 3]) {
    const gpu = await gpuSample(tuning, shapeOf(7), 5, iteration, 'val');
    const cpu = sampleTasks(tuning, shapeOf(7), 5, iteration, 'val');
    for (const k of ['supportX', 'supportY', 'queryX', 'queryY'] as const) exactlyEqual(`${k} (val, iteration ${iteration})`, gpu[k], cpu[k]);
  }
  assert.ok((await thrown(() => sampleTasks(source, shapeOf(2), 1, 0, 'val'))) instanceof InvalidOptionError, 'no val split: a clear error');
  const shared = await thrown(() => omniglotPool({ ...source, split: { ...OMNIGLOT_TUNING_SPLIT, val: ['Greek', 'Latin'] } }, 'val'));
  assert.ok(shared instanceof InvalidOptionError && /Latin is in both the val and train/.test(shared.message), String(shared));
});

test('Fashion-MNIST N-way episodes: classes 0–5 in meta-train, 6–9 held out, no rotations, same bits on GPU and CPU', async () => {
  const images = loadFashionMnist(embeddedSubsetDir());
  const fashion = fashionEpisodes(images, { ways: 4, shots: 2, queries: 3 });
  const shape = { tasks: 9, supportShots: 8, queryShots: 12 };
  // Each row is one of the set's images, untouched (no rotation), of a class of the split.
  const classOfImage = new Map<string, number>();
  for (let c = 0; c < 10; c++) {
    for (let k = 0; k < images.classCount[c]; k++) {
      const i = images.classStart[c] + k;
      classOfImage.set(Buffer.from(images.data.subarray(i * P, (i + 1) * P)).toString('base64'), c);
    }
  }
  for (const split of ['train', 'test'] as const) {
    const b = sampleTasks(fashion, shape, 6, 1, split);
    for (let t = 0; t < shape.tasks; t++) {
      const classes = new Map<number, number>();  // label → class
      for (const [x, y, rows] of [[b.supportX, b.supportY, 8], [b.queryX, b.queryY, 12]] as const) {
        for (let i = 0; i < rows; i++) {
          const row = t * rows + i;
          const c = classOfImage.get(Buffer.from(rowBytes(x, row)).toString('base64'));
          assert.ok(c !== undefined, `${split} task ${t} row ${i}: an image of the set, unrotated`);
          assert.ok(split === 'train' ? c! < 6 : c! >= 6, `${split} task ${t}: class ${c} belongs to the ${split} side`);
          const label = y[row];
          assert.ok(!classes.has(label) || classes.get(label) === c, `${split} task ${t}: label ${label} means one class`);
          classes.set(label, c!);
        }
      }
      assert.is(new Set(classes.values()).size, 4, `${split} task ${t}: 4 distinct classes`);
    }
    const gpu = await gpuSample(fashion, shape, 6, 1, split);
    for (const k of ['supportX', 'supportY', 'queryX', 'queryY'] as const) exactlyEqual(`Fashion ${k} (${split})`, gpu[k], b[k]);
  }
  // The held-out side has 4 classes: 5-way test tasks are refused with a clear error.
  const five = fashionEpisodes(images, { ways: 5, shots: 1, queries: 1 });
  assert.ok((await thrown(() => sampleTasks(five, { tasks: 1, supportShots: 5, queryShots: 5 }, 1, 0, 'test'))) instanceof ShapeError);
});

test('the labels are a random order of the classes (no class owns an output unit)', () => {
  // The same class lands on different labels across tasks: count labels per (character, rotation).
  const b = sampleTasks({ ...source, ways: 20 } as OmniglotSource, { tasks: 200, supportShots: 40, queryShots: 60 }, 1, 0, 'test');
  const labelsOf = new Map<string, Set<number>>();
  for (let r = 0; r < b.supportY.length; r++) {
    const found = identify(b.supportX, r, 'test');
    if (found.length !== 1) continue;
    const key = String(set.character[found[0].image]);
    (labelsOf.get(key) ?? labelsOf.set(key, new Set()).get(key)!).add(b.supportY[r]);
  }
  const spread = [...labelsOf.values()].map((s) => s.size);
  assert.ok(spread.reduce((a, v) => a + v, 0) / spread.length > 5, `classes take many labels (mean ${spread.reduce((a, v) => a + v, 0) / spread.length})`);
});

test('a rotated row equals the source image turned directly', () => {
  // Pick rows of the train split and check each against every rotation of the image it came from.
  const b = sampleTasks(source, shapeOf(40), 11, 3, 'train');
  const checked = [0, 0, 0, 0];
  for (let r = 0; r < b.supportY.length; r++) {
    const found = identify(b.supportX, r, 'train');
    if (found.length !== 1) continue;
    const { image, rot } = found[0];
    const direct = rotateDirect(set.images.subarray(image * P, (image + 1) * P), rot);
    const row = b.supportX.subarray(r * P, (r + 1) * P);
    for (let d = 0; d < P; d++) assert.is(row[d], Math.fround(direct[d] * Math.fround(1 / 255)), `row ${r} pixel ${d}`);
    assert.ok(row.every((v) => v >= 0 && v <= 1));
    checked[rot]++;
  }
  assert.ok(checked.every((c) => c > 10), `rows of each rotation checked: ${checked}`);
  // A hand-made check of the direction: a single ink pixel at the top left goes to the top right.
  const dot = new Uint8Array(P);
  dot[0] = 255;
  assert.is(rotateDirect(dot, 1)[27], 255);
});

test('train() checks shots against the source', async () => {
  const learner = await createLearner({ backend: 'cpu', dim: 784, model: { kind: 'mlp', hidden: [16], classes: N } });
  const e = await thrown(() => learner.train({ source, iterations: 1, tasksPerBatch: 2, supportShots: K, queryShots: Q }));
  assert.instance(e, ShapeError);
  assert.match(e.message, /10 support and 15 query rows/);
  const few = await thrown(() => learner.train({ source: { ...source, ways: 6 }, iterations: 1, tasksPerBatch: 2 }));
  assert.match(few.message, /labels 6 classes per task but the model has 5 outputs/);
  const shared = await thrown(() => learner.train({ source: { ...source, split: { train: ['Greek', 'Latin'], test: ['Latin', 'Tagalog'] } }, iterations: 1 }));
  assert.match(shared.message, /Latin is in both/);
  learner.destroy();
});

test('a tiny MLP trained on the source: GPU θ equals CPU θ', () =>
  withGpu(async () => {
    const options = { dim: 784, model: { kind: 'mlp' as const, hidden: [16], classes: N }, innerLr: 0.4, outerLr: 0.05, seed: 6 };
    const gpu = await createLearner({ ...options, backend: 'webgpu' });
    const cpu = await createLearner({ ...options, backend: 'cpu' });
    const start = await cpu.getParams();
    const train = { source, iterations: 3, tasksPerBatch: 4, supportShots: N * K, queryShots: N * Q };
    await gpu.train(train);
    await cpu.train(train);
    const end = await cpu.getParams();
    assert.ok(maxAbs(end.map((v, i) => v - start[i])) > 1e-4, 'training moved the parameters');
    assertClose('θ after 3 iterations', await gpu.getParams(), end, 1e-4, 0);
    gpu.destroy();
    cpu.destroy();
  }));

test.run();
