/**
 * How incidents are shown: the incident service says what to show, an
 * implementation of this port (Slack's Block Kit in slack/views.ts) says how.
 * incidents/ imports nothing from slack/.
 */
import type { FleetEntry } from '../diagnose/fleet.js';
import type { ChatMessage } from '../ports.js';
import type { Pause } from '../rails/gates.js';
import type { StepRecord } from '../runbooks/execute.js';
import type { Plan, PlannedStep } from '../runbooks/plan.js';
import type { Incident } from './incident.js';

/** The messages and dialogs of an incident. */
export interface IncidentViews {
  /** The incident card, updated in place (the pause in force is shown on every card). */
  card(inc: Incident, pause: Pause | null): ChatMessage;
  requested(inc: Incident): ChatMessage;
  decision(inc: Incident, kind: 'approved' | 'rejected' | 'expired', by?: string): ChatMessage;
  dryRun(inc: Incident, plan: Plan, by: string): ChatMessage;
  /** The confirmation dialog with the exact steps. */
  approvalDialog(inc: Incident, plan: Plan): Record<string, unknown>;
  stepStarted(step: PlannedStep, plan: Plan): ChatMessage;
  stepFinished(record: StepRecord, total: number): ChatMessage;
  summary(inc: Incident, auditPath: string): ChatMessage;
  /** The fleet summary: in progress (`entries` null; how far, once the matching nodes are known), then the table. */
  fleet(selector: string, requester: string, entries: FleetEntry[] | null, progress?: FleetProgress): ChatMessage;
  undeliverable(what: string, again: string, code: string): ChatMessage;
  paused(by: string, until: string, reason: string): ChatMessage;
  resumed(by: string, pausedBy: string, reason: string): ChatMessage;
}

/** How far a fleet diagnosis is. */
export interface FleetProgress {
  done: number;
  total: number;
  /** Nodes done so far with a finding, unreachable, or in error. */
  notHealthy: number;
}

/** Who may do what (the Slack access policy implements it). */
export interface AccessRules {
  requestRefusal(user: string, channel: string): { reason: string; hint?: string } | null;
  approveRefusal(user: string, channel: string, requester: string): Promise<{ reason: string; hint?: string } | null>;
  rejectRefusal(user: string, channel: string, requester: string): Promise<{ reason: string; hint?: string } | null>;
}
