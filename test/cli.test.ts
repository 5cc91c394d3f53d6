// The command line end to end on tiny settings: train → checkpoint → resume gives the parameters of an
// uninterrupted run with the same seed → eval; the run folder's files; bad flags and files give one
// clear line and a hint with a non-zero status. Also the CSV task format and atomic checkpoints.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { learnerOptionsFromFlags, TRAIN_FLAGS } from '../src/cli/main.js';
import { parseFlags } from '../src/cli/flags.js';
import { cliVocabulary, flagNames } from '../src/cli/vocabulary.js';
import { ALGORITHM_NAMES } from '../src/algorithms/index.js';
import { resolveLearnerOptions } from '../src/validate.js';
import type { LearnerOptions } from '../src/types.js';
import { loadCheckpoint } from '../src/cli/checkpoint.js';
import { parseTaskCsv } from '../src/tasks/file.js';
import { FileError } from '../src/errors.js';
import { assertClose, thrown, cli } from './helpers.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'metagrad-cli-'));


for (const backend of ['cpu', 'webgpu'] as const) {
  test(`[${backend}] train → checkpoint → resume equals an uninterrupted run; eval reads the checkpoint`, async () => {
    const common = ['--source', 'linear', '--dim', '9', '--tasks', '8', '--support-shots', '5', '--query-shots', '5', '--eval-every', '10', '--eval-tasks', '50',
      '--checkpoint-every', '10', '--optimizer', 'adam', '--outer-lr', '0.05', '--inner-lr', '0.3', '--order', '2', '--backend', backend, '--quiet'];
    const [a, b] = [tmp(), tmp()];
    const full = await cli('train', ...common, '--iterations', '30', '--out', a);
    assert.is(full.code, 0, full.err);
    const first = await cli('train', ...common, '--iterations', '20', '--out', b);
    assert.is(first.code, 0, first.err);
    assert.is(loadCheckpoint(path.join(b, 'checkpoint.json')).iteration, 20);
    const resumed = await cli('train', '--resume', '--iterations', '30', '--out', b, '--backend', backend, '--quiet');
    assert.is(resumed.code, 0, resumed.err);
    assert.match(resumed.out, /resuming from iteration 20/);
    const [ca, cb] = [loadCheckpoint(path.join(a, 'checkpoint.json')), loadCheckpoint(path.join(b, 'checkpoint.json'))];
    assert.is(cb.iteration, 30);
    assertClose('params of resumed vs uninterrupted run', cb.state.params, ca.state.params, 0, 0);
    assertClose('Adam state of resumed vs uninterrupted run', cb.state.optimizer, ca.state.optimizer, 0, 0);
    // The run folder: metrics at every evaluation, the plot, the summary.
    const metrics = readFileSync(path.join(a, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(metrics.map((m) => m.iteration), [10, 20, 30]);
    assert.ok(metrics.every((m) => m.eval.accuracy > 0 && m.attacked.accuracy >= 0 && m.train.loss > 0), 'metrics hold clean, attacked and training figures');
    assert.match(readFileSync(path.join(a, 'curves.svg'), 'utf8'), /<svg[^>]*>[\s\S]*<polyline/);
    assert.is(JSON.parse(readFileSync(path.join(a, 'summary.json'), 'utf8')).iterations, 30);
    // Starting over in a folder that holds a run is refused.
    const again = await cli('train', ...common, '--iterations', '30', '--out', a);
    assert.is(again.code, 2);
    assert.match(again.err, /holds a run[\s\S]*hint: Pass --resume/);

    const ev = await cli('eval', '--checkpoint', path.join(a, 'checkpoint.json'), '--eval-tasks', '40', '--max-steps', '2', '--backend', backend);
    assert.is(ev.code, 0, ev.err);
    assert.match(ev.out, /\| model \| 0 steps \| 1 step \| 2 steps \|/);
    assert.match(ev.out, /zero init/);
    assert.match(ev.out, /jointly trained/);
    const evalJson = JSON.parse(readFileSync(path.join(a, 'eval.json'), 'utf8'));
    assert.is(Object.keys(evalJson.results).length, 3);
    assert.ok(Object.values(evalJson.results as Record<string, Array<{ clean: { mean: number; ci95: number } }>>).every((r) => r.length === 3 && r.every((s) => s.clean.ci95 >= 0)));
  });
}

test('an MLP through the CLI: --model mlp --hidden --classes train, resume exactly and evaluate against its untrained init', async () => {
  const common = ['--source', 'linear', '--dim', '9', '--tasks', '6', '--support-shots', '5', '--query-shots', '5', '--eval-every', '10', '--eval-tasks', '30',
    '--model', 'mlp', '--hidden', '8,4', '--classes', '2', '--optimizer', 'adam', '--outer-lr', '0.01', '--inner-lr', '0.3', '--order', '2', '--backend', 'cpu', '--quiet'];
  const [a, b] = [tmp(), tmp()];
  assert.is((await cli('train', ...common, '--iterations', '20', '--out', a)).code, 0);
  assert.is((await cli('train', ...common, '--iterations', '10', '--out', b)).code, 0);
  const resumed = await cli('train', '--resume', '--iterations', '20', '--out', b, '--backend', 'cpu', '--quiet');
  assert.is(resumed.code, 0, resumed.err);
  const [ca, cb] = [loadCheckpoint(path.join(a, 'checkpoint.json')), loadCheckpoint(path.join(b, 'checkpoint.json'))];
  assert.equal(ca.options.model, { kind: 'mlp', hidden: [8, 4], classes: 2, norm: 'none' });
  // (9 + 1)·8 + (8 + 1)·4 + (4 + 1)·2 parameters
  assert.is(ca.state.params.length, 80 + 36 + 10);
  assertClose('MLP params of resumed vs uninterrupted run', cb.state.params, ca.state.params, 0, 0);
  const ev = await cli('eval', '--checkpoint', path.join(a, 'checkpoint.json'), '--eval-tasks', '30', '--max-steps', '1', '--backend', 'cpu', '--joint-iterations', '5');
  assert.is(ev.code, 0, ev.err);
  assert.match(ev.out, /from scratch \(He init, same steps\)/);
  assert.match(ev.out, /jointly trained/);
  const bad = await cli('train', ...common, '--hidden', '8,x', '--iterations', '1', '--out', tmp());
  assert.is(bad.code, 2);
  assert.match(bad.err, /--hidden: "x" is not a positive integer width/);
});

test("sinusoid through the CLI: --source sinusoid --shots trains MAML's 1-40-40-1 regressor, resumes exactly, reports MSE, plots the adaptation curve; eval's rows (pretrained, scratch, oracle) and curve", async () => {
  const common = ['--source', 'sinusoid', '--shots', '5', '--tasks', '10', '--eval-every', '20', '--eval-tasks', '40', '--attack', 'none',
    '--inner-lr', '0.01', '--outer-lr', '0.001', '--optimizer', 'adam', '--backend', 'cpu', '--quiet'];
  const [a, b] = [tmp(), tmp()];
  const full = await cli('train', ...common, '--iterations', '40', '--out', a);
  assert.is(full.code, 0, full.err);
  assert.match(full.out, /held-out MSE \d+\.\d{3} ± \d+\.\d{3}/);
  assert.is((await cli('train', ...common, '--iterations', '20', '--out', b)).code, 0);
  const resumed = await cli('train', '--resume', '--iterations', '40', '--out', b, '--backend', 'cpu', '--quiet');
  assert.is(resumed.code, 0, resumed.err);
  const [ca, cb] = [loadCheckpoint(path.join(a, 'checkpoint.json')), loadCheckpoint(path.join(b, 'checkpoint.json'))];
  assert.equal(ca.options.model, { kind: 'mlp', hidden: [40, 40], loss: 'mse', norm: 'none' });
  assert.is(ca.options.dim, 1);
  assertClose('regressor params of resumed vs uninterrupted run', cb.state.params, ca.state.params, 0, 0);
  const metrics = readFileSync(path.join(a, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(metrics.every((m) => m.eval.mse > 0 && m.eval.mseCi95 > 0 && m.eval.accuracy === undefined), 'records hold the MSE');
  const summary = JSON.parse(readFileSync(path.join(a, 'summary.json'), 'utf8'));
  assert.is(summary.final.metric, 'mse');
  assert.equal(summary.final.curve.map((c: { steps: number }) => c.steps), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.is(summary.final.curve[1].mse.mean, summary.final.mse.mean, 'the curve at the training steps is the final evaluation');
  const svg = readFileSync(path.join(a, 'curves.svg'), 'utf8');
  assert.match(svg, /held-out MSE \(95% CI\)/);
  assert.match(svg, /held-out MSE after k inner steps/);
  const ev = await cli('eval', '--checkpoint', path.join(a, 'checkpoint.json'), '--eval-tasks', '40', '--attack', 'none', '--backend', 'cpu', '--joint-iterations', '20');
  assert.is(ev.code, 0, ev.err);
  assert.match(ev.out, /query MSE mean ± 95% CI/);
  assert.match(ev.out, /\| model \| 0 steps \| 1 step \|[\s\S]*\| 10 steps \|/);
  assert.match(ev.out, /from scratch \(nn.Linear's init, same steps\)/);
  assert.match(ev.out, /pretrained \(jointly on all meta-train tasks/);
  assert.match(ev.out, /oracle \(knows A and φ/);
  assert.not.match(ev.out, /nearest neighbour/);
  const json = JSON.parse(readFileSync(path.join(a, 'eval.json'), 'utf8'));
  assert.is(json.metric, 'mse');
  assert.ok(json.oracle.mean < 1e-10, `the oracle's MSE is float32 rounding: ${json.oracle.mean}`);
  const meta = json.results[Object.keys(json.results)[0]];
  assert.is(meta.length, 11);
  assert.ok(meta[1].clean.mean < meta[0].clean.mean, 'one inner step lowers the held-out MSE of the meta-learned model');
  assert.match(readFileSync(path.join(a, 'eval.svg'), 'utf8'), /<polyline/);
  // Flags of other sources, and ranges that are not lo,hi, are refused.
  for (const [args, message] of [[['--support-shots', '5'], /--support-shots does not apply here/], [['--classes', '3'], /--classes does not apply here/], [['--amplitude', '1'], /--amplitude must be lo,hi/]] as const) {
    const r = await cli('train', '--source', 'sinusoid', ...args, '--iterations', '1', '--backend', 'cpu', '--quiet', '--out', tmp());
    assert.is(r.code, 2, r.err);
    assert.match(r.err, message);
  }
  const phase = await cli('train', '--source', 'linear', '--phase', '0,1', '--iterations', '1', '--backend', 'cpu', '--quiet', '--out', tmp());
  assert.match(phase.err, /--phase does not apply here[\s\S]*--source sinusoid/);
});

test('protonet through the CLI: --algo protonet trains an MLP body on Omniglot episodes, resumes exactly, and eval scores it by nearest prototype (one column) beside the untrained body, transfer and 1-NN; step flags are refused', async () => {
  const common = ['--source', 'omniglot', '--ways', '3', '--shots', '1', '--query-shots', '2', '--algo', 'protonet', '--model', 'mlp', '--hidden', '16',
    '--tasks', '4', '--eval-every', '10', '--eval-tasks', '20', '--attack', 'none', '--backend', 'cpu', '--quiet'];
  const [a, b] = [tmp(), tmp()];
  const full = await cli('train', ...common, '--iterations', '20', '--out', a);
  assert.is(full.code, 0, full.err);
  assert.is((await cli('train', ...common, '--iterations', '10', '--out', b)).code, 0);
  const resumed = await cli('train', '--resume', '--iterations', '20', '--out', b, '--backend', 'cpu', '--quiet');
  assert.is(resumed.code, 0, resumed.err);
  const [ca, cb] = [loadCheckpoint(path.join(a, 'checkpoint.json')), loadCheckpoint(path.join(b, 'checkpoint.json'))];
  assert.is(ca.options.algorithm, 'protonet');
  assert.is(ca.state.params.length, 784 * 16 + 16, "the body's parameters only");
  assertClose('protonet params of resumed vs uninterrupted run', cb.state.params, ca.state.params, 0, 0);
  const ev = await cli('eval', '--checkpoint', path.join(a, 'checkpoint.json'), '--eval-tasks', '30', '--attack', 'none', '--transfer-iterations', '5', '--backend', 'cpu');
  assert.is(ev.code, 0, ev.err);
  assert.match(ev.out, /\| model \| 0 steps \|\n/);
  assert.match(ev.out, /protonet \(checkpoint, iteration 20; nearest prototype, no steps\)/);
  assert.match(ev.out, /untrained body \(He init; nearest prototype\)/);
  assert.match(ev.out, /transfer/);
  assert.match(ev.out, /nearest neighbour/);
  const steps = await cli('eval', '--checkpoint', path.join(a, 'checkpoint.json'), '--steps', '3', '--backend', 'cpu');
  assert.is(steps.code, 2);
  assert.match(steps.err, /--steps does not apply to a protonet checkpoint/);
  const inner = await cli('train', ...common, '--inner-lr', '0.1', '--iterations', '1', '--out', tmp());
  assert.is(inner.code, 2);
  assert.match(inner.err, /--inner-lr does not apply to --algo protonet/);
  // --train-ways: 5-way training episodes, 3-way evaluation; the model has a class per training way.
  const wide = tmp();
  const trained = await cli('train', ...common, '--train-ways', '5', '--iterations', '2', '--out', wide);
  assert.is(trained.code, 0, trained.err);
  assert.equal(loadCheckpoint(path.join(wide, 'checkpoint.json')).options.model, { kind: 'mlp', hidden: [16], classes: 5, norm: 'none' });
  const maml = await cli('train', '--source', 'omniglot', '--train-ways', '5', '--iterations', '1', '--backend', 'cpu', '--quiet', '--out', tmp());
  assert.is(maml.code, 2);
  assert.match(maml.err, /--train-ways does not apply here[\s\S]*--algo protonet/);
});

test('Conv-4 through the CLI: --model conv4 --filters trains on Omniglot episodes, resumes exactly, evaluates with its baselines; trains on WebGPU too', async () => {
  const common = ['--source', 'omniglot', '--ways', '3', '--shots', '1', '--query-shots', '2', '--model', 'conv4', '--filters', '4', '--classes', '3',
    '--tasks', '3', '--eval-every', '0', '--eval-tasks', '9', '--inner-lr', '0.4', '--backend', 'cpu', '--quiet'];
  const [a, b] = [tmp(), tmp()];
  const run = await cli('train', ...common, '--iterations', '4', '--out', a);
  assert.is(run.code, 0, run.err);
  assert.is((await cli('train', ...common, '--iterations', '2', '--out', b)).code, 0);
  const resumed = await cli('train', '--resume', '--iterations', '4', '--out', b, '--backend', 'cpu', '--quiet');
  assert.is(resumed.code, 0, resumed.err);
  const [ca, cb] = [loadCheckpoint(path.join(a, 'checkpoint.json')), loadCheckpoint(path.join(b, 'checkpoint.json'))];
  assert.equal(ca.options.model, { kind: 'conv4', classes: 3, filters: 4, pooling: 'stride' });
  // (9·1 + 1)·4 + 3·(9·4 + 1)·4 + (4 + 1)·3 parameters
  assert.is(ca.state.params.length, 40 + 3 * 148 + 15);
  assertClose('Conv-4 params of resumed vs uninterrupted run', cb.state.params, ca.state.params, 0, 0);
  const ev = await cli('eval', '--checkpoint', path.join(a, 'checkpoint.json'), '--eval-tasks', '9', '--max-steps', '1', '--backend', 'cpu', '--attack', 'none');
  assert.is(ev.code, 0, ev.err);
  assert.match(ev.out, /from scratch \(He init, same steps\)/);
  assert.match(ev.out, /nearest neighbour/);
  // On WebGPU (llvmpipe here) the same run trains too.
  const gpu = await cli('train', ...common.map((v) => (v === 'cpu' ? 'webgpu' : v)), '--iterations', '2', '--out', tmp());
  assert.is(gpu.code, 0, gpu.err);
  const misplaced = await cli('train', '--source', 'omniglot', '--model', 'mlp', '--filters', '8', '--iterations', '1', '--backend', 'cpu', '--out', tmp());
  assert.is(misplaced.code, 2);
  assert.match(misplaced.err, /--filters does not apply here/);
});

test('Omniglot through the CLI: --source omniglot --ways --shots --query-shots train an MLP on N-way episodes and evaluate on held-out alphabets', async () => {
  const dir = tmp();
  const args = ['--source', 'omniglot', '--ways', '3', '--shots', '1', '--query-shots', '2', '--model', 'mlp', '--hidden', '8', '--classes', '3',
    '--tasks', '4', '--iterations', '4', '--eval-every', '0', '--eval-tasks', '12', '--backend', 'cpu', '--quiet', '--out', dir];
  const run = await cli('train', ...args);
  assert.is(run.code, 0, run.err);
  const ckpt = loadCheckpoint(path.join(dir, 'checkpoint.json'));
  assert.equal(ckpt.options.model, { kind: 'mlp', hidden: [8], classes: 3, norm: 'none' });
  assert.is(ckpt.options.dim, 784);
  const ev = await cli('eval', '--checkpoint', path.join(dir, 'checkpoint.json'), '--eval-tasks', '12', '--max-steps', '1', '--backend', 'cpu', '--joint-iterations', '0');
  assert.is(ev.code, 0, ev.err);
  assert.match(ev.out, /3-way \(held-out alphabets\)/);
  assert.match(ev.out, /nearest neighbour \(raw inputs, no steps\) \| \d+\.\d% ± \d+\.\d/);
  // More ways than the model has outputs: one clear line.
  const ways = args.indexOf('--ways') + 1;
  const bad = await cli('train', ...args.map((a, i) => (i === ways ? '4' : a)).slice(0, -1), tmp());
  assert.ok(bad.code !== 0, 'refused');
  assert.match(bad.err, /ways|classes/);
});

test('eval on an Omniglot MLP: the from-scratch, transfer and nearest-neighbour rows, clean and under PGD; no jointly-trained row', async () => {
  const dir = tmp();
  const run = await cli('train', '--source', 'omniglot', '--ways', '3', '--shots', '1', '--query-shots', '2', '--model', 'mlp', '--hidden', '8', '--classes', '3',
    '--tasks', '2', '--iterations', '2', '--eval-every', '0', '--eval-tasks', '4', '--attack', 'none', '--backend', 'cpu', '--quiet', '--out', dir);
  assert.is(run.code, 0, run.err);
  const args = ['eval', '--checkpoint', path.join(dir, 'checkpoint.json'), '--eval-tasks', '10', '--max-steps', '1', '--backend', 'cpu', '--attack', 'pgd',
    '--transfer-iterations', '20', '--transfer-batch', '16', '--transfer-steps', '10'];
  const ev = await cli(...args);
  assert.is(ev.code, 0, ev.err);
  const cell = String.raw`\d+\.\d% ± \d+\.\d`;
  assert.match(ev.out, new RegExp(String.raw`\| from scratch \(He init, same steps\) \| ${cell} \| ${cell} \|`));
  assert.match(ev.out, new RegExp(String.raw`\| from scratch \(He init, same steps\), pgd \| ${cell} \| ${cell} \|`));
  assert.match(ev.out, new RegExp(String.raw`\| transfer \(pretrained 20 it, fresh head 10 steps\) \| ${cell} \| ${cell} \|`));
  assert.match(ev.out, new RegExp(String.raw`\| transfer \(pretrained 20 it, fresh head 10 steps\), pgd \| ${cell} \| ${cell} \|`));
  assert.match(ev.out, new RegExp(String.raw`\| nearest neighbour \(raw inputs, no steps\) \| ${cell} \| ${cell} \|`));
  assert.not.match(ev.out, /jointly trained/);
  assert.match(ev.err, /pretraining the transfer baseline: 784-8-\d+ over \d+ meta-train classes, 20 Adam iterations of 16 images/);
  const json = JSON.parse(readFileSync(path.join(dir, 'eval.json'), 'utf8'));
  assert.equal(Object.keys(json.results).length, 2);
  assert.is(json.transfer.iterations, 20);
  assert.ok(json.transfer.clean.mean >= 0 && json.transfer.clean.mean <= 1 && json.transfer.attacked.mean <= 1 && json.transfer.pretrainSeconds > 0);
  // The same seed: the same transfer figures; 0 iterations leave the row out.
  const again = await cli(...args);
  assert.equal(JSON.parse(readFileSync(path.join(dir, 'eval.json'), 'utf8')).transfer.clean, json.transfer.clean, again.err);
  const skipped = await cli(...args, '--transfer-iterations', '0');
  assert.is(skipped.code, 0, skipped.err);
  assert.not.match(skipped.out, /transfer/);
  const help = await cli('eval', '--help');
  assert.match(help.out, /--transfer-iterations/);
  assert.match(help.out, /from scratch\s+the same network from its untrained initialisation/);
});

test('CLI: --norm task and --val-alphabets train on five alphabets and evaluate on the validation split; eval --steps scores only the asked columns', async () => {
  const dir = tmp();
  const run = await cli('train', '--source', 'omniglot', '--ways', '3', '--shots', '1', '--query-shots', '2', '--model', 'mlp', '--hidden', '8', '--norm', 'task',
    '--classes', '3', '--val-alphabets', 'Greek', '--tasks', '2', '--iterations', '2', '--eval-every', '0', '--eval-tasks', '6', '--attack', 'none', '--backend', 'cpu', '--quiet', '--out', dir);
  assert.is(run.code, 0, run.err);
  assert.match(run.out, /validation accuracy \d+\.\d% ± \d+\.\d/);
  const ckpt = loadCheckpoint(path.join(dir, 'checkpoint.json'));
  assert.equal(ckpt.options.model, { kind: 'mlp', hidden: [8], classes: 3, norm: 'task' });
  const ev = await cli('eval', '--checkpoint', path.join(dir, 'checkpoint.json'), '--eval-tasks', '6', '--steps', '0,2', '--attack', 'none', '--transfer-iterations', '0', '--backend', 'cpu');
  assert.is(ev.code, 0, ev.err);
  assert.match(ev.out, /\| model \| 0 steps \| 2 steps \|/);
  const bad = await cli('train', '--source', 'omniglot', '--val-alphabets', 'Sanskrit', '--model', 'mlp', '--classes', '5', '--iterations', '1', '--backend', 'cpu', '--out', tmp());
  assert.is(bad.code, 2);
  assert.match(bad.err, /--val-alphabets: Sanskrit is not a meta-train alphabet/);
  const steps = await cli('eval', '--checkpoint', path.join(dir, 'checkpoint.json'), '--steps', 'three');
  assert.is(steps.code, 2);
  assert.match(steps.err, /--steps: "three" is not a list/);
});

test('npm start (the main job) runs end to end in miniature and prints every row of its table', async () => {
  const { execFile } = await import('node:child_process');
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(root, 'dist', 'demo.js')], { env: { ...process.env, METAGRAD_DEMO_QUICK: '1' }, timeout: 240_000 }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr }));
  });
  assert.is(out.code, 0, out.stderr);
  const cell = String.raw`\d+\.\d% ± \d+\.\d`;
  for (const row of ['MAML', 'ADML', 'from scratch', 'transfer']) assert.match(out.stdout, new RegExp(String.raw`\| ${row}[^|]* \| ${cell} \| ${cell} \|`), row);
  assert.match(out.stdout, new RegExp(String.raw`\| 1-nearest-neighbour on pixels \| ${cell} \| n/a \|`));
  assert.match(out.stdout, /backend: (cpu|webgpu) — /);
});

test('bad flags and files: one clear line, a hint, a non-zero status', async () => {
  const cases: Array<[string[], RegExp, number]> = [
    [['train', '--algo', 'matching-net'], /--algo must be one of maml, adml, ga-maml, caml, amp, meta-sgd, anil, reptile, protonet; got "matching-net"/, 2],
    [['train', '--iterations', 'ten'], /--iterations must be an integer; got "ten"/, 2],
    [['train', '--itterations', '5'], /Unknown flag --itterations/, 2],
    [['train', '--source', 'file', '--out', tmp()], /--source file needs --file PATH/, 2],
    [['train', '--source', 'fashion-mnist', '--data', '/nonexistent', '--out', tmp()], /No train-images-idx3-ubyte/, 1],
    [['eval', '--checkpoint', '/nonexistent/checkpoint.json'], /Cannot read checkpoint/, 1],
    [['frobnicate'], /unknown command "frobnicate"/, 2],
  ];
  for (const [args, message, code] of cases) {
    const r = await cli(...args);
    assert.is(r.code, code, `${args.join(' ')}: status ${r.code}`);
    assert.match(r.err, message);
    assert.match(r.err, /\nhint: /, 'a hint line follows');
  }
  const dir = tmp();
  writeFileSync(path.join(dir, 'checkpoint.json'), '{"format": "metagrad-checkpoint/1", "iteration": 3, "opt');
  const torn = await cli('eval', '--checkpoint', path.join(dir, 'checkpoint.json'));
  assert.match(torn.err, /is not valid JSON/);
  const help = await cli('train', '--help');
  assert.is(help.code, 0);
  assert.match(help.out, /--inner-lr\s+α \(adml: α1; meta-sgd: the initial step sizes\) \(default: 0.01\)/);  // the library's default (src/algorithms/maml.ts)
});

test('train flags left out give every algorithm the library defaults (the flags are made from its tables)', () => {
  const source = { kind: 'linear', dim: 5 } as const;
  for (const algorithm of ALGORITHM_NAMES) {
    // --tasks is AMP's models: 1, the library's default.
    const flags = parseFlags(['--algo', algorithm, '--tasks', '1'], TRAIN_FLAGS, 'train');
    const fromFlags = resolveLearnerOptions(learnerOptionsFromFlags(flags, source));
    assert.equal(fromFlags, resolveLearnerOptions({ algorithm, dim: 5 } as LearnerOptions), algorithm);
  }
  const adml = resolveLearnerOptions(learnerOptionsFromFlags(parseFlags(['--algo', 'adml', '--inner-lr', '0.2', '--epsilon', '0.05', '--clip', '0,1', '--order', '2'], TRAIN_FLAGS, 'train'), source));
  assert.equal([adml.innerLr, adml.innerLrAdv, adml.epsilon, adml.clip, adml.order], [0.2, 0.2, 0.05, [0, 1], 2]);
});

test('CSV tasks: parsed and checked, and trainable through the CLI', async () => {
  const rows = ['# two features and a bias', 'task,set,label,x0,x1,bias'];
  for (let t = 0; t < 10; t++) {
    for (let k = 0; k < 4; k++) rows.push(`t${t},support,${k % 2},${k % 2 ? 1 : -1},${t / 10},1`);
    for (let k = 0; k < 2; k++) rows.push(`t${t},query,${k % 2},${k % 2 ? 0.5 : -0.5},0,1`);
  }
  const { dim, tasks } = parseTaskCsv(rows.join('\n'), 'tasks.csv');
  assert.is(dim, 3);
  assert.is(tasks.count, 10);
  assert.is(tasks.supportShots, 4);
  assert.equal(Array.from(tasks.supportX.subarray(0, 6)), [-1, 0, 1, 1, 0, 1]);
  const bad: Array<[string, RegExp]> = [
    ['x,y\n1,2', /header must be "task,set,label,x0,…"/],
    ['task,set,label,x0\n0,train,1,0.5', /set must be "support" or "query", got "train"/],
    ['task,set,label,x0\n0,support,2,0.5', /label must be 0 or 1, got "2"/],
    ['task,set,label,x0\n0,support,1,', /feature x0 is "", not a finite number/],
    ['task,set,label,x0\n0,support,1,NaN', /feature x0 is "NaN"/],
    ['task,set,label,x0,x1\n0,support,1,0.5', /2 columns|4 columns, the header has 5/],
    ['task,set,label,x0\n0,support,1,1\n0,query,1,1\n1,support,1,1\n1,support,0,1\n1,query,1,1', /task "1" has 2 support and 1 query rows, task "0" has 1 and 1/],
  ];
  for (const [text, message] of bad) {
    const e = await thrown(() => parseTaskCsv(text, 'bad.csv'));
    assert.instance(e, FileError);
    assert.match(e.message, message);
  }
  const dir = tmp();
  writeFileSync(path.join(dir, 'tasks.csv'), rows.join('\n'));
  const r = await cli('train', '--source', 'file', '--file', path.join(dir, 'tasks.csv'), '--tasks', '4', '--support-shots', '4', '--query-shots', '2',
    '--iterations', '10', '--eval-every', '5', '--backend', 'cpu', '--quiet', '--out', path.join(dir, 'run'));
  assert.is(r.code, 0, r.err);
  assert.ok(existsSync(path.join(dir, 'run', 'checkpoint.json')));
  const mismatch = await cli('train', '--source', 'file', '--file', path.join(dir, 'tasks.csv'), '--support-shots', '5', '--backend', 'cpu', '--quiet', '--out', path.join(dir, 'run2'));
  // Only --support-shots is given: the query rows are the file's (2).
  assert.match(mismatch.err, /have 4 support and 2 query rows; train asked for 5 and 2/);
  // The API's hint in the command line's words.
  assert.match(mismatch.err, /hint: Pass --support-shots 4, --query-shots 2/);
  assert.not.match(mismatch.err, /supportShots|queryShots/);
});

/** Ten CSV tasks of 4 support and 2 query rows (two features and a bias): the last 2 are held out. */
function csvTasks(dir: string): string {
  const rows = ['task,set,label,x0,x1,bias'];
  for (let t = 0; t < 10; t++) {
    for (let k = 0; k < 4; k++) rows.push(`t${t},support,${k % 2},${k % 2 ? 1 : -1},${t / 10},1`);
    for (let k = 0; k < 2; k++) rows.push(`t${t},query,${k % 2},${k % 2 ? 0.5 : -0.5},${(t % 3) / 3},1`);
  }
  const file = path.join(dir, 'tasks.csv');
  writeFileSync(file, rows.join('\n'));
  return file;
}

test('CSV tasks give train their shot counts; held-out scores use each held-out task once (train and eval agree), --eval-tasks does not apply', async () => {
  const dir = tmp();
  const file = csvTasks(dir);
  const out = path.join(dir, 'run');
  // No --support-shots / --query-shots: the file's 4 and 2 (today: 10 and 10, refused).
  const r = await cli('train', '--source', 'file', '--file', file, '--tasks', '4', '--iterations', '6', '--eval-every', '3', '--backend', 'cpu', '--quiet', '--out', out);
  assert.is(r.code, 0, r.err);
  const ckpt = loadCheckpoint(path.join(out, 'checkpoint.json'));
  const flags = ckpt.config.flags as Record<string, unknown>;
  assert.equal([flags['support-shots'], flags['query-shots']], [4, 2]);
  // Two held-out tasks (the last 20% of ten), each scored once: said so, and the interval is over those 2.
  assert.match(r.out, /held-out scores: each of the 2 held-out tasks of .*tasks\.csv \(its last 20%\) once/);
  assert.match(r.out, /\(each of the 2 held-out tasks .* once, 95% CI\)/);
  const metrics = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(metrics.map((m) => m.iteration), [3, 6]);
  // 2 tasks × 2 queries: accuracies are multiples of 1/4 (the mean over exactly those 4 query rows).
  assert.ok(metrics.every((m) => Number.isInteger(Math.round(m.eval.accuracy * 4 * 1e6) / 1e6)), JSON.stringify(metrics.map((m) => m.eval.accuracy)));
  // eval scores the same two tasks: its checkpoint row after the trained inner steps is train's final score.
  const ev = await cli('eval', '--checkpoint', path.join(out, 'checkpoint.json'), '--max-steps', '1', '--joint-iterations', '0', '--attack-epsilon', '0.05', '--backend', 'cpu');
  assert.is(ev.code, 0, ev.err);
  assert.match(ev.out, /each of the 2 held-out tasks of .*tasks\.csv \(its last 20%\) once/);
  const json = JSON.parse(readFileSync(path.join(out, 'eval.json'), 'utf8'));
  assert.is(json.tasks, 2);
  assert.is(json.attack.epsilon, 0.05);
  const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
  const checkpointRow = Object.values(json.results as Record<string, Array<{ steps: number; clean: { mean: number } }>>)[0];
  assert.is(checkpointRow.find((s) => s.steps === 1)!.clean.mean, summary.final.accuracy.mean);
  // --eval-tasks does not apply to a task file, in train or eval.
  const t2 = await cli('train', '--source', 'file', '--file', file, '--eval-tasks', '600', '--backend', 'cpu', '--quiet', '--out', path.join(dir, 'run2'));
  assert.is(t2.code, 2);
  assert.match(t2.err, /--eval-tasks does not apply here \(--source file/);
  const e2 = await cli('eval', '--checkpoint', path.join(out, 'checkpoint.json'), '--eval-tasks', '600', '--backend', 'cpu');
  assert.is(e2.code, 2);
  assert.match(e2.err, /--eval-tasks does not apply to a task file: eval scores each of its 2 held-out tasks once/);
});

test('CSV: the error for an uneven task names its first row, not the header; format hints do not point into src/', async () => {
  const text = 'task,set,label,x0\n0,support,1,1\n0,query,1,1\n\n1,support,1,1\n1,support,0,1\n1,query,1,1';
  const e = await thrown(() => parseTaskCsv(text, 'bad.csv'));
  assert.instance(e, FileError);
  assert.match(e.message, /^bad\.csv:5: task "1" has 2 support and 1 query rows, task "0" has 1 and 1 \(line 2\)/);
  const format = await thrown(() => parseTaskCsv('x,y\n1,2', 'bad.csv'));
  assert.not.match((format as FileError).hint, /src\//);
  assert.match((format as FileError).hint, /README/);
});

test('flags that do not apply to the algorithm, model or source are refused, not ignored', async () => {
  const cases: Array<[string[], RegExp, RegExp]> = [
    [['--algo', 'maml', '--epsilon', '0.2'], /--epsilon does not apply to --algo maml/, /hint: It is a flag of --algo adml, amp; leave it out or change --algo/],
    [['--algo', 'adml', '--context-dim', '3'], /--context-dim does not apply to --algo adml/, /--algo caml/],
    [['--algo', 'caml', '--pairing', 'same'], /--pairing does not apply to --algo caml/, /--algo adml/],
    [['--hidden', '8'], /--hidden does not apply here \(--source linear, --algo maml, --model logistic\)/, /--model mlp/],
    [['--ways', '3'], /--ways does not apply here/, /--source omniglot or fashion-episodes/],
    [['--algo', 'amp', '--eval-tasks', '50'], /--eval-tasks does not apply here/, /--tasks/],
  ];
  for (const [args, message, hint] of cases) {
    const r = await cli('train', '--source', 'linear', '--dim', '5', ...args, '--backend', 'cpu', '--quiet', '--out', tmp());
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
    assert.match(r.err, hint);
    assert.is(r.out, '', 'nothing trained');
  }
  const omniglot = await cli('train', '--source', 'omniglot', '--model', 'mlp', '--classes', '5', '--support-shots', '5', '--backend', 'cpu', '--quiet', '--out', tmp());
  assert.is(omniglot.code, 2);
  assert.match(omniglot.err, /--support-shots does not apply here \(--source omniglot[\s\S]*--ways × --shots/);
  // The same flags where they apply are taken.
  const ok = parseFlags(['--algo', 'adml', '--epsilon', '0.2'], TRAIN_FLAGS, 'train');
  assert.is(resolveLearnerOptions(learnerOptionsFromFlags(ok, { kind: 'linear', dim: 5 })).epsilon, 0.2);
});

test("one meaning per flag name: eval's attack budget is --attack-epsilon (as in train); --epsilon there is an error with a hint; eval takes the checkpoint's task shape", async () => {
  const r = await cli('eval', '--checkpoint', '/nonexistent/checkpoint.json', '--epsilon', '0.2');
  assert.is(r.code, 2);
  assert.match(r.err, /--epsilon is not a flag of `metagrad eval`: the attack's L∞ budget is --attack-epsilon, as in train \(where --epsilon is ADML's training step\)/);
  assert.match(r.err, /hint: Pass --attack-epsilon 0\.2\./);
  const ways = await cli('eval', '--ways', '3');
  assert.is(ways.code, 2);
  assert.match(ways.err, /--ways is not a flag of `metagrad eval`[\s\S]*hint: Leave --ways out/);
  const help = await cli('eval', '--help');
  assert.match(help.out, /--attack-epsilon\s+L∞ budget of the attack/);
  assert.not.match(help.out, /--epsilon\s/);
});

test("CLI-only defaults are said in --help (the API's defaults are the flags' defaults)", async () => {
  const help = (await cli('train', '--help')).out;
  // An option whose default differs between algorithms says each one's.
  assert.match(help, /--outer-lr\s+maml, adml, ga-maml, caml, meta-sgd, anil, reptile: β \(adml: β1; reptile: the interpolation rate\); protonet: the outer optimizer's rate \(auto: maml\/adml\/ga-maml\/caml\/meta-sgd\/anil\/protonet 0\.001, reptile 0\.1\) \(default: auto\)/);
  assert.match(help, /--optimizer\s+outer optimizer \(auto: maml\/adml\/ga-maml\/caml\/meta-sgd\/anil\/reptile sgd, protonet adam\) \[auto\|sgd\|adam\] \(default: auto\)/);
  assert.match(help, /--iterations\s+meta-iterations \(the command line's default; train\(\) has none\) \(default: 300\)/);
  assert.match(help, /--eval-every\s+.*train\(\)'s evalEvery is 0/);
  assert.match(help, /--attack\s+.*train\(\) attacks only when given evalAttack/);
});

test("flags are validated before an adapter is acquired, and errors speak the command line's words", async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--iterations', '0'], /metagrad: --iterations must be an integer in \[1, /],
    [['--support-shots', '0'], /metagrad: --support-shots must be an integer in \[1, 256\], got 0/],
    [['--inner-lr', '-1'], /metagrad: --inner-lr must be a finite number > 0, got -1/],
  ];
  for (const [args, message] of cases) {
    // --backend webgpu: a learner made before the check would acquire an adapter (and print its header).
    const r = await cli('train', '--source', 'linear', '--dim', '5', ...args, '--backend', 'webgpu', '--quiet', '--out', tmp());
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.is(r.out, '', `${args.join(' ')}: no learner was made`);
    assert.match(r.err, message);
    assert.match(r.err, /\nhint: /);
    assert.not.match(r.err, /train iterations|supportShots|innerLr|src\//);
  }
  // eval: the attack budget is checked before the learners are made and the joint baseline trained.
  const dir = tmp();
  const run = await cli('train', '--source', 'linear', '--dim', '5', '--tasks', '2', '--iterations', '2', '--eval-every', '0', '--eval-tasks', '4', '--attack', 'none', '--backend', 'cpu', '--quiet', '--out', dir);
  assert.is(run.code, 0, run.err);
  const ev = await cli('eval', '--checkpoint', path.join(dir, 'checkpoint.json'), '--attack-epsilon', '-1', '--backend', 'webgpu');
  assert.is(ev.code, 2, ev.err);
  assert.match(ev.err, /metagrad: --attack-epsilon must be a finite number ≥ 0, got -1/);
  assert.not.match(ev.err, /training the joint baseline/);
  assert.is(ev.out, '');
});

test("the API's hints in command-line words: option names become flags, sentences pointing into src/ are dropped", () => {
  const names = flagNames('train', TRAIN_FLAGS);
  const say = (t: string) => cliVocabulary(t, names, 'train');
  assert.is(say('Pass supportShots: 4, queryShots: 2.'), 'Pass --support-shots 4, --query-shots 2.');
  assert.is(say('train tasksPerBatch must be an integer in [1, 1048576], got 0.'), '--tasks must be an integer in [1, 1048576], got 0.');
  assert.is(say("Create the learner with model: { kind: 'mlp', classes: 3, … }, or use ways: 2."), 'Pass --model mlp --classes 3, or use --ways 2.');
  assert.is(say('Pass optimizer: "sgd" or leave it out for the default.'), 'Pass --optimizer sgd or leave it out for the default.');
  assert.is(say('For pixels in [0, 1] pass clip: [0, 1]; leave it out for no clipping.'), 'For pixels in [0, 1] pass --clip 0,1; leave it out for no clipping.');
  assert.is(say('epsilon must be a finite number > 0, got -1.'), '--epsilon must be a finite number > 0, got -1.');
  assert.is(say('See src/tasks/source.ts, or the CLI flag --source.'), 'See metagrad train --help.');
  assert.is(say('Use evalTasks: 8, or leave it out. See src/validate.ts.'), 'Use --eval-tasks 8, or leave it out.');
  // eval names the evaluation's steps --steps.
  const evalNames = flagNames('eval', { steps: { help: '' }, 'inner-lr': { help: '' } });
  assert.is(cliVocabulary('evaluate steps must be an integer in [0, 100], got -1.', evalNames, 'eval'), '--steps must be an integer in [0, 100], got -1.');
  // Words that only look like options stay.
  assert.is(say('The run has 2 inner steps and seed 3.'), 'The run has 2 inner steps and seed 3.');
});


test.run();
