// The demo Train page's training rate in headless Chromium on each backend (?backend=cpu, ?backend=webgpu),
// for deciding what backend 'auto' should pick in a browser whose only adapter is a software one. Chrome's
// adapter here is SwiftShader (flags of shared/SOFTWARE-GPU.md). The rate is the page's own (iterations
// over wall time since start, first chunk's pipeline compilation included), read from its #speed line.
// Usage: node bench/browser-speed.mjs [iterations] ['[{"order":"1"}, …]' (page settings per row)]
import puppeteer from 'puppeteer-core';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildWeb } from '../scripts/build-web.mjs';
import { startServer } from '../scripts/serve-web.mjs';

const iterations = process.argv[2] ?? '20';
const rows = JSON.parse(process.argv[3] ?? '[{}, {"order":"1"}, {"hidden":"256,128,64,64","order":"1","tasks":"16"}]');
await buildWeb();
const server = await startServer(0);
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await puppeteer.launch({
  executablePath: process.env.METAGRAD_BROWSER ?? '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${mkdtempSync(path.join(os.tmpdir(), 'metagrad-chromium-'))}`],
});
try {
  console.log(`| page settings (defaults: MLP 64,64, per-task norm, Omniglot 5-way 1-shot, 32 tasks, order 2) | backend | it/s (${iterations} iterations) |\n|---|---|---|`);
  for (const row of rows) {
    for (const backend of ['cpu', 'webgpu']) {
      const page = await browser.newPage();
      await page.goto(`${base}/train.html?backend=${backend}`, { waitUntil: 'load' });
      await page.waitForFunction('window.__metagrad && window.__metagrad.ready', { timeout: 120_000 });
      for (const [id, v] of Object.entries({ iterations, evalEvery: '100000', ...row })) {
        if (['order', 'source', 'model', 'norm', 'algorithm'].includes(id)) await page.select(`#${id}`, v);
        else await page.$eval(`#${id}`, (el, x) => { el.value = x; }, v);
      }
      await page.click('#start');
      await page.waitForFunction('window.__metagrad.done === true || window.__metagrad.errors.length > 0', { timeout: 1_800_000, polling: 500 });
      const errors = await page.evaluate('window.__metagrad.errors');
      const speed = await page.$eval('#speed', (el) => el.textContent ?? '');
      const rate = /([\d.]+) it\/s/.exec(speed)?.[1] ?? 'n/a';
      console.log(`| ${JSON.stringify(row)} | ${backend} (${await page.evaluate('window.__metagrad.backend.adapter')}) | ${errors.length ? `error: ${errors[0]}` : rate} |`);
      await page.close();
    }
  }
} finally {
  await browser.close();
  server.close();
}
