/**
 * A small, strict argument parser: known flags only, clear errors for the
 * rest. (No dependency; the CLI has few options.)
 */
import { UsageError } from '../errors.js';

/** Flag definitions: name → whether it takes a value. */
export type FlagSpec = Record<string, { value: boolean; short?: string; repeat?: boolean }>;

/** Parsed arguments. */
export interface ParsedArgs {
  positional: string[];
  flags: Record<string, string | boolean | string[]>;
}

/** Parses argv against a spec; unknown flags are a usage error. */
export function parseArgs(argv: string[], spec: FlagSpec, command: string): ParsedArgs {
  const positional: string[] = [];
  const flags: ParsedArgs['flags'] = {};
  const byShort = new Map(Object.entries(spec).filter(([, d]) => d.short).map(([n, d]) => [d.short!, n]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    } else if (/^-[a-zA-Z]$/.test(arg)) {
      name = byShort.get(arg.slice(1));
      if (!name) throw new UsageError(`${command}: unknown option ${arg}`, `see nodediag ${command} --help`);
    } else {
      positional.push(arg);
      continue;
    }
    const def = spec[name];
    if (!def) throw new UsageError(`${command}: unknown option --${name}`, `see nodediag ${command} --help`);
    let value: string | boolean = true;
    if (def.value) {
      value = inline ?? argv[++i] ?? '';
      if (value === '' || (inline === undefined && value.startsWith('-') && value.length > 1)) {
        throw new UsageError(`${command}: --${name} needs a value`);
      }
    } else if (inline !== undefined) {
      throw new UsageError(`${command}: --${name} takes no value`);
    }
    if (def.repeat) flags[name] = [...((flags[name] as string[] | undefined) ?? []), String(value)];
    else flags[name] = value;
  }
  return { positional, flags };
}

/** A positive integer flag value. */
export function intFlag(v: string | boolean | string[] | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`);
  return n;
}
