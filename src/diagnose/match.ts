/**
 * Evaluates catalog matchers against observations, in three values: a
 * matcher holds, does not hold, or is unknown because a check it reads could
 * not be made (failed, timed out, skipped) or was cut at its output cap where
 * that matters. A check that did not run is never evidence: `line` matches
 * only lines of checks whose status is ok, and `not` over an unknown is
 * unknown. Pure.
 */
import type { Matcher } from '../catalog/schema.js';
import { compiled } from '../catalog/regex.js';
import { lineEpoch } from '../probes/parsers.js';
import type { Observation, Observations } from './observation.js';

/** One quoted piece of evidence. */
export interface Evidence {
  check: string;
  line: string;
}

/** Whether a matcher holds. */
export type Truth = true | false | 'unknown';

/** Outcome of a matcher: whether it holds, the lines that prove it, the named groups it captured. */
export interface MatchResult {
  matched: Truth;
  evidence: Evidence[];
  /** Values of named groups, deduplicated, in order of appearance. */
  groups: Record<string, string[]>;
  /** For each captured value: the evidence line it came from (plans quote it). */
  lineOf: Record<string, Record<string, string>>;
  /** Checks whose state made the result unknown. */
  unknownChecks: string[];
}

const NO: MatchResult = { matched: false, evidence: [], groups: {}, lineOf: {}, unknownChecks: [] };

function unknown(checks: string[]): MatchResult {
  return { matched: 'unknown', evidence: [], groups: {}, lineOf: {}, unknownChecks: [...new Set(checks)] };
}

function merge(results: MatchResult[], matched: Truth): MatchResult {
  const evidence: Evidence[] = [];
  const groups: Record<string, string[]> = {};
  const lineOf: Record<string, Record<string, string>> = {};
  for (const r of results) {
    if (r.matched !== true) continue;
    evidence.push(...r.evidence);
    for (const [k, vs] of Object.entries(r.groups)) {
      const list = (groups[k] ??= []);
      for (const v of vs) if (!list.includes(v)) list.push(v);
    }
    for (const [k, m] of Object.entries(r.lineOf)) Object.assign((lineOf[k] ??= {}), m);
  }
  return { matched, evidence, groups, lineOf, unknownChecks: [] };
}

/** Whether a check's lines can be read as evidence. */
export function usable(o: Observation | undefined): o is Observation {
  return o !== undefined && o.status === 'ok';
}

/** Evaluates one matcher. */
export function evaluate(m: Matcher, obs: Observations): MatchResult {
  if ('allOf' in m) {
    const rs = m.allOf.map((x) => evaluate(x, obs));
    if (rs.some((r) => r.matched === false)) return NO;
    if (rs.some((r) => r.matched === 'unknown')) return unknown(rs.flatMap((r) => r.unknownChecks));
    return merge(rs, true);
  }
  if ('anyOf' in m) {
    const rs = m.anyOf.map((x) => evaluate(x, obs));
    if (rs.some((r) => r.matched === true)) return merge(rs, true);
    if (rs.some((r) => r.matched === 'unknown')) return unknown(rs.flatMap((r) => r.unknownChecks));
    return NO;
  }
  if ('not' in m) {
    const r = evaluate(m.not, obs);
    if (r.matched === 'unknown') return r;
    return r.matched ? NO : { matched: true, evidence: [], groups: {}, lineOf: {}, unknownChecks: [] };
  }

  const o = obs.get(m.check);
  if ('status' in m) {
    // The status of a check is always known, even when the check itself failed.
    if (!o || !m.status.includes(o.status)) return NO;
    const why = o.reason ? ` — ${o.reason}` : '';
    return { matched: true, evidence: [{ check: m.check, line: `check ${o.status}${why}` }], groups: {}, lineOf: {}, unknownChecks: [] };
  }
  if (!usable(o)) return unknown([m.check]);
  if ('noLine' in m) {
    const re = compiled(m.noLine);
    if (o.lines.some((l) => re.test(l))) return NO;
    // The line may have been in the part the output cap cut off.
    return o.truncated ? unknown([m.check]) : { matched: true, evidence: [], groups: {}, lineOf: {}, unknownChecks: [] };
  }
  const re = compiled(m.line);
  const evidence: Evidence[] = [];
  const groups: Record<string, string[]> = {};
  const lineOf: Record<string, Record<string, string>> = {};
  const cleared = m.clearedBy ? compiled(m.clearedBy) : null;
  const from = cleared ? o.lines.findLastIndex((l) => cleared.test(l)) + 1 : 0;
  for (const line of o.lines.slice(from)) {
    const hit = re.exec(line);
    if (!hit) continue;
    if (m.maxAgeSeconds !== undefined) {
      const at = lineEpoch(line);
      if (at === null || o.nodeNowSec === undefined || o.nodeNowSec - at > m.maxAgeSeconds) continue;
    }
    if (m.capture) {
      const n = Number(hit.groups?.[m.capture.group]);
      if (!Number.isFinite(n)) continue;
      if (m.capture.gte !== undefined && n < m.capture.gte) continue;
      if (m.capture.lte !== undefined && n > m.capture.lte) continue;
    }
    evidence.push({ check: m.check, line });
    for (const [k, v] of Object.entries(hit.groups ?? {})) {
      if (v === undefined) continue;
      const list = (groups[k] ??= []);
      if (!list.includes(v)) list.push(v);
      (lineOf[k] ??= {})[v] ??= line;
    }
  }
  if (evidence.length === 0) return o.truncated ? unknown([m.check]) : NO;
  if (m.minDistinct && (groups[m.minDistinct.group]?.length ?? 0) < m.minDistinct.count) return NO;
  return { matched: true, evidence, groups, lineOf, unknownChecks: [] };
}
