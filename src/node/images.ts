// Loading Fashion-MNIST in Node: the embedded subset shipped in data/ (the default, works on a fresh
// machine with no download), Debian's dataset-fashion-mnist files, or any directory with the four
// IDX files (gzipped or not).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { FileError } from '../errors.js';
import { imageSetFromIdx, missingClasses, parseIdx } from '../tasks/idx.js';
import { FASHION_CLASSES, FASHION_SPLIT, type ImageSet } from '../tasks/source.js';

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
  const set = imageSetFromIdx(parseIdx(readMaybeGzip(imagesFile), imagesFile), parseIdx(readMaybeGzip(labelsFile), labelsFile), FASHION_CLASSES, { images: imagesFile, labels: labelsFile });
  // Both Fashion-MNIST sources (images, fashion-episodes) split all 10 classes (FASHION_SPLIT): a class
  // without images would be sampled from nothing (NaN parameters on the CPU, other classes' images on the GPU).
  const missing = missingClasses(set, 0, FASHION_CLASSES.length);
  if (missing) {
    throw new FileError(`${labelsFile} holds no images of class${missing.includes(',') ? 'es' : ''} ${missing}; metagrad meta-trains on Fashion-MNIST classes ${FASHION_SPLIT.train[0]}–${FASHION_SPLIT.train[1] - 1} and meta-tests on ${FASHION_SPLIT.test[0]}–${FASHION_SPLIT.test[1] - 1}, so each needs images.`,
      `Use the complete ${part} files (every class 0–9), e.g. Debian's dataset-fashion-mnist in ${DEBIAN_FASHION_DIR}, or leave out --data for the embedded subset.`);
  }
  return set;
}
