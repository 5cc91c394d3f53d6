// Makes data/omniglot/ (the embedded Omniglot set) from the two minimal background zips of the official
// repository: every PNG decoded and area-downsampled to 28×28 exactly as the Node loader does it (the
// code is the loader's: src/node/omniglot.ts and src/tasks/omniglot.ts, bundled by esbuild on the fly,
// as test/run.mjs bundles the tests), Greek and Latin (in both zips) kept once, written as one gzipped
// binary beside the LICENSE and a README. Deterministic: the same zips give the same bytes.
// Usage: node scripts/make-omniglot.mjs [SOURCE_DIR] [OUT_DIR]
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync, unzipSync } from 'fflate';
import { esbuildOptions } from './build.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.resolve(process.argv[2] ?? path.join(root, '..', 'shared', 'data', 'omniglot'));
const outDir = path.resolve(process.argv[3] ?? path.join(root, 'data', 'omniglot'));
const ZIPS = ['images_background_small1.zip', 'images_background_small2.zip'];
const SET = 'images_background';  // both minimal sets are subsets of the background set
const started = performance.now();

// The loader's code, bundled where node_modules (pngjs) resolves from.
const bundle = path.join(root, 'node_modules', '.cache', 'metagrad', 'omniglot-lib.mjs');
await build({
  ...esbuildOptions,
  stdin: { contents: "export * from './src/node/omniglot.ts'; export * from './src/tasks/omniglot.ts';", resolveDir: root, loader: 'ts' },
  outfile: bundle,
  sourcemap: false,
});
const lib = await import(pathToFileURL(bundle).href);

const images = [];
const firstSeen = new Map();  // alphabet/character/file → [zip, png bytes]: duplicates must be identical
const md5 = {};
for (const zip of ZIPS) {
  const file = path.join(source, zip);
  const bytes = readFileSync(file);
  md5[zip] = createHash('md5').update(bytes).digest('hex');
  const entries = unzipSync(bytes, { filter: (f) => f.name.toLowerCase().endsWith('.png') });
  for (const name of Object.keys(entries).sort()) {
    const parts = name.split('/');
    if (parts.length !== 4) throw new Error(`${file}: ${name} is not <set>/<Alphabet>/characterNN/<id>_<drawer>.png`);
    const [, alphabet, character, png] = parts;
    const key = `${alphabet}/${character}/${png}`;
    const seen = firstSeen.get(key);
    if (seen) {
      if (Buffer.compare(seen[1], entries[name]) !== 0) throw new Error(`${key} differs between ${seen[0]} and ${zip}`);
      continue;
    }
    firstSeen.set(key, [zip, entries[name]]);
    const where = `${file}:${name}`;
    images.push({ set: SET, alphabet, character, drawer: lib.omniglotDrawer(where), pixels: lib.omniglotPngToInk(entries[name], where), file: where });
  }
}
const set = lib.assembleOmniglot(images, [SET]);
// fflate's gzip: pure JS (the same bytes on every Node and zlib build), no file name, mtime 0.
const gz = gzipSync(lib.encodeOmniglot(set), { level: 9, mem: 8, mtime: 0 });

mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, lib.OMNIGLOT_EMBEDDED_FILE), gz);
writeFileSync(path.join(outDir, 'LICENSE'), readFileSync(path.join(source, 'LICENSE')));
const perAlphabet = set.alphabets.map((a, i) => `${a} (${set.characters.filter((c) => c.alphabet === i).length})`).join(', ');
writeFileSync(path.join(outDir, 'README.md'), `# Embedded Omniglot (28×28)

${set.drawer.length} images of ${set.characters.length} characters from ${set.alphabets.length} alphabets — the two "minimal"
background sets of Omniglot, with Greek and Latin (in both) once — downsampled from 105×105 to 28×28,
made by \`node scripts/make-omniglot.mjs\` (rerunning it gives the same bytes). Load it with
\`loadOmniglotEmbedded()\` from 'metagrad/node'; \`loadOmniglotDir(DIR)\` reads the full official
folders (images_background/, images_evaluation/) the same way.

Alphabets (characters): ${perAlphabet}; 20 drawers each.

## Source and licence

Omniglot, MIT licence (LICENSE, which travels with every copy), from the official repository
https://github.com/brendenlake/omniglot (python/):

| file | md5 |
| --- | --- |
${ZIPS.map((z) => `| ${z} | ${md5[z]} |`).join('\n')}

Cite: Lake, B. M., Salakhutdinov, R. and Tenenbaum, J. B. (2015). Human-level concept learning through
probabilistic program induction. *Science*, 350(6266), 1332–1338. doi:10.1126/science.aab3050

## From PNG to 28×28

- Ink = 1: each PNG (1-bit grey, ink black on white) is read as 8-bit RGBA by pngjs; ink = (765 − R − G − B)·A / 765,
  rounded (0 = paper, 255 = ink).
- Area downsampling, 105 → 28: output pixel (i, j) is the mean of the 3.75 × 3.75 source square
  [3.75 i, 3.75 (i+1)) × [3.75 j, 3.75 (j+1)) it covers, every source pixel weighted by the fraction of it
  inside. With source pixels 28 units wide and output pixels 105, the overlaps are integers, so the value is
  round-half-up(Σ w_row · w_col · ink / 105²), computed exactly (src/tasks/omniglot.ts, \`downsampleArea\`).
- Stored as bytes 0–255 of ink.

## Format of ${lib.OMNIGLOT_EMBEDDED_FILE}

gzip (fflate, level 9, no name, mtime 0) of one binary, integers little-endian:

| offset | size | content |
| --- | --- | --- |
| 0 | 8 | magic \`MGOMNI01\` (ASCII) |
| 8 | 4 | n, the number of images (u32) |
| 12 | 2 + 2 | rows, cols = 28, 28 (u16) |
| 16 | 4 | m, bytes of metadata (u32) |
| 20 | m | metadata, UTF-8 JSON: \`{ "sets": [{ "name", "alphabets": [first, end] }], "alphabets": [names], "characters": [{ "alphabet", "name" }] }\` |
| 20 + m | 2n | each image's global character index (u16); its alphabet is that character's |
| 20 + m + 2n | n | each image's drawer (u8, from the file name \`<id>_<drawer>.png\`) |
| 20 + m + 3n | 784 n | pixels, image after image, row-major |

Images are sorted by alphabet (by name), character (by number), drawer, so a character's 20 images are
contiguous.
`);
console.log(`wrote ${set.drawer.length} images (${set.alphabets.length} alphabets, ${set.characters.length} characters) to ${outDir}: ${gz.length} bytes, ${((performance.now() - started) / 1000).toFixed(1)} s`);
