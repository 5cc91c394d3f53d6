// learner.gpuTime(): what it is, never how fast anything is (speed belongs in the bench). Null on the CPU
// backend; on an adapter with timestamp queries (SwiftShader has them) a positive, finite number of ms
// for the compute pass of the last submit, and monotone in the work that one submit records: a submit
// of 16 meta-iterations (16× the dispatches of one) never reads less than the least of three submits of
// one. The small submits run after a warm-up (SwiftShader compiles a pipeline at its first dispatch,
// inside the timed pass), and taking their least value means a stall can only help the comparison.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createLearner } from '../src/learner.js';
import { randomBatch } from './helpers.js';

test('gpuTime: null on the CPU backend', async () => {
  const cpu = await createLearner({ backend: 'cpu', dim: 8 });
  await cpu.step(randomBatch(4, 5, 5, 8));
  assert.is(await cpu.gpuTime(), null);
  cpu.destroy();
});

test('gpuTime with timestamp queries (SwiftShader): positive, finite, monotone over the dispatches of one submit', () => {
  // SwiftShader's Vulkan driver ships with Debian's chromium; Dawn finds its loader through
  // LD_LIBRARY_PATH, which must be set before the process starts: hence a child process.
  const script = `
    import { createLearner } from ${JSON.stringify(path.resolve('dist/index.js'))};
    const l = await createLearner({ backend: 'webgpu', dim: 50 });
    const T = 16, K = 10, D = 50, x = (n) => Float32Array.from({ length: n }, (_, i) => (i % 7) / 7), y = (n) => Float32Array.from({ length: n }, (_, i) => i % 2);
    const b = { tasks: T, supportShots: K, queryShots: K, supportX: x(T * K * D), supportY: y(T * K), queryX: x(T * K * D), queryY: y(T * K) };
    const out = { adapter: l.backend.adapter, one: [], many: null };
    await l.step(b, { iterations: 2 });
    for (let i = 0; i < 3; i++) { await l.step(b, { iterations: 1 }); out.one.push(await l.gpuTime()); }
    await l.step(b, { iterations: 16 });
    out.many = await l.gpuTime();
    console.log(JSON.stringify(out));
    l.destroy();
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8', env: { ...process.env, METAGRAD_ADAPTER: 'swiftshader', LD_LIBRARY_PATH: '/usr/lib/chromium' }, timeout: 180_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `child printed its result (status ${r.status}): ${r.stderr.slice(-500)}`);
  const out = JSON.parse(line!) as { adapter: string; one: (number | null)[]; many: number | null };
  assert.match(out.adapter.toLowerCase(), /swiftshader/);
  for (const t of [...out.one, out.many]) {
    assert.ok(typeof t === 'number' && Number.isFinite(t) && t > 0, `a positive, finite time in ms: ${JSON.stringify(out)}`);
  }
  const least = Math.min(...(out.one as number[]));
  assert.ok(out.many! >= least, `16 iterations in one submit read no less than one: ${out.many} ms vs ${least} ms`);
});

test.run();
