// A small, strict flag parser: every flag is declared with its default and help line (so `--help`
// shows every default), unknown flags and bad values are errors that name the flag and the fix.
import { InvalidOptionError } from '../errors.js';

export interface FlagSpec {
  /** Default shown in --help and used when the flag is absent (undefined: no default). */
  default?: string;
  help: string;
  /** Boolean switch: present = true. */
  switch?: boolean;
  choices?: readonly string[];
  kind?: 'int' | 'number' | 'string' | 'pair';
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | number | boolean | [number, number] | undefined>;

export function parseFlags(args: string[], specs: FlagSpecs, command: string): FlagValues {
  const raw: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--')) throw new InvalidOptionError(`Unexpected argument "${arg}" for \`metagrad ${command}\`.`, `Flags look like --name value; see metagrad ${command} --help.`);
    const [name, inline] = arg.slice(2).split('=', 2);
    const spec = specs[name];
    if (!spec) throw new InvalidOptionError(`Unknown flag --${name} for \`metagrad ${command}\`.`, `See metagrad ${command} --help for the flags.`);
    if (spec.switch) { raw[name] = true; continue; }
    const value = inline ?? args[++i];
    if (value === undefined) throw new InvalidOptionError(`--${name} needs a value.`, `e.g. --${name} ${spec.default ?? '…'}`);
    raw[name] = value;
  }
  const out: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    const value = raw[name] ?? (spec.switch ? false : spec.default);
    if (value === undefined || typeof value === 'boolean') { out[name] = value; continue; }
    if (spec.choices && !spec.choices.includes(value)) {
      throw new InvalidOptionError(`--${name} must be one of ${spec.choices.join(', ')}; got "${value}".`, `e.g. --${name} ${spec.choices[0]}`);
    }
    out[name] = convert(name, value, spec);
  }
  return out;
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
  const width = Math.max(...Object.keys(specs).map((n) => n.length)) + 4;
  const lines = Object.entries(specs).map(([name, s]) => {
    const def = s.switch ? '' : s.default !== undefined ? ` (default: ${s.default})` : '';
    const choices = s.choices ? ` [${s.choices.join('|')}]` : '';
    return `  --${name.padEnd(width)}${s.help}${choices}${def}`;
  });
  return `metagrad ${command} — ${summary}\n\n${lines.join('\n')}\n`;
}
