/**
 * An incident: one diagnosis of one node in one channel, and what happened to
 * its fix. The plan lives here, on the server; Slack buttons carry only the
 * incident id. What an incident holds depends on its state (a union keyed by
 * `state`): an approved fix has its approver, a running one its progress, a
 * finished one its outcome — and nothing has them before.
 */
import { randomBytes } from 'node:crypto';
import type { Finding } from '../diagnose/classify.js';
import type { ReportJson } from '../diagnose/report-json.js';
import type { StepRecord } from '../runbooks/execute.js';
import type { AlertSource } from '../alerts/alertmanager.js';
import type { Storm } from '../rails/gates.js';
import type { StoredPlan } from '../runbooks/plan.js';

/** Where an incident is in its life. */
export type IncidentState =
  | 'diagnosing'
  /** Diagnosed with a runbook: waiting for an approval (until `expiresAt`). */
  | 'awaiting-approval'
  | 'approved'
  | 'running'
  | 'fixed'
  | 'failed'
  | 'aborted'
  | 'not-needed'
  | 'rejected'
  | 'expired'
  /** The bot stopped while the fix ran; nothing re-runs without a new approval. */
  | 'interrupted'
  /** Nothing to approve: healthy, advice only, or unreachable. */
  | 'closed';

export const TERMINAL_STATES: ReadonlySet<IncidentState> = new Set(['fixed', 'failed', 'aborted', 'not-needed', 'rejected', 'expired', 'interrupted', 'closed']);

/** One line of the incident's timeline. */
export interface TimelineEntry {
  at: string;
  who?: string;
  what: string;
}

/** What every incident has, whatever its state. */
export interface IncidentCore {
  id: string;
  /** Optimistic-concurrency version, bumped on every write. */
  version: number;
  node: string;
  /** The cluster the node is in, when the bot looks after several (absent: the only one). */
  cluster?: string;
  channel: string;
  /** The Slack message that shows this incident (its thread is the audit trail). */
  messageKey: string;
  /** The thread this incident lives in: its own message, or the root incident's for a follow-up. */
  threadKey: string;
  requester: string;
  /** Slack refused the incident message itself (the bot is not in the channel): nothing more is offered there. */
  undeliverable?: string;
  createdAt: string;
  /** The diagnosis (without raw observations); absent while diagnosing. */
  report?: ReportJson;
  findings?: Finding[];
  /** The finding the incident is about (the one offered for a fix, when there is a fix). */
  finding?: string;
  /** Why the diagnosis itself could not be made (unknown node, no access…). */
  error?: string;
  /** Incident id of the follow-up diagnosis posted in the same thread. */
  followUp?: string;
  /** The alert that opened this incident (absent: someone typed /diag). */
  origin?: AlertSource;
  /** Every alert that joined this incident, by alert key: its name and whether it still fires. */
  alerts?: Record<string, { name: string; status: 'firing' | 'resolved'; at: string }>;
  /** Thread notes kept as one message each, edited as they change (e.g. `alerts`). */
  notes?: string[];
  /** Slack's ts of the messages another replica may update or thread under, by outbox key (shared store only). */
  messages?: Record<string, string>;
  timeline: TimelineEntry[];
}

/** A fix offered for approval: its plan (inputs and hash; the scripts are made from the catalog) and who approved it so far. */
export interface FixOffer {
  plan: StoredPlan;
  /** Output of the runbook's read-only preview, if it has one. */
  preview?: string;
  /** The approval window's end (ISO). */
  expiresAt: string;
  /** Approvers needed: 1, or 2 when the storm gate holds. */
  approvalsNeeded: number;
  approvals: string[];
  /** The storm gate held when the fix was offered or approved. */
  storm?: Storm;
}

/** Who approved, and when. */
export interface Approval {
  approvedBy: string;
  approvedAt: string;
}

/** Where a running fix is. */
export interface Progress {
  step: number;
  total: number;
  title: string;
}

/** How a fix run ended. */
export interface Outcome {
  result: string;
  summary: string;
  steps: StepRecord[];
  followUps: string[];
  auditRange: { first: number; last: number } | null;
  after?: ReportJson | null;
}

/** The stored incident: what it holds depends on its state. */
export type Incident =
  | (IncidentCore & { state: 'diagnosing' })
  /** Nothing to approve (healthy, advice only, unreachable, undeliverable) or the retry budget is spent; a plan may have been made and not offered. */
  | (IncidentCore & Partial<FixOffer> & { state: 'closed'; escalation?: string; noFix?: string })
  | (IncidentCore & FixOffer & { state: 'awaiting-approval' })
  | (IncidentCore & FixOffer & { state: 'rejected'; rejectedBy: string })
  | (IncidentCore & FixOffer & { state: 'expired' })
  /** Approved; while `waitingFor` is set, queued behind these nodes' fixes for the cluster's fix slot. */
  | (IncidentCore & FixOffer & Approval & { state: 'approved'; waitingFor?: string[] })
  | (IncidentCore & FixOffer & Approval & { state: 'running'; progress: Progress })
  | (IncidentCore & FixOffer & Approval & { state: 'fixed' | 'failed' | 'aborted' | 'not-needed'; outcome: Outcome })
  /** The process running the fix stopped; `progress` says how far it was known to get. */
  | (IncidentCore & FixOffer & Approval & { state: 'interrupted'; progress?: Progress });

/** The incident in one state. */
export type IncidentIn<S extends IncidentState> = Extract<Incident, { state: S }>;

/** The fix offered on an incident, if any (whatever its state). */
export function offerOf(inc: Incident): (FixOffer & Partial<Approval>) | null {
  return 'plan' in inc && inc.plan ? (inc as FixOffer & Partial<Approval>) : null;
}

/** Field views for presentation: each field where the state has it, else undefined. */
export function fieldsOf(inc: Incident): Partial<FixOffer & Approval & { rejectedBy: string; progress: Progress; outcome: Outcome; waitingFor: string[]; escalation: string; noFix: string }> {
  return inc as never;
}

/** A fresh, unguessable incident id. */
export function newIncidentId(): string {
  return `inc-${randomBytes(8).toString('hex')}`;
}

/** Incident ids as buttons carry them; anything else is refused. */
export const INCIDENT_ID = /^inc-[0-9a-f]{16}$/;
