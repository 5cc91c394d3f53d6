// Worker threads for the CPU backend (Node only): the per-task pass of a meta-iteration is split into
// contiguous task ranges, one per thread, over SharedArrayBuffer-backed arrays. Workers are started on
// first use and unref'd, so a finished program exits by itself. Where workers are unavailable (browsers,
// a bundle without dist/cpu-worker.js) the pool has one thread and the engine runs inline.
import { nodeBuiltin } from '../gpu/node-env.js';
import type { WorkerJob } from './worker.js';

type NodeWorker = {
  postMessage(m: unknown): void;
  on(event: 'message', f: (m: { id: number; error?: string }) => void): void;
  on(event: 'error', f: (e: Error) => void): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
};

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class WorkerPool {
  private workers: NodeWorker[] = [];
  private pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 1;

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
      w.on('error', (e) => { for (const p of pool.pending.values()) p.reject(e); pool.pending.clear(); });
      w.unref();
      pool.workers.push(w);
    }
    return pool;
  }

  /** Runs a job split into one contiguous task range per worker; every array must be SharedArrayBuffer-backed. */
  run(job: DistributiveOmit<WorkerJob, 'id' | 'range'>, tasks: number): Promise<void> {
    const n = Math.min(this.workers.length, tasks);
    // Referenced while they work (an idle pool must not keep the process alive, a busy one must).
    for (let i = 0; i < n; i++) this.workers[i].ref();
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const range: [number, number] = [Math.floor((i * tasks) / n), Math.floor(((i + 1) * tasks) / n)];
      const id = this.nextId++;
      jobs.push(new Promise<void>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.workers[i].postMessage({ ...job, id, range });
      }));
    }
    const idle = () => { for (let i = 0; i < n; i++) this.workers[i]?.unref(); };
    return Promise.all(jobs).then(idle, (e) => { idle(); throw e; });
  }

  destroy(): void {
    for (const w of this.workers) void w.terminate();
    this.workers = [];
  }
}

/** A Float32Array over shared memory (or ordinary memory when SharedArrayBuffer is unavailable). */
export function sharedFloats(length: number): Float32Array {
  return typeof SharedArrayBuffer !== 'undefined' ? new Float32Array(new SharedArrayBuffer(4 * Math.max(length, 1))).subarray(0, length) : new Float32Array(length);
}

export const isShared = (a: Float32Array): boolean => typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;
