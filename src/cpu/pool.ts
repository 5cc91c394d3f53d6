// Worker threads for the CPU backend (Node only): the per-task pass of a meta-iteration is split into
// contiguous task ranges, one per thread, over SharedArrayBuffer-backed arrays. Workers are started on
// first use and unref'd, so a finished program exits by itself. Where workers are unavailable (browsers,
// a bundle without dist/cpu-worker.js) the pool has one thread and the engine runs inline.
//
// Pools are shared by thread count across learners (`acquirePool` / `releasePool`): a program that
// creates and destroys learners in a loop reuses the same workers instead of starting new ones (each
// start costs a thread, an isolate and its heap). A pool whose last learner is gone is terminated after
// a short grace period (an unref'd timer), so a loop reuses it and an idle program holds no threads.
// The engines' shared memory is recycled too (`SharedArena`): together they keep a loop of
// create/step/destroy at a flat RSS (200 cycles at T = 256, D = 256 grew it from 67 to 413 MiB before).
import { nodeBuiltin } from '../gpu/node-env.js';
import type { WorkerJob } from './worker.js';

type NodeWorker = {
  postMessage(m: unknown): void;
  on(event: 'message', f: (m: { id: number; error?: string }) => void): void;
  on(event: 'error', f: (e: Error) => void): void;
  on(event: 'exit', f: (code: number) => void): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
};

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class WorkerPool {
  private workers: NodeWorker[] = [];
  private pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 1;
  /** Jobs in flight per worker: a worker is ref'd (keeps the process alive) while it has any. */
  private busy: number[] = [];
  /** Set when a worker died (an uncaught error, or an exit not asked for by destroy): the pool is
   * unusable, its jobs fail at once, and acquirePool starts a new one. */
  broken: Error | null = null;
  private terminating = false;

  private constructor(readonly threads: number) {}

  /** A pool of `threads` workers (0: one per available core); 1 thread when workers are unavailable. */
  static async create(threads: number): Promise<WorkerPool> {
    const isNode = typeof process !== 'undefined' && !!process.versions?.node;
    if (!isNode) return new WorkerPool(1);
    // Node built-ins by a computed name, so that browser bundles of the library never see a node: import.
    const os = await nodeBuiltin<typeof import('node:os')>('os');
    const fs = await nodeBuiltin<typeof import('node:fs')>('fs');
    const { fileURLToPath } = await nodeBuiltin<typeof import('node:url')>('url');
    const wanted = threads > 0 ? threads : (os.availableParallelism?.() ?? os.cpus().length);
    const script = new URL('./cpu-worker.js', import.meta.url);
    if (wanted <= 1 || script.protocol !== 'file:' || !fs.existsSync(fileURLToPath(script))) return new WorkerPool(1);
    const { Worker } = await nodeBuiltin<typeof import('node:worker_threads')>('worker_threads');
    const pool = new WorkerPool(wanted);
    for (let i = 0; i < wanted; i++) {
      const w = new Worker(script) as unknown as NodeWorker;
      w.on('message', (m) => {
        const p = pool.pending.get(m.id);
        pool.pending.delete(m.id);
        if (m.error) p?.reject(new Error(`CPU worker failed: ${m.error}`));
        else p?.resolve();
      });
      w.on('error', (e) => pool.fail(e));
      w.on('exit', (code) => { if (!pool.terminating) pool.fail(new Error(`CPU worker exited (code ${code})`)); });
      w.unref();
      pool.workers.push(w);
      pool.busy.push(0);
    }
    return pool;
  }

  /** Runs a job split into one contiguous task range per worker; every array must be SharedArrayBuffer-backed. */
  run(job: DistributiveOmit<WorkerJob, 'id' | 'range'>, tasks: number): Promise<void> {
    if (this.broken) return Promise.reject(new Error(`CPU worker pool is broken: ${this.broken.message}`));
    const n = Math.min(this.workers.length, tasks);
    // Referenced while they work (an idle pool must not keep the process alive, a busy one must); two
    // learners sharing the pool may overlap, hence a count per worker.
    const workers = this.workers.slice(0, n);
    for (let i = 0; i < n; i++) if (this.busy[i]++ === 0) workers[i].ref();
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const range: [number, number] = [Math.floor((i * tasks) / n), Math.floor(((i + 1) * tasks) / n)];
      const id = this.nextId++;
      jobs.push(new Promise<void>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.workers[i].postMessage({ ...job, id, range });
      }));
    }
    const idle = () => { for (let i = 0; i < n; i++) if (--this.busy[i] === 0) workers[i].unref(); };
    return Promise.all(jobs).then(idle, (e) => { idle(); throw e; });
  }

  private fail(e: Error): void {
    this.broken ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  destroy(): void {
    this.terminating = true;
    for (const w of this.workers) void w.terminate();
    this.workers = [];
    this.busy = [];
  }
}

interface SharedPool {
  threads: number;
  pool: Promise<WorkerPool>;
  /** The pool once started (its `broken` says whether new learners need another). */
  started: WorkerPool | null;
  users: number;
  timer: ReturnType<typeof setTimeout> | null;
}
/** The current pool of each thread count. */
const sharedPools = new Map<number, SharedPool>();
/** Every pool handed out, current or replaced, by the promise its users hold. */
const entries = new WeakMap<Promise<WorkerPool>, SharedPool>();
/** How long a pool with no learner left waits for the next one before its workers are terminated. */
const POOL_GRACE_MS = 2000;

/** The process's pool of `threads` workers (created on first use); give it back with releasePool. */
export function acquirePool(threads: number): Promise<WorkerPool> {
  let entry = sharedPools.get(threads);
  if (entry?.started?.broken) {
    // A worker of it died: the learners still on it get its error; new ones get a new pool.
    sharedPools.delete(threads);
    entry = undefined;
  }
  if (!entry) {
    const created: SharedPool = { threads, pool: WorkerPool.create(threads), started: null, users: 0, timer: null };
    created.pool.then((p) => { created.started = p; }, () => {
      // A pool that failed to start is forgotten, so the next learner tries again.
      if (sharedPools.get(threads) === created) sharedPools.delete(threads);
    });
    entry = created;
    sharedPools.set(threads, entry);
    entries.set(entry.pool, entry);
  }
  if (entry.timer) { clearTimeout(entry.timer); entry.timer = null; }
  entry.users++;
  return entry.pool;
}

/** Gives back one acquirePool reference to `pool`; its last user terminates the workers (after
 * POOL_GRACE_MS, or at once for a pool that was replaced). */
export function releasePool(pool: Promise<WorkerPool>): void {
  const entry = entries.get(pool);
  if (!entry || entry.users === 0) return;
  if (--entry.users > 0) return;
  const end = () => { void entry.pool.then((p) => p.destroy(), () => undefined); };
  if (sharedPools.get(entry.threads) !== entry) { end(); return; }
  entry.timer = setTimeout(() => {
    if (sharedPools.get(entry.threads) !== entry || entry.users > 0) return;
    sharedPools.delete(entry.threads);
    end();
  }, POOL_GRACE_MS);
  (entry.timer as { unref?: () => void }).unref?.();
}

export const isShared = (a: Float32Array): boolean => typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;

// Shared memory that a destroyed engine gives back, by byte length, for the next engine to reuse.
// V8 frees a SharedArrayBuffer only once every isolate that saw it (the main thread and each worker
// that ran a job on it) has collected its handle, and idle workers seldom collect: without reuse, a
// loop of create/step/destroy learners grew the process by its arrays every cycle. At most
// RECYCLE_LIMIT bytes wait here; beyond that a buffer is left to the garbage collector.
const recycled = new Map<number, SharedArrayBuffer[]>();
let recycledBytes = 0;
const RECYCLE_LIMIT = 256 * 2 ** 20;

/**
 * The shared arrays of one engine: `floats` hands out zeroed arrays (reusing given-back memory of the
 * same size), `release` gives back every one of them. Only for arrays that never leave the engine
 * (what callers receive is always a copy), since a released buffer is reused by the next engine.
 */
export class SharedArena {
  private owned: SharedArrayBuffer[] = [];

  floats(length: number): Float32Array {
    if (typeof SharedArrayBuffer === 'undefined') return new Float32Array(length);
    const bytes = 4 * Math.max(length, 1);
    let buffer = recycled.get(bytes)?.pop();
    if (buffer) {
      recycledBytes -= bytes;
      new Uint8Array(buffer).fill(0);
    } else {
      buffer = new SharedArrayBuffer(bytes);
    }
    this.owned.push(buffer);
    return new Float32Array(buffer).subarray(0, length);
  }

  /** Gives back the buffers of `arrays` (superseded scratch), or all of them when called without. */
  release(arrays?: Float32Array[]): void {
    const give = arrays ? this.owned.filter((b) => arrays.some((a) => a.buffer === b)) : this.owned;
    this.owned = arrays ? this.owned.filter((b) => !give.includes(b)) : [];
    for (const buffer of give) {
      if (recycledBytes + buffer.byteLength > RECYCLE_LIMIT) continue;
      const list = recycled.get(buffer.byteLength) ?? [];
      list.push(buffer);
      recycled.set(buffer.byteLength, list);
      recycledBytes += buffer.byteLength;
    }
  }
}
