// Issue 12, "nothing silently wrong": a diverging run stops with a DivergenceError and never hands out a
// non-finite state (so the CLI never writes a bad checkpoint), and calls on one learner that are not
// awaited give exactly the results of the same calls awaited in order, on both backends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLearner, type Learner } from '../src/learner.js';
import { DestroyedError, DivergenceError, MetagradError, ShapeError } from '../src/errors.js';
import type { BackendChoice, Batch, LearnerOptions, LearnerState, TrainProgress } from '../src/types.js';
import { randomBatch, thrown, upload, withGpu } from './helpers.js';
import { FiniteCheckKernel } from '../src/kernels/finite-check.js';
import { countNonFinite } from '../src/cpu/finite-check.js';
import { createBuffer, readFloats } from '../src/gpu/resources.js';
import { main } from '../src/cli/main.js';
import { loadCheckpoint } from '../src/cli/checkpoint.js';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BACKENDS: BackendChoice[] = ['cpu', 'webgpu'];
const MAML_SMALL: LearnerOptions = { dim: 12, innerLr: 0.3, outerLr: 0.05, seed: 7 };
const run = (backend: BackendChoice, body: () => Promise<void>) => (backend === 'webgpu' ? withGpu(body) : body());

/** The repro: CAML with learning rates of 1e6 trains to NaN. */
const DIVERGING: LearnerOptions = { algorithm: 'caml', dim: 8, contextDim: 2, innerLr: 1e6, outerLr: 1e6, seed: 5 };

function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

function assertDivergence(e: Error, what: string): void {
  assert.ok(e instanceof MetagradError, `${what}: a MetagradError, got ${e?.stack ?? e}`);
  assert.ok(e instanceof DivergenceError, `${what}: a DivergenceError, got ${e.name}`);
  assert.is((e as MetagradError).code, 'DIVERGED');
  assert.match(e.message, /iteration \d+/, `${what}: the message names the iteration`);
  assert.match(e.message, /learning rate/i, `${what}: the message names the likely cause`);
  assert.ok((e as MetagradError).hint.length > 0, `${what}: a hint`);
}

for (const backend of BACKENDS) {
  test(`[${backend}] train: a diverging run rejects with a DivergenceError; progress never sees a non-finite state`, () =>
    run(backend, async () => {
      const l = await createLearner({ ...DIVERGING, backend });
      const states: LearnerState[] = [];
      const reports: TrainProgress[] = [];
      const e = await thrown(() => l.train({
        source: { kind: 'linear', dim: 8 }, iterations: 200, tasksPerBatch: 8, supportShots: 5, queryShots: 5,
        evalEvery: 20, evalTasks: 8, iterationsPerSubmit: 5, trackTrainLoss: true,
        // What the CLI does before writing each checkpoint.
        onProgress: async (p) => { reports.push(p); states.push(await l.getState()); },
      }));
      assertDivergence(e, 'train');
      for (const s of states) assert.ok(allFinite(s.params) && allFinite(s.optimizer), 'every state handed to a checkpoint is finite');
      for (const p of reports) assert.ok(p.train === undefined || Number.isFinite(p.train.loss), `iteration ${p.iteration}: finite train loss`);
      assert.ok((await thrown(() => l.getState())) instanceof DivergenceError, 'getState refuses the diverged state');
      l.destroy();
    }));

  test(`[${backend}] train without any readback still stops at the end with a DivergenceError`, () =>
    run(backend, async () => {
      const l = await createLearner({ ...DIVERGING, backend });
      const e = await thrown(() => l.train({ source: { kind: 'linear', dim: 8 }, iterations: 60, tasksPerBatch: 8, supportShots: 5, queryShots: 5, evalEvery: 0 }));
      assertDivergence(e, 'train (no readback)');
      l.destroy();
    }));

  test(`[${backend}] step({ readback }) and getState raise a DivergenceError; getState never returns NaN`, () =>
    run(backend, async () => {
      const batch = randomBatch(8, 5, 5, 8, 21);
      const a = await createLearner({ ...DIVERGING, backend });
      let error: Error | undefined;
      for (let i = 0; i < 100 && !error; i++) {
        try {
          const m = await a.step(batch, { readback: true });
          assert.ok(m && Number.isFinite(m.loss), `iteration ${i + 1}: metrics are only returned while the state is finite`);
        } catch (e) { error = e as Error; }
      }
      assert.ok(error, 'the run diverged within 100 iterations');
      assertDivergence(error!, 'step');
      assertDivergence(await thrown(() => a.getState()), 'getState');
      a.destroy();

      // Without readback nothing is checked until getState (what the CLI calls before a checkpoint).
      const b = await createLearner({ ...DIVERGING, backend });
      await b.step(batch, { iterations: 100 });
      assertDivergence(await thrown(() => b.getState()), 'getState after steps without readback');
      // Recovery: a finite state makes the learner usable again.
      const fresh = await createLearner({ ...DIVERGING, innerLr: 0.1, outerLr: 0.01, backend });
      b.setState(await fresh.getState());
      const m = await b.step(batch, { readback: true });
      assert.ok(m && Number.isFinite(m.loss), 'after setState the learner trains again');
      assert.ok(allFinite((await b.getState()).params));
      b.destroy();
      fresh.destroy();
    }));

  test(`[${backend}] the diverged state stops the run loudly at once, with no extra GPU submit`, () =>
    run(backend, async () => {
      const l = await createLearner({ ...DIVERGING, backend });
      const e = await thrown(() => l.step(randomBatch(8, 5, 5, 8, 21), { iterations: 50, readback: true }));
      assertDivergence(e, 'step(iterations: 50)');
      assert.is((e as DivergenceError).iteration, 50);
      l.destroy();
    }));

  test(`[${backend}] a healthy run is not flagged (Adam, many iterations per submit)`, () =>
    run(backend, async () => {
      const l = await createLearner({ dim: 8, innerLr: 0.1, outerLr: 0.01, optimizer: 'adam', backend, seed: 2 });
      const last = await l.train({ source: { kind: 'linear', dim: 8 }, iterations: 30, tasksPerBatch: 8, supportShots: 5, queryShots: 5, evalEvery: 10, evalTasks: 8, trackTrainLoss: true });
      assert.ok(last.eval && Number.isFinite(last.eval.loss));
      const s = await l.getState();
      assert.ok(allFinite(s.params) && allFinite(s.optimizer));
      l.destroy();
    }));
}

test('[webgpu] finite-check kernel counts what its CPU twin counts (NaN, ±Infinity; sizes over many workgroups)', () =>
  withGpu(async (acq) => {
    const kernel = new FiniteCheckKernel(acq.device);
    for (const [n, m] of [[1, 3], [13, 27], [5000, 10001], [70001, 140003]]) {
      const a = new Float32Array(n);
      const b = new Float32Array(m);
      for (let i = 0; i < n; i++) a[i] = (i % 7) - 3 + 1e-3 * i;
      for (let i = 0; i < m; i++) b[i] = i % 5 === 0 ? 3.4e38 : i % 11 === 0 ? 1e-40 : -i;  // finite extremes
      for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 9))) a[i] = [NaN, Infinity, -Infinity][i % 3];
      b[m - 1] = NaN;
      if (m > 100) b[m >> 1] = -Infinity;
      const counts = createBuffer(acq.device, 'test.counts', 4);
      const bound = kernel.bind({ params: upload(acq, 'a', a), optState: upload(acq, 'b', b), counts }, n, m);
      for (let rep = 0; rep < 2; rep++) {  // the counts are reset by the kernel itself
        const encoder = acq.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        bound.encode(pass);
        pass.end();
        acq.device.queue.submit([encoder.finish()]);
        const words = new Uint32Array((await readFloats(acq.device, counts, 2)).buffer);
        assert.equal([words[0], words[1]], [countNonFinite(a), countNonFinite(b)], `n = ${n}, m = ${m}, run ${rep}`);
      }
      assert.ok(countNonFinite(a) > 0 && countNonFinite(b) > 0);
    }
  }));

test('[webgpu] the divergence check adds no submit: step({ readback }) is one compute and one readback submit', () =>
  withGpu(async (acq) => {
    const l = await createLearner({ ...MAML_SMALL, backend: 'webgpu' });
    const batch = randomBatch(6, 5, 5, 12, 3);
    await l.step(batch, { readback: true });  // compiles
    const queue = acq.device.queue;
    const original = queue.submit;
    let submits = 0;
    queue.submit = function (buffers: Iterable<GPUCommandBuffer>) { submits++; return original.call(queue, buffers); };
    try {
      await l.step(batch, { readback: true, iterations: 2 });
      assert.is(submits, 2, 'step with readback');
      submits = 0;
      await l.step(batch, { readback: true, returnWeights: true });
      assert.is(submits, 2, 'step with readback and weights: one readback for both and the check');
      submits = 0;
      await l.step(batch);
      assert.is(submits, 1, 'step without readback');
    } finally {
      queue.submit = original;
    }
    l.destroy();
  }));

/** Runs the CLI in-process; returns its exit code and what it printed to stderr. */
async function cli(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const [o, e, log] = [process.stdout.write, process.stderr.write, console.log];
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => { err += String(chunk); return true; }) as typeof process.stderr.write;
  console.log = () => {};
  try {
    return { code: await main(args), err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
    console.log = log;
  }
}

for (const backend of BACKENDS) {
  test(`[${backend}] CLI: a diverging train exits 1 with the error and leaves no non-finite checkpoint`, () =>
    run(backend, async () => {
      const out = mkdtempSync(path.join(os.tmpdir(), 'metagrad-diverge-'));
      const r = await cli(['train', '--algo', 'caml', '--context-dim', '2', '--source', 'linear', '--dim', '8', '--tasks', '8', '--support-shots', '5', '--query-shots', '5',
        '--inner-lr', '1e6', '--outer-lr', '1e6', '--iterations', '100', '--eval-every', '20', '--eval-tasks', '8', '--checkpoint-every', '1', '--attack', 'none',
        '--backend', backend, '--quiet', '--out', out]);
      assert.is(r.code, 1, r.err);
      assert.match(r.err, /diverged/i);
      assert.match(r.err, /hint: /);
      const file = path.join(out, 'checkpoint.json');
      if (existsSync(file)) {
        const saved = loadCheckpoint(file);
        assert.ok(allFinite(saved.state.params) && allFinite(saved.state.optimizer), 'the checkpoint on disk is finite');
      }
    }));
}

// ——— concurrency ———

type Call = (l: Learner) => Promise<unknown>;

/** Fires every call without awaiting on one learner, awaits them in order on another; compares. */
async function sameAsSequential(backend: BackendChoice, options: LearnerOptions, calls: Call[]): Promise<void> {
  const concurrent = await createLearner({ ...options, backend });
  const sequential = await createLearner({ ...options, backend });
  const together = await Promise.all(calls.map((c) => c(concurrent)));
  const inOrder: unknown[] = [];
  for (const c of calls) inOrder.push(await c(sequential));
  for (let i = 0; i < calls.length; i++) assertSame(`call ${i}`, together[i], inOrder[i]);
  assertSame('final state', await concurrent.getState(), await sequential.getState());
  concurrent.destroy();
  sequential.destroy();
}

/** Exact equality of results (typed arrays bit for bit, NaN equal to NaN, objects field by field). */
function assertSame(path: string, got: unknown, expected: unknown): void {
  if (ArrayBuffer.isView(expected)) {
    assert.ok(ArrayBuffer.isView(got), `${path}: expected a typed array`);
    const a = new Uint32Array((got as Float32Array).slice().buffer);
    const b = new Uint32Array((expected as Float32Array).slice().buffer);
    assert.is(a.length, b.length, `${path}: length`);
    for (let i = 0; i < b.length; i++) {
      if (a[i] !== b[i]) assert.unreachable(`${path}[${i}]: expected ${(expected as Float32Array)[i]}, got ${(got as Float32Array)[i]}`);
    }
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    assert.ok(got !== null && typeof got === 'object', `${path}: expected an object, got ${String(got)}`);
    const keys = Object.keys(expected as object).filter((k) => k !== 'elapsedSeconds' && k !== 'iterationsPerSecond');
    for (const k of keys) assertSame(`${path}.${k}`, (got as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k]);
    return;
  }
  if (typeof expected === 'number' && Number.isNaN(expected)) { assert.ok(Number.isNaN(got), `${path}: NaN`); return; }
  assert.is(got, expected, path);
}

const b1 = randomBatch(6, 5, 5, 12, 31);
const b2 = randomBatch(6, 5, 5, 12, 32);   // same shape as b1
const b3 = randomBatch(4, 3, 7, 12, 33);   // another shape
const MAML: LearnerOptions = { dim: 12, innerLr: 0.3, outerLr: 0.05, innerSteps: 2, order: 2, optimizer: 'adam', seed: 7 };

for (const backend of BACKENDS) {
  test(`[${backend}] un-awaited step/evaluate/adapt/metaGradient calls equal the same calls awaited in order`, () =>
    run(backend, () => sameAsSequential(backend, MAML, [
      (l) => l.step(b1),
      (l) => l.step(b2, { readback: true }),
      (l) => l.evaluate(b3, { steps: 3 }),
      (l) => l.step(b3, { readback: true, iterations: 3 }),
      (l) => l.metaGradient(b1),
      (l) => l.step(b1, { iterations: 2 }),
      (l) => l.adapt(b2, { steps: 1 }),
      (l) => l.step(b3, { readback: true, returnWeights: true }),
      (l) => l.getParams(),
      (l) => l.step(b2, { readback: true }),
      (l) => l.evaluate(b1),
      (l) => l.getState(),
    ])));

  test(`[${backend}] un-awaited train() and the calls around it equal them awaited in order`, () =>
    run(backend, () => sameAsSequential(backend, MAML, [
      (l) => l.step(b1, { readback: true }),
      (l) => l.train({ source: { kind: 'linear', dim: 12 }, iterations: 7, tasksPerBatch: 6, supportShots: 5, queryShots: 5, evalEvery: 4, evalTasks: 6, iterationsPerSubmit: 3, trackTrainLoss: true }),
      (l) => l.step(b3, { readback: true }),
      (l) => l.train({ source: { kind: 'linear', dim: 12 }, iterations: 3, startIteration: 7, tasksPerBatch: 4, supportShots: 3, queryShots: 7 }),
      (l) => l.evaluate(b2),
    ])));

  test(`[${backend}] CAML: un-awaited calls of different shapes equal the awaited ones`, () =>
    run(backend, () => sameAsSequential(backend, { algorithm: 'caml', dim: 12, contextDim: 2, innerLr: 0.2, outerLr: 0.05, seed: 9 }, [
      (l) => l.step(b3, { readback: true }),
      (l) => l.step(b1, { readback: true, iterations: 2 }),
      (l) => l.evaluate(b3),
      (l) => l.step(b2),
      (l) => l.evaluate(b1),
    ])));

  test(`[${backend}] setParams after un-awaited calls applies after them`, () =>
    run(backend, async () => {
      const l = await createLearner({ ...MAML, backend });
      const p = await l.getParams();
      const zero = new Float32Array(p.length);
      const first = l.evaluate(b1);
      const stepped = l.step(b1, { readback: true });
      l.setParams(zero);
      const after = l.getParams();
      const ref = await createLearner({ ...MAML, backend });
      const expected = await ref.evaluate(b1);
      const expectedStep = await ref.step(b1, { readback: true });
      assertSame('evaluate before setParams', await first, expected);
      assertSame('step before setParams', await stepped, expectedStep);
      assertSame('params after setParams', await after, zero);
      l.destroy();
      ref.destroy();
    }));

  test(`[${backend}] destroy() during calls: the running one completes, the queued ones reject with DestroyedError`, () =>
    run(backend, async () => {
      const ref = await createLearner({ ...MAML, backend });
      const expected = await ref.step(b1, { readback: true, iterations: 2 });
      ref.destroy();
      const l = await createLearner({ ...MAML, backend });
      const running = l.step(b1, { readback: true, iterations: 2 });
      const queued = [l.evaluate(b3), l.step(b2, { readback: true }), l.getParams(), l.train({ source: { kind: 'linear', dim: 12 }, iterations: 3, tasksPerBatch: 6, supportShots: 5, queryShots: 5 })];
      l.destroy();
      const outcomes = await Promise.allSettled([running, ...queued]);
      const [first, ...rest] = outcomes;
      if (first.status === 'fulfilled') assertSame('the running step', first.value, expected);
      else assert.ok(first.reason instanceof DestroyedError, `the running step: DestroyedError, got ${first.reason}`);
      for (const [i, o] of rest.entries()) {
        assert.is(o.status, 'rejected', `queued call ${i} is not answered with a result after destroy()`);
        assert.ok((o as PromiseRejectedResult).reason instanceof DestroyedError, `queued call ${i}: DestroyedError, got ${(o as PromiseRejectedResult).reason}`);
      }
      assert.ok((await thrown(() => l.step(b1))) instanceof DestroyedError);
    }));

  test(`[${backend}] destroy() during train() stops it with a DestroyedError`, () =>
    run(backend, async () => {
      const l = await createLearner({ ...MAML, backend });
      let reports = 0;
      const training = l.train({
        source: { kind: 'linear', dim: 12 }, iterations: 20000, tasksPerBatch: 6, supportShots: 5, queryShots: 5, iterationsPerSubmit: 1,
        onProgress: (p) => { reports++; if (p.iteration === 5) l.destroy(); },
      });
      const e = await thrown(() => training);
      assert.ok(e instanceof DestroyedError, `DestroyedError, got ${e}`);
      assert.is(reports, 5, 'no iteration ran after destroy()');
    }));
}

// Batches handed to un-awaited calls may be reused by the caller right away.
test('[cpu] a batch changed after an un-awaited call does not change that call', async () => {
  const batch: Batch = randomBatch(6, 5, 5, 12, 41);
  const original = { ...batch, supportX: (batch.supportX as Float32Array).slice(), queryX: (batch.queryX as Float32Array).slice() };
  const l = await createLearner({ ...MAML, backend: 'cpu' });
  const ref = await createLearner({ ...MAML, backend: 'cpu' });
  const busy = l.step(b1, { iterations: 3 });
  const late = l.evaluate(batch);
  (batch.supportX as Float32Array).fill(0.5);
  await busy;
  await ref.step(b1, { iterations: 3 });
  assertSame('evaluate on the batch as it was at the call', await late, await ref.evaluate(original));
  l.destroy();
  ref.destroy();
});

test('setState rejects a negative or fractional Adam step count (the last optimizer value) with a ShapeError', async () => {
  const learner = await createLearner({ dim: 6, backend: 'cpu', optimizer: 'adam' });
  const state = await learner.getState();
  for (const bad of [-1, 2.5]) {
    const optimizer = state.optimizer.slice();
    optimizer[optimizer.length - 1] = bad;
    let error: unknown = null;
    try { learner.setState({ params: state.params, optimizer }); } catch (e) { error = e; }
    assert.ok(error instanceof ShapeError && /step count/.test((error as Error).message), `step count ${bad}: ${String(error)}`);
  }
  learner.setState(state);  // the unchanged state is accepted
  learner.destroy();
});

test.run();
