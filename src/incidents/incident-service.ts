/**
 * The incident story, independent of Bolt: diagnose a node for a channel,
 * offer the fix, check approvals (second person, allowed, not expired, once),
 * run it with the thread as audit trail, close with a summary and offer the
 * follow-up. Every state change is a compare-and-set on the durable store, so
 * a double click or a Slack retry never runs anything twice. Slack output goes
 * through the outbox: a Slack outage delays the thread, never the fix.
 */
import { diagnoseNode, resolveNode, type DiagnosisReport } from '../diagnose/run-diagnosis.js';
import { diagnoseFleet, nodesForSelector } from '../diagnose/fleet.js';
import { reportJson } from '../diagnose/report-json.js';
import { Semaphore } from '../concurrency.js';
import { AuditError, LockHeldError, NodediagError, errorMessage } from '../errors.js';
import type { ChatMessage, ChatPort, Clock, Logger } from '../ports.js';
import type { RunEvent } from '../runbooks/execute.js';
import { planFix, runFix, type FixDeps, type PreparedFix } from '../runbooks/fix-service.js';
import type { LockHandle } from '../runbooks/lock.js';
import { expandPlan, shortHash, storePlan } from '../runbooks/plan.js';
import { INCIDENT_ID, newIncidentId, offerOf, TERMINAL_STATES, type Incident, type IncidentIn, type IncidentState, type Outcome } from './incident.js';
import { isExpired, isRefusal, STATE_REFUSAL, transition, type IncidentEvent, type Refusal } from './transitions.js';
import type { AccessRules, IncidentViews } from './views.js';
import type { Outbox, OutboxOp } from './outbox.js';
import { ConflictError, type IncidentStore } from './store.js';
import { clusterNodeKey, DEFAULT_CLUSTER, resolveCluster, splitClusterNodeKey, type ClusterIndex } from '../clusters/clusters.js';
import { lastStepsStarted } from './audit-log.js';
import { FixClaims } from './fix-claims.js';
import type { AlertSource } from '../alerts/alertmanager.js';
import { NO_METRICS, type MetricsSink } from '../metrics.js';
import { activePause, budgetRefusal, stormNow, type Pause, type RailsConfig, type Storm } from '../rails/gates.js';
import type { RailsMemory } from '../rails/ledger.js';

/** Collaborators of the incident service. */
export interface IncidentServiceDeps {
  fix: FixDeps;
  store: IncidentStore;
  outbox: Outbox;
  /** For replies that cannot wait in the outbox: modals (trigger ids expire in 3 s). */
  chat: ChatPort;
  access: AccessRules;
  /** How incidents are shown (Slack's Block Kit in the bot). */
  views: IncidentViews;
  clock: Clock;
  logger: Logger;
  approvalTtlMs: number;
  maxConcurrentDiagnoses: number;
  fleetConcurrency: number;
  auditPath: string;
  /** The fleet safety rails: their settings, memory, and the nodes of each cluster (rails keys, see {@link railsKey}). */
  rails: { config: RailsConfig; ledger: RailsMemory; scope: (cluster: string) => ReadonlySet<string> };
  /**
   * The clusters: what resolution needs, and each one's own access (inventory,
   * Kubernetes, lock). Absent: one cluster, {@link fix}, named {@link DEFAULT_CLUSTER}.
   */
  clusters?: { index: ClusterIndex[]; fix: ReadonlyMap<string, FixDeps> };
  metrics?: MetricsSink;
  /** Other replicas share the store: what they are doing right now is not this process's leftover. */
  sharedStore?: boolean;
  /** Between an approval and the node's lock being taken (re-plan, preflight) no lock is held yet: not a sign of a dead process before this long. */
  takeoverGraceMs?: number;
}

/** What the storm gate counts as an unhealthy node: unreachable, or a critical or high root cause (advice-level findings are not). */
function unhealthy(report: DiagnosisReport): boolean {
  return !report.reachable || report.findings.some((f) => f.role === 'root-cause' && (f.severity === 'critical' || f.severity === 'high'));
}

/** How the rails know a node: its name, qualified by its cluster when there are several. */
export function railsKey(cluster: string | undefined, node: string): string {
  return clusterNodeKey(railsCluster(cluster), node);
}

/** The cluster part of a rails key: none for the unnamed cluster. */
function railsCluster(cluster: string | undefined): string | undefined {
  return cluster === DEFAULT_CLUSTER ? undefined : cluster;
}

/** Who opens an incident from an alert (not a Slack user). */
export const ALERT_REQUESTER = 'alertmanager';

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


export class IncidentService {
  private readonly diagnoses: Semaphore;
  /** Fix slots per cluster. */
  private readonly fixSlots = new Map<string, Semaphore>();
  /** Rails key → incident of each fix holding a cluster fix slot. */
  private readonly fixing = new Map<string, string>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly metrics: MetricsSink;
  private readonly claims: FixClaims;
  private stormShown: Storm | null = null;

  constructor(private readonly d: IncidentServiceDeps) {
    this.diagnoses = new Semaphore(d.maxConcurrentDiagnoses);
    this.metrics = d.metrics ?? NO_METRICS;
    this.claims = new FixClaims((cluster) => this.fixOf(cluster).lock, { shared: Boolean(d.sharedStore), slots: d.rails.config.maxConcurrentFixes, clock: d.clock, takeoverGraceMs: d.takeoverGraceMs ?? 30_000 });
  }

  /** The pause in force, if any. */
  pauseNow(): Pause | null {
    return activePause(this.d.rails.ledger.storedPause(), this.d.clock.now());
  }

  /** The clusters as resolution sees them (one, unnamed, when none are configured). */
  private get clusterIndex(): ClusterIndex[] {
    return this.d.clusters?.index ?? [{ name: DEFAULT_CLUSTER, nodes: new Set(), channels: [] }];
  }

  /** The cluster names, first the default one. */
  private get clusterNames(): string[] {
    return this.clusterIndex.map((c) => c.name);
  }

  /** The access to the incident's cluster. */
  private fixOf(cluster: string | undefined): FixDeps {
    return (cluster && this.d.clusters?.fix.get(cluster)) || this.d.fix;
  }

  private slotsOf(cluster: string | undefined): Semaphore {
    const name = cluster ?? DEFAULT_CLUSTER;
    let s = this.fixSlots.get(name);
    if (!s) this.fixSlots.set(name, (s = new Semaphore(this.d.rails.config.maxConcurrentFixes)));
    return s;
  }

  /** The storm, if the gate holds now in the cluster (in any cluster when none is named). */
  stormNow(cluster?: string): Storm | null {
    for (const c of cluster ? [cluster] : this.clusterNames) {
      const storm = stormNow(this.d.rails.ledger.recent(), this.d.rails.scope(c), this.d.clock.now(), this.d.rails.config);
      if (storm) return storm;
    }
    return null;
  }

  /** Approved fixes waiting for a cluster fix slot. */
  get fixesQueued(): number {
    return [...this.fixSlots.values()].reduce((n, s) => n + s.waiting, 0);
  }

  private budgetRefusal(inc: Incident): string | null {
    return budgetRefusal(this.d.rails.ledger.recent(), railsKey(inc.cluster, inc.node), this.d.clock.now(), this.d.rails.config);
  }

  /** Records a fleet signal; a failed write is logged (a fix run's is thrown: the run then does not start). */
  private async record(inc: Incident, kind: 'incident-opened' | 'unhealthy' | 'healthy' | 'fix-run'): Promise<void> {
    try {
      await this.d.rails.ledger.record(railsKey(inc.cluster, inc.node), kind);
    } catch (err) {
      this.d.logger.error('rails ledger write failed', { error: errorMessage(err) });
      if (kind === 'fix-run') throw err;
    }
  }

  /** Loads what other replicas recorded (pause, fix runs, unhealthy nodes) before a rails decision. */
  private async freshRails(): Promise<void> {
    try {
      await this.d.rails.ledger.refresh();
    } catch (err) {
      this.d.logger.error('rails ledger read failed; deciding on what was last read', { error: errorMessage(err) });
    }
  }

  /** Resolves when background work started so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.background.size) await Promise.allSettled([...this.background]);
  }

  private spawn(work: () => Promise<unknown>): void {
    void this.track(work).catch((err) => this.d.logger.error('background work failed', { error: this.d.fix.redact(errorMessage(err)) }));
  }

  /** Runs work that {@link idle} must wait for (listeners wrap what they do after the ack). */
  track<T>(work: () => Promise<T>): Promise<T> {
    const p = work();
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.background.add(settled);
    void settled.finally(() => this.background.delete(settled));
    return p;
  }

  private now(): string {
    return new Date(this.d.clock.now()).toISOString();
  }

  private audit(inc: Incident, type: string, actor: string, data?: Record<string, unknown>): void {
    try {
      this.fixOf(inc.cluster).audit.append({ type, node: inc.node, actor, incident: inc.id, ...(data ? { data } : {}) });
    } catch (err) {
      this.d.logger.error('audit log write failed', { error: errorMessage(err) });
    }
  }

  /**
   * Changes an incident with compare-and-set; `change` returns the new
   * incident, or a refusal. Serialised per incident in this process; a change
   * made by another process surfaces as a conflict and is re-evaluated.
   */
  private async mutate(id: string, change: (inc: Incident) => Incident | Refusal): Promise<Incident | Refusal> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.then(async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const cur = await this.d.store.get(id);
        if (!cur) return { reason: 'This incident is unknown.', hint: 'Run /diag again.' } satisfies Refusal;
        const next = change(structuredClone(cur));
        if ('reason' in next) return next;
        next.version = cur.version + 1;
        try {
          await this.d.store.put(next);
          return next;
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
      }
      return { reason: 'This incident is changing too fast; try again.' } satisfies Refusal;
    });
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    // Forget the chain once it is idle, or every incident ever seen would stay in memory.
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return run;
  }

  /** Applies one event of the state machine with compare-and-set. */
  private apply(id: string, event: IncidentEvent | ((cur: Incident) => IncidentEvent)): Promise<Incident | Refusal> {
    return this.mutate(id, (cur) => transition(cur, typeof event === 'function' ? event(cur) : event, this.d.clock.now()));
  }

  private publish(inc: Incident): Promise<void> {
    return this.d.outbox.enqueue({ op: 'update', key: inc.messageKey, channel: inc.channel, message: this.d.views.card(inc, this.pauseNow()) });
  }

  private async thread(inc: Incident, message: { text: string; blocks?: unknown[] }, key = `${inc.id}:${Math.random().toString(36).slice(2, 10)}`): Promise<string> {
    await this.d.outbox.enqueue({ op: 'post', key, channel: inc.channel, threadKey: inc.threadKey, message });
    return key;
  }

  // ── diagnosis ───────────────────────────────────────────────────────
  /** Starts a diagnosis; the incident message appears at once and fills in when the diagnosis ends. */
  async diagnose(req: DiagnoseRequest): Promise<Incident | Refusal> {
    const waiting = !this.diagnoses.tryAcquire();
    if (waiting && !req.waitForSlot) {
      return { reason: `nodediag is busy (${this.d.maxConcurrentDiagnoses} diagnoses running); try again in a minute.` };
    }
    const where = resolveCluster(this.clusterIndex, { node: req.node, channel: req.channel, ...(req.cluster ? { cluster: req.cluster } : {}) });
    // A person is told at once; an alert still gets its card, saying why nothing was diagnosed.
    if ('reason' in where && !req.origin) {
      if (!waiting) this.diagnoses.release();
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
      createdAt: this.now(),
      state: 'diagnosing',
      ...(req.origin ? { origin: req.origin } : {}),
      ...(req.alerts ? { alerts: req.alerts } : {}),
      timeline: [{ at: this.now(), who: req.user, what: req.origin ? `alert ${req.origin.alertname} fired for ${req.node}` : `asked for a diagnosis of ${req.node}` }],
    };
    try {
      await this.d.store.create(inc);
      await this.d.outbox.enqueue({ op: 'post', key, channel: inc.channel, ...(req.threadKey ? { threadKey: req.threadKey } : {}), ...(req.responseUrl ? { responseUrl: req.responseUrl } : {}), message: this.d.views.card(inc, null) });
    } catch (err) {
      if (!waiting) this.diagnoses.release();
      return { reason: `nodediag cannot record the incident: ${errorMessage(err)}` };
    }
    // Recorded before the diagnosis starts (its gate reads them), without holding the acknowledgement.
    const opened = this.record(inc, 'incident-opened')
      // An alert says the node is unhealthy before the diagnosis does: a storm of alerts trips the gate at once.
      .then(() => (req.origin ? this.record(inc, 'unhealthy') : undefined));
    this.audit(inc, req.origin ? 'alert-opened-incident' : 'diagnosis-requested', req.user, { channel: req.channel, ...(req.origin ? { alert: req.origin.alertname } : {}) });
    this.spawn(async () => {
      await opened;
      if (waiting) await this.diagnoses.acquire();
      try {
        await this.finishDiagnosis(inc, req.receivedAt, 'reason' in where ? `${where.reason} ${where.hint ?? ''}`.trim() : undefined);
      } finally {
        this.diagnoses.release();
      }
    });
    return inc;
  }

  private async finishDiagnosis(inc: Incident, receivedAt?: number, unresolved?: string): Promise<void> {
    let report: DiagnosisReport | null = null;
    let prepared: PreparedFix | null = null;
    let error: string | undefined = unresolved;
    const started = this.d.clock.now();
    const fix = this.fixOf(inc.cluster);
    try {
      if (!unresolved) {
        const resolved = await resolveNode(inc.node, fix);
        report = await diagnoseNode(inc.node, fix, resolved);
        const candidate = report.reachable ? report.findings.find((f) => f.role === 'root-cause' && f.runbook) : undefined;
        if (candidate) prepared = await planFix(inc.node, resolved.access, report, candidate, fix);
      }
    } catch (err) {
      error = this.d.fix.redact(err instanceof NodediagError ? err.describe() : errorMessage(err));
    }
    const seconds = (this.d.clock.now() - started) / 1000;
    this.metrics.diagnosis(error ? 'error' : !report!.reachable ? 'unreachable' : report!.findings.length ? 'findings' : 'healthy', seconds, report?.findings.map((f) => f.id) ?? []);
    // An unknown node is not a fleet signal; one that answered is.
    if (report) await this.record(inc, unhealthy(report) ? 'unhealthy' : 'healthy');
    if (prepared) await this.freshRails();
    const escalation = prepared ? this.budgetRefusal(inc) : null;
    const storm = prepared && !escalation ? this.stormNow(inc.cluster ?? DEFAULT_CLUSTER) : null;
    const done = await this.apply(inc.id, {
      type: 'diagnosed',
      result: {
        ...(report ? { report: reportJson(report), findings: report.findings } : {}),
        ...(report && (prepared?.finding.id ?? report.findings[0]?.id) ? { finding: prepared?.finding.id ?? report.findings[0]!.id } : {}),
        ...(error ? { error } : {}),
        ...(prepared
          ? { plan: storePlan(prepared.plan), ...(prepared.preview !== undefined ? { preview: prepared.preview } : {}), expiresAt: new Date(this.d.clock.now() + this.d.approvalTtlMs).toISOString() }
          : {}),
        storm,
        escalation,
        summary: error
          ? `diagnosis failed: ${error}`
          : `diagnosed: ${report!.findings.map((f) => f.id).join(', ') || 'healthy'}${prepared ? (escalation ? ` — no fix offered: ${escalation}` : ` — fix offered (${prepared.plan.runbook}, plan ${shortHash(prepared.plan.hash)})${storm ? `; storm: two approvers needed (${storm.why})` : ''}`) : ''}`,
      },
    });
    if ('reason' in done) return;
    await this.publish(done);
    if (receivedAt !== undefined) this.metrics.alertToCard((this.d.clock.now() - receivedAt) / 1000);
    // After the card's first update, so the root cause is not held behind a paced thread post.
    if (done.threadKey === done.messageKey && !done.origin) await this.thread(done, this.d.views.requested(done), `${done.id}:requested`);
    if (escalation) this.audit(done, 'escalated', 'nodediag', { reason: escalation });
    if (storm) {
      this.audit(done, 'storm-gate', 'nodediag', { why: storm.why, nodes: storm.nodes });
      await this.spreadStorm(storm);
    }
  }

  /**
   * When the storm gate engages, fixes already offered to one approver are
   * held too: their cards say so and need two approvers from now on.
   */
  private async spreadStorm(storm: Storm): Promise<void> {
    if (this.stormShown && this.stormShown.nodes.join() === storm.nodes.join()) return;
    this.stormShown = storm;
    for (const open of await this.d.store.list(['awaiting-approval'])) {
      if (open.state !== 'awaiting-approval' || open.storm) continue;
      const held = await this.apply(open.id, { type: 'storm-engaged', storm });
      if ('reason' in held) continue;
      // The card says it; a thread note per held card would only add to the storm in the channel.
      await this.publish(held);
      this.audit(held, 'storm-gate', 'nodediag', { why: storm.why, nodes: storm.nodes });
    }
  }

  /**
   * A note in an incident's thread from outside (alerts joining or
   * resolving), with an optional change to the incident. With `slot`, the
   * note is one message kept up to date (posted once, then edited), so a
   * burst of alerts is one note, not one per alert.
   */
  async note(id: string, text: string, alerts?: { alerts: NonNullable<Incident['alerts']>; what: string }, slot?: string): Promise<Incident | null> {
    let first = true;
    const done = await this.mutate(id, (cur) => {
      first = !slot || !(cur.notes ?? []).includes(slot);
      if (!alerts && !slot) return cur;
      return transition(cur, { type: 'alerts', alerts: alerts?.alerts ?? cur.alerts ?? {}, what: alerts?.what ?? 'note', ...(slot ? { note: slot } : {}) }, this.d.clock.now());
    });
    if (isRefusal(done)) return null;
    if (alerts) await this.publish(done);
    if (!slot) await this.thread(done, { text });
    else if (first) await this.thread(done, { text }, `${id}:note:${slot}`);
    else await this.d.outbox.enqueue({ op: 'update', key: `${id}:note:${slot}`, channel: done.channel, message: { text } });
    return done;
  }

  /** The stored incident (read-only). */
  get(id: string): Promise<Incident | null> {
    return this.d.store.get(id);
  }

  // ── pause ───────────────────────────────────────────────────────────
  /** `/diag pause <duration> <reason>`: no fix starts until it ends or someone resumes. */
  async pause(user: string, channel: string, durationMs: number, reason: string): Promise<Refusal | null> {
    const refusal = this.d.access.requestRefusal(user, channel);
    if (refusal) return refusal;
    const at = this.now();
    const until = new Date(this.d.clock.now() + durationMs).toISOString();
    const p: Pause = { by: user, reason, at, until, channel };
    await this.d.rails.ledger.setPause(p);
    this.d.fix.audit.append({ type: 'fixes-paused', node: '*', actor: user, data: { until, reason, channel } });
    await this.d.outbox.enqueue({ op: 'post', key: `pause-${newIncidentId()}`, channel, message: this.d.views.paused(user, until, reason) });
    for (const open of await this.d.store.list(['awaiting-approval'])) await this.publish(open);
    return null;
  }

  /** `/diag resume`: fixes may run again (an approver's call). */
  async resume(user: string, channel: string): Promise<Refusal | null> {
    const refusal = await this.d.access.approveRefusal(user, channel, '');
    if (refusal) return { reason: 'Only an approver can resume fixes.', hint: refusal.hint };
    await this.freshRails();
    const was = this.pauseNow();
    if (!was) return { reason: 'Fixes are not paused.' };
    await this.d.rails.ledger.setPause(null);
    this.d.fix.audit.append({ type: 'fixes-resumed', node: '*', actor: user, data: { pausedBy: was.by, reason: was.reason } });
    await this.d.outbox.enqueue({ op: 'post', key: `resume-${newIncidentId()}`, channel, message: this.d.views.resumed(user, was.by, was.reason) });
    for (const open of await this.d.store.list(['awaiting-approval'])) await this.publish(open);
    return null;
  }

  private pauseRefusal(): Refusal | null {
    const p = this.pauseNow();
    return p ? { reason: `Fixes are paused by <@${p.by}> until ${p.until.slice(11, 16)} UTC: ${p.reason}`, hint: 'An approver can end the pause with /diag resume.' } : null;
  }

  /** `/diag -l selector`: one summary message. */
  async fleet(req: { selector: string; cluster?: string; channel: string; user: string; responseUrl?: string }): Promise<Refusal | null> {
    const where = resolveCluster(this.clusterIndex, { channel: req.channel, ...(req.cluster ? { cluster: req.cluster } : {}) });
    if ('reason' in where) return where;
    const deps = this.fixOf(where.cluster);
    if (!this.diagnoses.tryAcquire()) return { reason: 'nodediag is busy; try again in a minute.' };
    const key = `fleet-${newIncidentId()}`;
    await this.d.outbox.enqueue({ op: 'post', key, channel: req.channel, message: this.d.views.fleet(req.selector, req.user, null), ...(req.responseUrl ? { responseUrl: req.responseUrl } : {}) });
    this.spawn(async () => {
      try {
        const names = await nodesForSelector(req.selector, deps);
        const entries = await diagnoseFleet(names, deps, this.d.fleetConcurrency);
        await this.d.outbox.enqueue({ op: 'update', key, channel: req.channel, message: this.d.views.fleet(req.selector, req.user, entries) });
      } catch (err) {
        await this.d.outbox.enqueue({ op: 'update', key, channel: req.channel, message: { text: `Fleet ${req.selector}: ${this.d.fix.redact(errorMessage(err))}` } });
      } finally {
        this.diagnoses.release();
      }
    });
    return null;
  }

  // ── buttons ─────────────────────────────────────────────────────────
  private async load(id: string, channel: string | null): Promise<Incident | Refusal> {
    if (!INCIDENT_ID.test(id)) return { reason: 'That button does not belong to a nodediag incident.' };
    const inc = await this.d.store.get(id);
    if (!inc) return { reason: 'This incident is unknown to nodediag.', hint: 'Run /diag again.' };
    if (channel !== null && inc.channel !== channel) return { reason: "Act on an incident in the incident's own channel." };
    return inc;
  }

  /** Marks an awaiting incident expired (and re-diagnoses when asked by a click). */
  private async expire(inc: Incident, by?: string): Promise<void> {
    const exp = await this.apply(inc.id, { type: 'expire' });
    if (isRefusal(exp)) return;
    await this.publish(exp);
    await this.thread(exp, this.d.views.decision(exp, 'expired'));
    this.audit(exp, 'approval-expired', 'nodediag');
    if (by) await this.rediagnose(exp.id, by, exp.channel);
  }

  private expired(inc: Incident): boolean {
    return isExpired(inc, this.d.clock.now());
  }

  async dryRun(id: string, user: string, channel: string): Promise<Refusal | null> {
    const inc = await this.load(id, channel);
    if ('reason' in inc) return inc;
    const refusal = this.d.access.requestRefusal(user, channel);
    if (refusal && (await this.d.access.approveRefusal(user, channel, ''))) return refusal;
    const offer = offerOf(inc);
    if (!offer) return { reason: 'This incident has no fix to preview.' };
    let plan;
    try {
      plan = expandPlan(this.d.fix.catalogs, offer.plan);
    } catch (err) {
      return { reason: errorMessage(err) };
    }
    await this.thread(inc, this.d.views.dryRun(inc, plan, user));
    this.audit(inc, 'dry-run-shown', user);
    return null;
  }

  /** The Approve button: checks, then opens the confirmation with the exact steps. */
  async requestApproval(id: string, user: string, channel: string, triggerId: string): Promise<Refusal | null> {
    const inc = await this.load(id, channel);
    if ('reason' in inc) return inc;
    if (this.expired(inc)) {
      await this.expire(inc, user);
      return { reason: 'This approval request expired; nodediag is diagnosing the node again in the thread.' };
    }
    if (inc.state !== 'awaiting-approval') return { reason: STATE_REFUSAL[inc.state] ?? 'Nothing to approve.' };
    await this.freshRails();
    const refusal = (await this.d.access.approveRefusal(user, channel, inc.requester)) ?? this.pauseRefusal() ?? this.railsRefusal(inc);
    if (refusal) return refusal;
    if (inc.approvals?.includes(user)) return { reason: 'You have approved this fix already; it needs another approver (storm gate).' };
    try {
      await this.d.chat.openView(triggerId, this.d.views.approvalDialog(inc, expandPlan(this.d.fix.catalogs, inc.plan!)));
    } catch (err) {
      return { reason: `Slack did not open the confirmation (${errorMessage(err)}); click Approve again.` };
    }
    return null;
  }

  private railsRefusal(inc: Incident): Refusal | null {
    const budget = this.budgetRefusal(inc);
    return budget ? { reason: `No more fixes on ${inc.node} for now: ${budget}.`, hint: 'Escalate to the node owners; the thread has every earlier run.' } : null;
  }

  /** The confirmation was submitted: record the approval; once enough approvers agreed (two in a storm), run. */
  async confirmApproval(id: string, user: string): Promise<Refusal | null> {
    const loaded = await this.load(id, null);
    if ('reason' in loaded) return loaded;
    if (this.expired(loaded)) {
      await this.expire(loaded, user);
      return { reason: 'This approval request expired while the confirmation was open; nodediag is diagnosing again.' };
    }
    await this.freshRails();
    const refusal = (await this.d.access.approveRefusal(user, loaded.channel, loaded.requester)) ?? this.pauseRefusal() ?? this.railsRefusal(loaded);
    if (refusal) return refusal;
    // The gate is read again now: a storm that began after the card was posted holds this fix too.
    const storm = this.stormNow(loaded.cluster ?? DEFAULT_CLUSTER);
    const approved = await this.apply(id, (cur) => {
      const plan = offerOf(cur)?.plan;
      return { type: 'approve', user, runbook: plan?.runbook ?? '', planHash: plan ? shortHash(plan.hash) : '', storm };
    });
    if ('reason' in approved) return approved;
    if (approved.state === 'awaiting-approval') {
      this.audit(approved, 'storm-override-approval', user, { of: approved.approvalsNeeded, so_far: approved.approvals });
      await this.publish(approved);
      await this.thread(approved, { text: `:raised_hand: <@${user}> approved as 1 of ${approved.approvalsNeeded} (storm gate: ${approved.storm?.why ?? 'two approvers'}). A second approver must approve before anything runs.` });
      return null;
    }
    if (approved.state !== 'approved') return null;
    this.audit(approved, 'approved', user, { runbook: approved.plan.runbook, plan: shortHash(approved.plan.hash), approvers: approved.approvals });
    await this.publish(approved);
    await this.thread(approved, this.d.views.decision(approved, 'approved', user));
    this.spawn(() => this.run(approved, user));
    return null;
  }

  async reject(id: string, user: string, channel: string): Promise<Refusal | null> {
    const inc = await this.load(id, channel);
    if ('reason' in inc) return inc;
    const refusal = await this.d.access.rejectRefusal(user, channel, inc.requester);
    if (refusal) return refusal;
    const rejected = await this.apply(id, { type: 'reject', user });
    if ('reason' in rejected) return rejected;
    this.audit(rejected, 'rejected', user);
    await this.publish(rejected);
    await this.thread(rejected, this.d.views.decision(rejected, 'rejected', user));
    await this.thread(rejected, this.d.views.summary(rejected, this.d.auditPath), `${id}:summary`);
    return null;
  }

  /** A fresh diagnosis posted in the same thread. */
  async rediagnose(id: string, user: string, channel: string): Promise<Refusal | null> {
    const inc = await this.load(id, channel);
    if ('reason' in inc) return inc;
    const refusal = this.d.access.requestRefusal(user, channel);
    if (refusal) return refusal;
    if (!TERMINAL_STATES.has(inc.state)) return { reason: 'This incident is still open; act on it first.' };
    const next = await this.diagnose({ node: inc.node, cluster: inc.cluster ?? DEFAULT_CLUSTER, channel, user, threadKey: inc.threadKey });
    return 'reason' in next ? next : null;
  }

  // ── running ─────────────────────────────────────────────────────────
  /**
   * Runs an approved fix once a cluster fix slot is free (the card says what it waits for meanwhile):
   * first one of this process's slots, then one of the cluster's, which every process shares through
   * the fix lock (Kubernetes Leases with NODEDIAG_LOCK_BACKEND=lease), so replicas keep the limit too.
   */
  private async run(approved: IncidentIn<'approved'>, approver: string): Promise<void> {
    const slots = this.slotsOf(approved.cluster);
    // Held to the end: another process that finds this fix approved, queued, running or finishing knows from it that this one still lives.
    const carried = await this.claims.carry(approved).catch((err) => {
      this.d.logger.warn('cannot hold the incident lock; if this process stops before the fix ends, another replica sees it only by the node lock', { incident: approved.id, error: errorMessage(err) });
      return null;
    });
    let queued = false;
    const queue = async (waitingFor: string[]) => {
      if (queued) return;
      queued = true;
      const q = await this.apply(approved.id, { type: 'queue', waitingFor });
      if (!isRefusal(q)) await this.publish(q);
      this.audit(approved, 'fix-queued', 'nodediag', { waitingFor });
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
    const started = this.d.clock.now();
    let result = 'failed';
    let shared: LockHandle | null = null;
    try {
      try {
        shared = await this.claims.slot(approved, queue);
      } catch (err) {
        result = await this.notStarted(approved, `the cluster's fix slot could not be taken: ${this.d.fix.redact(errorMessage(err))}`, 'fix-not-started', {});
        return;
      }
      result = await this.runHoldingSlot(approved, approver);
    } finally {
      await carried?.release().catch((err) => this.d.logger.error('incident lock release failed (it lapses with its lease)', { error: errorMessage(err) }));
      await shared?.release().catch((err) => this.d.logger.error('fix slot release failed (it lapses with its lease)', { error: errorMessage(err) }));
      this.fixing.delete(key);
      slots.release();
      this.metrics.fixRun(approved.plan.runbook, result, (this.d.clock.now() - started) / 1000);
    }
  }

  /** Ends an approved fix before anything ran: the card, the summary and the audit say why. */
  private async notStarted(approved: IncidentIn<'approved'>, why: string, auditType: string, data: Record<string, unknown>): Promise<IncidentState> {
    const stopped = await this.apply(approved.id, { type: 'not-started', why });
    if (!isRefusal(stopped)) {
      await this.publish(stopped);
      await this.thread(stopped, this.d.views.summary(stopped, this.d.auditPath), `${approved.id}:summary`);
    }
    this.audit(approved, auditType, 'nodediag', { ...data, why });
    return 'aborted';
  }

  private async runHoldingSlot(queued: IncidentIn<'approved'>, approver: string): Promise<IncidentState> {
    const id = queued.id;
    const reread = await this.d.store.get(id);
    const approved = reread?.state === 'approved' ? reread : queued;
    // Paused while it waited (by this replica or another): nothing starts.
    await this.freshRails();
    const pause = this.pauseNow();
    if (pause) return this.notStarted(approved, `fixes were paused by <@${pause.by}> (${pause.reason})`, 'fix-not-started-paused', { pausedBy: pause.by });
    const stepKeys = new Map<number, string>();
    let outcomeState: IncidentState = 'failed';
    const finish = async (outcome: Outcome, what: string) => {
      const done = await this.apply(id, { type: 'finish', outcome, what });
      if (isRefusal(done)) return null;
      await this.publish(done);
      await this.thread(done, this.d.views.summary(done, this.d.auditPath), `${id}:summary`);
      return done;
    };
    try {
      // The retry budget counts this run before it starts: a run the ledger cannot record does not start.
      try {
        await this.record(approved, 'fix-run');
      } catch (err) {
        throw new AuditError('AUDIT_UNWRITABLE', `cannot record the fix run for the retry budget: ${errorMessage(err)}`, 'free disk space or fix permissions of NODEDIAG_STATE_DIR');
      }
      const deps = this.fixOf(approved.cluster);
      const { access } = await resolveNode(approved.node, deps);
      // The approval was given for the machine diagnosed: if the name now leads elsewhere, nothing runs.
      const diagnosedAt = approved.report?.host;
      if (diagnosedAt && access.target.host !== diagnosedAt) {
        return await this.notStarted(approved, `${approved.node} now resolves to ${access.target.host}, not ${diagnosedAt} where it was diagnosed; re-diagnose`, 'fix-not-started', { diagnosedAt, now: access.target.host });
      }
      const fix = { node: approved.node, access, plan: expandPlan(this.d.fix.catalogs, approved.plan) };
      const started = await this.apply(id, { type: 'start', total: fix.plan.steps.length });
      // The incident moved on meanwhile (another process said it was interrupted, or it was already run): this approval runs nothing.
      if (isRefusal(started)) {
        this.audit(approved, 'fix-not-started', 'nodediag', { why: started.reason });
        return 'aborted';
      }
      await this.publish(started);
      // The executor reports progress synchronously; its Slack writes go out in order through this queue.
      let progress: Promise<unknown> = Promise.resolve();
      const later = (work: () => Promise<unknown>) => {
        progress = progress.then(work).catch((err) => this.d.logger.error('progress post failed', { error: errorMessage(err) }));
      };
      const onEvent = (e: RunEvent) => {
        if (e.type === 'step-started') {
          const key = `${id}:step:${e.step.index}`;
          stepKeys.set(e.step.index, key);
          later(() => this.thread(approved, this.d.views.stepStarted(e.step, fix.plan), key));
          later(async () => {
            const cur = await this.apply(id, { type: 'progress', step: e.step.index, total: fix.plan.steps.length, title: e.step.title });
            if (!isRefusal(cur)) await this.publish(cur);
          });
        } else if (e.type === 'step-finished') {
          const key = stepKeys.get(e.record.index);
          const message = this.d.views.stepFinished(e.record, e.total);
          later(() => (key ? this.d.outbox.enqueue({ op: 'update', key, channel: approved.channel, message }) : this.thread(approved, message)));
        } else if (e.type === 'rechecked' && !e.holds) {
          later(() => this.thread(approved, { text: `${approved.finding} no longer holds on ${approved.node}; nothing was run.` }));
        }
      };
      const outcome = await runFix(fix, deps, { actor: approver, incident: id, onEvent });
      await progress;
      // The fix's own fresh diagnosis is the node's latest word for the storm gate.
      if (outcome.after) await this.record(approved, unhealthy(outcome.after) ? 'unhealthy' : 'healthy');
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
      const why = this.d.fix.redact(err instanceof NodediagError ? err.describe() : errorMessage(err));
      const state: IncidentState = err instanceof LockHeldError || err instanceof AuditError ? 'aborted' : outcomeState;
      await finish({ result: state, summary: `the fix could not run: ${why}`, steps: [], followUps: [], auditRange: null }, `the fix could not run: ${why}`);
      return state;
    }
  }

  /** After a fix: the next root cause with a runbook gets its own message and buttons in the thread. */
  private async offerFollowUp(done: Incident, after: DiagnosisReport, access: PreparedFix['access']): Promise<void> {
    const next = after.reachable ? after.findings.find((f) => f.role === 'root-cause' && f.runbook) : undefined;
    if (!next) return;
    let prepared: PreparedFix;
    try {
      prepared = await planFix(done.node, access, after, next, this.fixOf(done.cluster));
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
      createdAt: this.now(),
      state: 'awaiting-approval',
      report: reportJson(after),
      findings: after.findings,
      finding: next.id,
      plan: storePlan(prepared.plan),
      approvalsNeeded: 1,
      approvals: [],
      ...(prepared.preview !== undefined ? { preview: prepared.preview } : {}),
      expiresAt: new Date(this.d.clock.now() + this.d.approvalTtlMs).toISOString(),
      timeline: [{ at: this.now(), what: `follow-up of ${done.id}: ${next.id}` }],
    };
    await this.d.store.create(follow);
    await this.d.outbox.enqueue({ op: 'post', key: follow.messageKey, channel: follow.channel, threadKey: follow.threadKey, message: this.d.views.card(follow, this.pauseNow()) });
    await this.apply(done.id, { type: 'follow-up', id });
  }

  // ── housekeeping ────────────────────────────────────────────────────
  /** Closes approval requests whose window has passed (run every few seconds). */
  async expireDue(): Promise<number> {
    const due = (await this.d.store.list(['awaiting-approval'])).filter((i) => this.expired(i));
    for (const inc of due) await this.expire(inc);
    return due.length;
  }

  /**
   * Slack refused an incident's own message (the bot is not in the channel,
   * or the channel is gone): the incident is closed, and the requester is
   * told through the slash command's response_url how to fix it.
   */
  async undeliverable(op: OutboxOp, code: string): Promise<void> {
    if (op.op !== 'post') return;
    if (op.key.startsWith('fleet-')) {
      if (op.responseUrl) await this.tellRequester(op.responseUrl, this.d.views.undeliverable('the fleet summary', '/diag -l', code));
      return;
    }
    if (!op.key.endsWith(':msg')) return;
    const done = await this.apply(op.key.slice(0, -':msg'.length), { type: 'undeliverable', code });
    if (isRefusal(done)) return;
    this.audit(done, 'message-undeliverable', 'nodediag', { code });
    if (op.responseUrl) await this.tellRequester(op.responseUrl, this.d.views.undeliverable(`the incident for ${done.node}`, `/diag ${done.node}`, code));
  }

  private async tellRequester(responseUrl: string, message: ChatMessage): Promise<void> {
    try {
      await this.d.chat.respond(responseUrl, message);
    } catch (err) {
      this.d.logger.warn('could not tell the requester that the channel is unreachable', { error: errorMessage(err) });
    }
  }

  /**
   * After a restart: a fix that was running when the bot died is marked
   * interrupted in its thread and the audit log, its node lock is released,
   * and nothing is re-run without a new approval.
   */
  async recover(): Promise<number> {
    const stuck = await this.claims.orphaned(await this.d.store.list(['approved', 'running', 'diagnosing']));
    const inFlight = lastStepsStarted(this.d.auditPath, new Set(stuck.filter((i) => i.state === 'running').map((i) => i.id)));
    for (const inc of stuck) {
      const wasFixing = inc.state !== 'diagnosing';
      const logged = inFlight.get(inc.id);
      const done = await this.apply(inc.id, { type: 'interrupt', ...(logged ? { lastStep: logged } : {}) });
      if (isRefusal(done)) continue;
      if (wasFixing) {
        const at = done.state === 'interrupted' ? done.progress : undefined;
        const waitingFor = inc.state === 'approved' ? inc.waitingFor : undefined;
        this.audit(done, 'interrupted', 'nodediag', { step: at?.step ?? 0, title: at?.title ?? '' });
        await this.claims.release(inc);
        await this.thread(done, {
          text: waitingFor?.length
            ? `:warning: ${this.d.sharedStore ? 'the nodediag process holding this approved fix stopped' : 'nodediag restarted'} while it waited for the fix on ${waitingFor.join(', ')}; nothing ran. Nothing will run without a new approval: re-diagnose.`
            : `:warning: ${this.d.sharedStore ? 'the nodediag process running this fix stopped (its lease on the node lapsed)' : 'nodediag restarted while the fix ran'} (step ${at?.step ?? 0}/${at?.total ?? '?'}: ${at?.title ?? 'starting'}). ` +
              `The node's lock is released; nothing will re-run without a new approval. Re-diagnose to see the node now.`,
        });
        await this.thread(done, this.d.views.summary(done, this.d.auditPath), `${done.id}:summary`);
      }
      await this.publish(done);
    }
    return stuck.length;
  }

}
