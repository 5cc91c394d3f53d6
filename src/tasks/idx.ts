// The IDX format of (Fashion-)MNIST: big-endian header (0, 0, type 0x08 = ubyte, rank), rank u32 sizes,
// then the bytes. Pure functions on bytes, so browsers and Node share them (decompression is the
// caller's: src/node/images.ts in Node).
import { FileError } from '../errors.js';

export interface IdxArray { shape: number[]; data: Uint8Array }

export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  const fail = (why: string): never => {
    throw new FileError(`${name} is not a valid IDX file: ${why}.`, 'Use the original (Fashion-)MNIST files, e.g. from Debian\'s dataset-fashion-mnist package, gzipped or not.');
  };
  if (bytes.length < 4) fail(`it has ${bytes.length} bytes`);
  if (bytes[0] !== 0 || bytes[1] !== 0) fail('the magic number does not start with two zero bytes');
  if (bytes[2] !== 0x08) fail(`element type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`);
  const rank = bytes[3];
  if (rank < 1 || rank > 4) fail(`rank ${rank} is not 1 to 4`);
  if (bytes.length < 4 + 4 * rank) fail('the header is truncated');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length - start !== count) fail(`the header promises ${shape.join('×')} = ${count} bytes, the file holds ${bytes.length - start}`);
  return { shape, data: bytes.subarray(start) };
}

/** Encodes an IDX ubyte array (for the embedded subset and for tests). */
export function encodeIdx(shape: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const view = new DataView(out.buffer);
  out.set([0, 0, 0x08, shape.length]);
  shape.forEach((s, i) => view.setUint32(4 + 4 * i, s, false));
  out.set(data, 4 + 4 * shape.length);
  return out;
}

/** Images (N×rows×cols) and labels (N) → an image set grouped by class. */
export function imageSetFromIdx(images: IdxArray, labels: IdxArray, classNames: string[], names = { images: 'images', labels: 'labels' }) {
  if (images.shape.length !== 3) throw new FileError(`${names.images} has shape ${images.shape.join('×')}, expected N×rows×cols.`, 'Pass the images file (…-images-idx3-ubyte), not the labels.');
  if (labels.shape.length !== 1) throw new FileError(`${names.labels} has shape ${labels.shape.join('×')}, expected N.`, 'Pass the labels file (…-labels-idx1-ubyte).');
  const [n, rows, cols] = images.shape;
  if (labels.shape[0] !== n) throw new FileError(`${names.images} holds ${n} images but ${names.labels} holds ${labels.shape[0]} labels.`, 'Pair the images file with its own labels file.');
  const pixels = rows * cols;
  if (pixels % 4 !== 0) throw new FileError(`${names.images} holds images of ${rows}×${cols} pixels: the GPU sampler needs a multiple of 4 pixels.`, 'Use 28×28 images.');
  const classes = classNames.length;
  const classCount = new Array(classes).fill(0);
  for (const l of labels.data) {
    if (l >= classes) throw new FileError(`${names.labels} holds label ${l}, outside the ${classes} classes.`, 'Use a (Fashion-)MNIST labels file.');
    classCount[l]++;
  }
  const classStart = classCount.map((_, c) => classCount.slice(0, c).reduce((a, b) => a + b, 0));
  const data = new Uint8Array(n * pixels);
  const next = classStart.slice();
  for (let i = 0; i < n; i++) data.set(images.data.subarray(i * pixels, (i + 1) * pixels), pixels * next[labels.data[i]]++);
  return { pixels, data, classStart, classCount, classNames };
}

/** Classes lo … hi−1 of an image set that hold no images, as text ("5 (Sandal), 7 (Sneaker)"), or null
 * when every one has some. A count that is not a whole number ≥ 1 counts as none. */
export function missingClasses(set: { classCount: ArrayLike<number>; classNames?: string[] }, lo: number, hi: number): string | null {
  const missing: string[] = [];
  for (let c = lo; c < hi; c++) {
    const n = set.classCount[c];
    if (!(Number.isInteger(n) && n >= 1)) missing.push(set.classNames?.[c] !== undefined ? `${c} (${String(set.classNames[c]).slice(0, 40)})` : String(c));
  }
  return missing.length ? missing.join(', ') : null;
}
