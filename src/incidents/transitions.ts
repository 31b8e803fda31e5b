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
import { TERMINAL_STATES, type Incident, type IncidentState } from './incident.js';

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
  /** One line for the timeline. */
  summary: string;
}

/** The outcome of a fix run, as stored. */
export type Outcome = NonNullable<Incident['outcome']>;

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
  return inc.state === 'awaiting-approval' && !!inc.expiresAt && Date.parse(inc.expiresAt) <= nowMs;
}

/** The next incident, or why the event does not apply. Never mutates its input. */
export function transition(current: Incident, event: IncidentEvent, nowMs: number): Incident | Refusal {
  const at = new Date(nowMs).toISOString();
  const inc: Incident = structuredClone(current);
  const log = (what: string, who?: string) => inc.timeline.push({ at, ...(who ? { who } : {}), what });
  switch (event.type) {
    case 'diagnosed': {
      if (inc.state !== 'diagnosing') return { reason: 'This incident was diagnosed already.' };
      const r = event.result;
      // Nothing is offered where nobody can see it, nor past the retry budget.
      inc.state = r.plan && !inc.undeliverable && !r.escalation ? 'awaiting-approval' : 'closed';
      if (r.report) inc.report = r.report;
      if (r.findings) inc.findings = r.findings;
      if (r.finding) inc.finding = r.finding;
      if (r.error) inc.error = r.error;
      if (r.plan) {
        inc.plan = r.plan;
        if (r.preview !== undefined) inc.preview = r.preview;
        if (r.expiresAt) inc.expiresAt = r.expiresAt;
        inc.approvalsNeeded = r.storm ? 2 : 1;
        inc.approvals = [];
        if (r.storm) inc.storm = r.storm;
        if (r.escalation) inc.escalation = r.escalation;
      }
      log(r.summary);
      return inc;
    }
    case 'storm-engaged':
      if (inc.state !== 'awaiting-approval' || inc.storm) return { reason: 'not waiting for an approval, or held already' };
      inc.storm = event.storm;
      inc.approvalsNeeded = Math.max(2, inc.approvalsNeeded ?? 1);
      log(`storm gate engaged: ${event.storm.why}`);
      return inc;
    case 'approve': {
      if (inc.state !== 'awaiting-approval') return refuse(inc, 'Nothing to approve.');
      if (isExpired(inc, nowMs)) return { reason: 'This approval request has expired.' };
      const approvals = inc.approvals ?? [];
      if (approvals.includes(event.user)) return { reason: 'You have approved this fix already; it needs another approver (storm gate).' };
      // A storm that began after the card was posted holds this fix too.
      if (event.storm && !inc.storm) inc.storm = event.storm;
      inc.approvalsNeeded = Math.max(inc.approvalsNeeded ?? 1, inc.storm ? 2 : 1);
      inc.approvals = [...approvals, event.user];
      if (inc.approvals.length < inc.approvalsNeeded) {
        log(`approved (${inc.approvals.length} of ${inc.approvalsNeeded}: storm override)`, event.user);
        return inc;
      }
      inc.state = 'approved';
      inc.approvedBy = event.user;
      inc.approvedAt = at;
      const others = inc.approvals.slice(0, -1);
      log(`approved ${event.runbook} (plan ${event.planHash})${others.length ? ` with ${others.map((a) => `<@${a}>`).join(', ')} (storm override)` : ''}`, event.user);
      return inc;
    }
    case 'reject':
      if (inc.state !== 'awaiting-approval') return refuse(inc, 'Nothing to reject.');
      inc.state = 'rejected';
      inc.rejectedBy = event.user;
      log('rejected the fix', event.user);
      return inc;
    case 'expire':
      if (inc.state !== 'awaiting-approval') return { reason: 'not waiting for an approval' };
      if (!isExpired(inc, nowMs)) return { reason: 'the approval window is still open' };
      inc.state = 'expired';
      log('the approval window closed');
      return inc;
    case 'queue':
      if (inc.state !== 'approved') return refuse(inc, 'Only an approved fix waits for a fix slot.');
      inc.waitingFor = event.waitingFor;
      log(`queued: waiting for the fix on ${event.waitingFor.join(', ')} to finish`);
      return inc;
    case 'not-started':
      if (inc.state !== 'approved') return refuse(inc, 'Only an approved fix can be stopped before it starts.');
      inc.state = 'aborted';
      inc.waitingFor = undefined;
      inc.outcome = { result: 'aborted', summary: `not started: ${event.why}`, steps: [], followUps: [], auditRange: null };
      log(`not started: ${event.why}`);
      return inc;
    case 'start':
      if (inc.state !== 'approved') return refuse(inc, 'Only an approved fix starts.');
      inc.state = 'running';
      inc.waitingFor = undefined;
      inc.progress = { step: 0, total: event.total, title: 're-checking the finding' };
      return inc;
    case 'progress':
      if (inc.state !== 'running') return { reason: 'not running' };
      inc.progress = { step: event.step, total: event.total, title: event.title };
      return inc;
    case 'finish':
      // A fix that could not even start (no access, lock held, audit unwritable) ends from approved.
      if (inc.state !== 'running' && inc.state !== 'approved') return refuse(inc, 'No fix is running.');
      inc.state = event.outcome.result as IncidentState;
      inc.progress = undefined;
      inc.waitingFor = undefined;
      inc.outcome = event.outcome;
      log(event.what);
      return inc;
    case 'follow-up':
      if (!TERMINAL_STATES.has(inc.state)) return { reason: 'the fix has not ended' };
      inc.followUp = event.id;
      return inc;
    case 'undeliverable':
      if (inc.undeliverable) return { reason: 'already told' };
      inc.undeliverable = event.code;
      if (inc.state === 'awaiting-approval') inc.state = 'closed';
      log(`Slack refused the incident message (${event.code})`);
      return inc;
    case 'interrupt': {
      if (inc.state === 'diagnosing') {
        inc.state = 'closed';
        inc.error = 'nodediag restarted before the diagnosis finished; re-diagnose';
        log('diagnosis interrupted by a restart');
        return inc;
      }
      if (inc.state !== 'approved' && inc.state !== 'running') return refuse(inc, 'Nothing was in flight.');
      inc.state = 'interrupted';
      const last = event.lastStep;
      if (last && inc.progress && last.index > inc.progress.step) inc.progress = { ...inc.progress, step: last.index, title: last.title };
      log(`interrupted by a restart at step ${inc.progress?.step ?? 0}/${inc.progress?.total ?? '?'}`);
      return inc;
    }
    case 'alerts':
      inc.alerts = event.alerts;
      if (event.note && !(inc.notes ?? []).includes(event.note)) inc.notes = [...(inc.notes ?? []), event.note];
      log(event.what);
      return inc;
  }
}

/** Whether a transition's answer is a refusal. */
export function isRefusal(x: Incident | Refusal): x is Refusal {
  return 'reason' in x;
}
