/**
 * Planning: a runbook, the finding it fixes and the node → the exact
 * commands and Kubernetes calls, in order, with what each checks. Pure. The
 * plan is what a dry run shows, what an approver approves and what the
 * executor runs: nothing else reaches the node.
 *
 * A plan is a pure function of its {@link PlanInputs} (runbook id, node
 * facts, parameters): that is all the incident store keeps. At run time the
 * executor plans again from the node as it is then and runs only if the new
 * plan's hash is the approved one.
 */
import { createHash } from 'node:crypto';
import type { Catalogs } from '../catalog/load.js';
import type { KubeOp, KubeVerify, RemoteCheck, Runbook } from '../catalog/schema.js';
import { renderScript, renderText } from '../catalog/template.js';
import type { Finding } from '../diagnose/classify.js';
import { NodediagError } from '../errors.js';
import type { LayoutParams } from '../probes/layout.js';

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
  requires?: PlannedCheck & { refusal: string; preflight: boolean };
  verify?: (PlannedCheck & { kind: 'ssh'; withinMs: number }) | { kind: 'kube'; check: KubeVerify; withinMs: number };
  undo?: { script: string; timeoutMs: number; note: string };
  /** For a step run once per value: the evidence line the value came from (what it acts on). */
  shows?: string;
}

/** Everything a plan is made from: ids, node facts and parameters — no scripts. */
export interface PlanInputs {
  runbook: string;
  finding: string;
  node: string;
  /** Privileged commands go through `sudo -n`. */
  sudo: boolean;
  /** Where things are on the node (probes/layout.ts). */
  layout: LayoutParams;
  /** UTC time of the plan, `YYYYMMDDTHHMMSSZ`, for backup names. */
  stamp: string;
  /** Values from the finding (e.g. orphaned shims), from findings it explains (crash-looping pods) and from the preview (the config candidate's hash), validated. */
  params: Record<string, string[]>;
  /** The evidence line each parameter value came from, for the plan's text. */
  shows?: Record<string, Record<string, string>>;
  /** Cordon before and uncordon after. */
  cordon?: boolean;
}

/** The whole plan. */
export interface Plan extends PlanInputs {
  title: string;
  impact: string;
  suggestCordon: boolean;
  preview?: { title: string; script: string };
  steps: PlannedStep[];
  /** Shims (`pid@start`) the workload guard expects to end: every other container must survive. */
  expectToEnd: string[];
  /** SHA-256 over everything that runs: what the approver saw is what runs. */
  hash: string;
}

/** A backup-name stamp for a time. */
export function stampOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** The first 12 hex digits of a plan hash, for people. */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}

function check(c: RemoteCheck, params: Record<string, string | boolean>): PlannedCheck {
  return { script: renderScript(c.script, params as never), exitCode: c.exitCode, ...(c.stdout ? { stdout: c.stdout } : {}), timeoutMs: c.timeoutMs };
}

function validate(rb: Runbook, name: string, values: string[]): string[] {
  const spec = rb.params[name]!;
  if (values.length < spec.min || values.length > spec.max) {
    throw new NodediagError('NO_RUNBOOK', `runbook ${rb.id} needs ${spec.min}–${spec.max} value(s) of ${name}; the diagnosis has ${values.length}`);
  }
  const re = new RegExp(spec.pattern);
  for (const v of values) {
    if (!re.test(v)) throw new NodediagError('NO_RUNBOOK', `runbook ${rb.id}: refused ${name} value "${v.slice(0, 40)}" (must match ${spec.pattern})`);
  }
  return values;
}

/**
 * The runbook's parameters, validated: from the finding's named groups, from
 * a finding it explains (found among `others`), or from the preview's output.
 */
export function runbookParams(
  rb: Runbook,
  finding: Finding,
  others: Finding[] = [],
  previewOutput?: string,
): { params: Record<string, string[]>; shows: Record<string, Record<string, string>> } {
  const params: Record<string, string[]> = {};
  const shows: Record<string, Record<string, string>> = {};
  for (const [name, spec] of Object.entries(rb.params)) {
    if (spec.preview !== undefined) {
      if (previewOutput === undefined) continue;
      const re = new RegExp(rb.preview!.captures[spec.preview]!, 'm');
      const v = re.exec(previewOutput)?.groups?.value;
      params[name] = validate(rb, name, v === undefined ? [] : [v]);
      continue;
    }
    const source = spec.finding ? others.find((f) => f.id === spec.finding) : finding;
    params[name] = validate(rb, name, source?.params[spec.from!] ?? []);
    const lines = source?.paramLines?.[spec.from!];
    if (lines) shows[name] = lines;
  }
  return { params, shows };
}

/** Inputs for a plan of a finding on a node (without the preview's captures until the preview has run). */
export function planInputs(
  catalogs: Catalogs,
  finding: Finding,
  ctx: { node: string; sudo: boolean; layout: LayoutParams; stamp: string; cordon?: boolean; others?: Finding[]; previewOutput?: string },
): PlanInputs {
  if (!finding.runbook) {
    throw new NodediagError('NO_RUNBOOK', `${finding.id} has no runbook on ${ctx.node}: nothing to run. Advice: ${finding.advice.join(' ')}`);
  }
  const rb = catalogs.runbookById.get(finding.runbook);
  if (!rb) throw new NodediagError('NO_RUNBOOK', `unknown runbook ${finding.runbook}`);
  const { params, shows } = runbookParams(rb, finding, ctx.others ?? [], ctx.previewOutput);
  return {
    runbook: rb.id,
    finding: finding.id,
    node: ctx.node,
    sudo: ctx.sudo,
    layout: ctx.layout,
    stamp: ctx.stamp,
    params,
    ...(Object.keys(shows).length ? { shows } : {}),
    ...(ctx.cordon ? { cordon: true } : {}),
  };
}

/** The preview script of a runbook, rendered for these inputs (it runs before the preview's captures exist). */
export function previewScript(catalogs: Catalogs, inputs: Pick<PlanInputs, 'runbook' | 'sudo' | 'layout' | 'stamp'>): string | null {
  const rb = catalogs.runbookById.get(inputs.runbook);
  if (!rb?.preview) return null;
  return renderScript(rb.preview.script, { sudo: inputs.sudo, ...inputs.layout, stamp: inputs.stamp });
}

/** Whether the plan still lacks what its preview provides. */
export function needsPreview(catalogs: Catalogs, inputs: PlanInputs): boolean {
  const rb = catalogs.runbookById.get(inputs.runbook);
  return Boolean(rb && Object.entries(rb.params).some(([name, p]) => p.preview !== undefined && !(name in inputs.params)));
}

/** Plans the fix of a finding on a node: pure, deterministic in its inputs. */
export function planRunbook(catalogs: Catalogs, inputs: PlanInputs): Plan {
  const rb = catalogs.runbookById.get(inputs.runbook);
  if (!rb) throw new NodediagError('NO_RUNBOOK', `unknown runbook ${inputs.runbook}`);
  if (needsPreview(catalogs, inputs)) throw new NodediagError('NO_RUNBOOK', `runbook ${rb.id} cannot be planned before its preview has run`);
  const scalars = Object.fromEntries(Object.entries(inputs.params).filter(([name]) => rb.params[name]?.max === 1).map(([k, v]) => [k, v[0] ?? '']));
  const base: Record<string, string | boolean> = { sudo: inputs.sudo, ...inputs.layout, stamp: inputs.stamp, ...scalars };
  const steps: PlannedStep[] = [];
  const push = (s: Omit<PlannedStep, 'index'>) => steps.push({ ...s, index: steps.length + 1 });
  const node = inputs.node;

  const wraps = inputs.cordon && !rb.steps.some((s) => s.action?.kind === 'kube' && s.action.op === 'cordon');
  if (wraps) {
    push({ id: 'cordon', title: `Cordon ${node}`, why: 'No new pods are scheduled here while it is repaired.', retrySafe: true, action: { kind: 'kube', op: 'cordon' } });
  }
  for (const step of rb.steps) {
    const values = step.forEach ? inputs.params[step.forEach]! : [undefined];
    for (const value of values) {
      const p = step.forEach && value !== undefined ? { ...base, [step.forEach]: value } : base;
      const text = (t: string) => renderText(t, Object.fromEntries(Object.entries(p).filter(([, v]) => typeof v === 'string')) as Record<string, string>);
      const shows = step.forEach && value !== undefined ? inputs.shows?.[step.forEach]?.[value] : undefined;
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
        ...(step.requires ? { requires: { ...check(step.requires, p), refusal: text(step.requires.refusal), preflight: step.requires.preflight } } : {}),
        ...(step.verify
          ? {
              verify:
                step.verify.kind === 'ssh'
                  ? { kind: 'ssh' as const, ...check(step.verify, p), withinMs: step.verify.withinMs }
                  : { kind: 'kube' as const, check: step.verify.check, withinMs: step.verify.withinMs },
            }
          : {}),
        ...(step.undo ? { undo: { script: renderScript(step.undo.script, p as never), timeoutMs: step.undo.timeoutMs, note: step.undo.note } } : {}),
        ...(shows ? { shows } : {}),
      });
    }
  }
  if (wraps) {
    push({ id: 'uncordon', title: `Uncordon ${node}`, why: 'The node takes pods again once it is healthy.', retrySafe: true, action: { kind: 'kube', op: 'uncordon' } });
  }
  const preview = previewScript(catalogs, inputs);
  const expectToEnd = rb.expectToEnd ? (inputs.params[rb.expectToEnd] ?? []) : [];
  const body = {
    runbook: rb.id,
    finding: inputs.finding,
    node,
    params: inputs.params,
    steps: steps.map(({ id, action, skipIf, requires, verify, undo }) => ({ id, action, skipIf, requires, verify, undo })),
  };
  return {
    ...inputs,
    title: rb.title,
    impact: rb.impact,
    suggestCordon: rb.suggestCordon,
    ...(preview && rb.preview ? { preview: { title: rb.preview.title, script: preview } } : {}),
    steps,
    expectToEnd,
    hash: createHash('sha256').update(JSON.stringify(body)).digest('hex'),
  };
}

/** A short description of what a step checks, for plans and dry runs. */
export function describeVerify(v: PlannedStep['verify']): string {
  if (!v) return 'no check';
  if (v.kind === 'kube') {
    const what =
      v.check === 'node-ready' ? 'the Node reports Ready' : v.check === 'node-drained' ? 'only DaemonSet and static pods remain on the node' : 'the deleted pods are recreated and running';
    return `${what} (within ${Math.round(v.withinMs / 1000)} s)`;
  }
  const expect = v.stdout ? `prints /${v.stdout}/` : `exits ${v.exitCode}`;
  return `\`${firstLine(v.script)}\` ${expect}${v.withinMs ? ` (polled for up to ${Math.round(v.withinMs / 1000)} s)` : ''}`;
}

function firstLine(script: string): string {
  const lines = script.split('\n');
  return lines.length > 1 ? `${lines[0]} … (${lines.length} lines)` : script;
}

/** What a Kubernetes step does, in words, with the objects it touches. */
export function describeKubeOp(op: KubeOp, plan: Pick<Plan, 'node' | 'params'>): string {
  switch (op) {
    case 'delete-pods': {
      const pods = plan.params.pods ?? [];
      return pods.length ? `delete ${pods.map((p) => p.replace(/@.*/, '')).join(', ')} (each only if its UID is still the one diagnosed)` : 'delete no pod (none was crash-looping)';
    }
    case 'drain':
      return `evict every pod on ${plan.node} except DaemonSet and static pods (Eviction API; PodDisruptionBudgets respected)`;
    default:
      return `${op} ${plan.node}`;
  }
}

/** The plan as text: exact commands, in order, with what each verifies. */
export function formatPlan(plan: Plan): string {
  const out = [
    `Plan: ${plan.title}`,
    `  fixes ${plan.finding} on ${plan.node} (runbook ${plan.runbook}, plan ${shortHash(plan.hash)})`,
    `  impact: ${plan.impact}`,
  ];
  if (plan.suggestCordon && !plan.steps.some((s) => s.id === 'cordon')) out.push('  suggestion: cordon the node first (--cordon)');
  for (const s of plan.steps) {
    out.push('', `  ${s.index}. ${s.title}${s.retrySafe ? '' : '  [not safe to repeat]'}`);
    out.push(`     why: ${s.why}`);
    if (s.shows) out.push(`     acts on: ${s.shows}`);
    if (s.skipIf) out.push(`     skipped when: \`${firstLine(s.skipIf.script)}\`${s.skipIf.stdout ? ` prints /${s.skipIf.stdout}/` : ` exits ${s.skipIf.exitCode}`}`);
    if (s.requires) out.push(`     refuses${s.requires.preflight ? ' (checked before anything changes, and again here)' : ''} unless: \`${firstLine(s.requires.script)}\` exits ${s.requires.exitCode} (else: ${s.requires.refusal})`);
    out.push(!s.action ? '     run: nothing (a check)' : s.action.kind === 'ssh' ? `     run: ${s.action.script.split('\n').join('\n          ')}` : `     kubernetes: ${describeKubeOp(s.action.op, plan)}`);
    out.push(`     verify: ${describeVerify(s.verify)}`);
    if (s.undo) out.push(`     on failure: ${s.undo.script} (${s.undo.note})`);
  }
  return out.join('\n');
}

/**
 * What the incident store keeps of a plan: its inputs (ids and parameters),
 * its hash, and what people read about it — never the scripts, which are
 * made again from the catalog when the plan is shown or run.
 */
export interface StoredPlan extends PlanInputs {
  hash: string;
  title: string;
  impact: string;
  suggestCordon: boolean;
  stepTitles: string[];
  previewTitle?: string;
}

/** The stored form of a plan. */
export function storePlan(plan: Plan): StoredPlan {
  const { steps, preview, expectToEnd: _ends, ...rest } = plan;
  return { ...rest, stepTitles: steps.map((s) => s.title), ...(preview ? { previewTitle: preview.title } : {}) };
}

/** The full plan of a stored one; refuses when the catalog no longer makes the same plan (nodediag was upgraded since). */
export function expandPlan(catalogs: Catalogs, stored: StoredPlan): Plan {
  const { hash, title: _t, impact: _i, suggestCordon: _s, stepTitles: _st, previewTitle: _p, ...inputs } = stored;
  const plan = planRunbook(catalogs, inputs);
  if (plan.hash !== hash) {
    throw new NodediagError('NO_RUNBOOK', `the runbook ${stored.runbook} changed since this plan (${shortHash(hash)}) was made; diagnose again for a new plan`);
  }
  return plan;
}
