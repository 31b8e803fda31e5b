/**
 * Evaluates catalog matchers against observations. Pure.
 */
import type { Matcher } from '../catalog/schema.js';
import { compiled } from '../catalog/regex.js';
import { journalLineEpoch } from '../probes/parsers.js';
import type { Observations } from './observation.js';

/** One quoted piece of evidence. */
export interface Evidence {
  check: string;
  line: string;
}

/** Outcome of a matcher: whether it holds, the lines that prove it, the named groups it captured. */
export interface MatchResult {
  matched: boolean;
  evidence: Evidence[];
  groups: Record<string, string[]>;
}

const NO: MatchResult = { matched: false, evidence: [], groups: {} };

function merge(results: MatchResult[], matched: boolean): MatchResult {
  const evidence: Evidence[] = [];
  const groups: Record<string, string[]> = {};
  for (const r of results) {
    if (!r.matched) continue;
    evidence.push(...r.evidence);
    for (const [k, vs] of Object.entries(r.groups)) {
      const list = (groups[k] ??= []);
      for (const v of vs) if (!list.includes(v)) list.push(v);
    }
  }
  return { matched, evidence, groups };
}

/** Evaluates one matcher. */
export function evaluate(m: Matcher, obs: Observations): MatchResult {
  if ('allOf' in m) {
    const rs = m.allOf.map((x) => evaluate(x, obs));
    return rs.every((r) => r.matched) ? merge(rs, true) : NO;
  }
  if ('anyOf' in m) {
    const rs = m.anyOf.map((x) => evaluate(x, obs));
    return rs.some((r) => r.matched) ? merge(rs, true) : NO;
  }
  if ('not' in m) return evaluate(m.not, obs).matched ? NO : { matched: true, evidence: [], groups: {} };

  const o = obs.get(m.check);
  if (!o) return NO;
  if ('status' in m) {
    if (!m.status.includes(o.status)) return NO;
    const why = o.reason ? ` — ${o.reason}` : '';
    return { matched: true, evidence: [{ check: m.check, line: `check ${o.status}${why}` }], groups: {} };
  }
  if ('noLine' in m) {
    if (o.status !== 'ok') return NO;
    const re = compiled(m.noLine);
    return o.lines.some((l) => re.test(l)) ? NO : { matched: true, evidence: [], groups: {} };
  }
  const re = compiled(m.line);
  const evidence: Evidence[] = [];
  const groups: Record<string, string[]> = {};
  for (const line of o.lines) {
    const hit = re.exec(line);
    if (!hit) continue;
    if (m.maxAgeSeconds !== undefined) {
      const at = journalLineEpoch(line);
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
    }
  }
  return evidence.length > 0 ? { matched: true, evidence, groups } : NO;
}
