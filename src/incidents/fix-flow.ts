/**
 * Running an approved fix: wait for a cluster fix slot (the card says for
 * what), check once more that the fix may and can start (pause, retry budget,
 * the node still where it was diagnosed), run the approved plan with each step
 * in the thread, close with the summary and offer the next root cause's fix.
 */
import { resolveNode, type DiagnosisReport } from '../diagnose/run-diagnosis.js';
import { reportJson } from '../diagnose/report-json.js';
import { Semaphore } from '../concurrency.js';
import { DEFAULT_CLUSTER, splitClusterNodeKey } from '../clusters/clusters.js';
import { AuditError, LockHeldError, NodediagError, errorMessage } from '../errors.js';
import type { RunEvent } from '../runbooks/execute.js';
import { planFix, runFix, type PreparedFix } from '../runbooks/fix-service.js';
import type { LockHandle } from '../runbooks/lock.js';
import { expandPlan, storePlan, type Plan } from '../runbooks/plan.js';
import { newIncidentId, type Incident, type IncidentIn, type IncidentState, type Outcome } from './incident.js';
import type { FixClaims } from './fix-claims.js';
import type { FlowContext } from './flow-context.js';
import { railsCluster, railsKey, unhealthy } from './rails-guard.js';
import { isRefusal } from './transitions.js';

export class FixFlow {
  /** This process's fix slots, per cluster. */
  private readonly slots = new Map<string, Semaphore>();
  /** Rails key → incident of each fix holding a cluster fix slot. */
  private readonly fixing = new Map<string, string>();

  constructor(
    private readonly c: FlowContext,
    private readonly claims: FixClaims,
  ) {}

  /** Approved fixes waiting for a cluster fix slot. */
  get queued(): number {
    return [...this.slots.values()].reduce((n, s) => n + s.waiting, 0);
  }

  private slotsOf(cluster: string | undefined): Semaphore {
    const name = cluster ?? DEFAULT_CLUSTER;
    let s = this.slots.get(name);
    if (!s) this.slots.set(name, (s = new Semaphore(this.c.d.rails.config.maxConcurrentFixes)));
    return s;
  }

  /**
   * Runs an approved fix once a cluster fix slot is free (the card says what it waits for meanwhile):
   * first one of this process's slots, then one of the cluster's, which every process shares through
   * the fix lock (Kubernetes Leases with NODEDIAG_LOCK_BACKEND=lease), so replicas keep the limit too.
   * `carried` is the incident lock the approval took; it is released when the fix has had its last word.
   */
  async run(approved: IncidentIn<'approved'>, approver: string, carried: LockHandle | null): Promise<void> {
    const { d, record } = this.c;
    const slots = this.slotsOf(approved.cluster);
    let queued = false;
    const queue = async (waitingFor: string[]) => {
      if (queued) return;
      queued = true;
      const q = await record.apply(approved.id, { type: 'queue', waitingFor });
      record.audit(approved, 'fix-queued', 'nodediag', { waitingFor });
      if (!isRefusal(q)) await record.publish(q);
    };
    if (!slots.tryAcquire()) {
      // The nodes of this cluster's running fixes.
      await queue(
        [...this.fixing.keys()]
          .map(splitClusterNodeKey)
          .filter((k) => k.cluster === railsCluster(approved.cluster))
          .map((k) => k.node),
      );
      await slots.acquire();
    }
    const key = railsKey(approved.cluster, approved.node);
    this.fixing.set(key, approved.id);
    const started = d.clock.now();
    let result = 'failed';
    let shared: LockHandle | null = null;
    try {
      try {
        shared = await this.claims.slot(approved, queue);
      } catch (err) {
        result = await this.notStarted(approved, `the cluster's fix slot could not be taken: ${d.fix.redact(errorMessage(err))}`, 'fix-not-started', {});
        return;
      }
      result = await this.runHoldingSlot(approved, approver);
    } finally {
      await carried?.release().catch((err) => d.logger.error('incident lock release failed (it lapses with its lease)', { error: errorMessage(err) }));
      await shared?.release().catch((err) => d.logger.error('fix slot release failed (it lapses with its lease)', { error: errorMessage(err) }));
      this.fixing.delete(key);
      slots.release();
      this.c.metrics.fixRun(approved.plan.runbook, result, (d.clock.now() - started) / 1000);
    }
  }

  /** Ends an approved fix before anything ran: the card, the summary and the audit say why. */
  private async notStarted(approved: IncidentIn<'approved'>, why: string, auditType: string, data: Record<string, unknown>): Promise<IncidentState> {
    const { record } = this.c;
    const stopped = await record.apply(approved.id, { type: 'not-started', why });
    record.audit(approved, auditType, 'nodediag', { ...data, why });
    if (!isRefusal(stopped)) {
      await record.publish(stopped);
      await record.summary(stopped);
    }
    return 'aborted';
  }

  private async runHoldingSlot(queued: IncidentIn<'approved'>, approver: string): Promise<IncidentState> {
    const { d, record, rails } = this.c;
    const id = queued.id;
    const reread = await d.store.get(id);
    const approved = reread?.state === 'approved' ? reread : queued;
    // Paused while it waited (by this replica or another): nothing starts.
    await rails.refresh();
    const pause = rails.pauseNow();
    if (pause) return this.notStarted(approved, `fixes were paused by <@${pause.by}> (${pause.reason})`, 'fix-not-started-paused', { pausedBy: pause.by });
    let outcomeState: IncidentState = 'failed';
    const finish = async (outcome: Outcome, what: string) => {
      const done = await record.apply(id, { type: 'finish', outcome, what });
      if (isRefusal(done)) return null;
      await record.publish(done);
      await record.summary(done);
      return done;
    };
    try {
      // The retry budget counts this run before it starts: a run the ledger cannot record does not start.
      try {
        await rails.record(approved, 'fix-run');
      } catch (err) {
        throw new AuditError('AUDIT_UNWRITABLE', `cannot record the fix run for the retry budget: ${errorMessage(err)}`, 'free disk space or fix permissions of NODEDIAG_STATE_DIR');
      }
      const deps = this.c.clusters.of(approved.cluster);
      const { access } = await resolveNode(approved.node, deps);
      // The approval was given for the machine diagnosed: if the name now leads elsewhere, nothing runs.
      const diagnosedAt = approved.report?.host;
      if (diagnosedAt && access.target.host !== diagnosedAt) {
        return await this.notStarted(approved, `${approved.node} now resolves to ${access.target.host}, not ${diagnosedAt} where it was diagnosed; re-diagnose`, 'fix-not-started', { diagnosedAt, now: access.target.host });
      }
      const fix = { node: approved.node, access, plan: expandPlan(d.fix.catalogs, approved.plan) };
      const started = await record.apply(id, { type: 'start', total: fix.plan.steps.length });
      // The incident moved on meanwhile (another process said it was interrupted, or it was already run): this approval runs nothing.
      if (isRefusal(started)) {
        record.audit(approved, 'fix-not-started', 'nodediag', { why: started.reason });
        return 'aborted';
      }
      await record.publish(started);
      const progress = this.progressInThread(approved, fix.plan);
      const outcome = await runFix(fix, deps, { actor: approver, incident: id, onEvent: progress.onEvent });
      await progress.posted();
      // The fix's own fresh diagnosis is the node's latest word for the storm gate.
      if (outcome.after) await rails.record(approved, unhealthy(outcome.after) ? 'unhealthy' : 'healthy');
      outcomeState = outcome.result;
      const done = await finish(
        {
          result: outcome.result,
          summary: outcome.summary,
          steps: outcome.steps,
          followUps: outcome.followUps.map((f) => f.id),
          auditRange: outcome.auditRange,
          after: outcome.after ? reportJson(outcome.after) : null,
        },
        `the fix ended: ${outcome.result}${outcome.after ? `; the node now: ${outcome.after.findings.map((f) => f.id).join(', ') || 'healthy'}` : ''}`,
      );
      if (done && outcome.after) await this.offerFollowUp(done, outcome.after, access);
      return outcome.result;
    } catch (err) {
      const why = d.fix.redact(err instanceof NodediagError ? err.describe() : errorMessage(err));
      const state: IncidentState = err instanceof LockHeldError || err instanceof AuditError ? 'aborted' : outcomeState;
      await finish({ result: state, summary: `the fix could not run: ${why}`, steps: [], followUps: [], auditRange: null }, `the fix could not run: ${why}`);
      return state;
    }
  }

  /**
   * The executor's progress as thread posts (one per step, edited when it
   * ends) and card updates. The executor reports synchronously; the writes go
   * out in order through one queue, which `posted` waits for.
   */
  private progressInThread(approved: IncidentIn<'approved'>, plan: Plan): { onEvent: (e: RunEvent) => void; posted: () => Promise<unknown> } {
    const { d, record } = this.c;
    const id = approved.id;
    const stepKeys = new Map<number, string>();
    let progress: Promise<unknown> = Promise.resolve();
    const later = (work: () => Promise<unknown>) => {
      progress = progress.then(work).catch((err) => d.logger.error('progress post failed', { error: errorMessage(err) }));
    };
    const onEvent = (e: RunEvent) => {
      if (e.type === 'step-started') {
        const key = `${id}:step:${e.step.index}`;
        stepKeys.set(e.step.index, key);
        later(() => record.thread(approved, d.views.stepStarted(e.step, plan), key));
        later(async () => {
          const cur = await record.apply(id, { type: 'progress', step: e.step.index, total: plan.steps.length, title: e.step.title });
          if (!isRefusal(cur)) await record.publish(cur);
        });
      } else if (e.type === 'step-finished') {
        const key = stepKeys.get(e.record.index);
        const message = d.views.stepFinished(e.record, e.total);
        later(() => (key ? d.outbox.enqueue({ op: 'update', key, channel: approved.channel, message }) : record.thread(approved, message)));
      } else if (e.type === 'rechecked' && !e.holds) {
        later(() => record.thread(approved, { text: `${approved.finding} no longer holds on ${approved.node}; nothing was run.` }));
      }
    };
    return { onEvent, posted: () => progress };
  }

  /** After a fix: the next root cause with a runbook gets its own message and buttons in the thread. */
  private async offerFollowUp(done: Incident, after: DiagnosisReport, access: PreparedFix['access']): Promise<void> {
    const { d, record, rails } = this.c;
    const next = after.reachable ? after.findings.find((f) => f.role === 'root-cause' && f.runbook) : undefined;
    if (!next) return;
    let prepared: PreparedFix;
    try {
      prepared = await planFix(done.node, access, after, next, this.c.clusters.of(done.cluster));
    } catch {
      return;
    }
    const id = newIncidentId();
    const follow: Incident = {
      id,
      version: 1,
      node: done.node,
      ...(done.cluster ? { cluster: done.cluster } : {}),
      channel: done.channel,
      messageKey: `${id}:msg`,
      threadKey: done.threadKey,
      requester: done.requester,
      createdAt: record.now(),
      state: 'awaiting-approval',
      report: reportJson(after),
      findings: after.findings,
      finding: next.id,
      plan: storePlan(prepared.plan),
      approvalsNeeded: 1,
      approvals: [],
      ...(prepared.preview !== undefined ? { preview: prepared.preview } : {}),
      expiresAt: new Date(d.clock.now() + d.approvalTtlMs).toISOString(),
      timeline: [{ at: record.now(), what: `follow-up of ${done.id}: ${next.id}` }],
    };
    await d.store.create(follow);
    await d.outbox.enqueue({ op: 'post', key: follow.messageKey, channel: follow.channel, threadKey: follow.threadKey, message: d.views.card(follow, rails.pauseNow()) });
    await record.apply(done.id, { type: 'follow-up', id });
  }
}
