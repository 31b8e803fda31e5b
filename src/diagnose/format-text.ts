/**
 * The human report for a terminal: root cause first, evidence quoted, what was
 * checked and what could not be. Pure (colour is a parameter).
 */
import type { Finding } from './classify.js';
import type { DiagnosisReport } from './run-diagnosis.js';
import { layoutNotes, uncheckedGroups, uncheckedLines } from './unchecked.js';

/** Terminal styling; `plain` when output is not a TTY or NO_COLOR is set. */
export interface Style {
  bold(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
  dim(s: string): string;
}

export const plain: Style = { bold: (s) => s, red: (s) => s, yellow: (s) => s, green: (s) => s, dim: (s) => s };

export const ansi: Style = {
  bold: (s) => `\x1b[1m${s}\x1b[22m`,
  red: (s) => `\x1b[31m${s}\x1b[39m`,
  yellow: (s) => `\x1b[33m${s}\x1b[39m`,
  green: (s) => `\x1b[32m${s}\x1b[39m`,
  dim: (s) => `\x1b[2m${s}\x1b[22m`,
};

const ROLE_LABEL: Record<Finding['role'], string> = {
  'root-cause': 'ROOT CAUSE',
  contributing: 'CONTRIBUTING',
  symptom: 'SYMPTOM',
};

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function countBy<T>(items: T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return m;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** One finding as text. */
export function formatFinding(f: Finding, node: string, s: Style): string[] {
  const mark = f.role === 'root-cause' ? s.red('✖') : f.role === 'contributing' ? s.yellow('▲') : s.yellow('●');
  const out = [`${mark} ${s.bold(ROLE_LABEL[f.role])}  ${s.bold(f.id)}  [${f.severity}]`, `  ${f.title}`, `  ${s.dim(f.summary)}`];
  if (f.evidence.length) {
    out.push('  evidence:');
    for (const e of f.evidence) out.push(`    │ ${e}`);
  }
  if (f.linkedTo.length) out.push(`  ${f.role === 'root-cause' ? 'explains' : 'caused by'}: ${f.linkedTo.join(', ')}`);
  if (f.runbook) out.push(`  fix: runbook ${f.runbook}  →  nodediag fix ${node} ${f.id} --dry-run`);
  for (const a of f.advice) out.push(`  ${f.runbook ? 'note' : 'advice'}: ${a}`);
  return out;
}

/** The full report of one node. */
export function formatReport(r: DiagnosisReport, s: Style = plain): string {
  const roles = countBy(r.findings, (f) => f.role);
  const parts = [
    roles.get('root-cause') ? plural(roles.get('root-cause')!, 'root cause') : '',
    roles.get('contributing') ? plural(roles.get('contributing')!, 'contributing cause') : '',
    roles.get('symptom') ? plural(roles.get('symptom')!, 'symptom') : '',
  ].filter(Boolean);
  const verdict = !r.reachable
    ? s.red('UNREACHABLE over SSH')
    : r.findings.length === 0
      ? s.green('healthy: no findings')
      : s.red(parts.join(', '));
  const out = [`${s.bold(`nodediag diag ${r.node}`)}${r.host ? ` (${r.host})` : ''} — ${verdict} — ${seconds(r.durationMs)}`, ''];
  if (r.connectionError) {
    const loud = r.connectionError.code === 'HOST_KEY_MISMATCH';
    out.push(`${loud ? s.red(s.bold('!! ')) : ''}${s.red(`ssh: ${r.connectionError.message}`)} [${r.connectionError.code}]`, '');
  }
  for (const note of layoutNotes(r.layout)) out.push(`${s.yellow('!')} ${note}`, '');
  for (const f of r.findings) out.push(...formatFinding(f, r.node, s), '');
  const statuses = countBy(r.checks, (c) => c.status);
  const summary = [...statuses].map(([k, n]) => `${n} ${k}`).join(', ');
  out.push(`${s.bold('checks')}: ${summary}`);
  const unchecked = uncheckedGroups(r.checks, r.undecided ?? []);
  if (unchecked.length && r.reachable) {
    out.push(s.yellow('  could not check (a check that did not run is never evidence):'));
    for (const line of uncheckedLines(unchecked)) out.push(`  ${s.yellow('!')} ${line}`);
  } else {
    // One line per reason: an unreachable node skips every SSH check for the same one.
    const byReason = new Map<string, { status: string; reason: string; ids: string[] }>();
    for (const c of r.checks) {
      if (c.status === 'ok') continue;
      const key = `${c.status}\n${c.reason ?? ''}`;
      const group = byReason.get(key) ?? { status: c.status, reason: c.reason ?? '', ids: [] };
      group.ids.push(c.id);
      byReason.set(key, group);
    }
    for (const g of byReason.values()) {
      const icon = g.status === 'skipped' ? s.dim('–') : s.yellow('!');
      out.push(`  ${icon} ${g.ids.join(', ')} ${g.status}${g.reason ? `: ${g.reason}` : ''}`);
    }
  }
  const ok = r.checks.filter((c) => c.status === 'ok').map((c) => c.id);
  if (ok.length) out.push(s.dim(`  ✔ ${ok.join(', ')}`));
  return out.join('\n');
}

/** A fleet summary table plus the details of every node that is not healthy. */
export function formatFleet(reports: Array<DiagnosisReport | { node: string; error: string; code: string }>, s: Style = plain): string {
  const rows = reports.map((r) => {
    if ('error' in r) return [r.node, 'error', r.code, '-', '-'];
    const status = !r.reachable ? 'unreachable' : r.findings.length ? 'findings' : 'healthy';
    const top = r.findings[0]?.id ?? (r.connectionError?.code ?? '-');
    return [r.node, status, top, String(r.findings.length), seconds(r.durationMs)];
  });
  const header = ['NODE', 'STATUS', 'TOP FINDING', 'FINDINGS', 'TIME'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const counts = countBy(rows, (r) => r[1]!);
  const out = [
    s.bold(`nodediag fleet — ${reports.length} node(s): ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`),
    '',
    s.bold(line(header)),
    ...rows.map(line),
  ];
  for (const r of reports) {
    if ('error' in r) {
      out.push('', `${s.bold(r.node)}: ${s.red(r.error)}`);
    } else if (!r.reachable || r.findings.length) {
      out.push('', '─'.repeat(60), formatReport(r, s));
    }
  }
  return out.join('\n');
}
