// Makes data/fashion-mnist-subset/ (the embedded default data set) from Debian's dataset-fashion-mnist:
// the first PER_CLASS images of each class of the training part, as gzipped IDX files.
// Usage: node scripts/make-fashion-subset.mjs [SOURCE_DIR] [PER_CLASS]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

const source = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
const perClass = Number(process.argv[3] ?? 300);
const read = (name) => gunzipSync(readFileSync(path.join(source, `${name}.gz`)));
const images = read('train-images-idx3-ubyte');
const labels = read('train-labels-idx1-ubyte');
const n = new DataView(labels.buffer, labels.byteOffset).getUint32(4, false);
const pixels = 28 * 28;
const taken = new Array(10).fill(0);
const keep = [];
for (let i = 0; i < n && keep.length < 10 * perClass; i++) {
  const label = labels[8 + i];
  if (taken[label] < perClass) { taken[label]++; keep.push(i); }
}
const outImages = new Uint8Array(16 + keep.length * pixels);
const outLabels = new Uint8Array(8 + keep.length);
const vi = new DataView(outImages.buffer);
vi.setUint32(0, 0x00000803, false); vi.setUint32(4, keep.length, false); vi.setUint32(8, 28, false); vi.setUint32(12, 28, false);
const vl = new DataView(outLabels.buffer);
vl.setUint32(0, 0x00000801, false); vl.setUint32(4, keep.length, false);
keep.forEach((i, j) => {
  outImages.set(images.subarray(16 + i * pixels, 16 + (i + 1) * pixels), 16 + j * pixels);
  outLabels[8 + j] = labels[8 + i];
});
const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'data', 'fashion-mnist-subset');
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(outImages, { level: 9 }));
writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(outLabels, { level: 9 }));
writeFileSync(path.join(dir, 'README.md'), `# Embedded Fashion-MNIST subset

The first ${perClass} images of each of the 10 classes of Fashion-MNIST's training part (${keep.length} images,
28×28, IDX format, gzipped), made by \`node scripts/make-fashion-subset.mjs\` from Debian's
dataset-fashion-mnist (${source}). Fashion-MNIST: Zalando Research, MIT licence
(https://github.com/zalandoresearch/fashion-mnist).

metagrad's split: meta-train on classes 0–5 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal),
meta-test on classes 6–9 (Shirt, Sneaker, Bag, Ankle boot).
`);
console.log(`wrote ${keep.length} images to ${dir}`);
