/**
 * Classification: observations × finding catalog → ranked findings. Pure: no
 * I/O, no clock, no SDK.
 */
import type { Catalogs } from '../catalog/load.js';
import type { FindingRule, Role, Severity } from '../catalog/schema.js';
import { renderText } from '../catalog/template.js';
import { evaluate, type Evidence } from './match.js';
import type { Observations } from './observation.js';

/** A finding that holds on the node. */
export interface Finding {
  /** Stable catalog id (public API). */
  id: string;
  title: string;
  severity: Severity;
  role: Role;
  /** What this means for the node, in one sentence. */
  summary: string;
  /** Quoted lines that prove it, as `<check>: <line>`. */
  evidence: string[];
  /** Values captured from the evidence by the rule's named groups (e.g. `pid`, `pod`). */
  params: Record<string, string[]>;
  /** For each captured value, the evidence line it came from (a plan quotes it next to the step). */
  paramLines?: Record<string, Record<string, string>>;
  /** Runbook that fixes it on this node, or null (advice only). */
  runbook: string | null;
  /** What to do or check next, with the finding's parameters filled in. */
  advice: string[];
  /**
   * Related findings present on the same node: for a symptom or contributing
   * cause, the root causes it is linked to; for a root cause, the symptoms and
   * contributing causes it explains.
   */
  linkedTo: string[];
}

/** Limits that keep a report readable. */
export const EVIDENCE_LIMITS = { linesPerFinding: 8, charsPerLine: 400 } as const;

const ROLE_ORDER: Record<Role, number> = { 'root-cause': 0, contributing: 1, symptom: 2 };
const SEVERITY_ORDER: Record<Severity, number> = { critical: 0, high: 1, warning: 2, info: 3 };

/**
 * The part of a line that stays the same when a log message repeats: without
 * journal, klog and logrus timestamps and the PID in `unit[pid]:`.
 */
export function repeatKey(line: string): string {
  return line
    .replace(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)?\s+/, '')
    .replace(/\b[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+\s/, '')
    .replace(/time="[^"]*"\s*/, '')
    .replace(/\[\d+\]:/, '[]:');
}

function formatEvidence(list: Evidence[]): string[] {
  const groups = new Map<string, { text: string; count: number }>();
  const seen = new Set<string>();
  for (const e of list) {
    // The same line proving both the rule and its supporting evidence is one line, not a repeat.
    const exact = `${e.check}\u0000${e.line}`;
    if (seen.has(exact)) continue;
    seen.add(exact);
    const key = `${e.check}\u0000${repeatKey(e.line)}`;
    const g = groups.get(key);
    let text = `${e.check}: ${e.line}`;
    if (text.length > EVIDENCE_LIMITS.charsPerLine) text = `${text.slice(0, EVIDENCE_LIMITS.charsPerLine - 1)}…`;
    if (g) {
      g.count += 1;
      g.text = text;
    } else groups.set(key, { text, count: 1 });
  }
  const out = [...groups.values()].map((g) => (g.count > 1 ? `${g.text} (×${g.count})` : g.text));
  if (out.length <= EVIDENCE_LIMITS.linesPerFinding) return out;
  const kept = out.slice(0, EVIDENCE_LIMITS.linesPerFinding);
  kept.push(`… and ${out.length - kept.length} more line(s)`);
  return kept;
}

/** A rule that could be neither proven nor ruled out: a check it needs did not run. */
export interface Undecided {
  /** The finding id. */
  id: string;
  title: string;
  /** The checks that could not be made, with why. */
  checks: Array<{ id: string; status: string; reason?: string }>;
}

/** Everything classification concluded. */
export interface Classification {
  /** Findings proven by checks that ran, root causes first. */
  findings: Finding[];
  /** Rules that could not be decided because a check they need did not run. */
  undecided: Undecided[];
}

interface Candidate {
  rule: FindingRule;
  order: number;
  evidence: Evidence[];
  params: Record<string, string[]>;
  paramLines: Record<string, Record<string, string>>;
}

function checkState(obs: Observations, ids: string[]): Undecided['checks'] {
  return ids.map((id) => {
    const o = obs.get(id);
    const status = !o ? 'missing' : o.status === 'ok' && o.truncated ? 'truncated' : o.status;
    return { id, status, ...(o?.reason ? { reason: o.reason } : {}) };
  });
}

/** Classifies a node's observations into findings, root causes first, and the rules it could not decide. */
export function classifyAll(obs: Observations, catalogs: Catalogs): Classification {
  const candidates = new Map<string, Candidate>();
  const undecided = new Map<string, Undecided>();
  catalogs.findings.forEach((rule, order) => {
    const r = evaluate(rule.when, obs);
    if (r.matched === 'unknown') {
      undecided.set(rule.id, { id: rule.id, title: rule.title, checks: checkState(obs, r.unknownChecks) });
      return;
    }
    if (!r.matched) return;
    const supporting = rule.supporting.flatMap((m) => {
      const s = evaluate(m, obs);
      return s.matched === true ? s.evidence : [];
    });
    candidates.set(rule.id, { rule, order, evidence: [...r.evidence, ...supporting], params: r.groups, paramLines: r.lineOf });
  });

  // A symptom with no cause present is reported only when its `withoutCause` also holds.
  for (const c of [...candidates.values()]) {
    if (c.rule.role !== 'symptom' || !c.rule.withoutCause) continue;
    if (c.rule.causedBy.some((id) => candidates.has(id))) continue;
    const alone = evaluate(c.rule.withoutCause, obs);
    if (alone.matched === true) continue;
    candidates.delete(c.rule.id);
    // Its cause could not be decided: then neither can it.
    const unsure = c.rule.causedBy.map((id) => undecided.get(id)).filter((u): u is Undecided => u !== undefined);
    if (unsure.length) undecided.set(c.rule.id, { id: c.rule.id, title: c.rule.title, checks: unsure.flatMap((u) => u.checks) });
  }

  const present = [...candidates.values()].filter((c) => !c.rule.suppressedBy.some((id) => candidates.has(id)));
  const presentIds = new Set(present.map((c) => c.rule.id));

  const explains = new Map<string, string[]>();
  for (const c of present) {
    for (const cause of [...c.rule.causedBy, ...c.rule.contributesTo]) {
      if (presentIds.has(cause)) (explains.get(cause) ?? explains.set(cause, []).get(cause)!).push(c.rule.id);
    }
  }

  present.sort(
    (a, b) =>
      ROLE_ORDER[a.rule.role] - ROLE_ORDER[b.rule.role] ||
      SEVERITY_ORDER[a.rule.severity] - SEVERITY_ORDER[b.rule.severity] ||
      a.order - b.order,
  );

  const findings = present.map(({ rule, evidence, params, paramLines }) => {
    const runbook = rule.runbook ? catalogs.runbookById.get(rule.runbook) : undefined;
    // A runbook is offered only on proof: its own condition holds, and no more specific
    // cause that would suppress this finding is merely unknown.
    const applies =
      runbook &&
      (!runbook.appliesWhen || evaluate(runbook.appliesWhen, obs).matched === true) &&
      !rule.suppressedBy.some((id) => undecided.has(id));
    const linkedTo =
      rule.role === 'root-cause'
        ? (explains.get(rule.id) ?? [])
        : [...rule.causedBy, ...rule.contributesTo].filter((id) => presentIds.has(id));
    return {
      id: rule.id,
      title: rule.title,
      severity: rule.severity,
      role: rule.role,
      summary: rule.summary,
      evidence: formatEvidence(evidence),
      params,
      paramLines,
      runbook: applies ? runbook.id : null,
      advice: rule.advice.map((a) => renderText(a, params)),
      linkedTo,
    };
  });
  return { findings, undecided: [...undecided.values()] };
}

/** Classifies a node's observations into findings, root causes first. */
export function classify(obs: Observations, catalogs: Catalogs): Finding[] {
  return classifyAll(obs, catalogs).findings;
}
