/**
 * Diagnosis: a node for a channel (a person's /diag, an alert, a
 * re-diagnosis) becomes an incident whose card appears at once and fills in
 * when the diagnosis ends, with the fix offered when the rails allow it; a
 * label selector becomes one fleet summary.
 */
import { diagnoseNode, resolveNode, type DiagnosisReport } from '../diagnose/run-diagnosis.js';
import { diagnoseFleet, nodesForSelector } from '../diagnose/fleet.js';
import { reportJson } from '../diagnose/report-json.js';
import { Semaphore } from '../concurrency.js';
import { DEFAULT_CLUSTER, resolveCluster } from '../clusters/clusters.js';
import { NodediagError, errorMessage } from '../errors.js';
import type { AlertSource } from '../alerts/alertmanager.js';
import type { Storm } from '../rails/gates.js';
import { planFix, type PreparedFix } from '../runbooks/fix-service.js';
import { shortHash, storePlan } from '../runbooks/plan.js';
import { newIncidentId, type Incident } from './incident.js';
import type { FlowContext } from './flow-context.js';
import { unhealthy } from './rails-guard.js';
import type { Refusal } from './transitions.js';

/** A diagnosis request. */
export interface DiagnoseRequest {
  node: string;
  /** Said with `--cluster` (or an alert's cluster label); else the channel's, else the node's only cluster. */
  cluster?: string;
  channel: string;
  user: string;
  threadKey?: string;
  responseUrl?: string;
  /** Opened by an alert: what it said, the alerts that joined, and when it arrived (epoch ms). */
  origin?: AlertSource;
  alerts?: Incident['alerts'];
  receivedAt?: number;
  /** Wait for a diagnosis slot instead of refusing when busy (alerts: nobody is there to retry). */
  waitForSlot?: boolean;
}

/** The least time between two progress updates of a fleet summary. */
export const FLEET_PROGRESS_MS = 3000;

/** A fleet request (`/diag -l selector`). */
export interface FleetRequest {
  selector: string;
  cluster?: string;
  channel: string;
  user: string;
  responseUrl?: string;
}

export class DiagnosisFlow {
  private readonly slots: Semaphore;
  private stormShown: Storm | null = null;

  constructor(private readonly c: FlowContext) {
    this.slots = new Semaphore(c.d.maxConcurrentDiagnoses);
  }

  /** Starts a diagnosis; the incident message appears at once and fills in when the diagnosis ends. */
  async diagnose(req: DiagnoseRequest): Promise<Incident | Refusal> {
    const { d, record } = this.c;
    const waiting = !this.slots.tryAcquire();
    if (waiting && !req.waitForSlot) {
      return { reason: `nodediag is busy (${d.maxConcurrentDiagnoses} diagnoses running); try again in a minute.` };
    }
    const where = resolveCluster(this.c.clusters.index, { node: req.node, channel: req.channel, ...(req.cluster ? { cluster: req.cluster } : {}) });
    // A person is told at once; an alert still gets its card, saying why nothing was diagnosed.
    if ('reason' in where && !req.origin) {
      if (!waiting) this.slots.release();
      return where;
    }
    const id = newIncidentId();
    const key = `${id}:msg`;
    const inc: Incident = {
      id,
      version: 1,
      node: req.node,
      ...('cluster' in where && where.cluster !== DEFAULT_CLUSTER ? { cluster: where.cluster } : {}),
      channel: req.channel,
      messageKey: key,
      threadKey: req.threadKey ?? key,
      requester: req.user,
      createdAt: record.now(),
      state: 'diagnosing',
      ...(req.origin ? { origin: req.origin } : {}),
      ...(req.alerts ? { alerts: req.alerts } : {}),
      timeline: [{ at: record.now(), who: req.user, what: req.origin ? `alert ${req.origin.alertname} fired for ${req.node}` : `asked for a diagnosis of ${req.node}` }],
    };
    try {
      await d.store.create(inc);
      await d.outbox.enqueue({ op: 'post', key, channel: inc.channel, ...(req.threadKey ? { threadKey: req.threadKey } : {}), ...(req.responseUrl ? { responseUrl: req.responseUrl } : {}), message: d.views.card(inc, null) });
    } catch (err) {
      if (!waiting) this.slots.release();
      return { reason: `nodediag cannot record the incident: ${errorMessage(err)}` };
    }
    // Recorded before the diagnosis starts (its gate reads them), without holding the acknowledgement.
    const opened = this.c.rails
      .record(inc, 'incident-opened')
      // An alert says the node is unhealthy before the diagnosis does: a storm of alerts trips the gate at once.
      .then(() => (req.origin ? this.c.rails.record(inc, 'unhealthy') : undefined));
    record.audit(inc, req.origin ? 'alert-opened-incident' : 'diagnosis-requested', req.user, { channel: req.channel, ...(req.origin ? { alert: req.origin.alertname } : {}) });
    this.c.work.spawn(async () => {
      await opened;
      if (waiting) await this.slots.acquire();
      try {
        await this.finish(inc, req.receivedAt, 'reason' in where ? `${where.reason} ${where.hint ?? ''}`.trim() : undefined);
      } finally {
        this.slots.release();
      }
    });
    return inc;
  }

  /** Diagnoses the node, plans the fix its root cause offers, and records what was found. */
  private async finish(inc: Incident, receivedAt?: number, unresolved?: string): Promise<void> {
    const { d, record, rails } = this.c;
    let report: DiagnosisReport | null = null;
    let prepared: PreparedFix | null = null;
    let error: string | undefined = unresolved;
    let noFix: string | undefined;
    const started = d.clock.now();
    const fix = this.c.clusters.of(inc.cluster);
    try {
      if (!unresolved) {
        const resolved = await resolveNode(inc.node, fix);
        report = await diagnoseNode(inc.node, fix, resolved);
        const candidate = report.reachable ? report.findings.find((f) => f.role === 'root-cause' && f.runbook) : undefined;
        if (candidate) {
          try {
            prepared = await planFix(inc.node, resolved.access, report, candidate, fix);
          } catch (err) {
            // The diagnosis stands; only its fix cannot run here (the runbook's own check refused).
            if (!(err instanceof NodediagError && err.code === 'NO_RUNBOOK')) throw err;
            noFix = d.fix.redact(err.message);
          }
        }
      }
    } catch (err) {
      error = d.fix.redact(err instanceof NodediagError ? err.describe() : errorMessage(err));
    }
    const seconds = (d.clock.now() - started) / 1000;
    this.c.metrics.diagnosis(error ? 'error' : !report!.reachable ? 'unreachable' : report!.findings.length ? 'findings' : 'healthy', seconds, report?.findings.map((f) => f.id) ?? []);
    // An unknown node is not a fleet signal; one that answered is.
    if (report) await rails.record(inc, unhealthy(report) ? 'unhealthy' : 'healthy');
    if (prepared) await rails.refresh();
    const escalation = prepared ? rails.budgetSpent(inc) : null;
    const storm = prepared && !escalation ? rails.stormNow(inc.cluster ?? DEFAULT_CLUSTER) : null;
    const done = await record.apply(inc.id, {
      type: 'diagnosed',
      result: {
        ...(report ? { report: reportJson(report), findings: report.findings } : {}),
        ...(report && (prepared?.finding.id ?? report.findings[0]?.id) ? { finding: prepared?.finding.id ?? report.findings[0]!.id } : {}),
        ...(error ? { error } : {}),
        ...(prepared
          ? { plan: storePlan(prepared.plan), ...(prepared.preview !== undefined ? { preview: prepared.preview } : {}), expiresAt: new Date(d.clock.now() + d.approvalTtlMs).toISOString() }
          : {}),
        storm,
        escalation,
        ...(noFix ? { noFix } : {}),
        summary: error
          ? `diagnosis failed: ${error}`
          : `diagnosed: ${report!.findings.map((f) => f.id).join(', ') || 'healthy'}${noFix ? ` — no fix offered: ${noFix}` : ''}${prepared ? (escalation ? ` — no fix offered: ${escalation}` : ` — fix offered (${prepared.plan.runbook}, plan ${shortHash(prepared.plan.hash)})${storm ? `; storm: two approvers needed (${storm.why})` : ''}`) : ''}`,
      },
    });
    if ('reason' in done) return;
    // The decision is on record before anyone can see the card that shows it.
    if (escalation) record.audit(done, 'escalated', 'nodediag', { reason: escalation });
    if (storm) record.audit(done, 'storm-gate', 'nodediag', { why: storm.why, nodes: storm.nodes });
    await record.publish(done);
    if (receivedAt !== undefined) this.c.metrics.alertToCard((d.clock.now() - receivedAt) / 1000);
    // After the card's first update, so the root cause is not held behind a paced thread post.
    if (done.threadKey === done.messageKey && !done.origin) await record.thread(done, d.views.requested(done), `${done.id}:requested`);
    if (storm) await this.spreadStorm(storm);
  }

  /**
   * When the storm gate engages, fixes already offered to one approver are
   * held too: their cards say so and need two approvers from now on.
   */
  private async spreadStorm(storm: Storm): Promise<void> {
    const { d, record } = this.c;
    if (this.stormShown && this.stormShown.nodes.join() === storm.nodes.join()) return;
    this.stormShown = storm;
    for (const open of await d.store.list(['awaiting-approval'])) {
      if (open.state !== 'awaiting-approval' || open.storm) continue;
      const held = await record.apply(open.id, { type: 'storm-engaged', storm });
      if ('reason' in held) continue;
      // The card says it; a thread note per held card would only add to the storm in the channel.
      await record.publish(held);
      record.audit(held, 'storm-gate', 'nodediag', { why: storm.why, nodes: storm.nodes });
    }
  }

  /** `/diag -l selector`: one summary message, filled in when every node is diagnosed. */
  async fleet(req: FleetRequest): Promise<Refusal | null> {
    const { d } = this.c;
    const where = resolveCluster(this.c.clusters.index, { channel: req.channel, ...(req.cluster ? { cluster: req.cluster } : {}) });
    if ('reason' in where) return where;
    const deps = this.c.clusters.of(where.cluster);
    if (!this.slots.tryAcquire()) return { reason: 'nodediag is busy; try again in a minute.' };
    const key = `fleet-${newIncidentId()}`;
    try {
      await d.outbox.enqueue({ op: 'post', key, channel: req.channel, message: d.views.fleet(req.selector, req.user, null), ...(req.responseUrl ? { responseUrl: req.responseUrl } : {}) });
    } catch (err) {
      this.slots.release();
      return { reason: `nodediag cannot post the fleet summary: ${errorMessage(err)}` };
    }
    this.c.work.spawn(async () => {
      try {
        const names = await nodesForSelector(req.selector, deps);
        // How far it is, at most every few seconds: a fleet of hundreds takes a while, and every update is a Slack call.
        const progress = { done: 0, total: new Set(names.map((n) => n.name)).size, notHealthy: 0 };
        const tell = () => d.outbox.enqueue({ op: 'update', key, channel: req.channel, message: d.views.fleet(req.selector, req.user, null, { ...progress }) });
        await tell();
        let toldAt = d.clock.now();
        const entries = await diagnoseFleet(names, deps, d.fleetConcurrency, (entry, done) => {
          progress.done = done;
          if ('error' in entry || !entry.reachable || entry.findings.length) progress.notHealthy += 1;
          if (d.clock.now() - toldAt < FLEET_PROGRESS_MS || done === progress.total) return;
          toldAt = d.clock.now();
          void tell().catch(() => undefined);
        });
        await d.outbox.enqueue({ op: 'update', key, channel: req.channel, message: d.views.fleet(req.selector, req.user, entries) });
      } catch (err) {
        await d.outbox.enqueue({ op: 'update', key, channel: req.channel, message: { text: `Fleet ${req.selector}: ${d.fix.redact(errorMessage(err))}` } });
      } finally {
        this.slots.release();
      }
    });
    return null;
  }
}
