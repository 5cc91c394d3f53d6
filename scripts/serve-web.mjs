// A tiny static server for the demo pages: web/ at / (the data sets the pages load are in web/dist/data,
// copied there by scripts/build-web.mjs), and the repository's data/ at /data/. Only files inside those
// two folders are served. Usage: node scripts/serve-web.mjs [port] (default 8080; 0 = any).
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.gz': 'application/octet-stream', '.svg': 'image/svg+xml', '.png': 'image/png' };

export function startServer(port = 8080) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const rel = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
    const base = rel.startsWith('/data/') ? path.join(root, 'data') : path.join(root, 'web');
    const file = path.resolve(base, '.' + (rel.startsWith('/data/') ? rel.slice(5) : rel));
    if (!file.startsWith(base + path.sep)) { res.writeHead(403).end('forbidden'); return; }
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(await readFile(file));
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${rel}`);
    }
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await startServer(Number(process.argv[2] ?? 8080));
  console.log(`metagrad demo pages: http://localhost:${server.address().port}/  (Chrome with WebGPU; Ctrl-C stops)`);
}
