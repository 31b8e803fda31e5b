/**
 * The incident message in the channel: the node, the root cause first with
 * its evidence, symptoms and contributing causes, what could not be
 * checked, the state, and the buttons. Updated in place as the incident
 * moves on. Pure.
 */
import type { Finding } from '../../diagnose/classify.js';
import type { Incident } from '../../incidents/incident.js';
import type { Pause } from '../../rails/gates.js';
import { clip, code, context, esc, fitBlocks, header, LIMITS, section, type Block } from './limits.js';

/** Action ids of the incident buttons (values carry only the incident id). */
export const ACTIONS = {
  approve: 'nodediag_approve',
  dryRun: 'nodediag_dry_run',
  reject: 'nodediag_reject',
  rediagnose: 'nodediag_rediagnose',
} as const;

const ROLE: Record<Finding['role'], string> = { 'root-cause': 'Root cause', contributing: 'Contributing', symptom: 'Symptom' };
const ICON: Record<string, string> = {
  diagnosing: ':mag:',
  'awaiting-approval': ':rotating_light:',
  approved: ':white_check_mark:',
  running: ':gear:',
  fixed: ':large_green_circle:',
  failed: ':red_circle:',
  aborted: ':no_entry:',
  'not-needed': ':large_green_circle:',
  rejected: ':no_entry_sign:',
  expired: ':hourglass:',
  interrupted: ':warning:',
};

function hhmm(iso: string | undefined): string {
  return iso ? `${iso.slice(11, 16)} UTC` : '';
}

function button(text: string, action: string, value: string, style?: 'primary' | 'danger', confirm?: Block): Block {
  return { type: 'button', text: { type: 'plain_text', text: clip(text, LIMITS.buttonText), emoji: true }, action_id: action, value, ...(style ? { style } : {}), ...(confirm ? { confirm } : {}) };
}

/** The one-line state of an incident, for the message and its fallback text. */
export function stateLine(inc: Incident): string {
  switch (inc.state) {
    case 'diagnosing':
      return `Diagnosing ${inc.node}…`;
    case 'awaiting-approval':
      return (inc.approvalsNeeded ?? 1) > 1
        ? `Storm override: ${inc.approvals?.length ?? 0} of ${inc.approvalsNeeded} approvers${inc.approvals?.length ? ` (<@${inc.approvals.join('>, <@')}>)` : ''} · expires ${hhmm(inc.expiresAt)}`
        : `Waiting for approval by a second person · expires ${hhmm(inc.expiresAt)}`;
    case 'approved':
      return inc.waitingFor?.length
        ? `Approved by <@${inc.approvedBy}> at ${hhmm(inc.approvedAt)} · queued: waiting for the fix on ${inc.waitingFor.map(esc).join(', ')} to finish (one fix at a time in the cluster)`
        : `Approved by <@${inc.approvedBy}> at ${hhmm(inc.approvedAt)} · starting`;
    case 'running':
      return `Running step ${inc.progress?.step ?? 1}/${inc.progress?.total ?? '?'}: ${esc(inc.progress?.title ?? '')} · approved by <@${inc.approvedBy}>`;
    case 'fixed':
      return `Fixed · approved by <@${inc.approvedBy}> · see the thread for every step`;
    case 'failed':
      return `Fix failed: ${esc(inc.outcome?.summary.split('\n')[0] ?? '')} · see the thread`;
    case 'aborted':
      return `Fix refused to act: ${esc(inc.outcome?.summary.split('\n')[0] ?? '')}`;
    case 'not-needed':
      return 'The finding no longer held when the fix was about to start; nothing was run';
    case 'rejected':
      return `Rejected by <@${inc.rejectedBy}>; nothing was run`;
    case 'expired':
      return 'The approval window closed; nothing was run. Re-diagnose to see the node now.';
    case 'interrupted':
      return 'Interrupted: nodediag restarted during the fix. Nothing re-runs without a new approval.';
    default:
      if (inc.escalation) return 'Escalate: no fix offered (retry budget spent)';
      if (inc.noFix) return 'Advice only: the fix cannot run on this node';
      return inc.error ? 'Not diagnosed' : inc.report && !inc.report.reachable ? 'Node unreachable over SSH' : inc.findings?.length ? 'Advice only: nothing to run automatically' : 'Healthy';
  }
}

function findingLines(f: Finding, node: string): string {
  const linked = f.linkedTo.length ? ` _(${f.role === 'root-cause' ? 'explains' : 'from'} ${f.linkedTo.map((l) => `\`${l}\``).join(', ')})_` : '';
  return `*${ROLE[f.role]}* · \`${f.id}\` · ${f.severity}${linked} · ${esc(node)}`;
}

/** The node as cards and summaries name it: with its cluster when the bot looks after several. */
export function nodeLabel(inc: Pick<Incident, 'node' | 'cluster'>): string {
  return inc.cluster ? `${inc.node} (cluster ${inc.cluster})` : inc.node;
}

/** Who opened the incident, for the message's context line. */
function openedBy(inc: Incident): string {
  return inc.origin ? `opened by alert *${esc(inc.origin.alertname)}*` : `requested by <@${inc.requester}>`;
}

/** What the alert said, and whether it still fires. */
function alertBlock(inc: Incident): Block | null {
  const o = inc.origin;
  if (!o) return null;
  const alerts = Object.values(inc.alerts ?? {});
  const firing = alerts.filter((a) => a.status === 'firing').length;
  const status = alerts.length && firing === 0 ? ` · :white_check_mark: *resolved* at ${hhmm(alerts.map((a) => a.at).sort().at(-1))}` : alerts.length > 1 ? ` · ${firing} of ${alerts.length} alerts firing` : '';
  const link = o.link ? ` · <${o.link}|source>` : '';
  return context(clip(`:bell: Opened by alert *${esc(o.alertname)}*${o.severity ? ` (${esc(o.severity)})` : ''}${o.summary ? `: ${esc(o.summary)}` : ''}${link} · fired ${hhmm(o.firedAt)}${status}`, LIMITS.contextText));
}

/** Extra state shown on every card: the pause. */
export interface CardContext {
  pause?: Pause | null;
}

/** The incident message. */
export function incidentMessage(inc: Incident, ctx: CardContext = {}): { text: string; blocks: Block[] } {
  const icon = ICON[inc.state] ?? (inc.findings?.length ? ':warning:' : ':large_green_circle:');
  const blocks: Block[] = [];
  const findings = inc.findings ?? [];
  const root = findings.find((f) => f.role === 'root-cause');
  const who = nodeLabel(inc);
  const title =
    inc.state === 'diagnosing'
      ? `Diagnosing ${who}…`
      : inc.error
        ? `${who}: not diagnosed`
        : root
          ? `${who}: ${root.title}`
          : findings.length
            ? `${who}: ${findings[0]!.title}`
            : inc.report?.reachable === false
              ? `${who}: unreachable`
              : `${who}: healthy`;
  blocks.push(header(`${icon === ':mag:' ? '🔎' : ''}${title}`.trim()));
  const alert = alertBlock(inc);
  if (inc.state === 'diagnosing') {
    if (alert) blocks.push(alert);
    blocks.push(context(`${inc.origin ? 'Opened by an alert' : `Requested by <@${inc.requester}>`} · checking over SSH and the Kubernetes API`));
    return { text: `Diagnosing ${who}…`, blocks };
  }
  if (alert) blocks.push(alert);
  const r = inc.report;
  if (inc.error) blocks.push(section(`:warning: *Could not diagnose ${esc(inc.node)}:* ${esc(inc.error)}`));
  if (r && !r.reachable) blocks.push(section(`:warning: *Cannot reach ${esc(inc.node)} over SSH:* ${esc(r.connectionError?.message ?? 'unreachable')}`));
  if (r && r.reachable && findings.length === 0) blocks.push(section(`:large_green_circle: No findings: ${r.checks.filter((c) => c.status === 'ok').length}/${r.checks.length} checks ok.`));

  const focus = findings.find((f) => f.id === inc.finding) ?? root ?? findings[0];
  if (focus) {
    blocks.push(section(`${findingLines(focus, inc.node)}\n${esc(focus.summary)}`));
    if (focus.evidence.length) blocks.push(section(`*Evidence*\n${code(focus.evidence.join('\n'), LIMITS.sectionText - 20)}`));
  }
  const others = findings.filter((f) => f !== focus);
  if (others.length) {
    const lines = others.map((f) => `• *${ROLE[f.role]}* \`${f.id}\` — ${esc(f.title)}${f.evidence[0] ? `\n    ${esc(clip(f.evidence[0], 300))}` : ''}`);
    blocks.push(section(clip(`*Also on this node*\n${lines.join('\n')}`, LIMITS.sectionText)));
  }
  if (inc.storm && inc.state === 'awaiting-approval') {
    blocks.push(
      section(
        clip(
          `:rotating_light: *Storm: human triage first.* ${esc(inc.storm.why)}.\nUnhealthy: ${inc.storm.nodes.map((n) => `\`${esc(n)}\``).join(', ') || '—'}\nFixes are not offered to one approver now: overriding the gate takes *two approvers*.`,
          LIMITS.sectionText,
        ),
      ),
    );
  }
  if (inc.state === 'closed' && inc.noFix) {
    blocks.push(section(clip(`:no_entry: *The fix cannot run on this node:* ${esc(inc.noFix)}`, LIMITS.sectionText)));
  }
  if (inc.state === 'closed' && inc.escalation) {
    blocks.push(section(`:sos: *Escalate: a human must look.* ${esc(inc.escalation)}. nodediag offers no further fix on this node for now.`));
  }
  const pause = ctx.pause;
  if (pause && (inc.state === 'awaiting-approval' || inc.state === 'approved')) {
    blocks.push(context(`:double_vertical_bar: Fixes are paused by <@${pause.by}> until ${hhmm(pause.until)}: ${esc(clip(pause.reason, 300))} · approvals wait; \`/diag resume\` ends it`));
  }
  if (inc.plan && inc.state === 'awaiting-approval') {
    blocks.push(section(`*Fix:* ${esc(inc.plan.title)} (${inc.plan.stepTitles.length} steps · plan \`${inc.plan.hash.slice(0, 12)}\`)\n_${esc(clip(inc.plan.impact, 600))}_`));
  } else if (focus && (!focus.runbook || (inc.state === 'closed' && inc.noFix)) && focus.advice.length) {
    blocks.push(section(`*What to do*\n${focus.advice.map((a) => `• ${esc(a)}`).join('\n')}`));
  }
  for (const note of r?.layout?.notes ?? []) blocks.push(context(clip(`:warning: ${esc(note)}`, LIMITS.contextText)));
  const unchecked = r?.unchecked ?? [];
  if (unchecked.length) {
    blocks.push(
      context(
        clip(
          `*Could not check* (never taken as evidence): ${unchecked
            .map((g) => `\`${g.check}\` ${g.status}${g.reason ? ` (${esc(g.reason)})` : ''}${g.findings.length ? ` — cannot tell ${g.findings.map((f) => `\`${f}\``).join(', ')}` : ''} — ${esc(g.hint)}`)
            .join(' · ')}`,
          LIMITS.contextText,
        ),
      ),
    );
  }
  const notChecked = r && !unchecked.length ? r.checks.filter((c) => c.status !== 'ok') : [];
  if (notChecked.length) {
    blocks.push(context(clip(`Not checked: ${notChecked.map((c) => `\`${c.id}\` ${c.status}${c.reason ? ` (${esc(c.reason)})` : ''}`).join(' · ')}`, LIMITS.contextText)));
  }
  blocks.push(context(`${stateLine(inc)} · ${openedBy(inc)} · ${inc.id}${r ? ` · ${(r.durationMs / 1000).toFixed(1)} s` : ''}`));
  if (inc.state === 'awaiting-approval') {
    const needed = inc.approvalsNeeded ?? 1;
    blocks.push({
      type: 'actions',
      block_id: 'incident_actions',
      elements: [
        button(needed > 1 ? `Override storm: approve (${(inc.approvals?.length ?? 0) + 1} of ${needed})` : 'Approve fix', ACTIONS.approve, inc.id, needed > 1 ? 'danger' : 'primary'),
        button('Dry run', ACTIONS.dryRun, inc.id),
        button('Reject', ACTIONS.reject, inc.id, 'danger', {
          title: { type: 'plain_text', text: 'Reject this fix?' },
          text: { type: 'mrkdwn', text: clip(`Nothing will run on ${esc(inc.node)}; the incident is closed as rejected.`, LIMITS.confirmText) },
          confirm: { type: 'plain_text', text: 'Reject' },
          deny: { type: 'plain_text', text: 'Keep it open' },
        }),
      ],
    });
  } else if (['fixed', 'failed', 'aborted', 'rejected', 'expired', 'interrupted', 'not-needed', 'closed'].includes(inc.state)) {
    blocks.push({ type: 'actions', block_id: 'incident_actions', elements: [button('Re-diagnose', ACTIONS.rediagnose, inc.id)] });
  }
  const text = `${who}: ${root ? `${root.id} (root cause)` : findings[0]?.id ?? (r?.reachable === false ? 'unreachable' : 'healthy')} — ${stateLine(inc).replace(/<@(\w+)>/g, '@$1')}`;
  return { text: clip(text, LIMITS.messageText), blocks: fitBlocks(blocks) };
}
