// The API's errors in the command line's words: `supportShots: 5` in a hint becomes `--support-shots 5`,
// `train iterations must be …` becomes `--iterations must be …`, and sentences that point into src/ (not
// shipped) are dropped. The names come from a table of option → flag made from the flag tables.
import { flagName, optionFlagKeys, type FlagSpecs } from './flags.js';

/** Train options (learner.train) and the flags that give them. */
export const TRAIN_OPTION_FLAGS: Record<string, string> = {
  iterations: 'iterations', tasksPerBatch: 'tasks', supportShots: 'support-shots', queryShots: 'query-shots',
  evalEvery: 'eval-every', evalTasks: 'eval-tasks', evalSteps: 'eval-steps', evalAttack: 'attack',
};

/** Other names the API's messages use (model, source and evaluation fields, AMP's models) and their flags,
 * each by command where the two commands name it differently. */
const OTHER_NAMES: Record<string, string | { train: string; eval: string }> = {
  models: 'tasks', hidden: 'hidden', classes: 'classes', norm: 'norm', 'model.hidden': 'hidden', 'model.classes': 'classes', 'model.norm': 'norm',
  ways: 'ways', shots: 'shots', queries: 'query-shots', dim: 'dim',
  'evaluate steps': { train: 'eval-steps', eval: 'steps' }, 'evaluate lr': 'inner-lr', steps: { train: 'eval-steps', eval: 'steps' },
  'attack.epsilon': 'attack-epsilon', 'attack.kind': 'attack',
};

/** API name → flag, for the flags `specs` (a command's) has. */
export function flagNames(command: 'train' | 'eval', specs: FlagSpecs): Map<string, string> {
  const names = new Map<string, string>();
  for (const key of optionFlagKeys()) names.set(key, flagName(key));
  for (const [key, flag] of Object.entries(TRAIN_OPTION_FLAGS)) names.set(key, flag);
  for (const [key, flag] of Object.entries(OTHER_NAMES)) names.set(key, typeof flag === 'string' ? flag : flag[command]);
  for (const [key, flag] of names) if (!(flag in specs) || specs[flag].refused) names.delete(key);
  return names;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A value as the command line writes it: 'mlp' → mlp, [0, 1] → 0,1. */
function cliValue(v: string): string {
  if (/^(['"]).*\1$/.test(v)) return v.slice(1, -1);
  if (v.startsWith('[')) return v.slice(1, -1).split(',').map((x) => x.trim()).join(',');
  return v;
}

/** `text` (an error's message or hint) in command-line words. */
export function cliVocabulary(text: string, names: Map<string, string>, command: string): string {
  // Sentences that send the reader into the sources, which the package does not ship.
  const sentences = text.split(/(?<=[.!?])\s+/);
  const kept = sentences.filter((s) => !/\bsrc\/|\bSPEC\.md\b/.test(s));
  let out = kept.length === sentences.length ? text : kept.join(' ');
  if (out.trim() === '') out = `See metagrad ${command} --help.`;
  // The backend option reads the same in every command: backend: 'webgpu' → --backend webgpu.
  out = out.replace(/\bbackend: '(\w+)'/g, '--backend $1');
  if (names.size === 0) return out;
  const alt = [...names.keys()].sort((a, b) => b.length - a.length).map(escape).join('|');
  // model: { kind: 'mlp', classes: 5, … } → --model mlp --classes 5
  out = out.replace(/\bmodel: \{ kind: '(\w+)'((?:, [^{}]*?)?) \}/g, (_, kind: string, rest: string) =>
    [`--model ${kind}`, ...rest.split(',').map((p) => p.trim()).filter((p) => p && p !== '…').map((p) => cliVocabulary(p, names, command))].join(' '));
  // name: value → --flag value
  const value = String.raw`('[^']*'|"[^"]*"|\[[^\]]*\]|[^\s,;)]*[^\s,;).])`;
  out = out.replace(new RegExp(String.raw`(?<![\w./-])(?:train |evaluate )?(${alt}): ${value}`, 'g'), (_, name: string, v: string) => `--${names.get(name)} ${cliValue(v)}`);
  // "train supportShots must …", "innerLr must …", "attack.epsilon must …", a camelCase name anywhere.
  out = out.replace(new RegExp(String.raw`(?<![\w./-])((?:train |evaluate )?(${alt}))(?![\w-]|\.\w)`, 'g'), (m: string, whole: string, name: string, offset: number, all: string) =>
    (/[A-Z.]/.test(name) || whole !== name || (offset === 0 && all.startsWith(' must', whole.length)) ? `--${names.get(name)}` : m));
  out = out.replace(/\bCreate the learner with --/g, 'Pass --');
  return out;
}
