// A small, strict flag parser: every flag is declared with its default and help line (so `--help`
// shows every default), unknown flags and bad values are errors that name the flag and the fix.
import { InvalidOptionError } from '../errors.js';
import { ALGORITHM_NAMES, ALGORITHMS, DEFAULT_ALGORITHM, isSameAs, optionHelp, optionUsers, type Algorithm } from '../algorithms/index.js';

export interface FlagSpec {
  /** Default shown in --help and used when the flag is absent (undefined: no default). */
  default?: string;
  help: string;
  /** Boolean switch: present = true. */
  switch?: boolean;
  choices?: readonly string[];
  kind?: 'int' | 'number' | 'string' | 'pair';
  /** A name this command refuses (renamed, or another command's): given, it is an error saying why,
   * with a hint (`{value}` in it: the value given). Left out of --help and of the parsed values. */
  refused?: { why: string; hint: string };
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | number | boolean | [number, number] | undefined>;

/** `given`, when passed, receives the names of the flags written on the command line. */
export function parseFlags(args: string[], specs: FlagSpecs, command: string, given?: Set<string>): FlagValues {
  const raw: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--')) throw new InvalidOptionError(`Unexpected argument "${arg}" for \`metagrad ${command}\`.`, `Flags look like --name value; see metagrad ${command} --help.`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const spec = specs[name];
    if (!spec) {
      const near = closest(name, Object.keys(specs).filter((n) => !specs[n].refused));
      throw new InvalidOptionError(`Unknown flag --${name} for \`metagrad ${command}\`${near ? `. Did you mean --${near}?` : '.'}`, `See metagrad ${command} --help for the flags.`);
    }
    given?.add(name);
    if (spec.refused) {
      const value = inline ?? (args[i + 1] === undefined || args[i + 1].startsWith('--') ? '…' : args[i + 1]);
      throw new InvalidOptionError(`--${name} is not a flag of \`metagrad ${command}\`: ${spec.refused.why}.`, spec.refused.hint.replace('{value}', value));
    }
    if (spec.switch) {
      // --name alone is true; --name=true|false (1|0, yes|no) says which.
      if (inline === undefined || /^(true|1|yes)$/i.test(inline)) raw[name] = true;
      else if (/^(false|0|no)$/i.test(inline)) raw[name] = false;
      else throw new InvalidOptionError(`--${name} is a switch; got "--${name}=${inline}".`, `Pass --${name}, or --${name}=false to turn it off.`);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new InvalidOptionError(`--${name} needs a value.`, `e.g. --${name} ${spec.default ?? '…'}`);
    raw[name] = value;
  }
  const out: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.refused) continue;
    const value = raw[name] ?? (spec.switch ? false : spec.default);
    if (value === undefined || typeof value === 'boolean') { out[name] = value; continue; }
    // Choices are lower-case words: --algo MAML is --algo maml.
    if (spec.choices && !spec.choices.includes(value) && spec.choices.includes(value.toLowerCase())) {
      out[name] = value.toLowerCase();
      continue;
    }
    if (spec.choices && !spec.choices.includes(value)) {
      throw new InvalidOptionError(`--${name} must be one of ${spec.choices.join(', ')}; got "${value}".`, `e.g. --${name} ${spec.choices[0]}`);
    }
    out[name] = convert(name, value, spec);
  }
  return out;
}

/** Edit distance (insertions, deletions, substitutions, adjacent transpositions) between a and b. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The candidate nearest to `word` (case-insensitive), if it is close enough to be a typo of it:
 * at most 1 edit for short words, 2 for 5–8 letters, 3 beyond; or a prefix of at least 3 letters. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) { best = c; bestDistance = d; }
  }
  const allowed = w.length <= 4 ? 1 : w.length <= 8 ? 2 : 3;
  if (best !== undefined && bestDistance <= allowed) return best;
  const prefixed = candidates.filter((c) => w.length >= 3 && c.toLowerCase().startsWith(w));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

function convert(name: string, value: string, spec: FlagSpec): string | number | [number, number] {
  if (spec.kind === 'int' || spec.kind === 'number') {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || (spec.kind === 'int' && !Number.isInteger(n))) {
      throw new InvalidOptionError(`--${name} must be ${spec.kind === 'int' ? 'an integer' : 'a number'}; got "${value}".`, `e.g. --${name} ${spec.default ?? '1'}`);
    }
    return n;
  }
  if (spec.kind === 'pair') {
    const parts = value.split(',').map(Number);
    if (parts.length !== 2 || !parts.every(Number.isFinite)) throw new InvalidOptionError(`--${name} must be two numbers lo,hi; got "${value}".`, `e.g. --${name} 0,1`);
    return [parts[0], parts[1]];
  }
  return value;
}

export function helpText(command: string, summary: string, specs: FlagSpecs): string {
  const shown = Object.entries(specs).filter(([, s]) => !s.refused);
  const width = Math.max(...shown.map(([n]) => n.length)) + 4;
  const lines = shown.map(([name, s]) => {
    const def = s.switch ? '' : s.default !== undefined ? ` (default: ${s.default})` : '';
    const choices = s.choices ? ` [${s.choices.join('|')}]` : '';
    return `  --${name.padEnd(width)}${s.help}${choices}${def}`;
  });
  return `metagrad ${command} — ${summary}\n\n${lines.join('\n')}\n`;
}

// ---- Flags of learner options, made from the algorithm tables (src/algorithms/<name>.ts) ----------

/** camelCase option → its kebab-case flag (innerLrAdv → inner-lr-adv). */
export const flagName = (option: string): string => option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A default as --help and the command line write it. */
function showDefault(v: unknown): string {
  if (isSameAs(v)) return `= ${flagName(v.sameAs)}`;
  return Array.isArray(v) ? v.join(',') : String(v);
}

/** The options some algorithm describes with a `flag`, in registry order (the first algorithm's first). */
export function optionFlagKeys(): string[] {
  const keys = ALGORITHM_NAMES.flatMap((a) => Object.keys(ALGORITHMS[a].defaults).filter((k) => optionHelp(a, k)?.flag !== undefined));
  return [...new Set(keys)];
}

/** How the flag of `key` is read (from the first algorithm that describes it). */
const flagKind = (key: string) => optionUsers(key).map((a) => optionHelp(a, key)?.flag).find((f) => f !== undefined);

/**
 * The flags of learner options `keys`, named --kebab-case. A flag's default is the algorithms' default
 * when every algorithm that takes the option agrees; otherwise, or when the default is another option's
 * value, it is 'auto' (each algorithm's own default), and the help line says which is what. `auto`
 * makes other options 'auto' too, for a reason of the command line's (e.g. clip: 0,1 for images).
 * The help is prefixed with the algorithms that take the option unless MAML (and so its variants) does.
 */
export function optionFlags(keys: readonly string[], auto: Record<string, string> = {}): FlagSpecs {
  const specs: FlagSpecs = {};
  for (const key of keys) {
    const users = optionUsers(key);
    const kind = flagKind(key);
    if (!kind) continue;
    const group = (of: (a: Algorithm) => string) => {
      const groups = new Map<string, Algorithm[]>();
      for (const a of users) groups.set(of(a), [...(groups.get(of(a)) ?? []), a]);
      return [...groups];
    };
    const helps = group((a) => optionHelp(a, key)?.help ?? '');
    let help = helps.length === 1 && users.includes(DEFAULT_ALGORITHM)
      ? helps[0][0]
      : helps.map(([text, who]) => `${who.join(', ')}: ${text}`).join('; ');
    const defaults = group((a) => showDefault((ALGORITHMS[a].defaults as Record<string, unknown>)[key]));
    let byDefault: string | undefined;
    if (auto[key] !== undefined) help += ` (auto: ${auto[key]})`;
    else if (defaults.length > 1) help += ` (auto: ${defaults.map(([value, who]) => `${who.join('/')} ${value}`).join(', ')})`;
    else if (defaults[0][0].startsWith('= ')) help += ` (auto: ${defaults[0][0]})`;
    else byDefault = defaults[0][0];
    specs[flagName(key)] = typeof kind === 'string'
      ? { default: byDefault ?? 'auto', help, ...(byDefault === undefined ? {} : { kind }) }
      : { default: byDefault ?? 'auto', help, choices: byDefault === undefined ? ['auto', ...kind] : kind };
  }
  return specs;
}

/** Learner options from the values of their flags ('auto' leaves an option to the algorithm's default). */
export function optionsFromFlags(f: FlagValues, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = f[flagName(key)];
    if (value === undefined || value === 'auto') continue;
    const kind = flagKind(key);
    const numeric = typeof (ALGORITHMS[optionUsers(key)[0]].defaults as Record<string, unknown>)[key] === 'number';
    if (kind === 'pair') out[key] = Array.isArray(value) ? value : String(value).split(',').map((v) => flagNumber(flagName(key), v));
    else if (kind === 'number' || kind === 'int' || (numeric && typeof value === 'string')) out[key] = flagNumber(flagName(key), String(value));
    else out[key] = value;
  }
  return out;
}

function flagNumber(name: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidOptionError(`--${name}: "${v}" is not a number.`, `Pass a number${name === 'clip' ? ' pair lo,hi' : ''}, or auto.`);
  return n;
}
