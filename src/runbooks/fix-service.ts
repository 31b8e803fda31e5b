/**
 * The fix flow shared by the CLI and the Slack bot: prepare (diagnose, find
 * the finding, plan, preview) and run (connect, execute, re-diagnose).
 */
import type { Finding } from '../diagnose/classify.js';
import { diagnoseNode, resolveNode, type DiagnoseDeps, type DiagnosisReport } from '../diagnose/run-diagnosis.js';
import { NodediagError, UsageError, errorMessage } from '../errors.js';
import type { NodeAccess } from '../inventory/inventory.js';
import { suggestNames } from '../inventory/node-name.js';
import type { AuditSink } from '../incidents/audit-log.js';
import type { KubeClient } from '../ports.js';
import { wrapRemoteCommand } from '../shell.js';
import { executePlan, type RunEvent, type RunOutcome } from './execute.js';
import type { NodeLock } from './lock.js';
import { planRunbook, stampOf, type Plan } from './plan.js';

/** Everything a fix needs beyond a diagnosis. */
export interface FixDeps extends DiagnoseDeps {
  kubeWriter: KubeClient | null;
  audit: AuditSink;
  lock: NodeLock;
}

/** A fix ready to be approved or run. */
export interface PreparedFix {
  node: string;
  access: NodeAccess;
  report: DiagnosisReport;
  finding: Finding;
  plan: Plan;
  /** Output of the runbook's read-only preview (what a reset drops), if any. */
  preview?: string;
}

/** Diagnoses the node and plans the fix of one finding on it. */
export async function prepareFix(node: string, findingId: string, deps: FixDeps, opts: { cordon?: boolean } = {}): Promise<PreparedFix | { notNeeded: DiagnosisReport }> {
  const rule = deps.catalogs.findingById.get(findingId);
  if (!rule) {
    const close = suggestNames(findingId, deps.catalogs.findings.map((f) => f.id));
    throw new UsageError(`unknown finding "${findingId.slice(0, 60)}"${close.length ? ` (did you mean ${close.join(', ')}?)` : ''}`, 'finding ids are listed in nodediag diag output');
  }
  const { access } = await resolveNode(node, deps);
  const report = await diagnoseNode(node, deps);
  if (!report.reachable) {
    throw new NodediagError(report.connectionError?.code ?? 'SSH_UNREACHABLE', report.connectionError?.message ?? `cannot reach ${node}`);
  }
  const finding = report.findings.find((f) => f.id === findingId);
  if (!finding) return { notNeeded: report };
  return planFix(node, access, report, finding, deps, opts);
}

/** Plans the fix of a finding from a report already made, and runs its read-only preview. */
export async function planFix(
  node: string,
  access: NodeAccess,
  report: DiagnosisReport,
  finding: Finding,
  deps: Pick<FixDeps, 'catalogs' | 'ssh' | 'clock' | 'redact'>,
  opts: { cordon?: boolean } = {},
): Promise<PreparedFix> {
  if (!finding.runbook) {
    throw new NodediagError('NO_RUNBOOK', `${finding.id} has no automatic fix on ${node}: nothing to run.\nadvice:\n  - ${finding.advice.join('\n  - ')}`);
  }
  const plan = planRunbook(deps.catalogs, finding, {
    node,
    sudo: access.sudo,
    runtimeSocket: access.runtimeSocket,
    stamp: stampOf(deps.clock.now()),
    cordon: opts.cordon,
  });
  let preview: string | undefined;
  if (plan.preview) {
    try {
      const shell = await deps.ssh.connect(access.target);
      try {
        const r = await shell.exec(wrapRemoteCommand(plan.preview.script, { timeoutMs: 8000 }), { timeoutMs: 10_000, maxOutputBytes: 16 * 1024 });
        preview = deps.redact(r.stdout).trim() || '(nothing beyond the defaults)';
      } finally {
        shell.close();
      }
    } catch (err) {
      preview = `(preview unavailable: ${deps.redact(errorMessage(err))})`;
    }
  }
  return { node, access, report, finding, plan, ...(preview !== undefined ? { preview } : {}) };
}

/** Runs a prepared fix. */
export async function runFix(
  fix: PreparedFix,
  deps: FixDeps,
  who: { actor: string; incident?: string; onEvent?: (e: RunEvent) => void },
): Promise<RunOutcome> {
  const shell = await deps.ssh.connect(fix.access.target);
  try {
    return await executePlan(fix.plan, {
      shell,
      kube: deps.kubeWriter,
      clock: deps.clock,
      audit: deps.audit,
      lock: deps.lock,
      redact: deps.redact,
      diagnose: () => diagnoseNode(fix.node, deps),
      actor: who.actor,
      ...(who.incident ? { incident: who.incident } : {}),
      ...(who.onEvent ? { onEvent: who.onEvent } : {}),
    });
  } finally {
    shell.close();
  }
}
