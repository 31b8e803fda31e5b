/**
 * Probe output parsers: raw command output → observation lines. Pure.
 */
import type { ParserName } from '../catalog/schema.js';

/** When the command ran, by the bot's clock (for the clock parser). */
export interface ParseContext {
  sentAtMs: number;
  receivedAtMs: number;
}

/** Splits output into lines, dropping blank ones. */
export function splitLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim().length > 0);
}

const JOURNAL_TS = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})([+-]\d{2}):?(\d{2})\s/;

/** Epoch seconds of a `journalctl -o short-iso` line, or null for continuation lines. */
export function journalLineEpoch(line: string): number | null {
  const m = JOURNAL_TS.exec(line);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}${m[2]}:${m[3]}`);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

const AT_SUFFIX = /\bat=(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)\b/;

/**
 * Epoch seconds a line is stamped with: a journal line's leading timestamp,
 * or the `at=<ISO time>` a Kubernetes line carries (event last seen, last
 * termination). Null when the line carries no time.
 */
export function lineEpoch(line: string): number | null {
  const j = journalLineEpoch(line);
  if (j !== null) return j;
  const m = AT_SUFFIX.exec(line);
  if (!m) return null;
  const ms = Date.parse(m[1]!);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/**
 * Keeps the journal lines inside the window the probe announced
 * (`window-start=<epoch>`: since the unit last started), so that an error
 * from before the last restart does not count as evidence now.
 */
export function parseJournal(text: string): string[] {
  const lines = splitLines(text);
  let start = -Infinity;
  const out: string[] = [];
  let keeping = false;
  for (const line of lines) {
    const w = /^window-start=(\d+)(?: now=\d+)?$/.exec(line);
    if (w) {
      start = Number(w[1]);
      continue;
    }
    if (line.startsWith('-- ') || line.startsWith('journal-exit=')) continue;
    const epoch = journalLineEpoch(line);
    if (epoch === null) {
      if (keeping) out.push(line);
      continue;
    }
    keeping = epoch >= start;
    if (keeping) out.push(line);
  }
  return out;
}

/**
 * Adds the measured skew between the node's clock and the bot's:
 * `clock-skew-seconds=<abs> node=<ahead|behind>` (the bot's time is the
 * midpoint of the round trip).
 */
export function parseClock(text: string, ctx: ParseContext): string[] {
  const lines = splitLines(text);
  const out: string[] = [];
  for (const line of lines) {
    const m = /^node-epoch-ms=(\d+)$/.exec(line);
    if (!m) {
      out.push(line);
      continue;
    }
    const botMs = (ctx.sentAtMs + ctx.receivedAtMs) / 2;
    const skewMs = Number(m[1]) - botMs;
    const rtt = ctx.receivedAtMs - ctx.sentAtMs;
    out.push(line);
    out.push(`clock-skew-seconds=${Math.round(Math.abs(skewMs) / 1000)} node=${skewMs >= 0 ? 'ahead' : 'behind'} rtt-ms=${rtt}`);
  }
  return out;
}

/** The node's clock as a journal probe reported it (`window-start=… now=<epoch>`). */
export function journalNow(text: string): number | undefined {
  const m = /^window-start=\d+ now=(\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Applies the named parser. */
export function parseOutput(parser: ParserName, text: string, ctx: ParseContext): string[] {
  switch (parser) {
    case 'journal':
      return parseJournal(text);
    case 'clock':
      return parseClock(text, ctx);
    default:
      return splitLines(text);
  }
}
