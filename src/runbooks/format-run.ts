/**
 * Terminal rendering of a fix run: live step lines, the final outcome, and
 * the `--json` shape (public API). Pure.
 */
import { reportJson, type ReportJson } from '../diagnose/report-json.js';
import type { RunOutcome, StepRecord } from './execute.js';

const ICON: Record<StepRecord['status'], string> = { ok: '✔', failed: '✖', skipped: '↷', 'not-run': '·' };

/** One finished step as a line (plus its output excerpt and reason). */
export function formatStepLine(r: StepRecord, total: number): string {
  const head = `${ICON[r.status]} [${r.index}/${total}] ${r.title} — ${r.status}${r.exitCode !== null ? ` (exit ${r.exitCode})` : ''}, ${(r.durationMs / 1000).toFixed(1)} s`;
  const lines = [head];
  if (r.verify) lines.push(`    verify: ${r.verify.passed ? 'passed' : 'FAILED'} — ${r.verify.detail}`);
  if (r.reason && r.status !== 'ok') lines.push(`    ${r.reason}`);
  if (r.output) lines.push(...r.output.split('\n').slice(0, 8).map((l) => `    │ ${l}`));
  return lines.join('\n');
}

/** The outcome of a run, after the live lines. */
export function formatOutcome(o: RunOutcome, auditPath: string): string {
  const out = [`result: ${o.result.toUpperCase()} — ${o.summary.split('\n')[0]}`];
  out.push(...o.summary.split('\n').slice(1).map((l) => `  ${l}`));
  if (o.after) {
    const roots = o.followUps.map((f) => f.id);
    out.push(o.after.findings.length === 0 ? `after: ${o.plan.node} is healthy (no findings)` : `after: ${o.after.findings.map((f) => f.id).join(', ')}`);
    if (roots.length) out.push(`follow-up: nodediag diag ${o.plan.node}  (root cause now: ${roots.join(', ')})`);
  }
  if (o.auditRange) out.push(`audit: entries ${o.auditRange.first}–${o.auditRange.last} in ${auditPath}`);
  return out.join('\n');
}

/** The `nodediag fix --json` object. */
export interface FixJson {
  node: string;
  runbook: string;
  result: RunOutcome['result'];
  summary: string;
  steps: Array<{ title: string; command: string; status: StepRecord['status']; exitCode: number | null; durationMs: number }>;
  after: ReportJson | null;
  auditRange: RunOutcome['auditRange'];
}

export function fixJson(o: RunOutcome): FixJson {
  return {
    node: o.plan.node,
    runbook: o.plan.runbook,
    result: o.result,
    summary: o.summary,
    steps: o.steps.map((s) => ({ title: s.title, command: s.command, status: s.status, exitCode: s.exitCode, durationMs: s.durationMs })),
    after: o.after ? reportJson(o.after) : null,
    auditRange: o.auditRange,
  };
}
