// Loading Fashion-MNIST in Node: the embedded subset shipped in data/ (the default, works on a fresh
// machine with no download), Debian's dataset-fashion-mnist files, or any directory with the four
// IDX files (gzipped or not).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { FileError } from '../errors.js';
import { imageSetFromIdx, parseIdx } from '../tasks/idx.js';
import { FASHION_CLASSES, type ImageSet } from '../tasks/source.js';

export const DEBIAN_FASHION_DIR = '/usr/share/datasets/fashion-mnist';

/** data/fashion-mnist-subset, found from src/ (tests) or dist/ (bundles): both sit one level below the root. */
export function embeddedSubsetDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    const dir = path.resolve(here, up, 'data', 'fashion-mnist-subset');
    if (existsSync(dir)) return dir;
  }
  throw new FileError('The embedded Fashion-MNIST subset (data/fashion-mnist-subset) is missing from this install.', 'Reinstall metagrad, or pass --data DIR with the IDX files.');
}

function readMaybeGzip(file: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new FileError(`Cannot read ${file}: ${(e as Error).message}.`, 'Check the path (--data DIR holds the IDX files).');
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes);
    } catch (e) {
      throw new FileError(`${file} is a corrupt gzip file: ${(e as Error).message}.`, 'Download or copy the file again.');
    }
  }
  return bytes;
}

function find(dir: string, stem: string): string {
  for (const name of [`${stem}.gz`, stem]) {
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  throw new FileError(`No ${stem}(.gz) in ${dir}.`, `The directory must hold ${stem} (gzipped or not), as Debian's dataset-fashion-mnist does in ${DEBIAN_FASHION_DIR}.`);
}

/** Loads images + labels of one part ('train' or 't10k') of a Fashion-MNIST directory. */
export function loadFashionMnist(dir: string, part: 'train' | 't10k' = 'train'): ImageSet {
  const imagesFile = find(dir, `${part}-images-idx3-ubyte`);
  const labelsFile = find(dir, `${part}-labels-idx1-ubyte`);
  return imageSetFromIdx(parseIdx(readMaybeGzip(imagesFile), imagesFile), parseIdx(readMaybeGzip(labelsFile), labelsFile), FASHION_CLASSES, { images: imagesFile, labels: labelsFile });
}
