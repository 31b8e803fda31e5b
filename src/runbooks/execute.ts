/**
 * Runs a plan on a node: nothing without an audit entry first (no audit, no
 * action), one fix per node (the lock), the finding re-checked just before
 * the first step, each step's precondition checked, its action run under a
 * deadline, its result verified, and the first failure stops the run and says
 * what state the node is left in. Then a fresh diagnosis: fixed, or the
 * follow-up finding. Steps are never retried on their own.
 */
import type { DiagnosisReport } from '../diagnose/run-diagnosis.js';
import type { Finding } from '../diagnose/classify.js';
import { AuditError, errorMessage } from '../errors.js';
import type { AuditSink } from '../incidents/audit-log.js';
import type { Clock, KubeClient, KubePod, RemoteShell } from '../ports.js';
import type { Redactor } from '../redact.js';
import { wrapRemoteCommand } from '../shell.js';
import type { NodeLock } from './lock.js';
import type { Plan, PlannedCheck, PlannedStep } from './plan.js';

/** What happened to one step. */
export interface StepRecord {
  index: number;
  id: string;
  title: string;
  /** The exact command (or Kubernetes call) run. */
  command: string;
  status: 'ok' | 'failed' | 'skipped' | 'not-run';
  exitCode: number | null;
  durationMs: number;
  /** Redacted, shortened output of the action. */
  output: string;
  verify?: { passed: boolean; detail: string };
  /** Why it was skipped, refused or failed. */
  reason?: string;
}

/** How a run ended. */
export type RunResult = 'fixed' | 'failed' | 'aborted' | 'not-needed';

/** The outcome of a run. */
export interface RunOutcome {
  result: RunResult;
  plan: Plan;
  steps: StepRecord[];
  /** Index of the step that stopped the run. */
  stoppedAt?: number;
  /** In words: what was done, what was not, how the node is left. */
  summary: string;
  /** The diagnosis after the run (null when the node could not be reached). */
  after: DiagnosisReport | null;
  /** Root causes present after the run (the seed's chain: restart fails → socket is a directory). */
  followUps: Finding[];
  /** Audit log sequence numbers written by this run. */
  auditRange: { first: number; last: number } | null;
}

/** Progress, for live displays (terminal, Slack thread). */
export type RunEvent =
  | { type: 'rechecked'; holds: boolean }
  | { type: 'step-started'; step: PlannedStep }
  | { type: 'step-finished'; record: StepRecord; total: number }
  | { type: 'finished'; outcome: RunOutcome };

/** Collaborators of a run. */
export interface ExecuteDeps {
  shell: RemoteShell;
  kube: KubeClient | null;
  clock: Clock;
  audit: AuditSink;
  lock: NodeLock;
  redact: Redactor;
  /** A fresh diagnosis of the node (re-check before, and after the run). */
  diagnose: () => Promise<DiagnosisReport>;
  actor: string;
  incident?: string;
  onEvent?: (e: RunEvent) => void;
  lockTtlMs?: number;
  pollIntervalMs?: number;
  /** Output kept per step. */
  outputExcerptChars?: number;
}

const GRACE_MS = 2500;

/** The exact command of a step, for records and the audit trail. */
export function commandOf(step: PlannedStep, node: string): string {
  if (!step.action) return `check only: ${step.verify?.kind === 'kube' ? `kubernetes ${step.verify.check} on ${node}` : (step.verify?.script ?? '')}`;
  return step.action.kind === 'ssh' ? step.action.script : `kubernetes: ${step.action.op} on ${node}`;
}

function excerpt(text: string, max: number): string {
  const t = text.trim();
  if (t.length <= max) return t;
  const head = Math.floor(max * 0.6);
  return `${t.slice(0, head)}\n… [${t.length - max} characters cut] …\n${t.slice(t.length - (max - head))}`;
}

function passes(c: PlannedCheck, exitCode: number | null, out: string): boolean {
  if (exitCode !== c.exitCode) return false;
  if (!c.stdout) return true;
  const re = new RegExp(c.stdout);
  return out.split('\n').some((l) => re.test(l));
}

class Run {
  readonly records: StepRecord[] = [];
  private deleted: KubePod[] = [];
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;

  constructor(
    private readonly plan: Plan,
    private readonly d: ExecuteDeps,
  ) {}

  audit(type: string, data?: Record<string, unknown>): void {
    const e = this.d.audit.append({ type, node: this.plan.node, actor: this.d.actor, ...(this.d.incident ? { incident: this.d.incident } : {}), ...(data ? { data } : {}) });
    this.firstSeq ??= e.seq;
    this.lastSeq = e.seq;
  }

  get auditRange() {
    return this.firstSeq === null ? null : { first: this.firstSeq, last: this.lastSeq! };
  }

  private async exec(script: string, timeoutMs: number): Promise<{ exitCode: number | null; out: string; timedOut: boolean }> {
    const r = await this.d.shell.exec(wrapRemoteCommand(script, { timeoutMs }), { timeoutMs: timeoutMs + GRACE_MS, maxOutputBytes: 256 * 1024 });
    const timedOut = r.timedOut || r.exitCode === 124 || r.exitCode === 137;
    return { exitCode: r.exitCode, out: this.d.redact(`${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`), timedOut };
  }

  private async check(c: PlannedCheck): Promise<{ ok: boolean; out: string; exitCode: number | null }> {
    const r = await this.exec(c.script, c.timeoutMs);
    return { ok: !r.timedOut && passes(c, r.exitCode, r.out), out: r.out, exitCode: r.exitCode };
  }

  private async poll(withinMs: number, attempt: () => Promise<{ ok: boolean; detail: string }>): Promise<{ passed: boolean; detail: string }> {
    const deadline = this.d.clock.now() + withinMs;
    let last = await attempt();
    while (!last.ok && this.d.clock.now() < deadline) {
      await this.d.clock.sleep(this.d.pollIntervalMs ?? 1000);
      last = await attempt();
    }
    return { passed: last.ok, detail: last.detail };
  }

  private async verify(step: PlannedStep): Promise<{ passed: boolean; detail: string } | undefined> {
    const v = step.verify;
    if (!v) return undefined;
    if (v.kind === 'ssh') {
      return this.poll(v.withinMs, async () => {
        const r = await this.check(v);
        return { ok: r.ok, detail: r.ok ? 'check passed' : `check failed (exit ${r.exitCode}): ${excerpt(r.out, 300) || 'no output'}` };
      });
    }
    const kube = this.d.kube;
    if (!kube) return { passed: true, detail: 'not verified: no Kubernetes access' };
    if (v.check === 'node-ready') {
      return this.poll(v.withinMs, async () => {
        const n = await kube.getNode(this.plan.node);
        const ready = n?.conditions.find((c) => c.type === 'Ready');
        return { ok: ready?.status === 'True', detail: `Node Ready=${ready?.status ?? 'unknown'}${ready?.message ? ` (${ready.message})` : ''}` };
      });
    }
    if (this.deleted.length === 0) return { passed: true, detail: 'no pods were deleted' };
    return this.poll(v.withinMs, async () => {
      const pods = await kube.listPodsOnNode(this.plan.node);
      const missing = this.deleted.filter(
        (gone) =>
          !pods.some(
            (p) =>
              p.uid !== gone.uid &&
              p.owner?.kind === gone.owner?.kind &&
              p.owner?.name === gone.owner?.name &&
              p.containers.length > 0 &&
              p.containers.every((c) => c.ready && c.state.kind === 'running'),
          ),
      );
      return {
        ok: missing.length === 0,
        detail: missing.length ? `not yet running again: ${missing.map((p) => `${p.owner?.kind}/${p.owner?.name}`).join(', ')}` : `recreated and running: ${this.deleted.map((p) => `${p.owner?.kind}/${p.owner?.name}`).join(', ')}`,
      };
    });
  }

  private async kubeAction(op: string): Promise<{ ok: boolean; output: string; skipped?: string }> {
    const kube = this.d.kube;
    if (!kube) return { ok: true, output: '', skipped: 'no Kubernetes access: do it by hand (kubectl)' };
    if (op === 'cordon' || op === 'uncordon') {
      await kube.setUnschedulable(this.plan.node, op === 'cordon');
      return { ok: true, output: `${op}ed ${this.plan.node}` };
    }
    const pods = await kube.listPodsOnNode(this.plan.node);
    const crashing = pods.filter((p) => p.containers.some((c) => c.state.kind === 'waiting' && c.state.reason === 'CrashLoopBackOff'));
    const lines: string[] = [];
    for (const p of crashing) {
      if (!p.owner) {
        lines.push(`left ${p.namespace}/${p.name}: no controller would recreate it`);
        continue;
      }
      await kube.deletePod(p.namespace, p.name);
      this.deleted.push(p);
      lines.push(`deleted ${p.namespace}/${p.name} (${p.owner.kind}/${p.owner.name})`);
    }
    if (crashing.length === 0) lines.push('no pod on the node is in CrashLoopBackOff');
    return { ok: true, output: lines.join('\n') };
  }

  /** Runs one step; returns false when the run must stop. */
  async step(step: PlannedStep, total: number): Promise<'ok' | 'failed' | 'refused'> {
    this.d.onEvent?.({ type: 'step-started', step });
    const command = commandOf(step, this.plan.node);
    this.audit('step-started', { index: step.index, title: step.title, command });
    const started = this.d.clock.now();
    const record: StepRecord = { index: step.index, id: step.id, title: step.title, command, status: 'ok', exitCode: null, durationMs: 0, output: '' };
    const finish = (r: Partial<StepRecord>): StepRecord => {
      Object.assign(record, r, { durationMs: this.d.clock.now() - started });
      this.records.push(record);
      this.audit('step-finished', {
        index: record.index,
        status: record.status,
        exitCode: record.exitCode,
        durationMs: record.durationMs,
        output: record.output,
        ...(record.verify ? { verify: record.verify } : {}),
        ...(record.reason ? { reason: record.reason } : {}),
      });
      this.d.onEvent?.({ type: 'step-finished', record, total });
      return record;
    };
    const max = this.d.outputExcerptChars ?? 1500;
    try {
      if (step.skipIf) {
        const s = await this.check(step.skipIf);
        if (s.ok) {
          finish({ status: 'skipped', reason: 'already in the wanted state' });
          return 'ok';
        }
      }
      if (step.requires) {
        const r = await this.check(step.requires);
        if (!r.ok) {
          finish({ status: 'failed', exitCode: r.exitCode, output: excerpt(r.out, max), reason: `refused: ${step.requires.refusal}` });
          return 'refused';
        }
      }
      if (!step.action) {
        // A check-only step: the verify below is the step.
      } else if (step.action.kind === 'ssh') {
        const r = await this.exec(step.action.script, step.action.timeoutMs);
        record.exitCode = r.exitCode;
        record.output = excerpt(r.out, max);
        if (r.timedOut || r.exitCode !== 0) {
          finish({ status: 'failed', reason: r.timedOut ? `timed out after ${step.action.timeoutMs / 1000} s` : `exited ${r.exitCode}` });
          return 'failed';
        }
      } else {
        const k = await this.kubeAction(step.action.op);
        record.output = k.output;
        if (k.skipped) {
          finish({ status: 'skipped', reason: k.skipped });
          return 'ok';
        }
      }
      const v = await this.verify(step);
      if (v) record.verify = v;
      if (v && !v.passed) {
        finish({ status: 'failed', reason: `verification failed: ${v.detail}` });
        return 'failed';
      }
      finish({ status: 'ok' });
      return 'ok';
    } catch (err) {
      if (err instanceof AuditError) throw err;
      finish({ status: 'failed', reason: this.d.redact(errorMessage(err)) });
      return 'failed';
    }
  }
}

function describeEnd(plan: Plan, records: StepRecord[], stopped: StepRecord | undefined, after: DiagnosisReport | null): string {
  if (!stopped) return `all ${plan.steps.length} steps done`;
  const done = records.filter((r) => r.index < stopped.index && r.status !== 'failed');
  const notRun = plan.steps.filter((s) => s.index > stopped.index);
  const now = after
    ? after.findings.filter((f) => f.role === 'root-cause').map((f) => f.id).join(', ') || 'no root cause found'
    : 'unknown (the node could not be diagnosed)';
  return [
    `stopped at step ${stopped.index}/${plan.steps.length} "${stopped.title}": ${stopped.reason ?? 'failed'}`,
    done.length ? `done before it: ${done.map((r) => `${r.index}. ${r.title}${r.status === 'skipped' ? ' (skipped)' : ''}`).join('; ')}` : 'nothing was changed before it',
    notRun.length ? `not run: ${notRun.map((s) => `${s.index}. ${s.title}`).join('; ')}` : '',
    `the node now: ${now}`,
  ]
    .filter(Boolean)
    .join('\n');
}

/** Executes a plan. Throws only when it cannot start (audit unwritable, lock held). */
export async function executePlan(plan: Plan, d: ExecuteDeps): Promise<RunOutcome> {
  const run = new Run(plan, d);
  run.audit('fix-requested', { runbook: plan.runbook, finding: plan.finding, steps: plan.steps.length });
  let lock;
  try {
    lock = await d.lock.acquire(plan.node, `${d.actor}${d.incident ? ` (incident ${d.incident})` : ''}`, d.lockTtlMs ?? 30 * 60_000);
  } catch (err) {
    run.audit('fix-refused', { reason: errorMessage(err) });
    throw err;
  }
  try {
    const before = await d.diagnose();
    const holds = before.findings.some((f) => f.id === plan.finding);
    d.onEvent?.({ type: 'rechecked', holds });
    run.audit('rechecked', { holds, reachable: before.reachable });
    if (!before.reachable) {
      const outcome: RunOutcome = { result: 'aborted', plan, steps: [], summary: `cannot re-check ${plan.node}: ${before.connectionError?.message ?? 'unreachable'}; nothing was run`, after: before, followUps: [], auditRange: null };
      run.audit('run-finished', { result: outcome.result, summary: outcome.summary });
      outcome.auditRange = run.auditRange;
      d.onEvent?.({ type: 'finished', outcome });
      return outcome;
    }
    if (!holds) {
      const outcome: RunOutcome = {
        result: 'not-needed',
        plan,
        steps: [],
        summary: `${plan.finding} no longer holds on ${plan.node}; nothing was run`,
        after: before,
        followUps: before.findings.filter((f) => f.role === 'root-cause'),
        auditRange: null,
      };
      run.audit('run-finished', { result: outcome.result, summary: outcome.summary });
      outcome.auditRange = run.auditRange;
      d.onEvent?.({ type: 'finished', outcome });
      return outcome;
    }
    let stop: 'failed' | 'refused' | null = null;
    for (const step of plan.steps) {
      const r = await run.step(step, plan.steps.length);
      if (r !== 'ok') {
        stop = r;
        break;
      }
    }
    for (const s of plan.steps) {
      if (!run.records.some((r) => r.index === s.index)) {
        run.records.push({ index: s.index, id: s.id, title: s.title, command: commandOf(s, plan.node), status: 'not-run', exitCode: null, durationMs: 0, output: '' });
      }
    }
    let after: DiagnosisReport | null = null;
    try {
      after = await d.diagnose();
    } catch {
      after = null;
    }
    const stillThere = after ? after.findings.some((f) => f.id === plan.finding) : true;
    const result: RunResult = stop === 'refused' ? 'aborted' : stop === 'failed' || stillThere || !after?.reachable ? 'failed' : 'fixed';
    const stopped = run.records.find((r) => r.status === 'failed');
    let summary = describeEnd(plan, run.records, stopped, after);
    if (!stopped && stillThere) summary += `\nbut ${plan.finding} still holds after the run`;
    const outcome: RunOutcome = {
      result,
      plan,
      steps: run.records.sort((a, b) => a.index - b.index),
      ...(stopped ? { stoppedAt: stopped.index } : {}),
      summary,
      after,
      followUps: after ? after.findings.filter((f) => f.role === 'root-cause') : [],
      auditRange: null,
    };
    run.audit('run-finished', { result, summary, followUps: outcome.followUps.map((f) => f.id) });
    outcome.auditRange = run.auditRange;
    d.onEvent?.({ type: 'finished', outcome });
    return outcome;
  } finally {
    await lock.release();
  }
}
