/**
 * The incident state machine, pure: `transition(incident, event, now)`
 * returns the next incident or a refusal, and nothing else decides which
 * state follows which. The incident service only loads, calls this, and
 * stores with compare-and-set, so a double click or a Slack retry meets the
 * same refusal however it arrives.
 *
 *   diagnosing ──diagnosed──▶ awaiting-approval ──approve (enough)──▶ approved ──start──▶ running ──finish──▶ fixed | failed | aborted | not-needed
 *        │                      │  │  └─reject──▶ rejected                 │  └─not-started──▶ aborted
 *        └──▶ closed            │  └─expire──▶ expired                     └─(queue: stays approved, says for what)
 *                               └─approve (1 of 2, storm) stays awaiting-approval
 *   approved | running ──interrupt──▶ interrupted;  diagnosing ──interrupt──▶ closed
 */
import type { Finding } from '../diagnose/classify.js';
import type { ReportJson } from '../diagnose/report-json.js';
import type { Storm } from '../rails/gates.js';
import type { StoredPlan } from '../runbooks/plan.js';
import { TERMINAL_STATES, type Approval, type FixOffer, type Incident, type IncidentCore, type IncidentState, type Outcome } from './incident.js';

/** Why an event does not apply (said to whoever caused it). */
export interface Refusal {
  reason: string;
  hint?: string;
}

/** What a finished diagnosis brings. */
export interface DiagnosisResult {
  report?: ReportJson;
  findings?: Finding[];
  finding?: string;
  plan?: StoredPlan;
  preview?: string;
  error?: string;
  /** The fix offered, until this time (ISO). */
  expiresAt?: string;
  storm?: Storm | null;
  /** The retry budget is spent: nothing is offered. */
  escalation?: string | null;
  /** The root cause has a runbook, but it cannot be planned on this node (its preview refused): why. */
  noFix?: string | null;
  /** One line for the timeline. */
  summary: string;
}

/** The outcome of a fix run, as stored. */
export type { Outcome };

/** Everything that can happen to an incident. */
export type IncidentEvent =
  | { type: 'diagnosed'; result: DiagnosisResult }
  | { type: 'storm-engaged'; storm: Storm }
  | { type: 'approve'; user: string; runbook: string; planHash: string; storm: Storm | null }
  | { type: 'reject'; user: string }
  | { type: 'expire' }
  | { type: 'queue'; waitingFor: string[] }
  | { type: 'not-started'; why: string }
  | { type: 'start'; total: number }
  | { type: 'progress'; step: number; total: number; title: string }
  | { type: 'finish'; outcome: Outcome; what: string }
  | { type: 'follow-up'; id: string }
  | { type: 'undeliverable'; code: string }
  /** The bot restarted; `lastStep` is the step the audit log says was in flight (it may be ahead of the stored progress). */
  | { type: 'interrupt'; lastStep?: { index: number; title: string } }
  | { type: 'alerts'; alerts: NonNullable<Incident['alerts']>; what: string; note?: string };

/** What each state says to an approval, a rejection or a second click. */
export const STATE_REFUSAL: Partial<Record<IncidentState, string>> = {
  diagnosing: 'This incident is still being diagnosed.',
  approved: 'This fix has already been approved and is starting.',
  running: 'This fix is already running.',
  fixed: 'This fix has already run: the node was fixed.',
  failed: 'This fix has already run (it failed; see the thread).',
  aborted: 'This fix has already been tried (it refused to act; see the thread).',
  'not-needed': 'This fix was not needed any more; nothing ran.',
  rejected: 'This fix was rejected.',
  expired: 'This approval request has expired.',
  interrupted: 'This fix was interrupted by a restart; re-diagnose before approving again.',
  closed: 'There is nothing to approve on this incident.',
};

function refuse(inc: Incident, fallback: string): Refusal {
  return { reason: STATE_REFUSAL[inc.state] ?? fallback };
}

/** Whether an incident waits for an approval whose window has passed. */
export function isExpired(inc: Incident, nowMs: number): boolean {
  return inc.state === 'awaiting-approval' && Date.parse(inc.expiresAt) <= nowMs;
}

/** The fields every state keeps, taken from an incident in any state. */
function coreOf(inc: Incident): IncidentCore {
  const { id, version, node, cluster, channel, messageKey, threadKey, requester, undeliverable, createdAt, report, findings, finding, error, followUp, origin, alerts, notes, messages, timeline } = inc;
  const core: IncidentCore = { id, version, node, channel, messageKey, threadKey, requester, createdAt, timeline };
  return Object.assign(core, dropUndefined({ cluster, undeliverable, report, findings, finding, error, followUp, origin, alerts, notes, messages }));
}

function offerFields(inc: FixOffer): FixOffer {
  const { plan, preview, expiresAt, approvalsNeeded, approvals, storm } = inc;
  return { plan, expiresAt, approvalsNeeded, approvals, ...dropUndefined({ preview, storm }) };
}

function approvalFields(inc: Approval): Approval {
  return { approvedBy: inc.approvedBy, approvedAt: inc.approvedAt };
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The next incident, or why the event does not apply. Never mutates its input. */
export function transition(current: Incident, event: IncidentEvent, nowMs: number): Incident | Refusal {
  const at = new Date(nowMs).toISOString();
  const cur: Incident = structuredClone(current);
  const core = coreOf(cur);
  const log = (what: string, who?: string) => core.timeline.push({ at, ...(who ? { who } : {}), what });
  switch (event.type) {
    case 'diagnosed': {
      if (cur.state !== 'diagnosing') return { reason: 'This incident was diagnosed already.' };
      const r = event.result;
      Object.assign(core, dropUndefined({ report: r.report, findings: r.findings, finding: r.finding, error: r.error }));
      log(r.summary);
      const escalation = r.escalation ? { escalation: r.escalation } : {};
      if (!r.plan || !r.expiresAt) return { ...core, ...escalation, ...(r.noFix ? { noFix: r.noFix } : {}), state: 'closed' };
      const offer: FixOffer = { plan: r.plan, expiresAt: r.expiresAt, approvalsNeeded: r.storm ? 2 : 1, approvals: [], ...dropUndefined({ preview: r.preview, storm: r.storm ?? undefined }) };
      // Nothing is offered where nobody can see it, nor past the retry budget.
      if (cur.undeliverable || r.escalation) return { ...core, ...offer, ...escalation, state: 'closed' };
      return { ...core, ...offer, state: 'awaiting-approval' };
    }
    case 'storm-engaged':
      if (cur.state !== 'awaiting-approval' || cur.storm) return { reason: 'not waiting for an approval, or held already' };
      log(`storm gate engaged: ${event.storm.why}`);
      return { ...core, ...offerFields(cur), storm: event.storm, approvalsNeeded: Math.max(2, cur.approvalsNeeded), state: 'awaiting-approval' };
    case 'approve': {
      if (cur.state !== 'awaiting-approval') return refuse(cur, 'Nothing to approve.');
      if (isExpired(cur, nowMs)) return { reason: 'This approval request has expired.' };
      if (cur.approvals.includes(event.user)) return { reason: 'You have approved this fix already; it needs another approver (storm gate).' };
      // A storm that began after the card was posted holds this fix too.
      const storm = cur.storm ?? event.storm ?? undefined;
      const offer: FixOffer = { ...offerFields(cur), ...(storm ? { storm } : {}), approvalsNeeded: Math.max(cur.approvalsNeeded, storm ? 2 : 1), approvals: [...cur.approvals, event.user] };
      if (offer.approvals.length < offer.approvalsNeeded) {
        log(`approved (${offer.approvals.length} of ${offer.approvalsNeeded}: storm override)`, event.user);
        return { ...core, ...offer, state: 'awaiting-approval' };
      }
      const others = offer.approvals.slice(0, -1);
      log(`approved ${event.runbook} (plan ${event.planHash})${others.length ? ` with ${others.map((a) => `<@${a}>`).join(', ')} (storm override)` : ''}`, event.user);
      return { ...core, ...offer, approvedBy: event.user, approvedAt: at, state: 'approved' };
    }
    case 'reject':
      if (cur.state !== 'awaiting-approval') return refuse(cur, 'Nothing to reject.');
      log('rejected the fix', event.user);
      return { ...core, ...offerFields(cur), rejectedBy: event.user, state: 'rejected' };
    case 'expire':
      if (cur.state !== 'awaiting-approval') return { reason: 'not waiting for an approval' };
      if (!isExpired(cur, nowMs)) return { reason: 'the approval window is still open' };
      log('the approval window closed');
      return { ...core, ...offerFields(cur), state: 'expired' };
    case 'queue':
      if (cur.state !== 'approved') return refuse(cur, 'Only an approved fix waits for a fix slot.');
      log(`queued: waiting for the fix on ${event.waitingFor.join(', ')} to finish`);
      return { ...core, ...offerFields(cur), ...approvalFields(cur), waitingFor: event.waitingFor, state: 'approved' };
    case 'not-started':
      if (cur.state !== 'approved') return refuse(cur, 'Only an approved fix can be stopped before it starts.');
      log(`not started: ${event.why}`);
      return { ...core, ...offerFields(cur), ...approvalFields(cur), outcome: { result: 'aborted', summary: `not started: ${event.why}`, steps: [], followUps: [], auditRange: null }, state: 'aborted' };
    case 'start':
      if (cur.state !== 'approved') return refuse(cur, 'Only an approved fix starts.');
      return { ...core, ...offerFields(cur), ...approvalFields(cur), progress: { step: 0, total: event.total, title: 're-checking the finding' }, state: 'running' };
    case 'progress':
      if (cur.state !== 'running') return { reason: 'not running' };
      return { ...core, ...offerFields(cur), ...approvalFields(cur), progress: { step: event.step, total: event.total, title: event.title }, state: 'running' };
    case 'finish': {
      // A fix that could not even start (no access, lock held, audit unwritable) ends from approved.
      if (cur.state !== 'running' && cur.state !== 'approved') return refuse(cur, 'No fix is running.');
      const result = event.outcome.result;
      if (result !== 'fixed' && result !== 'failed' && result !== 'aborted' && result !== 'not-needed') return { reason: `not an outcome: ${result}` };
      log(event.what);
      return { ...core, ...offerFields(cur), ...approvalFields(cur), outcome: event.outcome, state: result };
    }
    case 'follow-up':
      if (!TERMINAL_STATES.has(cur.state)) return { reason: 'the fix has not ended' };
      return { ...cur, followUp: event.id };
    case 'undeliverable': {
      if (cur.undeliverable) return { reason: 'already told' };
      log(`Slack refused the incident message (${event.code})`);
      const told = { ...cur, timeline: core.timeline, undeliverable: event.code };
      return told.state === 'awaiting-approval' ? { ...core, undeliverable: event.code, ...offerFields(told), state: 'closed' } : told;
    }
    case 'interrupt': {
      if (cur.state === 'diagnosing') {
        log('diagnosis interrupted by a restart');
        return { ...core, error: 'nodediag restarted before the diagnosis finished; re-diagnose', state: 'closed' };
      }
      if (cur.state !== 'approved' && cur.state !== 'running') return refuse(cur, 'Nothing was in flight.');
      const known = cur.state === 'running' ? cur.progress : undefined;
      const last = event.lastStep;
      const progress = last && known && last.index > known.step ? { ...known, step: last.index, title: last.title } : known;
      log(`interrupted by a restart at step ${progress?.step ?? 0}/${progress?.total ?? '?'}`);
      return { ...core, ...offerFields(cur), ...approvalFields(cur), ...(progress ? { progress } : {}), state: 'interrupted' };
    }
    case 'alerts': {
      log(event.what);
      const notes = event.note && !(cur.notes ?? []).includes(event.note) ? [...(cur.notes ?? []), event.note] : cur.notes;
      return { ...cur, timeline: core.timeline, alerts: event.alerts, ...(notes ? { notes } : {}) };
    }
  }
}

/** Whether a transition's answer is a refusal. */
export function isRefusal(x: Incident | Refusal): x is Refusal {
  return 'reason' in x;
}
