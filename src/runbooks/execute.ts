/**
 * Runs a plan on a node. Nothing happens without an audit entry first (no
 * audit, no action) and the node's lock (one fix per node). Then, before
 * anything changes: the finding is re-checked on a fresh diagnosis, the plan
 * is made again from the node as it is now and must be the approved one (same
 * hash), the running workloads are recorded, and every step's refusal
 * condition that can be checked up front is checked (a plan that would stop
 * half-way is refused whole). Each step's condition is checked again just
 * before it, its action runs under a deadline, its result is verified, and
 * the workloads must still be running. The first failure stops the run, takes
 * back what can be taken back, and says what state the node is left in. The
 * verdict comes from a diagnosis made of evidence newer than the fix. Steps
 * are never retried on their own.
 */
import type { DiagnosisReport, FreshnessOptions } from '../diagnose/run-diagnosis.js';
import type { Finding } from '../diagnose/classify.js';
import { AuditError, HostIdentityMismatchError, errorMessage } from '../errors.js';
import type { AuditSink } from '../incidents/audit-log.js';
import type { Clock, KubeClient, KubePod, RemoteShell } from '../ports.js';
import type { Redactor } from '../redact.js';
import { wrapStdinScriptCommand } from '../shell.js';
import type { NodeLock } from './lock.js';
import { describeKubeOp, shortHash, type Plan, type PlannedCheck, type PlannedStep } from './plan.js';
import { endedShims, parseWorkloads, workloadViolations, type WorkloadSnapshot } from './workload-guard.js';

/** A fix's node lock lasts this long unless the run says otherwise (a Lease is renewed within it while the fix runs). */
export const DEFAULT_LOCK_TTL_MS = 30 * 60_000;

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
  /** The node changed since the approval: the plan as it would be now, for a new approval. */
  replanned?: Plan;
  /** Audit log sequence numbers written by this run. */
  auditRange: { first: number; last: number } | null;
}

/** Progress, for live displays (terminal, Slack thread). */
export type RunEvent =
  | { type: 'rechecked'; holds: boolean }
  | { type: 'step-started'; step: PlannedStep }
  | { type: 'step-finished'; record: StepRecord; total: number }
  | { type: 'finished'; outcome: RunOutcome };

/** The workload guard's scripts, rendered for this node. */
export interface GuardScripts {
  /** Lists every shim and task (the `containerd-shims` probe's script). */
  snapshot: string;
  /** Prints `alive <shim>` or `gone <shim>` for each `pid@start` given. */
  alive: (shims: string[]) => string;
  /** Prints the node's clock in ms. */
  clock: string;
  /** Prints `machine-id=…` and `system-uuid=…`. */
  identity: string;
}

/** Collaborators of a run. */
export interface ExecuteDeps {
  shell: RemoteShell;
  kube: KubeClient | null;
  clock: Clock;
  audit: AuditSink;
  lock: NodeLock;
  redact: Redactor;
  /** A fresh diagnosis of the node (the re-check before, and the verdict after, with only fresh evidence). */
  diagnose: (fresh?: FreshnessOptions) => Promise<DiagnosisReport>;
  /** Plans again from a diagnosis (running the preview if the runbook has one); null when the finding is gone. */
  replan: (report: DiagnosisReport) => Promise<Plan | null>;
  /** Null when the node has no containerd workloads to guard (another runtime layout). */
  guard: GuardScripts | null;
  /** The finding's proof reads the Node's status: the verdict waits for kubelet to post it after the fix. */
  needsNodeStatus: boolean;
  actor: string;
  incident?: string;
  onEvent?: (e: RunEvent) => void;
  /** How long the node's lock lasts (default {@link DEFAULT_LOCK_TTL_MS}). */
  lockTtlMs?: number;
  pollIntervalMs?: number;
  /** Output kept per step. */
  outputExcerptChars?: number;
  /** How long the verdict waits for kubelet's next status post. */
  nodeStatusWaitMs?: number;
  /** How long a drain waits for PodDisruptionBudgets to allow each eviction. */
  drainTimeoutMs?: number;
}

const GRACE_MS = 2500;

/** The exact command of a step, for records and the audit trail. */
export function commandOf(step: PlannedStep, plan: Pick<Plan, 'node' | 'params'>): string {
  if (!step.action) return `check only: ${step.verify?.kind === 'kube' ? `kubernetes ${step.verify.check} on ${plan.node}` : (step.verify?.script ?? step.requires?.script ?? '')}`;
  return step.action.kind === 'ssh' ? step.action.script : `kubernetes: ${describeKubeOp(step.action.op, plan)}`;
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

function crashLooping(p: KubePod): boolean {
  return p.containers.some((c) => c.state.kind === 'waiting' && c.state.reason === 'CrashLoopBackOff');
}

/** Pods a drain leaves alone: DaemonSet pods (their controller would put them back) and static pods' mirrors. */
function drainExempt(p: KubePod): boolean {
  return p.owner?.kind === 'DaemonSet' || p.mirror === true || p.phase === 'Succeeded' || p.phase === 'Failed';
}

class Run {
  readonly records: StepRecord[] = [];
  private deleted: KubePod[] = [];
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;
  before: WorkloadSnapshot | null = null;
  /** Why the last snapshot could not be taken. */
  snapshotProblem = '';

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

  async exec(script: string, timeoutMs: number): Promise<{ exitCode: number | null; out: string; timedOut: boolean }> {
    const r = await this.d.shell.exec(wrapStdinScriptCommand({ timeoutMs }), { timeoutMs: timeoutMs + GRACE_MS, maxOutputBytes: 256 * 1024, input: Promise.resolve(script) });
    const timedOut = r.timedOut || r.exitCode === 124 || r.exitCode === 137;
    return { exitCode: r.exitCode, out: this.d.redact(`${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`), timedOut };
  }

  async check(c: PlannedCheck): Promise<{ ok: boolean; out: string; exitCode: number | null }> {
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

  /** Snapshot of the workloads (null when there is nothing to guard, or it could not be taken: then `snapshotProblem` says why). */
  async snapshot(): Promise<WorkloadSnapshot | null> {
    if (!this.d.guard) return null;
    try {
      const r = await this.exec(this.d.guard.snapshot, 15_000);
      // The shims script's first line says it ran; without it the output says nothing about the workloads.
      if (r.timedOut || !/^shims=\d+$/m.test(r.out)) {
        this.snapshotProblem = r.timedOut ? 'no answer within 15 s' : (r.out.split('\n').find((l) => l.trim()) ?? `exit status ${String(r.exitCode)}`).slice(0, 200);
        return null;
      }
      return parseWorkloads(r.out);
    } catch (err) {
      this.snapshotProblem = this.d.redact(errorMessage(err));
      return null;
    }
  }

  /** Containers that were running before and whose shim is gone now. */
  async endedWorkloads(): Promise<string[]> {
    if (!this.d.guard || !this.before?.workloads.length) return [];
    const r = await this.exec(this.d.guard.alive(this.before.workloads.map((w) => w.shim)), 10_000);
    if (r.timedOut || r.exitCode !== 0) throw new Error(`the workload check did not run (exit ${r.exitCode})`);
    return endedShims(this.before, r.out, this.plan.expectToEnd);
  }

  private async verify(step: PlannedStep): Promise<{ passed: boolean; detail: string } | undefined> {
    const v = step.verify;
    if (!v) return undefined;
    if (v.kind === 'ssh') {
      return this.poll(v.withinMs, async () => {
        const r = await this.check(v);
        return { ok: r.ok, detail: r.ok ? 'check passed' : `check failed (exit ${r.exitCode}): ${excerpt(r.out, 600) || 'no output'}` };
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
    if (v.check === 'node-drained') {
      return this.poll(v.withinMs, async () => {
        const left = (await kube.listPodsOnNode(this.plan.node)).filter((p) => !drainExempt(p));
        return { ok: left.length === 0, detail: left.length ? `still on the node: ${left.map((p) => `${p.namespace}/${p.name}`).join(', ')}` : 'only DaemonSet and static pods remain' };
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

  /** Pods a drain could not evict without losing something: no controller, or node-local data. */
  async drainBlockers(): Promise<string[]> {
    const kube = this.d.kube;
    if (!kube) return [];
    const pods = (await kube.listPodsOnNode(this.plan.node)).filter((p) => !drainExempt(p));
    return pods.flatMap((p) => [
      ...(!p.owner ? [`${p.namespace}/${p.name} has no controller (nothing would recreate it)`] : []),
      ...(p.localVolumes?.length ? [`${p.namespace}/${p.name} keeps data in emptyDir ${p.localVolumes.join(', ')} (lost on eviction)`] : []),
    ]);
  }

  private async kubeAction(op: string): Promise<{ ok: boolean; output: string; skipped?: string }> {
    const kube = this.d.kube;
    if (!kube) return { ok: true, output: '', skipped: 'no Kubernetes access: do it by hand (kubectl)' };
    if (op === 'cordon' || op === 'uncordon') {
      await kube.setUnschedulable(this.plan.node, op === 'cordon');
      return { ok: true, output: `${op}ed ${this.plan.node}` };
    }
    if (op === 'drain') {
      const blockers = await this.drainBlockers();
      if (blockers.length) return { ok: false, output: `refused to drain: ${blockers.join('; ')}` };
      const deadline = this.d.clock.now() + (this.d.drainTimeoutMs ?? 300_000);
      const lines: string[] = [];
      let pending = (await kube.listPodsOnNode(this.plan.node)).filter((p) => !drainExempt(p));
      while (pending.length) {
        const blocked: KubePod[] = [];
        for (const p of pending) {
          const r = await kube.evictPod(p.namespace, p.name, p.uid);
          if (r === 'blocked-by-budget') blocked.push(p);
          else lines.push(`${r === 'evicted' ? 'evicted' : 'already gone:'} ${p.namespace}/${p.name}`);
        }
        if (!blocked.length) break;
        if (this.d.clock.now() >= deadline) {
          lines.push(`a PodDisruptionBudget still blocks the eviction of ${blocked.map((p) => `${p.namespace}/${p.name}`).join(', ')}; stopped waiting after ${Math.round((this.d.drainTimeoutMs ?? 300_000) / 1000)} s`);
          return { ok: false, output: lines.join('\n') };
        }
        await this.d.clock.sleep(5000);
        pending = blocked;
      }
      return { ok: true, output: lines.join('\n') || 'nothing to evict (only DaemonSet and static pods)' };
    }
    // delete-pods: only the pods the plan names, each only while it is the same pod and still crash-looping.
    const named = this.plan.params.pods ?? [];
    const pods = await kube.listPodsOnNode(this.plan.node);
    const lines: string[] = [];
    for (const ref of named) {
      const [nsName, uid] = ref.split('@') as [string, string];
      const [ns, name] = nsName.split('/') as [string, string];
      const p = pods.find((x) => x.namespace === ns && x.name === name);
      if (!p || p.uid !== uid) {
        lines.push(`left ${nsName}: not the pod diagnosed any more (gone or recreated)`);
        continue;
      }
      if (!p.owner) {
        lines.push(`left ${nsName}: no controller would recreate it`);
        continue;
      }
      if (!crashLooping(p)) {
        lines.push(`left ${nsName}: no longer crash-looping`);
        continue;
      }
      const r = await kube.deletePod(ns, name, uid);
      if (r === 'deleted') this.deleted.push(p);
      lines.push(r === 'deleted' ? `deleted ${nsName} (${p.owner.kind}/${p.owner.name})` : `left ${nsName}: ${r === 'gone' ? 'already gone' : 'replaced by a new pod of the same name'}`);
    }
    if (!named.length) lines.push('the diagnosis named no crash-looping pod');
    return { ok: true, output: lines.join('\n') };
  }

  /** Runs one step. */
  async step(step: PlannedStep, total: number): Promise<'ok' | 'failed' | 'refused'> {
    this.d.onEvent?.({ type: 'step-started', step });
    const command = commandOf(step, this.plan);
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
        record.output = this.d.redact(k.output);
        if (k.skipped) {
          finish({ status: 'skipped', reason: k.skipped });
          return 'ok';
        }
        if (!k.ok) {
          finish({ status: 'failed', reason: record.output.split('\n').at(-1) ?? 'failed' });
          return 'failed';
        }
      }
      const v = await this.verify(step);
      if (v) record.verify = v;
      if (v && !v.passed) {
        finish({ status: 'failed', reason: `verification failed: ${v.detail}` });
        return 'failed';
      }
      if (step.action?.kind === 'ssh') {
        const ended = await this.endedWorkloads();
        if (ended.length) {
          finish({ status: 'failed', reason: `a running container ended during this step: ${ended.join('; ')}` });
          return 'failed';
        }
      }
      finish({ status: 'ok' });
      return 'ok';
    } catch (err) {
      if (err instanceof AuditError) throw err;
      finish({ status: 'failed', reason: this.d.redact(errorMessage(err)) });
      return 'failed';
    }
  }

  /** Checks, before anything changes, every refusal condition that can be checked up front. */
  async preflight(): Promise<{ step: PlannedStep; reason: string; output: string } | null> {
    for (const step of this.plan.steps) {
      if (step.action?.kind === 'kube' && step.action.op === 'drain') {
        const blockers = await this.drainBlockers();
        if (blockers.length) return { step, reason: `the node cannot be drained without losing work: ${blockers.join('; ')}`, output: '' };
      }
      if (!step.requires?.preflight) continue;
      if (step.skipIf && (await this.check(step.skipIf)).ok) continue;
      const r = await this.check(step.requires);
      if (!r.ok) return { step, reason: step.requires.refusal, output: excerpt(r.out, 600) };
    }
    return null;
  }

  /** Takes back what the completed steps can take back, newest first. */
  async undo(): Promise<string[]> {
    const notes: string[] = [];
    const done = this.records.filter((r) => r.status === 'ok' || r.status === 'failed').map((r) => this.plan.steps.find((s) => s.index === r.index)!);
    for (const step of done.reverse()) {
      if (!step?.undo) continue;
      const r = await this.exec(step.undo.script, step.undo.timeoutMs).catch((err: unknown) => ({ exitCode: null, out: errorMessage(err), timedOut: false }));
      const ok = r.exitCode === 0;
      this.audit('step-undone', { index: step.index, command: step.undo.script, exitCode: r.exitCode, output: excerpt(r.out, 500) });
      notes.push(ok ? step.undo.note : `taking back step ${step.index} failed (exit ${r.exitCode}): ${excerpt(r.out, 200)}`);
    }
    return notes;
  }

  /**
   * The machine reached is the Node named: its machine-id (or system UUID)
   * is the one kubelet reports for that Node. Null when it is; the problem otherwise.
   */
  async identityProblem(): Promise<string | null> {
    const kube = this.d.kube;
    if (!kube || !this.d.guard) return null;
    const node = await kube.getNode(this.plan.node);
    if (!node?.machineID && !node?.systemUUID) return null;
    const r = await this.exec(this.d.guard.identity, 5000);
    const mid = /^machine-id=(\S+)$/m.exec(r.out)?.[1];
    const uuid = /^system-uuid=(\S+)$/m.exec(r.out)?.[1];
    if (node.machineID && mid) return mid === node.machineID ? null : `its /etc/machine-id is ${mid}, the Node's machineID is ${node.machineID}`;
    if (node.systemUUID && uuid) return uuid.toLowerCase() === node.systemUUID.toLowerCase() ? null : `its system UUID is ${uuid}, the Node's systemUUID is ${node.systemUUID}`;
    return 'neither its /etc/machine-id nor its system UUID could be read to check it';
  }

  /** The node's clock now, in ms (the fresh-evidence window starts there); the bot's clock when the node does not answer. */
  async nodeNowMs(): Promise<number> {
    if (!this.d.guard) return this.d.clock.now();
    const r = await this.exec(this.d.guard.clock, 5000).catch(() => null);
    const n = Number(r?.out.trim());
    return r && r.exitCode === 0 && Number.isFinite(n) && n > 0 ? n : this.d.clock.now();
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

/** Why the finding cannot be called fixed by the diagnosis after the run, or null when its evidence is gone. */
function verdictProblem(findingId: string, after: DiagnosisReport | null): string | null {
  if (!after) return 'the node could not be diagnosed after the run';
  if (!after.reachable) return `the node could not be reached after the run: ${after.connectionError?.message ?? 'unreachable'}`;
  const still = after.findings.find((f) => f.id === findingId);
  if (still) return `${findingId} still holds after the run: ${still.evidence.slice(0, 3).join(' | ')}`;
  const unsure = after.undecided.find((u) => u.id === findingId);
  if (unsure) return `whether ${findingId} is gone could not be checked: ${unsure.checks.map((c) => `${c.id} ${c.status}${c.reason ? ` (${c.reason})` : ''}`).join('; ')}`;
  return null;
}

function notRunRecords(plan: Plan, records: StepRecord[]): StepRecord[] {
  return plan.steps
    .filter((s) => !records.some((r) => r.index === s.index))
    .map((s) => ({ index: s.index, id: s.id, title: s.title, command: commandOf(s, plan), status: 'not-run' as const, exitCode: null, durationMs: 0, output: '' }));
}

/** Executes an approved plan. Throws only when it cannot start (audit unwritable, lock held). */
export async function executePlan(plan: Plan, d: ExecuteDeps): Promise<RunOutcome> {
  const run = new Run(plan, d);
  run.audit('fix-requested', { runbook: plan.runbook, finding: plan.finding, steps: plan.steps.length, plan: shortHash(plan.hash) });
  let lock;
  try {
    lock = await d.lock.acquire(plan.node, `${d.actor}${d.incident ? ` (incident ${d.incident})` : ''}`, d.lockTtlMs ?? DEFAULT_LOCK_TTL_MS);
  } catch (err) {
    run.audit('fix-refused', { reason: errorMessage(err) });
    throw err;
  }
  const end = (o: Omit<RunOutcome, 'auditRange'>): RunOutcome => {
    const outcome: RunOutcome = { ...o, auditRange: null };
    run.audit('run-finished', { result: outcome.result, summary: outcome.summary, followUps: outcome.followUps.map((f) => f.id) });
    outcome.auditRange = run.auditRange;
    d.onEvent?.({ type: 'finished', outcome });
    return outcome;
  };
  try {
    const identity = await run.identityProblem();
    if (identity) {
      run.audit('identity-mismatch', { detail: identity });
      throw new HostIdentityMismatchError(plan.node, identity);
    }
    const before = await d.diagnose();
    const holds = before.findings.some((f) => f.id === plan.finding);
    d.onEvent?.({ type: 'rechecked', holds });
    run.audit('rechecked', { holds, reachable: before.reachable });
    if (!before.reachable) {
      return end({ result: 'aborted', plan, steps: [], summary: `cannot re-check ${plan.node}: ${before.connectionError?.message ?? 'unreachable'}; nothing was run`, after: before, followUps: [] });
    }
    if (!holds) {
      return end({
        result: 'not-needed',
        plan,
        steps: [],
        summary: `${plan.finding} no longer holds on ${plan.node}; nothing was run`,
        after: before,
        followUps: before.findings.filter((f) => f.role === 'root-cause'),
      });
    }
    // What the approver saw is what runs: the plan made from the node as it is now must be the approved one.
    let current: Plan | null = null;
    let replanError = '';
    try {
      current = await d.replan(before);
    } catch (err) {
      replanError = d.redact(errorMessage(err));
    }
    if (!current || current.hash !== plan.hash) {
      run.audit('plan-changed', { approved: shortHash(plan.hash), now: current ? shortHash(current.hash) : null, ...(replanError ? { error: replanError } : {}) });
      return end({
        result: 'aborted',
        plan,
        steps: notRunRecords(plan, []),
        summary: current
          ? `the node changed since the approval: the plan for it now (${shortHash(current.hash)}) is not the approved one (${shortHash(plan.hash)}); nothing was run — approve the new plan to run it`
          : `the plan cannot be made again from the node as it is now (${replanError || 'no plan'}); nothing was run`,
        after: before,
        followUps: [],
        ...(current ? { replanned: current } : {}),
      });
    }
    run.before = await run.snapshot();
    if (d.guard && !run.before) {
      // Unseen containers cannot be kept running: nothing changes until they can be listed.
      run.audit('workloads-unlisted', { reason: run.snapshotProblem });
      return end({
        result: 'aborted',
        plan,
        steps: notRunRecords(plan, []),
        summary: `refused before changing anything: the containers on ${plan.node} could not be listed (${run.snapshotProblem}), so none of them could be guarded\nnothing was changed on ${plan.node}`,
        after: before,
        followUps: [],
      });
    }
    if (run.before) run.audit('workloads-recorded', { containers: run.before.workloads.map((w) => `${w.namespace}/${w.id} ${w.shim} ${w.task}`) });
    const refused = await run.preflight();
    if (refused) {
      run.audit('preflight-refused', { index: refused.step.index, reason: refused.reason });
      return end({
        result: 'aborted',
        plan,
        steps: notRunRecords(plan, []),
        stoppedAt: refused.step.index,
        summary: `refused before changing anything: step ${refused.step.index} "${refused.step.title}" could not run: ${refused.reason}${refused.output ? `\n${refused.output}` : ''}\nnothing was changed on ${plan.node}`,
        after: before,
        followUps: [],
      });
    }
    let stop: 'failed' | 'refused' | null = null;
    for (const step of plan.steps) {
      const r = await run.step(step, plan.steps.length);
      if (r !== 'ok') {
        stop = r;
        break;
      }
    }
    const undone = stop ? await run.undo() : [];
    run.records.push(...notRunRecords(plan, run.records));
    const endedAt = await run.nodeNowMs();
    let after: DiagnosisReport | null = null;
    try {
      after = await d.diagnose({
        sinceEpochSec: Math.floor(endedAt / 1000),
        sinceMs: endedAt,
        ...(d.needsNodeStatus && !stop ? { waitForNodeStatusMs: d.nodeStatusWaitMs ?? 90_000 } : {}),
      });
    } catch {
      after = null;
    }
    const afterSnapshot = run.before ? await run.snapshot() : null;
    const violations = run.before && afterSnapshot ? workloadViolations(run.before, afterSnapshot, plan.expectToEnd) : [];
    if (violations.length) run.audit('workloads-harmed', { violations });
    // Guarded before, unlisted after: whether the containers survived is not known, so the run is not called a fix.
    const unchecked = run.before && !afterSnapshot ? `the containers on ${plan.node} could not be listed after the run (${run.snapshotProblem}): whether they still run is not known` : '';
    if (unchecked) run.audit('workloads-unlisted', { reason: run.snapshotProblem, after: true });
    const problem = verdictProblem(plan.finding, after);
    const result: RunResult = stop === 'refused' ? 'aborted' : stop === 'failed' || problem || violations.length || unchecked ? 'failed' : 'fixed';
    const stopped = run.records.find((r) => r.status === 'failed');
    let summary = describeEnd(plan, run.records, stopped, after);
    if (undone.length) summary += `\ntaken back: ${undone.join('; ')}`;
    if (!stopped && problem) summary += `\nbut ${problem}`;
    if (violations.length) summary += `\nWORKLOADS: ${violations.join('; ')}`;
    if (unchecked) summary += `\nWORKLOADS: ${unchecked}`;
    return end({
      result,
      plan,
      steps: run.records.sort((a, b) => a.index - b.index),
      ...(stopped ? { stoppedAt: stopped.index } : {}),
      summary,
      after,
      followUps: after ? after.findings.filter((f) => f.role === 'root-cause') : [],
    });
  } catch (err) {
    // The audit log says how every requested fix ended, also when an error stopped it.
    try {
      run.audit('run-finished', { result: run.records.length ? 'failed' : 'aborted', summary: `stopped by an error: ${errorMessage(err)}`, followUps: [] });
    } catch {
      /* the audit log refuses: the error below is what the caller reports */
    }
    throw err;
  } finally {
    await lock.release();
  }
}
