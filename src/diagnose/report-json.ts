/**
 * The `--json` shape of a diagnosis (public API: scripts parse it), and the
 * CLI exit status it implies.
 */
import { EXIT } from '../errors.js';
import type { RuntimeFlavour } from '../probes/layout.js';
import type { DiagnosisReport } from './run-diagnosis.js';
import { layoutNotes, uncheckedGroups, type UncheckedGroup } from './unchecked.js';

/** One finding in the JSON report. */
export interface FindingJson {
  id: string;
  severity: string;
  role: string;
  title: string;
  summary: string;
  evidence: string[];
  runbook: string | null;
  advice: string[];
  linkedTo: string[];
}

/** The JSON report of one node. */
export interface ReportJson {
  node: string;
  host: string | null;
  reachable: boolean;
  durationMs: number;
  connectionError?: { code: string; message: string };
  findings: FindingJson[];
  checks: Array<{ id: string; status: string; durationMs: number; reason?: string }>;
  /** Checks that did not run, the findings they leave undecided, and how to make them checkable. */
  unchecked: UncheckedGroup[];
  /** Where the runtime and the configs are on the node, and what that means for the fixes. */
  layout: { flavour: RuntimeFlavour; journal: string; paths: Record<string, string>; notes: string[] } | null;
}

/** Projects a report onto its public JSON shape. */
export function reportJson(r: DiagnosisReport): ReportJson {
  return {
    node: r.node,
    host: r.host,
    reachable: r.reachable,
    durationMs: r.durationMs,
    ...(r.connectionError ? { connectionError: r.connectionError } : {}),
    findings: r.findings.map((f) => ({
      id: f.id,
      severity: f.severity,
      role: f.role,
      title: f.title,
      summary: f.summary,
      evidence: f.evidence,
      runbook: f.runbook,
      advice: f.advice,
      linkedTo: f.linkedTo,
    })),
    checks: r.checks.map((c) => ({ id: c.id, status: c.status, durationMs: c.durationMs, ...(c.reason ? { reason: c.reason } : {}) })),
    unchecked: r.reachable ? uncheckedGroups(r.checks, r.undecided ?? []) : [],
    layout: r.layout ? { flavour: r.layout.flavour, journal: r.layout.journal, paths: { ...r.layout.params }, notes: layoutNotes(r.layout) } : null,
  };
}

/** 0 healthy, 1 findings, 3 node unreachable or refused. */
export function exitStatusOf(r: DiagnosisReport): number {
  if (!r.reachable) return EXIT.unreachable;
  return r.findings.length > 0 ? EXIT.findings : EXIT.ok;
}
