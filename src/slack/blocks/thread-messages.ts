/**
 * The messages of an incident's thread, its audit trail: who asked, the dry
 * run, who approved or rejected and when, each step as it starts and ends,
 * and the closing summary. Plus the approval modal. Pure.
 */
import { fieldsOf, offerOf, type Incident } from '../../incidents/incident.js';
import type { StepRecord } from '../../runbooks/execute.js';
import { nodeLabel } from './incident-message.js';
import { describeKubeOp, describeVerify, shortHash, type Plan, type PlannedStep } from '../../runbooks/plan.js';
import { clip, code, context, divider, esc, fitBlocks, header, LIMITS, section, type Block } from './limits.js';

/** Callback id of the approval modal. */
export const APPROVE_VIEW = 'nodediag_approve_confirm';

type Msg = { text: string; blocks: Block[] };

function stepCommand(s: PlannedStep, plan: Plan): string {
  if (!s.action) return `(check only) ${describeVerify(s.verify)}`;
  return s.action.kind === 'ssh' ? s.action.script : `kubernetes: ${describeKubeOp(s.action.op, plan)}`;
}

/** The plan's steps as blocks: exact commands and what each verifies. */
function planBlocks(plan: Plan, perStep = 900): Block[] {
  return plan.steps.map((s) =>
    section(
      clip(
        `*${s.index}. ${esc(s.title)}*${s.retrySafe ? '' : ' _(not safe to repeat)_'}${s.shows ? `\n_acts on:_ \`${esc(clip(s.shows, 300))}\`` : ''}\n${code(stepCommand(s, plan), perStep)}` +
          `${s.skipIf ? `\n_skipped when_ \`${esc(clip(s.skipIf.script, 200))}\` passes` : ''}` +
          `${s.requires ? `\n_refuses${s.requires.preflight ? ' (checked before anything changes)' : ''} unless_ \`${esc(clip(s.requires.script, 200))}\` passes: ${esc(clip(s.requires.refusal, 200))}` : ''}` +
          `${s.undo ? `\n_on failure:_ ${esc(clip(s.undo.note, 200))}` : ''}` +
          `\n_verify:_ ${esc(clip(describeVerify(s.verify), 500))}`,
        LIMITS.sectionText,
      ),
    ),
  );
}

export function requestedMessage(inc: Incident): Msg {
  return { text: `Diagnosis of ${inc.node} requested by <@${inc.requester}>`, blocks: [context(`:mag: Diagnosis of *${esc(inc.node)}* requested by <@${inc.requester}> at ${inc.createdAt.slice(11, 19)} UTC · ${inc.id}`)] };
}

/** The read-only preview made with the plan, if the runbook has one. */
function previewOf(inc: Incident): string | undefined {
  return offerOf(inc)?.preview;
}

/** What a dry run shows: the exact commands, in order, with what each verifies. */
export function dryRunMessage(inc: Incident, plan: Plan, by: string): Msg {
  const blocks: Block[] = [
    section(`:test_tube: *Dry run* for <@${by}> — nothing is changed on ${esc(inc.node)}.\n*${esc(plan.title)}* · plan \`${shortHash(plan.hash)}\`\n_${esc(clip(plan.impact, 800))}_`),
    ...(previewOf(inc) ? [section(`*${esc(plan.preview?.title ?? 'Preview')}*\n${code(previewOf(inc)!, 1500)}`)] : []),
    ...(plan.suggestCordon ? [context('Suggestion: cordon the node first (`nodediag fix --cordon` on the terminal).')] : []),
    ...planBlocks(plan),
  ];
  return { text: `Dry run of ${plan.runbook} on ${inc.node}: ${plan.steps.length} steps`, blocks: fitBlocks(blocks) };
}

export function decisionMessage(inc: Incident, kind: 'approved' | 'rejected' | 'expired', by?: string): Msg {
  const f = fieldsOf(inc);
  const text =
    kind === 'approved'
      ? `:white_check_mark: <@${by}> approved the fix (${f.plan?.stepTitles.length} steps, plan \`${shortHash(f.plan?.hash ?? '')}\`) at ${f.approvedAt?.slice(11, 19)} UTC; running it now.`
      : kind === 'rejected'
        ? `:no_entry_sign: <@${by}> rejected the fix; nothing was run.`
        : ':hourglass: The approval window closed; nothing was run.';
  return { text: text.replace(/<@(\w+)>/g, '@$1'), blocks: [section(text)] };
}

export function stepStartedMessage(s: PlannedStep, plan: Plan): Msg {
  const total = plan.steps.length;
  return {
    text: `Step ${s.index}/${total}: ${s.title} — running`,
    blocks: [section(`:arrow_forward: *Step ${s.index}/${total} — ${esc(s.title)}* · running\n${code(stepCommand(s, plan), 1500)}`)],
  };
}

const ICON: Record<StepRecord['status'], string> = { ok: ':white_check_mark:', failed: ':x:', skipped: ':fast_forward:', 'not-run': ':white_circle:' };

export function stepFinishedMessage(r: StepRecord, total: number): Msg {
  const facts = [r.status, r.exitCode !== null ? `exit ${r.exitCode}` : '', `${(r.durationMs / 1000).toFixed(1)} s`].filter(Boolean).join(', ');
  const lines = [`${ICON[r.status]} *Step ${r.index}/${total} — ${esc(r.title)}* · ${facts}`, code(r.command, 900)];
  if (r.verify) lines.push(`_verify:_ ${r.verify.passed ? 'passed' : '*FAILED*'} — ${esc(clip(r.verify.detail, 400))}`);
  if (r.reason && r.status !== 'ok') lines.push(`_${esc(clip(r.reason, 500))}_`);
  const blocks = [section(clip(lines.join('\n'), LIMITS.sectionText))];
  if (r.output) blocks.push(section(`*Output*\n${code(r.output, 1600)}`));
  return { text: `Step ${r.index}/${total}: ${r.title} — ${r.status}`, blocks };
}

/** The closing summary of an incident. */
export function summaryMessage(inc: Incident, auditPath: string): Msg {
  const f = fieldsOf(inc);
  const o = f.outcome;
  const root = inc.findings?.find((f) => f.id === inc.finding);
  const blocks: Block[] = [header(`Incident summary — ${nodeLabel(inc)}`)];
  blocks.push({
    type: 'section',
    fields: [
      { type: 'mrkdwn', text: `*Result*\n${o ? esc(o.result) : esc(inc.state)}` },
      { type: 'mrkdwn', text: `*Root cause*\n\`${esc(inc.finding ?? '—')}\`` },
      { type: 'mrkdwn', text: `*Requested by*\n<@${inc.requester}>` },
      { type: 'mrkdwn', text: `*Approved by*\n${f.approvedBy ? `<@${f.approvedBy}>` : '—'}${f.rejectedBy ? `\n*Rejected by* <@${f.rejectedBy}>` : ''}` },
    ],
  });
  blocks.push(section(clip(`*Timeline*\n${inc.timeline.map((t) => `• ${t.at.slice(11, 19)} UTC ${t.who ? `<@${t.who}> ` : ''}${esc(t.what)}`).join('\n')}`, LIMITS.sectionText)));
  if (root) blocks.push(section(`*Evidence*\n${code(root.evidence.join('\n'), 1800)}`));
  const symptoms = (inc.findings ?? []).filter((f) => f.role !== 'root-cause');
  if (symptoms.length) blocks.push(section(clip(`*Symptoms and contributing causes*\n${symptoms.map((f) => `• \`${f.id}\` — ${esc(f.title)}`).join('\n')}`, LIMITS.sectionText)));
  if (o?.steps.length) {
    const icon: Record<string, string> = { ok: ':white_check_mark:', failed: ':x:', skipped: ':fast_forward:', 'not-run': ':white_circle:' };
    blocks.push(section(clip(`*Steps*\n${o.steps.map((s) => `${icon[s.status]} ${s.index}. ${esc(s.title)} — ${s.status}${s.exitCode !== null ? ` (exit ${s.exitCode})` : ''}`).join('\n')}`, LIMITS.sectionText)));
  }
  if (o) blocks.push(section(`*Outcome*\n${code(o.summary, 1500)}`));
  // Follow-ups: what still needs doing, from the diagnosis after the fix when there is one.
  const after = o?.after;
  const remaining = after ? after.findings.filter((f) => f.role !== 'symptom') : (inc.findings ?? []).filter((f) => f.role === 'contributing');
  const followUps = remaining.map((f) => `\`${f.id}\`: ${f.advice[0] ?? f.title}`);
  if (followUps.length) blocks.push(section(clip(`*Follow-ups*\n${[...new Set(followUps)].map((f) => `• ${esc(f)}`).join('\n')}`, LIMITS.sectionText)));
  blocks.push(divider());
  blocks.push(context(o?.auditRange ? `Audit log: entries ${o.auditRange.first}–${o.auditRange.last} in \`${esc(auditPath)}\` · verify with \`nodediag audit verify\` · ${inc.id}` : `${inc.id} · no fix ran`));
  return { text: `Incident summary for ${nodeLabel(inc)}: ${o?.result ?? inc.state}`, blocks: fitBlocks(blocks) };
}

/** The approval confirmation: the exact steps, the impact, the preview. */
export function approvalModal(inc: Incident, plan: Plan): Record<string, unknown> {
  const blocks: Block[] = [
    section(`You are approving *${esc(plan.title)}* (plan \`${shortHash(plan.hash)}\`) on *${esc(inc.node)}*, requested by <@${inc.requester}>.\n_${esc(clip(plan.impact, 1200))}_`),
    ...(previewOf(inc) ? [section(`*${esc(plan.preview?.title ?? 'Preview')}*\n${code(previewOf(inc)!, 1500)}`)] : []),
    context(
      'Just before the first step nodediag diagnoses again and makes the plan again from the node as it is: if it is not this plan (same hash), nothing runs. It checks every refusal condition before changing anything, keeps the running containers running, stops at the first failed step or check, and records every step in the thread and the audit log.',
    ),
    ...planBlocks(plan, 1200),
  ];
  return {
    type: 'modal',
    callback_id: APPROVE_VIEW,
    private_metadata: inc.id,
    title: { type: 'plain_text', text: clip('Approve the fix', LIMITS.modalTitle) },
    submit: { type: 'plain_text', text: clip('Run the fix', LIMITS.modalButton) },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: fitBlocks(blocks, LIMITS.blocksPerModal),
  };
}
