// Loading Omniglot in Node: the embedded 28×28 set shipped in data/omniglot (the default: no download),
// or the official layout as users download it (images_background/, images_evaluation/:
// <Alphabet>/characterNN/<id>_<drawer>.png, 105×105), decoded with pngjs and downsampled like the
// embedded set (src/tasks/omniglot.ts).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { FileError } from '../errors.js';
import { assembleOmniglot, downsampleArea, OMNIGLOT_SOURCE_SIZE, parseOmniglot, type OmniglotImage, type OmniglotSet } from '../tasks/omniglot.js';

export type { OmniglotSet } from '../tasks/omniglot.js';

/** The embedded file inside data/omniglot. */
export const OMNIGLOT_EMBEDDED_FILE = 'omniglot-28x28.bin.gz';
/** The official data set's two folders, in the order the loader stacks them. */
export const OMNIGLOT_SETS = ['images_background', 'images_evaluation'];

/** data/omniglot, found from src/ (tests) or dist/ (bundles): both sit one level below the root. */
export function embeddedOmniglotDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    const dir = path.resolve(here, up, 'data', 'omniglot');
    if (existsSync(dir)) return dir;
  }
  throw new FileError('The embedded Omniglot set (data/omniglot) is missing from this install.', 'Reinstall metagrad, or pass --data DIR with the official images_background/ and images_evaluation/ folders.');
}

/** The embedded 28×28 Omniglot set (8 alphabets of the minimal background sets, 4,840 images). */
export function loadOmniglotEmbedded(dir = embeddedOmniglotDir()): OmniglotSet {
  const file = path.join(dir, OMNIGLOT_EMBEDDED_FILE);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new FileError(`Cannot read ${file}: ${(e as Error).message}.`, 'Reinstall metagrad, or rebuild data/omniglot with `node scripts/make-omniglot.mjs`.');
  }
  try {
    bytes = gunzipSync(bytes);
  } catch (e) {
    throw new FileError(`${file} is not a valid gzip file (corrupt or truncated): ${(e as Error).message}.`, 'Reinstall metagrad, or rebuild data/omniglot with `node scripts/make-omniglot.mjs`.');
  }
  return parseOmniglot(bytes, file);
}

/**
 * One official PNG → 28×28 ink bytes (ink = 255): decoded with pngjs, ink = darkness composited on white,
 * checked to be 105×105, area-downsampled. `file` names the image in errors.
 */
export function omniglotPngToInk(png: Uint8Array, file: string): Uint8Array {
  let decoded: PNG;
  try {
    decoded = PNG.sync.read(Buffer.from(png.buffer, png.byteOffset, png.byteLength));
  } catch (e) {
    throw new FileError(`${file} is not a readable PNG: ${(e as Error).message}.`, 'Download or unzip the Omniglot folder again.');
  }
  const { width, height, data } = decoded;
  if (width !== OMNIGLOT_SOURCE_SIZE || height !== OMNIGLOT_SOURCE_SIZE) {
    throw new FileError(`${file} is ${width}×${height} pixels; Omniglot images are ${OMNIGLOT_SOURCE_SIZE}×${OMNIGLOT_SOURCE_SIZE}.`, 'Use the official, unresized PNGs (images_background.zip, images_evaluation.zip).');
  }
  // pngjs gives 8-bit RGBA whatever the PNG's type (the official ones are 1-bit grey): ink = 255 − grey, times alpha.
  const ink = new Uint8Array(width * height);
  for (let i = 0; i < ink.length; i++) {
    ink[i] = Math.round((765 - data[4 * i] - data[4 * i + 1] - data[4 * i + 2]) * data[4 * i + 3] / 765);
  }
  return downsampleArea(ink, width, height);
}

/** The drawer of `<id>_<drawer>.png` (1–255). */
export function omniglotDrawer(file: string): number {
  const m = /_(\d+)\.png$/i.exec(path.basename(file));
  const drawer = m ? Number(m[1]) : NaN;
  if (!(drawer >= 1 && drawer <= 255)) throw new FileError(`${file}: the name does not end in _<drawer>.png with a drawer from 1 to 255.`, 'Keep the official file names (<id>_<drawer>.png, e.g. 0108_01.png).');
  return drawer;
}

function subfolders(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new FileError(`Cannot read the folder ${dir}: ${(e as Error).message}.`, 'Check the path given to --data.');
  }
  return names.filter((n) => !n.startsWith('.') && statSync(path.join(dir, n)).isDirectory()).sort();
}

function readImages(root: string, set: string, out: OmniglotImage[]): void {
  const alphabets = subfolders(root);
  if (alphabets.length === 0) throw new FileError(`${root} holds no alphabet folders.`, 'Point --data at a folder with images_background/ and/or images_evaluation/, or at one of them: <Alphabet>/characterNN/*.png.');
  for (const alphabet of alphabets) {
    const characters = subfolders(path.join(root, alphabet));
    if (characters.length === 0) throw new FileError(`${path.join(root, alphabet)} holds no character folders.`, 'Each alphabet folder holds characterNN/ folders of PNGs.');
    for (const character of characters) {
      const dir = path.join(root, alphabet, character);
      const pngs = readdirSync(dir).filter((n) => !n.startsWith('.') && n.toLowerCase().endsWith('.png')).sort();
      if (pngs.length === 0) throw new FileError(`${dir} holds no .png images.`, 'Each character folder holds one PNG per drawer (<id>_<drawer>.png).');
      for (const name of pngs) {
        const file = path.join(dir, name);
        const drawer = omniglotDrawer(file);
        let bytes: Uint8Array;
        try {
          bytes = readFileSync(file);
        } catch (e) {
          throw new FileError(`Cannot read ${file}: ${(e as Error).message}.`, 'Check the file\'s permissions, or unzip the folder again.');
        }
        out.push({ set, alphabet, character, drawer, pixels: omniglotPngToInk(bytes, file), file });
      }
    }
  }
}

/**
 * Omniglot from the official layout. `dir` holds images_background/ and/or images_evaluation/ (stacked in
 * that order; `sets` records which alphabets came from which), or is itself an alphabet root
 * (`<Alphabet>/characterNN/*.png`). Errors name the file or folder at fault.
 *
 * @example
 * const omniglot = loadOmniglotDir('/data/omniglot');  // images_background/ + images_evaluation/
 * omniglot.images.length === 1623 * 20 * 28 * 28;
 */
export function loadOmniglotDir(dir: string): OmniglotSet {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new FileError(`${dir} is not a folder.`, 'Pass --data DIR, a folder holding images_background/ and/or images_evaluation/ (unzipped).');
  const images: OmniglotImage[] = [];
  const sets = OMNIGLOT_SETS.filter((s) => existsSync(path.join(dir, s)) && statSync(path.join(dir, s)).isDirectory());
  if (sets.length > 0) for (const s of sets) readImages(path.join(dir, s), s, images);
  else readImages(dir, path.basename(path.resolve(dir)), images);
  return assembleOmniglot(images, sets.length > 0 ? sets : [path.basename(path.resolve(dir))]);
}
