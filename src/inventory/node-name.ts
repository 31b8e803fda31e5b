/**
 * Node names arrive from Slack and the command line: they are validated as
 * RFC 1123 names before anything else looks at them, and never reach a shell.
 */
import { InvalidNodeNameError } from '../errors.js';

const RFC1123 = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/** A printable, bounded rendering of untrusted input for error messages. */
export function showUntrusted(input: string, max = 64): string {
  const printable = [...input].map((c) => (/[\p{Cc}\p{Cf}]/u.test(c) ? `\\u{${c.codePointAt(0)!.toString(16)}}` : c)).join('');
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}

/** Returns the name if it is a valid Kubernetes node name, else throws {@link InvalidNodeNameError}. */
export function validateNodeName(input: string): string {
  const shown = showUntrusted(input);
  if (input.length === 0) throw new InvalidNodeNameError(shown, 'it is empty');
  if (input.length > 253) throw new InvalidNodeNameError(shown, 'it is longer than 253 characters');
  if (/[;&|`$(){}<>\\'"*?!#~\s]/.test(input)) throw new InvalidNodeNameError(shown, 'it contains shell metacharacters or spaces');
  if (/[A-Z]/.test(input)) throw new InvalidNodeNameError(shown, 'it contains uppercase letters');
  if (input.split('.').some((label) => label.length > 63)) throw new InvalidNodeNameError(shown, 'a dot-separated part is longer than 63 characters');
  if (!RFC1123.test(input)) throw new InvalidNodeNameError(shown, 'only a-z, 0-9, "-" and "." are allowed, starting and ending with a letter or digit');
  return input;
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** Up to three known names close to the given one (typos, prefixes). */
export function suggestNames(input: string, known: Iterable<string>): string[] {
  const needle = input.toLowerCase();
  const scored: Array<[string, number]> = [];
  for (const name of new Set(known)) {
    const d = distance(needle, name);
    const limit = Math.max(2, Math.floor(name.length / 3));
    if (d <= limit) scored.push([name, d]);
    else if (needle.length >= 3 && (name.includes(needle) || needle.includes(name))) scored.push([name, limit + 1]);
  }
  return scored.sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).slice(0, 3).map(([n]) => n);
}
