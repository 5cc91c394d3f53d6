// Omniglot as metagrad holds it: 28×28 ink images (ink = 255, paper = 0) with each image's alphabet,
// character and drawer. Pure functions on bytes, shared by the Node loader (src/node/omniglot.ts) and
// the script that makes the embedded set (scripts/make-omniglot.mjs), so both downsample and encode
// the same way. Format of the embedded file: data/omniglot/README.md.
import { FileError } from '../errors.js';

/** Side of metagrad's Omniglot images (the papers' 28×28). */
export const OMNIGLOT_SIZE = 28;
/** Side of the official PNGs. */
export const OMNIGLOT_SOURCE_SIZE = 105;

/** Omniglot images in memory, sorted by (alphabet, character, drawer): a character's images are contiguous. */
export interface OmniglotSet {
  /** n × 28 × 28 bytes, row-major, ink = 255. */
  images: Uint8Array;
  /** Per image: index into `alphabets`. */
  alphabet: Uint16Array;
  /** Per image: global index into `characters`. */
  character: Uint16Array;
  /** Per image: the drawer (1–20 in the official set), from the file name `<id>_<drawer>.png`. */
  drawer: Uint8Array;
  alphabets: string[];
  /** Every character: its alphabet index and folder name (`characterNN`). */
  characters: { alphabet: number; name: string }[];
  /** The folders the alphabets came from (`images_background`, `images_evaluation`), as alphabet ranges [first, end). */
  sets: { name: string; alphabets: [number, number] }[];
}

/** One image before the set is assembled. */
export interface OmniglotImage {
  set: string;
  alphabet: string;
  character: string;
  drawer: number;
  /** 28 × 28 ink bytes. */
  pixels: Uint8Array;
  /** Where it came from, for messages. */
  file: string;
}

/**
 * Area downsampling of an ink image: each output pixel is the mean of the source area it covers, source
 * pixels that straddle its edge weighted by the fraction inside. Measured in units where source pixel s
 * spans [s·out, (s+1)·out) and output pixel i spans [i·src, (i+1)·src), overlaps are integers summing
 * to src per output pixel, so the weighted sum is exact and the result, round-half-up of
 * Σ wx·wy·ink / (srcW·srcH), is the same bytes on every machine. 105 → 28: a 3.75-pixel square.
 */
export function downsampleArea(ink: Uint8Array, srcW: number, srcH: number, outW = OMNIGLOT_SIZE, outH = OMNIGLOT_SIZE): Uint8Array {
  const wx = overlapWeights(srcW, outW);
  const wy = overlapWeights(srcH, outH);
  const out = new Uint8Array(outW * outH);
  const area = srcW * srcH;
  const rowSums = new Float64Array(outW);  // integers < 2^53: at most 255 · srcW · srcH
  for (let oy = 0; oy < outH; oy++) {
    rowSums.fill(0);
    for (const [sy, wyv] of wy[oy]) {
      const row = sy * srcW;
      for (let ox = 0; ox < outW; ox++) {
        let s = 0;
        for (const [sx, wxv] of wx[ox]) s += wxv * ink[row + sx];
        rowSums[ox] += wyv * s;
      }
    }
    for (let ox = 0; ox < outW; ox++) out[oy * outW + ox] = Math.floor((2 * rowSums[ox] + area) / (2 * area));
  }
  return out;
}

/** For each output pixel, the (source index, integer overlap) pairs of the source pixels it covers. */
function overlapWeights(src: number, out: number): [number, number][][] {
  const weights: [number, number][][] = [];
  for (let i = 0; i < out; i++) {
    const lo = i * src, hi = (i + 1) * src;
    const pairs: [number, number][] = [];
    for (let s = Math.floor(lo / out); s * out < hi; s++) {
      const w = Math.min(hi, (s + 1) * out) - Math.max(lo, s * out);
      if (w > 0) pairs.push([s, w]);
    }
    weights.push(pairs);
  }
  return weights;
}

/** Orders names with their numbers compared as numbers (character2 < character10), then by code units. */
function compareNames(a: string, b: string): number {
  const na = /(\d+)$/.exec(a), nb = /(\d+)$/.exec(b);
  if (na && nb && a.slice(0, na.index) === b.slice(0, nb.index) && Number(na[1]) !== Number(nb[1])) return Number(na[1]) - Number(nb[1]);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorts images into an OmniglotSet: sets in the order given, alphabets by name within a set, characters
 * by number, drawers ascending. An alphabet in two sets, or a (character, drawer) given twice, is an error.
 */
export function assembleOmniglot(images: OmniglotImage[], setOrder: string[]): OmniglotSet {
  const setOfAlphabet = new Map<string, string>();
  for (const im of images) {
    const seen = setOfAlphabet.get(im.alphabet);
    if (seen !== undefined && seen !== im.set) throw new FileError(`Alphabet ${im.alphabet} is in both ${seen} and ${im.set} (${im.file}).`, 'Give each alphabet once: images_background and images_evaluation hold different alphabets.');
    setOfAlphabet.set(im.alphabet, im.set);
  }
  const sorted = images.slice().sort((a, b) =>
    setOrder.indexOf(a.set) - setOrder.indexOf(b.set) || compareNames(a.alphabet, b.alphabet) || compareNames(a.character, b.character) || a.drawer - b.drawer);
  const n = sorted.length;
  const set: OmniglotSet = {
    images: new Uint8Array(n * OMNIGLOT_SIZE * OMNIGLOT_SIZE), alphabet: new Uint16Array(n), character: new Uint16Array(n),
    drawer: new Uint8Array(n), alphabets: [], characters: [], sets: [],
  };
  let previous: OmniglotImage | undefined;
  sorted.forEach((im, i) => {
    if (im.pixels.length !== OMNIGLOT_SIZE * OMNIGLOT_SIZE) throw new Error(`assembleOmniglot: ${im.file} has ${im.pixels.length} pixels, not 28×28.`);
    if (!previous || previous.set !== im.set) set.sets.push({ name: im.set, alphabets: [set.alphabets.length, set.alphabets.length] });
    if (!previous || previous.alphabet !== im.alphabet) set.alphabets.push(im.alphabet);
    if (!previous || previous.alphabet !== im.alphabet || previous.character !== im.character) set.characters.push({ alphabet: set.alphabets.length - 1, name: im.character });
    else if (previous.drawer === im.drawer) throw new FileError(`${im.file} and ${previous.file} are both drawer ${im.drawer} of ${im.alphabet}/${im.character}.`, 'Keep one image per drawer and character (file names end in _<drawer>.png).');
    set.sets[set.sets.length - 1].alphabets[1] = set.alphabets.length;
    set.images.set(im.pixels, i * OMNIGLOT_SIZE * OMNIGLOT_SIZE);
    set.alphabet[i] = set.alphabets.length - 1;
    set.character[i] = set.characters.length - 1;
    set.drawer[i] = im.drawer;
    previous = im;
  });
  if (set.characters.length > 0xffff) throw new FileError(`${set.characters.length} characters: metagrad indexes at most 65,535.`, 'Load fewer alphabets.');
  return set;
}

const MAGIC = 'MGOMNI01';
const HEADER = 20;  // magic (8), u32 n, u16 rows, u16 cols, u32 metadata bytes

/** The embedded binary (before gzip; data/omniglot/README.md): header, metadata JSON, character u16[n], drawer u8[n], pixels. */
export function encodeOmniglot(set: OmniglotSet): Uint8Array {
  const n = set.drawer.length;
  const meta = new TextEncoder().encode(JSON.stringify({ sets: set.sets, alphabets: set.alphabets, characters: set.characters }));
  const pixels = OMNIGLOT_SIZE * OMNIGLOT_SIZE;
  const out = new Uint8Array(HEADER + meta.length + 3 * n + n * pixels);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  view.setUint32(8, n, true);
  view.setUint16(12, OMNIGLOT_SIZE, true);
  view.setUint16(14, OMNIGLOT_SIZE, true);
  view.setUint32(16, meta.length, true);
  out.set(meta, HEADER);
  let at = HEADER + meta.length;
  for (let i = 0; i < n; i++, at += 2) view.setUint16(at, set.character[i], true);
  out.set(set.drawer, at);
  out.set(set.images, at + n);
  return out;
}

/** Reads what encodeOmniglot wrote (already gunzipped); `name` is the file, for messages. */
export function parseOmniglot(bytes: Uint8Array, name: string): OmniglotSet {
  const fail = (why: string): never => {
    throw new FileError(`${name} is not a valid metagrad Omniglot file: ${why}.`, 'Rebuild it with `node scripts/make-omniglot.mjs`, or reinstall metagrad.');
  };
  if (bytes.length < HEADER) fail(`it has ${bytes.length} bytes, less than the ${HEADER}-byte header`);
  if (String.fromCharCode(...bytes.subarray(0, 8)) !== MAGIC) fail(`it does not start with ${MAGIC}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(8, true), rows = view.getUint16(12, true), cols = view.getUint16(14, true), metaBytes = view.getUint32(16, true);
  if (rows !== OMNIGLOT_SIZE || cols !== OMNIGLOT_SIZE) fail(`images are ${rows}×${cols}, not 28×28`);
  const expected = HEADER + metaBytes + 3 * n + n * rows * cols;
  if (bytes.length !== expected) fail(`the header promises ${n} images and ${metaBytes} metadata bytes = ${expected} bytes, the file holds ${bytes.length}`);
  let meta: { sets?: unknown; alphabets?: unknown; characters?: unknown };
  try {
    meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(HEADER, HEADER + metaBytes)));
  } catch (e) {
    return fail(`its metadata is not JSON (${(e as Error).message})`);
  }
  const alphabets = meta.alphabets, characters = meta.characters, sets = meta.sets;
  if (!Array.isArray(alphabets) || !alphabets.every((a) => typeof a === 'string')) return fail('metadata "alphabets" is not a list of names');
  if (!Array.isArray(characters) || !characters.every((c) => typeof c?.name === 'string' && Number.isInteger(c?.alphabet) && c.alphabet >= 0 && c.alphabet < alphabets.length)) return fail('metadata "characters" is not a list of { alphabet, name } with alphabets in range');
  if (!Array.isArray(sets) || !sets.every((s) => typeof s?.name === 'string' && Array.isArray(s.alphabets) && s.alphabets.length === 2 && Number.isInteger(s.alphabets[0]) && Number.isInteger(s.alphabets[1]))) return fail('metadata "sets" is not a list of { name, alphabets: [first, end] }');
  let at = HEADER + metaBytes;
  const character = new Uint16Array(n), alphabet = new Uint16Array(n);
  for (let i = 0; i < n; i++, at += 2) {
    const c = view.getUint16(at, true);
    if (c >= characters.length) fail(`image ${i} has character ${c}, outside the ${characters.length} characters`);
    character[i] = c;
    alphabet[i] = characters[c].alphabet;
  }
  const drawer = bytes.slice(at, at + n);
  return { images: bytes.slice(at + n), alphabet, character, drawer, alphabets, characters, sets };
}
