// Issue 19 (4): nothing of a CPU-backend learner outlives destroy(). The probe, 200 ×
// (createLearner with 2 threads, one step of 256 tasks × (10 + 10) rows × 256 features with readback,
// destroy()), grew RSS from 67 to 413 MiB linearly. Here a child process runs the loop (a clean RSS of
// its own) and reports RSS along the way: after a warm-up the growth must stop.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleChildScript } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The loop, bundled beside this bundle, where the test build put cpu-worker.js (the pool starts
 * workers from beside the code). */
function childScript(): Promise<string> {
  return bundleChildScript(`
    import { createLearner } from './src/learner.ts';
    import { randomBatch } from './test/helpers.ts';
    const cycles = Number(process.argv[2]);
    const batch = randomBatch(256, 10, 10, 256, 4);
    const rss = [];
    for (let i = 0; i < cycles; i++) {
      const l = await createLearner({ algorithm: 'maml', dim: 256, threads: 2, backend: 'cpu' });
      const m = await l.step(batch, { readback: true });
      if (!Number.isFinite(m.loss)) throw new Error('non-finite loss');
      l.destroy();
      rss.push(process.memoryUsage().rss / 2 ** 20);
    }
    console.log(JSON.stringify(rss));`, path.join(here, 'cpu-lifetime-child.mjs'));
}

test('RSS levels off over 160 create / step / destroy cycles of a 2-thread CPU learner', async () => {
  assert.ok(existsSync(path.join(here, 'cpu-worker.js')), 'the test build has cpu-worker.js beside the tests');
  const script = await childScript();
  const r = spawnSync(process.execPath, [script, '160'], { encoding: 'utf8', timeout: 300_000 });
  assert.is(r.status, 0, r.stderr);
  const rss = JSON.parse(r.stdout.trim().split('\n').pop()!) as number[];
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const early = median(rss.slice(30, 50));
  const late = median(rss.slice(140, 160));
  // Each cycle allocates ~10 MiB of shared arrays (batch copies, attacked copies, scratch): a leak of
  // them shows as ~1 GiB over 100 cycles; allocator noise is a few MiB.
  assert.ok(late - early < 24, `RSS grew from ${early.toFixed(0)} MiB (cycles 30–50) to ${late.toFixed(0)} MiB (cycles 140–160)`);
});

test('learners share one worker pool per thread count; a pool whose worker died is replaced, and its jobs fail at once', async () => {
  const { acquirePool, releasePool } = await import('../src/cpu/pool.js');
  const held = [acquirePool(3), acquirePool(3)];
  const [a, b] = await Promise.all(held);
  assert.is(a, b, 'two learners with 3 threads share the pool');
  assert.is(a.threads, 3);
  // A worker dies (here: terminated behind the pool's back, as a crash would end it).
  const worker = (a as unknown as { workers: { terminate(): Promise<number> }[] }).workers[0];
  await worker.terminate();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(a.broken, 'the pool knows');
  const error = await a.run({ kernel: 'attack' } as never, 3).then(() => null, (e: Error) => e);
  assert.ok(error && /broken/.test(error.message), `a job on it fails at once: ${error?.message}`);
  const fresh = acquirePool(3);
  const c = await fresh;
  assert.is.not(c, a, 'the next learner gets a new pool');
  assert.is(c.broken, null);
  // Giving back the old pool ends it and leaves the new one alone.
  for (const p of held) releasePool(p);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.is((a as unknown as { workers: unknown[] }).workers.length, 0, 'the broken pool was terminated by its last user');
  assert.ok((c as unknown as { workers: unknown[] }).workers.length === 3, 'the new pool still has its workers');
  releasePool(fresh);
});

test.run();
