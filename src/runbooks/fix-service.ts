/**
 * The fix flow shared by the CLI and the Slack bot: prepare (diagnose, find
 * the finding, plan, preview) and run (connect, execute, re-diagnose).
 */
import { matcherLeaves, type Catalogs } from '../catalog/load.js';
import { supportScriptData } from '../catalog/runbooks.js';
import { renderScript } from '../catalog/template.js';
import type { Finding } from '../diagnose/classify.js';
import { diagnoseNode, reread, resolveNode, type DiagnoseDeps, type DiagnosisReport } from '../diagnose/run-diagnosis.js';
import { NodediagError, UsageError, errorMessage } from '../errors.js';
import type { NodeAccess } from '../inventory/inventory.js';
import { suggestNames } from '../inventory/node-name.js';
import type { AuditSink } from '../incidents/audit-log.js';
import type { KubeClient, RemoteShell } from '../ports.js';
import { defaultLayout } from '../probes/layout.js';
import { wrapStdinScriptCommand } from '../shell.js';
import { executePlan, type GuardScripts, type RunEvent, type RunOutcome } from './execute.js';
import type { NodeLock } from './lock.js';
import { needsPreview, planInputs, planRunbook, previewScript, stampOf, type Plan, type PlanInputs } from './plan.js';

/** Everything a fix needs beyond a diagnosis. */
export interface FixDeps extends DiagnoseDeps {
  kubeWriter: KubeClient | null;
  audit: AuditSink;
  lock: NodeLock;
  /** Bounds of a run (defaults: 90 s for kubelet's next status, 5 min for a drain's budgets). */
  runBounds?: { nodeStatusWaitMs?: number; drainTimeoutMs?: number };
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
  const resolved = await resolveNode(node, deps);
  const { access } = resolved;
  const report = await diagnoseNode(node, deps, resolved);
  if (!report.reachable) {
    throw new NodediagError(report.connectionError?.code ?? 'SSH_UNREACHABLE', report.connectionError?.message ?? `cannot reach ${node}`);
  }
  const finding = report.findings.find((f) => f.id === findingId);
  if (!finding) return { notNeeded: report };
  return planFix(node, access, report, finding, deps, opts);
}

/** Options of a plan: cordon around it; reuse the approval's stamp when planning again. */
export interface PlanOptions {
  cordon?: boolean;
  stamp?: string;
}

async function runPreview(script: string, shell: RemoteShell, deps: Pick<FixDeps, 'redact'>): Promise<string> {
  const r = await shell.exec(wrapStdinScriptCommand({ timeoutMs: 30_000 }), { timeoutMs: 33_000, maxOutputBytes: 64 * 1024, input: Promise.resolve(script) });
  const out = deps.redact(`${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`).trim();
  if (r.timedOut) throw new NodediagError('NO_RUNBOOK', 'the runbook\'s preview did not finish in 30 s: nothing can be approved without it');
  if (r.exitCode !== 0) throw new NodediagError('NO_RUNBOOK', `the runbook cannot be planned on this node: ${out.split('\n').slice(-3).join(' ').slice(0, 400) || `preview exited ${r.exitCode}`}`);
  return out;
}

/** Plans the fix of a finding from a report already made, running the runbook's preview (read-only) when it has one. */
export async function planFix(
  node: string,
  access: NodeAccess,
  report: DiagnosisReport,
  finding: Finding,
  deps: Pick<FixDeps, 'catalogs' | 'ssh' | 'clock' | 'redact'>,
  opts: PlanOptions = {},
  shell?: RemoteShell,
): Promise<PreparedFix> {
  if (!finding.runbook) {
    throw new NodediagError('NO_RUNBOOK', `${finding.id} has no automatic fix on ${node}: nothing to run.\nadvice:\n  - ${finding.advice.join('\n  - ')}`);
  }
  const layout = (report.layout ?? defaultLayout(access.overrides)).params;
  const ctx = { node, sudo: access.sudo, layout, stamp: opts.stamp ?? stampOf(deps.clock.now()), ...(opts.cordon ? { cordon: true } : {}), others: report.findings };
  let inputs = planInputs(deps.catalogs, finding, ctx);
  let preview: string | undefined;
  const script = previewScript(deps.catalogs, inputs);
  if (script) {
    const own = shell ? null : await deps.ssh.connect(access.target);
    try {
      preview = await runPreview(script, shell ?? own!, deps);
    } finally {
      own?.close();
    }
    inputs = planInputs(deps.catalogs, finding, { ...ctx, previewOutput: preview });
    if (needsPreview(deps.catalogs, inputs)) throw new NodediagError('NO_RUNBOOK', `the runbook's preview did not say what it would do: ${preview.split('\n')[0]?.slice(0, 200)}`);
  }
  const plan = planRunbook(deps.catalogs, inputs);
  return { node, access, report, finding, plan, ...(preview !== undefined ? { preview } : {}) };
}

/** The workload guard's scripts for a plan's node. */
export function guardScripts(inputs: Pick<PlanInputs, 'sudo' | 'layout'>): GuardScripts {
  return {
    snapshot: renderScript(supportScriptData.snapshot, { sudo: inputs.sudo, ...inputs.layout }),
    alive: (shims) => renderScript(supportScriptData.alive, { sudo: inputs.sudo, shims: shims.join(' ') }),
    clock: supportScriptData.clock,
    identity: renderScript(supportScriptData.identity, { sudo: inputs.sudo }),
  };
}

/** Whether a finding's proof reads the Node's status (then a verdict waits for kubelet's next post). */
export function readsNodeStatus(catalogs: Catalogs, findingId: string): boolean {
  const rule = catalogs.findingById.get(findingId);
  return Boolean(rule && matcherLeaves(rule.when).some((l) => l.check === 'k8s-node'));
}

/** Runs a prepared (approved) fix. */
export async function runFix(
  fix: Pick<PreparedFix, 'node' | 'access' | 'plan'>,
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
      // The machine the fix runs on is the one every check reads.
      diagnose: (fresh) => diagnoseNode(fix.node, deps, reread(fix.node, fix.access, deps), fresh),
      replan: async (report) => {
        const finding = report.findings.find((f) => f.id === fix.plan.finding);
        if (!finding?.runbook) return null;
        return (await planFix(fix.node, fix.access, report, finding, deps, { ...(fix.plan.cordon ? { cordon: true } : {}), stamp: fix.plan.stamp }, shell)).plan;
      },
      guard: guardScripts(fix.plan),
      needsNodeStatus: readsNodeStatus(deps.catalogs, fix.plan.finding),
      ...(deps.runBounds?.nodeStatusWaitMs !== undefined ? { nodeStatusWaitMs: deps.runBounds.nodeStatusWaitMs } : {}),
      ...(deps.runBounds?.drainTimeoutMs !== undefined ? { drainTimeoutMs: deps.runBounds.drainTimeoutMs } : {}),
      actor: who.actor,
      ...(who.incident ? { incident: who.incident } : {}),
      ...(who.onEvent ? { onEvent: who.onEvent } : {}),
    });
  } finally {
    shell.close();
  }
}
