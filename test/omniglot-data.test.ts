// Omniglot data: the loader of the official layout on a small PNG fixture (against hand-computed area
// downsampling, and its errors), the embedded set (counts, ink, corrupt files), and the script that
// rebuilds data/omniglot byte for byte.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { FileError } from '../src/errors.js';
import { loadOmniglotDir, loadOmniglotEmbedded, OMNIGLOT_EMBEDDED_FILE } from '../src/node/omniglot.js';
import { downsampleArea, encodeOmniglot } from '../src/tasks/omniglot.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const zips = process.env.METAGRAD_OMNIGLOT_ZIPS ?? path.resolve(root, '..', 'shared', 'data', 'omniglot');
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'metagrad-omniglot-'));

/** A PNG (8-bit grey) of a w×h image whose pixels are grey(x, y). */
function png(w: number, h: number, grey: (x: number, y: number) => number): Buffer {
  const image = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = 4 * (y * w + x);
    image.data[i] = image.data[i + 1] = image.data[i + 2] = grey(x, y);
    image.data[i + 3] = 255;
  }
  return PNG.sync.write(image, { colorType: 0 });
}

function put(file: string, bytes: Uint8Array | string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
}

/** 28×28 bytes, zero but for the given (row, col) → value entries. */
function expected(entries: [number, number, number][]): Uint8Array {
  const out = new Uint8Array(28 * 28);
  for (const [r, c, v] of entries) out[r * 28 + c] = v;
  return out;
}

function throwsFile(fn: () => unknown, ...words: string[]): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FileError, `expected a FileError, got ${e}`);
    for (const w of words) assert.ok((e as Error).message.includes(w), `message should hold "${w}": ${(e as Error).message}`);
    return;
  }
  assert.unreachable('no error was thrown');
}

// Hand-computed: output pixels are 3.75 source pixels wide. A 4×4 block of ink at the corner covers
// output (0,0) fully (255); output (0,1) overlaps it 3.75 × 0.25 of 3.75² → 255/15 = 17; output (1,1)
// 0.25² of 3.75² → 255/225 = 1.13 → 1. One ink pixel at (52, 52) straddles outputs 13 and 14 on both
// axes (52 ∈ [48.75, 52.5) half, [52.5, 56.25) half): each of the four gets 255·0.25/14.0625 = 4.53 → 5.
const BLOCK = expected([[0, 0, 255], [0, 1, 17], [1, 0, 17], [1, 1, 1]]);
const DOT = expected([[13, 13, 5], [13, 14, 5], [14, 13, 5], [14, 14, 5]]);
const black = (x: number, y: number) => (x < 4 && y < 4 ? 0 : 255);
const dot = (x: number, y: number) => (x === 52 && y === 52 ? 0 : 255);

function officialFixture(): string {
  const dir = tmp();
  put(path.join(dir, 'images_background/Beta/character02/0002_01.png'), png(105, 105, dot));
  put(path.join(dir, 'images_background/Beta/character10/0003_01.png'), png(105, 105, () => 0));
  put(path.join(dir, 'images_background/Alpha/character01/0001_02.png'), png(105, 105, dot));
  put(path.join(dir, 'images_background/Alpha/character01/0001_01.png'), png(105, 105, black));
  put(path.join(dir, 'images_background/Alpha/character01/notes.txt'), 'not an image');
  put(path.join(dir, 'images_evaluation/Aardvark/character01/0004_07.png'), png(105, 105, () => 128));
  return dir;
}

test('downsampleArea: means of the covered area, fractional overlaps weighted', () => {
  const ink = new Uint8Array(105 * 105);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) ink[y * 105 + x] = 255;
  assert.equal(Array.from(downsampleArea(ink, 105, 105)), Array.from(BLOCK));
  // 4×4 → 2×2 is plain 2×2 block means (rounded half up); 3 → 2 weights the middle pixel half to each side.
  assert.equal(Array.from(downsampleArea(new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]), 4, 4, 2, 2)), [3, 5, 11, 13]);
  assert.equal(Array.from(downsampleArea(new Uint8Array([30, 60, 90]), 3, 1, 2, 1)), [40, 80]);
});

test('loadOmniglotDir: the official layout, sorted, with hand-computed pixels', () => {
  const dir = officialFixture();
  const set = loadOmniglotDir(dir);
  assert.equal(set.alphabets, ['Alpha', 'Beta', 'Aardvark']);  // background first, then evaluation
  assert.equal(set.sets, [{ name: 'images_background', alphabets: [0, 2] }, { name: 'images_evaluation', alphabets: [2, 3] }]);
  assert.equal(set.characters, [{ alphabet: 0, name: 'character01' }, { alphabet: 1, name: 'character02' }, { alphabet: 1, name: 'character10' }, { alphabet: 2, name: 'character01' }]);
  assert.equal(Array.from(set.alphabet), [0, 0, 1, 1, 2]);
  assert.equal(Array.from(set.character), [0, 0, 1, 2, 3]);
  assert.equal(Array.from(set.drawer), [1, 2, 1, 1, 7]);
  assert.is(set.images.length, 5 * 784);
  const image = (i: number) => Array.from(set.images.subarray(i * 784, (i + 1) * 784));
  assert.equal(image(0), Array.from(BLOCK));
  assert.equal(image(1), Array.from(DOT));
  assert.equal(image(2), Array.from(DOT));
  assert.equal(image(3), new Array(784).fill(255));
  assert.equal(image(4), new Array(784).fill(127));  // grey 128 → ink 255 − 128

  // One alphabet root (a single set folder) works too.
  const one = loadOmniglotDir(path.join(dir, 'images_evaluation'));
  assert.equal(one.alphabets, ['Aardvark']);
  assert.equal(one.sets, [{ name: 'images_evaluation', alphabets: [0, 1] }]);
});

test('loadOmniglotDir: errors name the file or folder', () => {
  const wrongSize = tmp();
  const small = path.join(wrongSize, 'Alpha/character01/0001_01.png');
  put(small, png(28, 28, () => 255));
  throwsFile(() => loadOmniglotDir(wrongSize), small, '28×28', '105×105');

  const corrupt = tmp();
  const garbage = path.join(corrupt, 'Alpha/character01/0001_01.png');
  put(garbage, 'this is not a PNG');
  throwsFile(() => loadOmniglotDir(corrupt), garbage, 'not a readable PNG');

  const truncated = tmp();
  const half = path.join(truncated, 'Alpha/character01/0001_01.png');
  const whole = png(105, 105, black);
  put(half, whole.subarray(0, whole.length >> 1));
  throwsFile(() => loadOmniglotDir(truncated), half, 'not a readable PNG');

  const badName = tmp();
  const named = path.join(badName, 'Alpha/character01/drawing.png');
  put(named, png(105, 105, black));
  throwsFile(() => loadOmniglotDir(badName), named, '_<drawer>.png');

  const emptyCharacter = tmp();
  put(path.join(emptyCharacter, 'Alpha/character01/readme.txt'), 'no images');
  throwsFile(() => loadOmniglotDir(emptyCharacter), path.join(emptyCharacter, 'Alpha/character01'), 'no .png');

  const emptyAlphabet = tmp();
  mkdirSync(path.join(emptyAlphabet, 'Alpha'));
  throwsFile(() => loadOmniglotDir(emptyAlphabet), path.join(emptyAlphabet, 'Alpha'), 'no character folders');

  const empty = tmp();
  throwsFile(() => loadOmniglotDir(empty), empty, 'no alphabet folders');
  throwsFile(() => loadOmniglotDir(path.join(empty, 'missing')), path.join(empty, 'missing'), 'not a folder');

  const twice = tmp();
  put(path.join(twice, 'images_background/Alpha/character01/0001_01.png'), png(105, 105, black));
  put(path.join(twice, 'images_evaluation/Alpha/character01/0001_01.png'), png(105, 105, black));
  throwsFile(() => loadOmniglotDir(twice), 'Alpha', 'images_background', 'images_evaluation');
});

test('embedded set: 8 alphabets, 242 characters × 20 drawers, every image inked', () => {
  const set = loadOmniglotEmbedded();
  assert.is(set.alphabets.length, 8);
  assert.is(set.characters.length, 242);
  assert.is(set.drawer.length, 4840);
  assert.is(set.images.length, 4840 * 784);
  assert.equal(set.sets, [{ name: 'images_background', alphabets: [0, 8] }]);
  for (const a of ['Balinese', 'Early_Aramaic', 'Greek', 'Japanese_(katakana)', 'Korean', 'Latin', 'Sanskrit', 'Tagalog']) assert.ok(set.alphabets.includes(a), a);
  for (let c = 0; c < 242; c++) {
    // A character's images are contiguous, drawers 1–20 in order.
    assert.equal(Array.from(set.character.subarray(20 * c, 20 * c + 20)), new Array(20).fill(c));
    assert.equal(Array.from(set.drawer.subarray(20 * c, 20 * c + 20)), Array.from({ length: 20 }, (_, d) => d + 1));
    assert.is(set.alphabet[20 * c], set.characters[c].alphabet);
  }
  let least = Infinity, inkTotal = 0;
  for (let i = 0; i < 4840; i++) {
    let ink = 0;
    for (const v of set.images.subarray(i * 784, (i + 1) * 784)) ink += v;
    least = Math.min(least, ink);
    inkTotal += ink;
  }
  assert.ok(least > 0, 'an image has no ink');
  const meanInk = inkTotal / (4840 * 784 * 255);
  assert.ok(meanInk > 0.02 && meanInk < 0.3, `mean ink ${meanInk}: strokes on paper`);
  // The parser reads back what the encoder writes.
  const file = path.join(root, 'data', 'omniglot', OMNIGLOT_EMBEDDED_FILE);
  assert.ok(Buffer.from(encodeOmniglot(set)).equals(gunzipSync(readFileSync(file))));
});

test('embedded set: missing, corrupt and truncated files name the file', () => {
  const bytes = readFileSync(path.join(root, 'data', 'omniglot', OMNIGLOT_EMBEDDED_FILE));
  const missing = tmp();
  throwsFile(() => loadOmniglotEmbedded(missing), path.join(missing, OMNIGLOT_EMBEDDED_FILE), 'Cannot read');
  const corrupt = tmp();
  writeFileSync(path.join(corrupt, OMNIGLOT_EMBEDDED_FILE), 'not gzip');
  throwsFile(() => loadOmniglotEmbedded(corrupt), path.join(corrupt, OMNIGLOT_EMBEDDED_FILE), 'gzip');
  const cut = tmp();
  writeFileSync(path.join(cut, OMNIGLOT_EMBEDDED_FILE), bytes.subarray(0, bytes.length >> 1));
  throwsFile(() => loadOmniglotEmbedded(cut), path.join(cut, OMNIGLOT_EMBEDDED_FILE), 'gzip');
  const raw = gunzipSync(bytes);
  const short = tmp();
  writeFileSync(path.join(short, OMNIGLOT_EMBEDDED_FILE), gzipSync(raw.subarray(0, raw.length - 100)));
  throwsFile(() => loadOmniglotEmbedded(short), path.join(short, OMNIGLOT_EMBEDDED_FILE), 'header promises');
  const magic = tmp();
  writeFileSync(path.join(magic, OMNIGLOT_EMBEDDED_FILE), gzipSync(Buffer.concat([Buffer.from('NOTOMNI!'), raw.subarray(8)])));
  throwsFile(() => loadOmniglotEmbedded(magic), path.join(magic, OMNIGLOT_EMBEDDED_FILE), 'MGOMNI01');
});

// Needs the source zips (../shared/data/omniglot beside the checkout, or METAGRAD_OMNIGLOT_ZIPS); without
// them the test is registered as skipped, which the runner's last line counts.
const haveZips = existsSync(path.join(zips, 'images_background_small1.zip'));
(haveZips ? test : test.skip)(`scripts/make-omniglot.mjs rebuilds data/omniglot byte for byte${haveZips ? '' : ` (skipped: no zips in ${zips})`}`, () => {
  const out = tmp();
  execFileSync(process.execPath, [path.join(root, 'scripts', 'make-omniglot.mjs'), zips, out], { cwd: root, stdio: 'pipe' });
  const shipped = path.join(root, 'data', 'omniglot');
  assert.equal(readdirSync(out).sort(), readdirSync(shipped).sort());
  for (const name of readdirSync(shipped)) {
    assert.ok(readFileSync(path.join(out, name)).equals(readFileSync(path.join(shipped, name))), `${name} differs from data/omniglot/${name}`);
  }
});

test.run();
