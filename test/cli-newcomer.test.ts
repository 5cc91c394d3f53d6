// Issue 19 (6, 7): what a newcomer typed in the first minutes with the command line, each case as it
// was seen, and what it must do now.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli } from './helpers.js';
import { closest, editDistance } from '../src/cli/flags.js';
import { backendReasonInBrief } from '../src/learner.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'metagrad-newcomer-'));

test('-h is --help: `metagrad -h`, `metagrad train -h`, `metagrad eval -h`, and `metagrad help train` is the train help', async () => {
  const top = await cli('-h');
  assert.is(top.code, 0, top.err);
  assert.match(top.out, /usage: metagrad <command>/);
  for (const command of ['train', 'eval', 'info']) {
    const short = await cli(command, '-h');
    assert.is(short.code, 0, `${command} -h: ${short.err}`);
    assert.match(short.out, new RegExp(`^metagrad ${command} — `), `${command} -h prints the ${command} help`);
    const viaHelp = await cli('help', command);
    assert.is(viaHelp.code, 0);
    assert.is(viaHelp.out, short.out, `metagrad help ${command} = metagrad ${command} --help`);
  }
  const unknown = await cli('help', 'trian');
  assert.is(unknown.code, 2);
  assert.match(unknown.err, /did you mean `metagrad train`\?/);
});

test('a mistyped command or flag gets "did you mean"; a word far from all of them gets none', async () => {
  const command = await cli('trian');
  assert.is(command.code, 2);
  assert.match(command.err, /unknown command "trian"; did you mean `metagrad train`\?/);
  const evl = await cli('evla');
  assert.match(evl.err, /did you mean `metagrad eval`\?/);
  const far = await cli('frobnicate');
  assert.is(far.code, 2);
  assert.not.match(far.err, /did you mean/);
  const flag = await cli('train', '--itertions', '3');
  assert.is(flag.code, 2);
  assert.match(flag.err, /Unknown flag --itertions for `metagrad train`. Did you mean --iterations\?/);
  const evalFlag = await cli('eval', '--chekpoint', 'x.json');
  assert.match(evalFlag.err, /Did you mean --checkpoint\?/);
  // The distance itself: transpositions count one edit.
  assert.is(editDistance('trian', 'train'), 1);
  assert.is(editDistance('itertions', 'iterations'), 1);
  assert.is(closest('xyz', ['train', 'eval', 'info']), undefined);
});

test('choices ignore case: --algo MAML, --source Omniglot, --backend CPU', async () => {
  const r = await cli('train', '--algo', 'MAML', '--source', 'Linear', '--dim', '4', '--iterations', '2', '--tasks', '2', '--eval-every', '0', '--eval-tasks', '4',
    '--attack', 'none', '--backend', 'CPU', '--quiet', '--out', tmp());
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /metagrad train: maml on linear/);
});

test('--source omniglot alone trains: the model defaults to an MLP whose head has --ways classes', async () => {
  const out = tmp();
  const r = await cli('train', '--source', 'omniglot', '--ways', '3', '--iterations', '2', '--tasks', '2', '--eval-every', '0', '--eval-tasks', '4',
    '--attack', 'none', '--backend', 'cpu', '--quiet', '--out', out);
  assert.is(r.code, 0, r.err);
  const ckpt = JSON.parse(readFileSync(path.join(out, 'checkpoint.json'), 'utf8'));
  assert.equal(ckpt.options.model.kind, 'mlp');
  assert.is(ckpt.options.model.classes, 3, 'classes = --ways');
  assert.is(ckpt.config.flags.model, 'mlp', 'the checkpoint records the model that ran, not "auto"');
  // fashion-episodes likewise; binary sources keep the logistic unit.
  const fashion = await cli('train', '--source', 'fashion-episodes', '--ways', '4', '--iterations', '1', '--tasks', '2', '--eval-every', '0', '--eval-tasks', '4',
    '--attack', 'none', '--backend', 'cpu', '--quiet', '--out', tmp());
  assert.is(fashion.code, 0, fashion.err);
  const linear = tmp();
  const bin = await cli('train', '--source', 'linear', '--dim', '4', '--iterations', '1', '--tasks', '2', '--eval-every', '0', '--eval-tasks', '4', '--attack', 'none', '--backend', 'cpu', '--quiet', '--out', linear);
  assert.is(bin.code, 0, bin.err);
  assert.is(JSON.parse(readFileSync(path.join(linear, 'checkpoint.json'), 'utf8')).options.model.kind, 'logistic');
  // An explicit --classes still wins, and a logistic --model with --classes is still refused.
  const refused = await cli('train', '--source', 'linear', '--model', 'logistic', '--classes', '3', '--backend', 'cpu', '--quiet', '--out', tmp());
  assert.is(refused.code, 2);
  assert.match(refused.err, /--classes does not apply/);
});

test('--ways 30 on Omniglot names the product the user made (ways × query shots), not a row count they never typed', async () => {
  const r = await cli('train', '--source', 'omniglot', '--ways', '30', '--backend', 'cpu', '--quiet', '--out', tmp());
  assert.is(r.code, 2);
  assert.match(r.err, /--ways 30 × --query-shots 10 = 300 query rows per task, over the most a task may have \(256\)/);
  assert.match(r.err, /hint: Use at most 25 ways with --query-shots 10/);
  assert.not.match(r.err, /supportShots|queryShots/);
});

test('eval without --checkpoint (and no run/checkpoint.json here) is a usage error: status 2, and says what to pass', async () => {
  const cwd = process.cwd();
  process.chdir(tmp());
  try {
    const r = await cli('eval');
    assert.is(r.code, 2, r.err);
    assert.match(r.err, /No --checkpoint given, and the default run\/checkpoint.json does not exist/);
    assert.match(r.err, /hint: Pass --checkpoint PATH/);
  } finally {
    process.chdir(cwd);
  }
  const help = await cli('eval', '--help');
  assert.match(help.out, /--source .*fashion-episodes/, 'eval --help lists fashion-episodes');
});

test("the command line speaks flags, not API syntax: `--backend webgpu`, never backend: 'webgpu'", async () => {
  const info = await cli('info');
  assert.is(info.code, 0, info.err);
  assert.not.match(info.out, /backend: '/, info.out);
  assert.not.match(info.out, /\/home\/runner|\.cpp:\d+/, 'no build-machine paths from Dawn');
  if (/picks: cpu — the only WebGPU adapter is a software one/.test(info.out)) assert.match(info.out, /Pass --backend webgpu/);
  const trained = await cli('train', '--source', 'linear', '--dim', '4', '--iterations', '1', '--tasks', '2', '--eval-every', '0', '--eval-tasks', '4', '--attack', 'none', '--quiet', '--out', tmp());
  assert.is(trained.code, 0, trained.err);
  const first = trained.out.split('\n')[0];
  assert.not.match(first, /backend: '|Pass backend/, first);
  assert.ok(first.length < 240, `the first line is short: ${first.length} characters`);
  // The brief reason of the two CPU fallbacks.
  assert.is(backendReasonInBrief('the only WebGPU adapter is a software one (llvmpipe, OpenGL ES), slower than the CPU backend. Pass backend: \'webgpu\' to use it.'),
    'the only WebGPU adapter is a software one (llvmpipe, OpenGL ES), slower than the CPU backend');
  assert.match(backendReasonInBrief('No WebGPU adapter found. Tried:\n  - vulkan: …'), /^no WebGPU adapter here/);
});

test('npm start (miniature): no driver line, a short backend line, progress, and a next step that works in a checkout', async () => {
  const { execFile } = await import('node:child_process');
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  assert.ok(existsSync(path.join(root, 'dist', 'demo.js')), 'dist/demo.js is built (npm test builds it)');
  // stdout and stderr into one stream, as `npm start > log 2>&1` keeps them (the file case is in adapter.test.ts).
  const out = await new Promise<{ code: number; all: string }>((resolve) => {
    const child = execFile('/bin/sh', ['-c', `"${process.execPath}" "${path.join(root, 'dist', 'demo.js')}" 2>&1`],
      { env: { ...process.env, METAGRAD_DEMO_QUICK: '1' }, timeout: 240_000 }, (e, stdout) =>
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, all: stdout }));
    void child;
  });
  assert.is(out.code, 0, out.all);
  const lines = out.all.split('\n');
  assert.match(lines[0], /^METAGRAD_DEMO_QUICK=1/, `the first line is the demo's own, got: ${lines[0]}`);
  assert.not.match(out.all, /While initializing|Warning: |\.cpp:\d+/, 'nothing of Dawn');
  const backend = lines.find((l) => l.startsWith('backend: '))!;
  assert.ok(backend && backend.length < 140, `a short backend line: ${backend}`);
  assert.not.match(backend, /backend: '|Pass /);
  assert.match(out.all, /ADML: iteration \d+ of 20/, 'ADML reports progress while it trains');
  const last = lines.filter((l) => l.trim() !== '').pop()!;
  assert.match(last, /node bin\/metagrad\.js eval/);
  assert.not.match(last, /[^/]`metagrad eval/, 'no bare metagrad command (not on PATH in a checkout)');
});


test('checkpoints store the options of their algorithm only, and the older form (every algorithm\'s) still reads, resumes and evaluates', async () => {
  const { writeFileSync } = await import('node:fs');
  const out = tmp();
  const r = await cli('train', '--source', 'linear', '--dim', '4', '--iterations', '2', '--tasks', '2', '--eval-every', '0', '--eval-tasks', '4', '--attack', 'none', '--backend', 'cpu', '--quiet', '--out', out);
  assert.is(r.code, 0, r.err);
  const file = path.join(out, 'checkpoint.json');
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  const keys = Object.keys(saved.options);
  for (const foreign of ['innerLrAdv', 'outerLrAdv', 'epsilon', 'clip', 'pairing', 'normalization', 'contextDim', 'models', 'lr', 'backend']) {
    assert.not.ok(keys.includes(foreign), `a MAML checkpoint does not store ${foreign}`);
  }
  for (const own of ['algorithm', 'dim', 'innerLr', 'outerLr', 'innerSteps', 'order', 'optimizer', 'seed', 'model']) assert.ok(keys.includes(own), `it stores ${own}`);
  // The older form: every algorithm's options (as written before), resumed and evaluated as before.
  const { loadCheckpoint } = await import('../src/cli/checkpoint.js');
  const { resolveLearnerOptions } = await import('../src/validate.js');
  const { backend: _, ...everything } = resolveLearnerOptions(saved.options);
  writeFileSync(file, JSON.stringify({ ...saved, options: everything }));
  assert.equal(loadCheckpoint(file).options, (() => { const { backend: __, ...o } = resolveLearnerOptions(saved.options); return o; })());
  const resumed = await cli('train', '--resume', '--iterations', '3', '--backend', 'cpu', '--quiet', '--out', out);
  assert.is(resumed.code, 0, resumed.err);
  assert.not.ok('innerLrAdv' in JSON.parse(readFileSync(file, 'utf8')).options, 'the resumed run writes the new form');
  const evaluated = await cli('eval', '--checkpoint', file, '--eval-tasks', '8', '--attack', 'none', '--max-steps', '1', '--joint-iterations', '0', '--backend', 'cpu');
  assert.is(evaluated.code, 0, evaluated.err);
});

test.run();
