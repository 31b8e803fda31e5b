/**
 * Planning: a runbook, the finding it fixes and the node → the exact
 * commands and Kubernetes calls, in order, with what each checks. Pure. The
 * plan is what a dry run shows, what an approver approves and what the
 * executor runs: nothing else reaches the node.
 */
import type { Catalogs } from '../catalog/load.js';
import type { KubeOp, KubeVerify, RemoteCheck, Runbook } from '../catalog/schema.js';
import { renderScript, renderText } from '../catalog/template.js';
import type { Finding } from '../diagnose/classify.js';
import { NodediagError } from '../errors.js';

/** A rendered remote check. */
export interface PlannedCheck {
  script: string;
  exitCode: number;
  stdout?: string;
  timeoutMs: number;
}

/** One step as it will run. */
export interface PlannedStep {
  /** 1-based position in the plan. */
  index: number;
  id: string;
  title: string;
  why: string;
  retrySafe: boolean;
  /** Null for a check-only step. */
  action: { kind: 'ssh'; script: string; timeoutMs: number } | { kind: 'kube'; op: KubeOp } | null;
  skipIf?: PlannedCheck;
  requires?: PlannedCheck & { refusal: string };
  verify?: (PlannedCheck & { kind: 'ssh'; withinMs: number }) | { kind: 'kube'; check: KubeVerify; withinMs: number };
}

/** The whole plan. */
export interface Plan {
  runbook: string;
  finding: string;
  node: string;
  title: string;
  impact: string;
  suggestCordon: boolean;
  /** Values taken from the finding (e.g. the shim PIDs), after validation. */
  params: Record<string, string[]>;
  preview?: { title: string; script: string };
  steps: PlannedStep[];
}

/** Node facts the scripts need. */
export interface PlanContext {
  node: string;
  sudo: boolean;
  runtimeSocket: string;
  /** UTC run time for backup names, `YYYYMMDDTHHMMSSZ`. */
  stamp: string;
  /** Add cordon before and uncordon after (the runbook may suggest it). */
  cordon?: boolean;
}

/** A backup-name stamp for a time. */
export function stampOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

function check(c: RemoteCheck, params: Record<string, string | boolean>): PlannedCheck {
  return { script: renderScript(c.script, params as never), exitCode: c.exitCode, ...(c.stdout ? { stdout: c.stdout } : {}), timeoutMs: c.timeoutMs };
}

/** Validates the runbook's parameters against the finding's captured values. */
export function runbookParams(rb: Runbook, finding: Finding): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, spec] of Object.entries(rb.params)) {
    const values = finding.params[spec.from] ?? [];
    if (values.length < spec.min || values.length > spec.max) {
      throw new NodediagError('NO_RUNBOOK', `runbook ${rb.id} needs ${spec.min}–${spec.max} value(s) of ${name}; the finding has ${values.length}`);
    }
    const re = new RegExp(spec.pattern);
    for (const v of values) {
      if (!re.test(v)) throw new NodediagError('NO_RUNBOOK', `runbook ${rb.id}: refused ${name} value "${v.slice(0, 40)}" (must match ${spec.pattern})`);
    }
    out[name] = values;
  }
  return out;
}

/** Plans the fix of a finding on a node. */
export function planRunbook(catalogs: Catalogs, finding: Finding, ctx: PlanContext): Plan {
  if (!finding.runbook) {
    throw new NodediagError('NO_RUNBOOK', `${finding.id} has no runbook on ${ctx.node}: nothing to run. Advice: ${finding.advice.join(' ')}`);
  }
  const rb = catalogs.runbookById.get(finding.runbook);
  if (!rb) throw new NodediagError('NO_RUNBOOK', `unknown runbook ${finding.runbook}`);
  const params = runbookParams(rb, finding);
  const base: Record<string, string | boolean> = { sudo: ctx.sudo, socket: ctx.runtimeSocket, stamp: ctx.stamp };
  const steps: PlannedStep[] = [];
  const push = (s: Omit<PlannedStep, 'index'>) => steps.push({ ...s, index: steps.length + 1 });

  if (ctx.cordon) {
    push({ id: 'cordon', title: `Cordon ${ctx.node}`, why: 'No new pods are scheduled here while it is repaired.', retrySafe: true, action: { kind: 'kube', op: 'cordon' } });
  }
  for (const step of rb.steps) {
    const values = step.forEach ? params[step.forEach]! : [undefined];
    for (const value of values) {
      const p = step.forEach && value !== undefined ? { ...base, [step.forEach]: value } : base;
      const text = (t: string) => renderText(t, { ...Object.fromEntries(Object.entries(p).filter(([, v]) => typeof v === 'string')) as Record<string, string> });
      push({
        id: step.id,
        title: text(step.title),
        why: step.why,
        retrySafe: step.retrySafe,
        action: !step.action
          ? null
          : step.action.kind === 'ssh'
            ? { kind: 'ssh', script: renderScript(step.action.script, p as never), timeoutMs: step.action.timeoutMs }
            : { kind: 'kube', op: step.action.op },
        ...(step.skipIf ? { skipIf: check(step.skipIf, p) } : {}),
        ...(step.requires ? { requires: { ...check(step.requires, p), refusal: text(step.requires.refusal) } } : {}),
        ...(step.verify
          ? {
              verify:
                step.verify.kind === 'ssh'
                  ? { kind: 'ssh' as const, ...check(step.verify, p), withinMs: step.verify.withinMs }
                  : { kind: 'kube' as const, check: step.verify.check, withinMs: step.verify.withinMs },
            }
          : {}),
      });
    }
  }
  if (ctx.cordon) {
    push({ id: 'uncordon', title: `Uncordon ${ctx.node}`, why: 'The node takes pods again once it is healthy.', retrySafe: true, action: { kind: 'kube', op: 'uncordon' } });
  }
  return {
    runbook: rb.id,
    finding: finding.id,
    node: ctx.node,
    title: rb.title,
    impact: rb.impact,
    suggestCordon: rb.suggestCordon,
    params,
    ...(rb.preview ? { preview: { title: rb.preview.title, script: renderScript(rb.preview.script, base as never) } } : {}),
    steps,
  };
}

/** A short description of what a step checks, for plans and dry runs. */
export function describeVerify(v: PlannedStep['verify']): string {
  if (!v) return 'no check';
  if (v.kind === 'kube') {
    const what = v.check === 'node-ready' ? 'the Node reports Ready' : 'the deleted pods are recreated and running';
    return `${what} (within ${Math.round(v.withinMs / 1000)} s)`;
  }
  const expect = v.stdout ? `prints /${v.stdout}/` : `exits ${v.exitCode}`;
  return `\`${v.script}\` ${expect}${v.withinMs ? ` (polled for up to ${Math.round(v.withinMs / 1000)} s)` : ''}`;
}

/** The plan as text: exact commands, in order, with what each verifies. */
export function formatPlan(plan: Plan): string {
  const out = [`Plan: ${plan.title}`, `  fixes ${plan.finding} on ${plan.node} (runbook ${plan.runbook})`, `  impact: ${plan.impact}`];
  if (plan.suggestCordon && !plan.steps.some((s) => s.id === 'cordon')) out.push('  suggestion: cordon the node first (--cordon)');
  for (const s of plan.steps) {
    out.push('', `  ${s.index}. ${s.title}${s.retrySafe ? '' : '  [not safe to repeat]'}`);
    out.push(`     why: ${s.why}`);
    if (s.skipIf) out.push(`     skipped when: \`${s.skipIf.script}\`${s.skipIf.stdout ? ` prints /${s.skipIf.stdout}/` : ` exits ${s.skipIf.exitCode}`}`);
    if (s.requires) out.push(`     refuses unless: \`${s.requires.script}\` exits ${s.requires.exitCode} (else: ${s.requires.refusal})`);
    out.push(!s.action ? '     run: nothing (a check)' : s.action.kind === 'ssh' ? `     run: ${s.action.script.split('\n').join('\n          ')}` : `     kubernetes: ${s.action.op}`);
    out.push(`     verify: ${describeVerify(s.verify)}`);
  }
  return out.join('\n');
}
