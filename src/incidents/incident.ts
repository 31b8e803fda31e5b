/**
 * An incident: one diagnosis of one node in one channel, and what happened to
 * its fix. The plan lives here, on the server; Slack buttons carry only the
 * incident id.
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

/** The stored incident. */
export interface Incident {
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
  state: IncidentState;
  /** The diagnosis (without raw observations). */
  report?: ReportJson;
  findings?: Finding[];
  /** The finding offered for a fix, its plan (inputs and hash; the scripts are made from the catalog) and preview. */
  finding?: string;
  plan?: StoredPlan;
  preview?: string;
  expiresAt?: string;
  approvedBy?: string;
  approvedAt?: string;
  rejectedBy?: string;
  progress?: { step: number; total: number; title: string };
  outcome?: {
    result: string;
    summary: string;
    steps: StepRecord[];
    followUps: string[];
    auditRange: { first: number; last: number } | null;
    after?: ReportJson | null;
  };
  /** Incident id of the follow-up diagnosis posted in the same thread. */
  followUp?: string;
  /** Why the diagnosis itself could not be made (unknown node, no access…). */
  error?: string;
  /** The alert that opened this incident (absent: someone typed /diag). */
  origin?: AlertSource;
  /** Every alert that joined this incident, by alert key: its name and whether it still fires. */
  alerts?: Record<string, { name: string; status: 'firing' | 'resolved'; at: string }>;
  /** The storm gate held when the fix was offered: two approvers needed. */
  storm?: Storm;
  /** Approvers needed (1, or 2 in a storm) and those who approved so far. */
  approvalsNeeded?: number;
  approvals?: string[];
  /** Why no fix is offered although a runbook exists (the retry budget is spent): a human must look. */
  escalation?: string;
  /** Thread notes kept as one message each, edited as they change (e.g. `alerts`). */
  notes?: string[];
  /** Slack's ts of the messages another replica may update or thread under, by outbox key (shared store only). */
  messages?: Record<string, string>;
  /** Approved, waiting for the cluster's fix slot held by these nodes' fixes. */
  waitingFor?: string[];
  timeline: TimelineEntry[];
}

/** A fresh, unguessable incident id. */
export function newIncidentId(): string {
  return `inc-${randomBytes(8).toString('hex')}`;
}

/** Incident ids as buttons carry them; anything else is refused. */
export const INCIDENT_ID = /^inc-[0-9a-f]{16}$/;
