// `metagrad train --resume` continues the run that was started (every flag from the checkpoint, only
// some may change, elapsed time goes on), a run folder that holds a run is not started over without
// --force, SIGINT / SIGTERM stop with a checkpoint that resumes bit-identically, a crash leaves neither
// stale temporary files nor duplicated metrics, and damaged checkpoints give one line naming the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadCheckpoint } from '../src/cli/checkpoint.js';
import { assertClose, cli } from './helpers.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'metagrad-resume-'));
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');


/** A tiny run on the CPU: linear tasks, D = 9, Adam (its state must be restored too). */
const COMMON = ['--source', 'linear', '--dim', '9', '--tasks', '8', '--support-shots', '5', '--query-shots', '5', '--eval-tasks', '20', '--attack', 'none',
  '--optimizer', 'adam', '--outer-lr', '0.05', '--inner-lr', '0.3', '--order', '2', '--backend', 'cpu', '--quiet'];
const ckptOf = (dir: string) => loadCheckpoint(path.join(dir, 'checkpoint.json'));
const metricsOf = (dir: string) => readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const tempsIn = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

test('a bare --resume --out DIR continues the run as it was started: every flag from the checkpoint, only some may change', async () => {
  const [full, part] = [tmp(), tmp()];
  const r0 = await cli('train', ...COMMON, '--eval-every', '10', '--iterations', '20', '--out', full);
  assert.is(r0.code, 0, r0.err);
  // A run started with --iterations 20 whose last checkpoint is at iteration 10 (as if stopped there).
  const r1 = await cli('train', ...COMMON, '--eval-every', '10', '--iterations', '10', '--out', part);
  assert.is(r1.code, 0, r1.err);
  const file = path.join(part, 'checkpoint.json');
  const json = JSON.parse(readFileSync(file, 'utf8'));
  json.config.flags.iterations = 20;
  writeFileSync(file, JSON.stringify(json));

  // Flags of the run given anew with another value are refused (and nothing is trained).
  const conflict = await cli('train', '--resume', '--out', part, '--outer-lr', '0.1', '--algo', 'caml');
  assert.is(conflict.code, 2, conflict.err);
  assert.match(conflict.err, /--outer-lr 0\.1 \(the run has 0\.05\)/);
  assert.match(conflict.err, /--algo caml \(the run has maml\)/);
  assert.match(conflict.err, /hint: .*only --iterations/);
  assert.is(ckptOf(part).iteration, 10);

  // Bare: iterations 20, backend cpu, Adam, the rates, the source… all from the checkpoint.
  const bare = await cli('train', '--resume', '--out', part);
  assert.is(bare.code, 0, bare.err);
  assert.match(bare.out, /backend cpu/);
  assert.match(bare.out, /resuming from iteration 10 of 20 \(.*checkpoint\.json, .* of training so far\): .*--source linear .*--dim 9 .*--outer-lr 0\.05/);
  const [a, b] = [ckptOf(full), ckptOf(part)];
  assert.is(b.iteration, 20);
  assertClose('params of the bare resume vs the uninterrupted run', b.state.params, a.state.params, 0, 0);
  assertClose('Adam state of the bare resume vs the uninterrupted run', b.state.optimizer, a.state.optimizer, 0, 0);
  assert.equal(metricsOf(part).map((m) => m.iteration), [10, 20]);
  assert.is(JSON.parse(readFileSync(path.join(part, 'summary.json'), 'utf8')).backend.kind, 'cpu');

  // A value equal to the run's is accepted; --iterations extends it and the run says what changed.
  const more = await cli('train', '--resume', '--out', part, '--outer-lr', '0.05', '--iterations', '30', '--quiet');
  assert.is(more.code, 0, more.err);
  assert.match(more.out, /resuming from iteration 20 of 30 .*changed: --iterations 30 \(was 20\)/);
  assert.is(ckptOf(part).iteration, 30);
  assert.is(ckptOf(part).config.flags && (ckptOf(part).config.flags as Record<string, unknown>).iterations, 30);
  // The run is complete: a bare resume says so.
  const done = await cli('train', '--resume', '--out', part);
  assert.is(done.code, 2);
  assert.match(done.err, /complete: its checkpoint is at iteration 30 of --iterations 30[\s\S]*hint: Pass --iterations above 30/);
});

test('a fresh run into a folder that holds a run is refused without --force; --force starts over; --resume=false does not resume', async () => {
  const dir = tmp();
  assert.is((await cli('train', ...COMMON, '--eval-every', '5', '--iterations', '10', '--out', dir)).code, 0);
  // --resume=false is not --resume.
  const no = await cli('train', '--resume=false', ...COMMON, '--iterations', '20', '--out', dir);
  assert.is(no.code, 2, no.err);
  assert.match(no.err, /holds a run[\s\S]*hint: Pass --resume to continue it, --force/);
  assert.is(ckptOf(dir).iteration, 10);
  const bad = await cli('train', '--resume=maybe', '--out', dir);
  assert.is(bad.code, 2);
  assert.match(bad.err, /--resume is a switch; got "--resume=maybe"/);
  // Only metrics.jsonl (a run that crashed before its first checkpoint) holds a run too.
  const crashed = tmp();
  writeFileSync(path.join(crashed, 'metrics.jsonl'), '{"iteration":5}\n');
  const refused = await cli('train', ...COMMON, '--iterations', '10', '--out', crashed);
  assert.is(refused.code, 2, refused.err);
  assert.match(refused.err, /metrics\.jsonl exists: this run folder holds a run/);
  assert.is(readFileSync(path.join(crashed, 'metrics.jsonl'), 'utf8'), '{"iteration":5}\n');
  // --force starts over: the old metrics are gone, not appended to.
  const forced = await cli('train', ...COMMON, '--eval-every', '4', '--iterations', '8', '--force', '--out', dir);
  assert.is(forced.code, 0, forced.err);
  assert.equal(metricsOf(dir).map((m) => m.iteration), [4, 8]);
  assert.is(ckptOf(dir).iteration, 8);
  const both = await cli('train', '--resume', '--force', '--out', dir);
  assert.is(both.code, 2);
  assert.match(both.err, /pass one of them/);
});

test('a crash between the metrics append and the checkpoint: resuming neither duplicates records nor leaves temporary files; elapsed time goes on', async () => {
  const dir = tmp();
  assert.is((await cli('train', ...COMMON, '--eval-every', '10', '--checkpoint-every', '10', '--iterations', '20', '--out', dir)).code, 0);
  const saved = ckptOf(dir);
  assert.ok(saved.elapsedSeconds! > 0, 'the checkpoint holds the training time');
  // The run went on to iteration 30, appended its record, and died before the checkpoint's rename
  // (which leaves the writer's temporary file), with a torn line after it.
  const metrics = path.join(dir, 'metrics.jsonl');
  const last = metricsOf(dir).at(-1);
  writeFileSync(metrics, readFileSync(metrics, 'utf8') + JSON.stringify({ ...last, iteration: 30, elapsedSeconds: 99 }) + '\n{"iteration":40,"elap');
  writeFileSync(path.join(dir, '.checkpoint.json.4194999.tmp'), '{"format": "metagrad-check');
  writeFileSync(path.join(dir, '.summary.json.4194998.tmp'), '');
  const r = await cli('train', '--resume', '--iterations', '30', '--out', dir);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /dropped 2 records of .*metrics\.jsonl past iteration 20/);
  const rows = metricsOf(dir);
  assert.equal(rows.map((m) => m.iteration), [10, 20, 30]);
  assert.equal(tempsIn(dir), []);
  // Elapsed time counts from the checkpoint's: records, checkpoint and summary.
  assert.ok(rows[2].elapsedSeconds > saved.elapsedSeconds! && rows[2].elapsedSeconds < 99, `elapsed ${rows[2].elapsedSeconds} continues from ${saved.elapsedSeconds}`);
  assert.ok(ckptOf(dir).elapsedSeconds! >= rows[2].elapsedSeconds);
  const summary = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  assert.ok(summary.seconds >= saved.elapsedSeconds! + summary.sessionSeconds - 1e-9 && summary.resumedFrom === 20, JSON.stringify(summary));
  // A fresh run's folder is cleaned of stale temporary files too.
  const fresh = tmp();
  writeFileSync(path.join(fresh, '.checkpoint.json.4194997.tmp'), '');
  assert.is((await cli('train', ...COMMON, '--iterations', '2', '--out', fresh)).code, 0);
  assert.equal(tempsIn(fresh), []);
});

/** The CLI bundled from the sources (as npm run build makes dist/cli.js), so the spawned command is
 * this tree's even when dist/ is stale. */
let cliBundle: string | null = null;
async function cliCommand(): Promise<string> {
  if (cliBundle) return cliBundle;
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    // A machine with the prepared builds only (scripts/gpu-pack.sh): npm run build's bundle.
    return (cliBundle = path.join(root, 'dist', 'cli.js'));
  }
  const { esbuildOptions } = await import(pathToFileURL(path.join(root, 'scripts', 'build.mjs')).href);
  const outdir = path.join(here, 'cli-resume-bin');
  await esbuild.build({ ...esbuildOptions, entryPoints: { cli: 'src/cli.ts', 'cpu-worker': 'src/cpu/worker.ts' }, outdir, sourcemap: false });
  return (cliBundle = path.join(outdir, 'cli.js'));
}

/** Spawns `metagrad train …`, sends `signal` after its first progress line; resolves with its status. */
async function interrupted(signal: NodeJS.Signals, args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const command = await cliCommand();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [command, 'train', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let sent = false;
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no exit 120 s after the signal; stderr: ${stderr}`)); }, 120_000);
    child.stdout.on('data', (d) => { stdout += String(d); });
    child.stderr.on('data', (d) => {
      stderr += String(d);
      if (!sent && /\] \d+\/\d+ it/.test(stderr)) { sent = true; child.kill(signal); }
    });
    child.on('error', reject);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr, stdout }); });
  });
}

for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${signal} during train: a checkpoint at the iteration reached, status ${status}; --resume then ends exactly where an uninterrupted run does`, async () => {
    const dir = tmp();
    // Long enough never to end by itself; no periodic checkpoint or evaluation: only the signal's.
    const args = [...COMMON.filter((a) => a !== '--quiet'), '--eval-every', '0', '--checkpoint-every', '100000000', '--iterations', '100000000', '--out', dir];
    const run = await interrupted(signal, args);
    assert.is(run.code, status, run.stderr);
    assert.match(run.stderr, new RegExp(`metagrad: interrupted by ${signal} at iteration \\d+ of 100000000: wrote .*checkpoint\\.json; continue with: metagrad train --resume --out`));
    assert.not.match(run.stderr, /unexpected error|\n\s+at /);
    const stopped = ckptOf(dir);
    assert.ok(stopped.iteration > 0 && stopped.iteration < 100000000, `iteration ${stopped.iteration}`);
    assert.ok(stopped.elapsedSeconds! > 0);
    assert.equal(tempsIn(dir), []);
    const total = stopped.iteration + 10;
    const resumed = await cli('train', '--resume', '--iterations', String(total), '--out', dir);
    assert.is(resumed.code, 0, resumed.err);
    const whole = tmp();
    assert.is((await cli('train', ...COMMON, '--eval-every', '0', '--iterations', String(total), '--out', whole)).code, 0);
    const [a, b] = [ckptOf(whole), ckptOf(dir)];
    assert.is(b.iteration, total);
    assertClose(`params after ${signal} + resume vs uninterrupted`, b.state.params, a.state.params, 0, 0);
    assertClose(`Adam state after ${signal} + resume vs uninterrupted`, b.state.optimizer, a.state.optimizer, 0, 0);
  });
}

test('damaged checkpoints: one line naming the file and what is wrong, for train --resume and eval --checkpoint', async () => {
  const run = async (args: string[]) => {
    const dir = tmp();
    const r = await cli('train', ...COMMON, '--eval-every', '0', '--iterations', '2', ...args, '--out', dir);
    assert.is(r.code, 0, r.err);
    return JSON.parse(readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
  };
  const good = await run([]);
  const otherDim = await run(['--dim', '5']);
  const otherAlgo = await run(['--algo', 'caml']);
  const otherModel = await run(['--model', 'mlp', '--hidden', '4']);
  const clone = () => JSON.parse(JSON.stringify(good));
  const cases: Array<[string, string, RegExp]> = [
    ['JSON null', 'null', /holds null, not an object/],
    ['a number', '42', /holds number 42, not an object/],
    ['params a number', JSON.stringify({ ...good, state: { ...good.state, params: 5 } }), /state\.params is number 5, not base64 float32 values/],
    ['params missing', JSON.stringify({ ...good, state: { optimizer: good.state.optimizer } }), /state\.params is missing/],
    ['truncated base64', JSON.stringify({ ...good, state: { ...good.state, params: good.state.params.slice(0, -3) } }), /state\.params is not whole base64 .*truncated/],
    ['base64 of a partial float', JSON.stringify({ ...good, state: { ...good.state, optimizer: good.state.optimizer.slice(0, -4) } }), /state\.optimizer holds \d+ bytes, not whole float32 values/],
    ['config missing', JSON.stringify({ ...good, config: undefined }), /"config" \(the training configuration\) is missing/],
    ['config.flags missing', JSON.stringify({ ...good, config: { source: 'linear' } }), /config\.flags .* is missing/],
    ['source missing', (() => { const c = clone(); delete c.config.flags.source; return JSON.stringify(c); })(), /has no source/],
    ['a flag of the wrong type', (() => { const c = clone(); c.config.flags.tasks = 'many'; return JSON.stringify(c); })(), /--tasks must be an integer; got "many"/],
    ['options missing', JSON.stringify({ ...good, options: undefined }), /"options" .* is missing/],
    ['unknown algorithm', JSON.stringify({ ...good, options: { ...good.options, algorithm: 'matching-net' } }), /options\.algorithm is the string "matching-net"/],
    ['invalid options', JSON.stringify({ ...good, options: { ...good.options, innerLr: -1 } }), /learner options are invalid: .*innerLr/],
    ['iteration missing', JSON.stringify({ ...good, iteration: 'ten' }), /"iteration" is the string "ten"/],
    ['the state of another dim', JSON.stringify({ ...good, state: otherDim.state }), /state does not fit its maml learner \(D=9, the logistic unit, 9 parameters\)/],
    ['the state of another algorithm', JSON.stringify({ ...good, state: otherAlgo.state }), /state does not fit its maml learner/],
    ['the state of another model', JSON.stringify({ ...good, state: otherModel.state }), /state does not fit its maml learner/],
  ];
  for (const [what, text, message] of cases) {
    const dir = tmp();
    const file = path.join(dir, 'checkpoint.json');
    writeFileSync(file, text);
    for (const args of [['train', '--resume', '--out', dir], ['eval', '--checkpoint', file, '--eval-tasks', '10', '--max-steps', '1', '--backend', 'cpu', '--attack', 'none', '--joint-iterations', '0']]) {
      const r = await cli(...args);
      const where = `${what}, ${args[0]}: ${r.err}`;
      assert.is(r.code, 1, where);
      const lines = r.err.trimEnd().split('\n');
      assert.is(lines.length, 2, where);
      assert.ok(lines[0].startsWith('metagrad: ') && lines[0].includes(file), where);
      assert.match(lines[0], message, where);
      assert.match(lines[1], /^hint: /, where);
      assert.not.match(r.err, /unexpected error|Unknown source|undefined|\n\s+at /, where);
    }
  }
  // Options that are not those the run's flags make (e.g. another dim) are named on resume.
  const dir = tmp();
  writeFileSync(path.join(dir, 'checkpoint.json'), JSON.stringify({ ...good, options: { ...good.options, dim: 5 } }));
  const r = await cli('train', '--resume', '--out', dir);
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /checkpoint\.json is damaged: its learner options do not match its training configuration \(dim 5, the flags make 9\)/);
  assert.ok(!existsSync(path.join(dir, 'metrics.jsonl')));
});

test.run();
