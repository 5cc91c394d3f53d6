// The `file` task source: the user's own binary tasks as CSV, validated on load.
//
//   task,set,label,x0,x1,…,x{D−1}       header (required; D is read from it)
//   0,support,1,0.25,…                  one row per line; set is "support" or "query"; label 0 or 1
//   # comment lines and blank lines are ignored
//
// Every task must have the same number of support rows and of query rows (a batch is rectangular).
// Tasks are used in order of first appearance; a held-out split is a second file, or else the last 20%
// of the tasks (at least one).
import { FileError } from '../errors.js';
import type { FileTasks, TaskSource } from './source.js';

/** A cell as error text: quoted, and cut to a few dozen characters (a cell may be megabytes long). */
export function quoteCell(cell: string, max = 32): string {
  return `"${cell.length > max ? `${cell.slice(0, max - 1)}…` : cell}"`;
}

export function parseTaskCsv(text: string, name: string): { dim: number; tasks: FileTasks } {
  const lines = text.split(/\r?\n/);
  const fail = (line: number, why: string, hint = 'See the format in the README, "Your own tasks": a header task,set,label,x0,…, then one row per line.'): never => {
    throw new FileError(`${name}:${line}: ${why}.`, hint);
  };
  let header: string[] | null = null;
  let headerLine = 0;
  // Each task with the line of its first row (errors about a task name that line, not the header).
  const byTask = new Map<string, { line: number; support: number[][]; query: number[][]; sy: number[]; qy: number[] }>();
  // An empty cell is an error, never a 0 (Number('') is 0); cells are quoted cut short (quoteCell).
  const got = (cell: string) => (cell === '' ? '"" (an empty cell)' : quoteCell(cell));
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const cells = line.split(',').map((c) => c.trim());
    if (!header) {
      header = cells;
      headerLine = i + 1;
      if (cells[0] !== 'task' || cells[1] !== 'set' || cells[2] !== 'label' || cells.length < 4) {
        fail(i + 1, `the header must be "task,set,label,x0,…", got ${quoteCell(line, 60)}`);
      }
      continue;
    }
    if (cells.length !== header.length) fail(i + 1, `${cells.length} columns, the header has ${header.length}`);
    const [task, set, labelText] = cells;
    if (task === '') fail(i + 1, 'column 1: the task name is an empty cell', 'Name every row\'s task.');
    if (set !== 'support' && set !== 'query') fail(i + 1, `column 2: set must be "support" or "query", got ${got(set)}`);
    const label = labelText === '' ? NaN : Number(labelText);
    if (label !== 0 && label !== 1) fail(i + 1, `column 3: label must be 0 or 1, got ${got(labelText)}`, 'Binary tasks need labels in {0, 1}.');
    const x = cells.slice(3).map(Number);
    for (let d = 0; d < x.length; d++) {
      const cell = cells[3 + d];
      if (cell === '' || !Number.isFinite(x[d])) fail(i + 1, `column ${4 + d}: feature x${d} is ${quoteCell(cell)}, not a finite number${cell === '' ? ' (an empty cell)' : ''}`, 'Impute or drop missing values before loading.');
      // Features are stored as float32: a finite double beyond ±3.4028e38 would become ±Infinity.
      if (!Number.isFinite(Math.fround(x[d]))) fail(i + 1, `column ${4 + d}: feature x${d} is ${quoteCell(cell)}, beyond the float32 range (±3.4028e38)`, 'Rescale the features (e.g. standardise each column) before loading.');
    }
    let entry = byTask.get(task);
    if (!entry) byTask.set(task, (entry = { line: i + 1, support: [], query: [], sy: [], qy: [] }));
    (set === 'support' ? entry.support : entry.query).push(x);
    (set === 'support' ? entry.sy : entry.qy).push(label);
  }
  if (!header) fail(1, 'the file has no header and no rows');
  if (byTask.size === 0) fail(headerLine, 'the file has a header but no rows');
  const dim = header!.length - 3;
  const tasks = [...byTask.entries()];
  const [firstName, first] = tasks[0];
  const Ks = first.support.length;
  const Kq = first.query.length;
  if (Ks === 0 || Kq === 0) fail(first.line, `task ${quoteCell(firstName)} has ${Ks} support and ${Kq} query rows; each needs at least one`);
  for (const [taskName, t] of tasks) {
    if (t.support.length !== Ks || t.query.length !== Kq) {
      fail(t.line, `task ${quoteCell(taskName)} has ${t.support.length} support and ${t.query.length} query rows, task ${quoteCell(firstName)} has ${Ks} and ${Kq} (line ${first.line})`, 'Every task needs the same numbers of support and query rows.');
    }
  }
  const n = tasks.length;
  const out: FileTasks = {
    count: n, supportShots: Ks, queryShots: Kq,
    supportX: new Float32Array(n * Ks * dim), supportY: new Float32Array(n * Ks), queryX: new Float32Array(n * Kq * dim), queryY: new Float32Array(n * Kq),
  };
  tasks.forEach(([, t], i) => {
    t.support.forEach((row, k) => out.supportX.set(row, (i * Ks + k) * dim));
    t.query.forEach((row, k) => out.queryX.set(row, (i * Kq + k) * dim));
    out.supportY.set(t.sy, i * Ks);
    out.queryY.set(t.qy, i * Kq);
  });
  return { dim, tasks: out };
}

/** Tasks first … end−1 of a parsed file. */
export function sliceTasks(f: FileTasks, first: number, end: number): FileTasks {
  const { supportShots: Ks, queryShots: Kq } = f;
  const D = f.supportX.length / (f.count * Ks);
  return {
    count: end - first, supportShots: Ks, queryShots: Kq,
    supportX: f.supportX.slice(first * Ks * D, end * Ks * D), supportY: f.supportY.slice(first * Ks, end * Ks),
    queryX: f.queryX.slice(first * Kq * D, end * Kq * D), queryY: f.queryY.slice(first * Kq, end * Kq),
  };
}

/** A file source from the text of a training file and, optionally, of a held-out file. */
export function fileSource(trainText: string, trainName: string, testText?: string, testName?: string): Extract<TaskSource, { kind: 'file' }> {
  const train = parseTaskCsv(trainText, trainName);
  if (testText !== undefined) {
    const test = parseTaskCsv(testText, testName ?? 'test file');
    if (test.dim !== train.dim) throw new FileError(`${testName} has ${test.dim} features, ${trainName} has ${train.dim}.`, 'Both files need the same columns.');
    return { kind: 'file', dim: train.dim, train: train.tasks, test: test.tasks, name: trainName };
  }
  const n = train.tasks.count;
  if (n < 2) throw new FileError(`${trainName} holds ${n} task; holding out the last 20% needs at least 2.`, 'Add tasks, or pass a separate held-out file.');
  const held = Math.max(1, Math.floor(n / 5));
  return { kind: 'file', dim: train.dim, train: sliceTasks(train.tasks, 0, n - held), test: sliceTasks(train.tasks, n - held, n), name: trainName };
}
