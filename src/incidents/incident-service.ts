/**
 * The incident story, independent of Bolt: diagnose a node for a channel,
 * offer the fix, check approvals (second person, allowed, not expired, once),
 * run it with the thread as audit trail, close with a summary and offer the
 * follow-up. Every state change is a compare-and-set on the durable store over
 * the pure state machine (transitions.ts), so a double click, a Slack retry or
 * another replica never runs anything twice. Slack output goes through the
 * outbox: a Slack outage delays the thread, never the fix.
 *
 * This class only wires the flows together; each lives in its own file:
 * diagnosis-flow, approval-flow, fix-flow, recovery, pause-flow.
 */
import { BackgroundWork } from '../concurrency.js';
import { errorMessage } from '../errors.js';
import { NO_METRICS } from '../metrics.js';
import type { Pause, Storm } from '../rails/gates.js';
import { ApprovalFlow } from './approval-flow.js';
import { DiagnosisFlow, type DiagnoseRequest, type FleetRequest } from './diagnosis-flow.js';
import { FixClaims } from './fix-claims.js';
import { FixFlow } from './fix-flow.js';
import { clusterRoutes, type FlowContext, type IncidentServiceDeps } from './flow-context.js';
import type { Incident } from './incident.js';
import { IncidentRecord } from './incident-record.js';
import type { OutboxOp } from './outbox.js';
import { pauseFixes, resumeFixes } from './pause-flow.js';
import { RailsGuard } from './rails-guard.js';
import { Recovery } from './recovery.js';
import type { Refusal } from './transitions.js';

export type { DiagnoseRequest, FleetRequest } from './diagnosis-flow.js';
export type { IncidentServiceDeps } from './flow-context.js';
export { railsKey } from './rails-guard.js';

/** Who opens an incident from an alert (not a Slack user). */
export const ALERT_REQUESTER = 'alertmanager';

export class IncidentService {
  private readonly c: FlowContext;
  private readonly diagnosis: DiagnosisFlow;
  private readonly approvals: ApprovalFlow;
  private readonly fixes: FixFlow;
  private readonly recovery: Recovery;

  constructor(d: IncidentServiceDeps) {
    const clusters = clusterRoutes(d);
    const rails = new RailsGuard(d, clusters.names);
    this.c = {
      d,
      clusters,
      rails,
      record: new IncidentRecord(d, clusters.of, () => rails.pauseNow()),
      work: new BackgroundWork((err) => d.logger.error('background work failed', { error: d.fix.redact(errorMessage(err)) })),
      metrics: d.metrics ?? NO_METRICS,
    };
    const claims = new FixClaims((cluster) => clusters.of(cluster).lock, { shared: Boolean(d.sharedStore), slots: d.rails.config.maxConcurrentFixes, clock: d.clock });
    this.diagnosis = new DiagnosisFlow(this.c);
    this.fixes = new FixFlow(this.c, claims);
    this.approvals = new ApprovalFlow(this.c, this.diagnosis, this.fixes, claims);
    this.recovery = new Recovery(this.c, claims);
  }

  // ── diagnosis ───────────────────────────────────────────────────────
  /** Starts a diagnosis; the incident message appears at once and fills in when the diagnosis ends. */
  diagnose(req: DiagnoseRequest): Promise<Incident | Refusal> {
    return this.diagnosis.diagnose(req);
  }

  /** `/diag -l selector`: one summary message. */
  fleet(req: FleetRequest): Promise<Refusal | null> {
    return this.diagnosis.fleet(req);
  }

  /** A note in an incident's thread from outside (alerts), see {@link IncidentRecord.note}. */
  note(id: string, text: string, alerts?: { alerts: NonNullable<Incident['alerts']>; what: string }, slot?: string): Promise<Incident | null> {
    return this.c.record.note(id, text, alerts, slot);
  }

  /** The stored incident (read-only). */
  get(id: string): Promise<Incident | null> {
    return this.c.record.get(id);
  }

  // ── buttons ─────────────────────────────────────────────────────────
  dryRun(id: string, user: string, channel: string): Promise<Refusal | null> {
    return this.approvals.dryRun(id, user, channel);
  }

  /** The Approve button: checks, then opens the confirmation with the exact steps. */
  requestApproval(id: string, user: string, channel: string, triggerId: string): Promise<Refusal | null> {
    return this.approvals.requestApproval(id, user, channel, triggerId);
  }

  /** The confirmation was submitted: record the approval; once enough approvers agreed (two in a storm), run. */
  confirmApproval(id: string, user: string): Promise<Refusal | null> {
    return this.approvals.confirmApproval(id, user);
  }

  reject(id: string, user: string, channel: string): Promise<Refusal | null> {
    return this.approvals.reject(id, user, channel);
  }

  /** A fresh diagnosis posted in the same thread. */
  rediagnose(id: string, user: string, channel: string): Promise<Refusal | null> {
    return this.approvals.rediagnose(id, user, channel);
  }

  // ── rails ───────────────────────────────────────────────────────────
  /** `/diag pause <duration> <reason>`: no fix starts until it ends or someone resumes. */
  pause(user: string, channel: string, durationMs: number, reason: string): Promise<Refusal | null> {
    return pauseFixes(this.c, user, channel, durationMs, reason);
  }

  /** `/diag resume`: fixes may run again (an approver's call). */
  resume(user: string, channel: string): Promise<Refusal | null> {
    return resumeFixes(this.c, user, channel);
  }

  /** The pause in force, if any. */
  pauseNow(): Pause | null {
    return this.c.rails.pauseNow();
  }

  /** The storm, if the gate holds now in the cluster (in any cluster when none is named). */
  stormNow(cluster?: string): Storm | null {
    return this.c.rails.stormNow(cluster);
  }

  /** Approved fixes waiting for a cluster fix slot. */
  get fixesQueued(): number {
    return this.fixes.queued;
  }

  // ── housekeeping ────────────────────────────────────────────────────
  /** Closes approval requests whose window has passed (run every few seconds). */
  expireDue(): Promise<number> {
    return this.approvals.expireDue();
  }

  /** Slack refused an incident's own message for good, see {@link Recovery.undeliverable}. */
  undeliverable(op: OutboxOp, code: string): Promise<void> {
    return this.recovery.undeliverable(op, code);
  }

  /** Fixes and diagnoses left by a stopped process are marked interrupted, see {@link Recovery.recover}. */
  recover(): Promise<number> {
    return this.recovery.recover();
  }

  /** Resolves when background work started so far has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.c.work.idle();
  }

  /** Runs work that {@link idle} must wait for (listeners wrap what they do after the ack). */
  track<T>(work: () => Promise<T>): Promise<T> {
    return this.c.work.track(work);
  }
}
