// Bad data never trains, and error text stays bounded (issue 12, items 1 and 7): a Fashion-MNIST
// directory without some classes of the split is refused before training (library and CLI); CSV cells
// that overflow float32 or are empty are errors naming line and column; a 2 MB cell is quoted in a few
// dozen characters; a truncated or corrupt IDX file is a FileError naming its path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gzipSync } from 'node:zlib';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLearner } from '../src/learner.js';
import { loadFashionMnist } from '../src/node/images.js';
import { encodeIdx, imageSetFromIdx, parseIdx } from '../src/tasks/idx.js';
import { parseTaskCsv } from '../src/tasks/file.js';
import { FASHION_CLASSES, FASHION_SPLIT, type TaskSource } from '../src/tasks/source.js';
import { FileError, MetagradError, ShapeError } from '../src/errors.js';
import { thrown, cli } from './helpers.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'metagrad-bad-data-'));

/** Images whose pixels are their index (so each is distinct) and the given labels. */
function idxPair(labels: number[]) {
  const n = labels.length;
  const pixels = new Uint8Array(n * 784);
  for (let i = 0; i < n; i++) pixels.fill(i * 7 % 256, i * 784, (i + 1) * 784);
  return { images: encodeIdx([n, 28, 28], pixels), labels: encodeIdx([n], Uint8Array.from(labels)) };
}

/** A Fashion-MNIST directory (gzipped IDX files) holding `perClass` images of each listed class. */
function fashionDir(classes: number[], perClass = 4): string {
  const dir = tmp();
  const { images, labels } = idxPair(classes.flatMap((c) => new Array(perClass).fill(c)));
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(images));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(labels));
  return dir;
}

const except = (...missing: number[]) => [...Array(10).keys()].filter((c) => !missing.includes(c));


// ---- 1(a): missing classes ----

test('loadFashionMnist refuses a directory without some classes, naming them', async () => {
  const good = fashionDir(except());
  assert.equal(loadFashionMnist(good).classCount, new Array(10).fill(4));
  for (const [missing, names] of [[[5], /5 \(Sandal\)/], [[6, 7, 8, 9], /6 \(Shirt\), 7 \(Sneaker\), 8 \(Bag\), 9 \(Ankle boot\)/]] as const) {
    const dir = fashionDir(except(...missing));
    const e = await thrown(() => loadFashionMnist(dir));
    assert.instance(e, FileError);
    assert.match(e.message, names);
    assert.match(e.message, /no images/);
    assert.ok(e.message.includes(path.join(dir, 'train-labels-idx1-ubyte.gz')), e.message);
    for (const c of except(...missing)) assert.not.match(e.message, new RegExp(`\\b${c} \\(`), `class ${c} has images: ${e.message}`);
    assert.ok((e as MetagradError).hint.length > 0);
  }
});

test('learner.train refuses an images source with no images of a class of either split, before training', async () => {
  for (const [missing, split, name] of [[5, 'train', 'Sandal'], [8, 'test', 'Bag']] as const) {
    const { images, labels } = idxPair(except(missing).flatMap((c) => [c, c, c]));
    const set = imageSetFromIdx(parseIdx(images, 'images'), parseIdx(labels, 'labels'), FASHION_CLASSES);
    const source: TaskSource = { kind: 'images', images: set, split: FASHION_SPLIT };
    const learner = await createLearner({ backend: 'cpu', dim: 785, innerLr: 0.1, outerLr: 0.1 });
    const before = await learner.getParams();
    const e = await thrown(() => learner.train({ source, iterations: 2, tasksPerBatch: 2, supportShots: 2, queryShots: 2 }));
    assert.instance(e, ShapeError);
    assert.match(e.message, new RegExp(`${split}.*${missing} \\(${name}\\)`));
    const after = await learner.getParams();
    assert.equal(Array.from(after), Array.from(before), 'the parameters are untouched');
    learner.destroy();
  }
});

test('metagrad train --data DIR without some classes exits non-zero before writing a checkpoint', async () => {
  const dir = fashionDir(except(0, 7));
  const out = tmp();
  const r = await cli('train', '--source', 'fashion-mnist', '--data', dir, '--backend', 'cpu', '--iterations', '2', '--tasks', '2',
    '--support-shots', '2', '--query-shots', '2', '--eval-every', '0', '--out', out, '--quiet');
  assert.is(r.code, 1, `status ${r.code}: ${r.err}`);
  assert.match(r.err, /0 \(T-shirt\/top\), 7 \(Sneaker\)/);
  assert.match(r.err, /\nhint: /);
  assert.not.ok(existsSync(path.join(out, 'checkpoint.json')), 'no checkpoint written');
  const episodes = await cli('train', '--source', 'fashion-episodes', '--data', dir, '--backend', 'cpu', '--iterations', '2', '--out', tmp(), '--quiet');
  assert.is(episodes.code, 1, `status ${episodes.code}: ${episodes.err}`);
  assert.match(episodes.err, /0 \(T-shirt\/top\), 7 \(Sneaker\)/);
});

// ---- 1(b), 1(c): CSV cells ----

const HEADER = 'task,set,label,x0,x1';

function csvError(rows: string[]): Error & { hint: string } {
  try {
    parseTaskCsv([HEADER, ...rows].join('\n'), 'tasks.csv');
  } catch (e) {
    assert.instance(e, FileError);
    return e as Error & { hint: string };
  }
  assert.unreachable(`accepted ${rows.join(' / ').slice(0, 80)}`);
  throw new Error('unreachable');
}

test('a CSV feature that overflows float32 is an error naming line and column', () => {
  // The largest float32 is about 3.4028e38: 3.4e38 is fine, 1e39 would become Infinity.
  const ok = parseTaskCsv([HEADER, '0,support,1,3.4e38,-3.4e38', '0,query,0,1,2'].join('\n'), 'tasks.csv');
  assert.ok(Number.isFinite(ok.tasks.supportX[0]) && Number.isFinite(ok.tasks.supportX[1]));
  for (const [cell, column] of [['1e39', 5], ['-1e39', 5], ['3.5e38', 5]] as const) {
    const e = csvError(['0,support,1,0.5,0.5', `0,query,0,0.5,${cell}`]);
    assert.match(e.message, new RegExp(`tasks\\.csv:3: column ${column}: feature x1 is "${cell.replace('.', '\\.')}", beyond the float32 range`));
  }
  const first = csvError([`0,support,1,1e39,0`, '0,query,0,0,0']);
  assert.match(first.message, /tasks\.csv:2: column 4: feature x0 is "1e39", beyond the float32 range/);
});

test('an empty CSV cell is an error naming line and column, not a 0', () => {
  const cases: Array<[string, RegExp]> = [
    ['0,support,,0.5,0.5', /tasks\.csv:2: column 3: label must be 0 or 1, got "" \(an empty cell\)/],
    ['0,support,1,,0.5', /tasks\.csv:2: column 4: feature x0 is "", not a finite number \(an empty cell\)/],
    ['0,support,1,0.5,', /tasks\.csv:2: column 5: feature x1 is "", not a finite number \(an empty cell\)/],
    [',support,1,0.5,0.5', /tasks\.csv:2: column 1: the task name is an empty cell/],
    ['0,,1,0.5,0.5', /tasks\.csv:2: column 2: set must be "support" or "query", got "" \(an empty cell\)/],
    ['0,support,1, ,0.5', /tasks\.csv:2: column 4: feature x0 is "", not a finite number \(an empty cell\)/],
  ];
  for (const [row, message] of cases) assert.match(csvError([row, '0,query,0,1,1']).message, message);
});

// ---- 7: bounded error text ----

test('a 2 MB CSV cell is quoted in a few dozen characters, wherever it sits', () => {
  const huge = '7'.repeat(2_000_000);
  const rows: Array<[string, string[]]> = [
    ['feature', ['0,support,1,0.5,' + huge, '0,query,0,1,1']],
    ['garbage feature', ['0,support,1,0.5,' + 'z'.repeat(2_000_000), '0,query,0,1,1']],
    ['label', [`0,support,${huge},0.5,0.5`, '0,query,0,1,1']],
    ['set', [`0,${huge},1,0.5,0.5`, '0,query,0,1,1']],
    ['task name', ['0,support,1,0.5,0.5', '0,query,0,1,1', `${huge},support,1,0.5,0.5`]],
  ];
  for (const [where, r] of rows) {
    const e = csvError(r);
    const quoted = [...e.message.matchAll(/"([^"]*)"/g)].map((m) => m[1]).sort((a, b) => b.length - a.length)[0] ?? '';
    assert.ok(quoted.length > 0 && quoted.length <= 40, `${where}: quoted ${quoted.length} characters`);
    assert.ok(quoted.endsWith('…'), `${where}: the quote ends with an ellipsis`);
    assert.ok(e.message.length < 400, `${where}: message of ${e.message.length} characters`);
  }
  const header = (() => {
    try { parseTaskCsv(`task,set,${huge}\n0,support,1`, 'tasks.csv'); } catch (e) { return e as Error; }
    throw new Error('accepted');
  })();
  assert.ok(header.message.length < 400, `header: message of ${header.message.length} characters`);
});

test('a truncated or corrupt IDX file is a FileError naming its path', async () => {
  const { images, labels } = idxPair(except().flatMap((c) => [c, c]));
  const cases: Array<[string, Uint8Array, Uint8Array, string, RegExp]> = [
    ['truncated images', images.subarray(0, images.length - 100), labels, 'train-images-idx3-ubyte', /promises/],
    ['truncated header', images.subarray(0, 9), labels, 'train-images-idx3-ubyte', /header is truncated/],
    ['truncated gzip', (() => { const z = gzipSync(images); return z.subarray(0, z.length >> 1); })(), labels, 'train-images-idx3-ubyte.gz', /corrupt gzip/],
    ['corrupt magic', images, Uint8Array.from([1, 2, 3, 4, 5]), 'train-labels-idx1-ubyte', /magic number/],
    ['labels as images', labels, labels, 'train-images-idx3-ubyte', /expected N×rows×cols/],
    ['odd image size', encodeIdx([20, 3, 3], new Uint8Array(180)), labels, 'train-images-idx3-ubyte', /3×3 pixels/],
  ];
  for (const [what, imageBytes, labelBytes, broken, message] of cases) {
    const dir = tmp();
    const gz = broken.endsWith('.gz');
    writeFileSync(path.join(dir, `train-images-idx3-ubyte${gz ? '.gz' : ''}`), imageBytes);
    writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), labelBytes);
    const e = await thrown(() => loadFashionMnist(dir));
    assert.instance(e, FileError, what);
    assert.ok(e.message.includes(path.join(dir, broken)), `${what}: ${e.message}`);
    assert.match(e.message, message, what);
    assert.ok(e.message.length < 600, `${what}: message of ${e.message.length} characters`);
  }
});

test.run();
