/**
 * Short replies: help, refusals, fleet summaries. Pure.
 */
import type { FleetEntry } from '../../diagnose/fleet.js';
import type { FleetProgress } from '../../incidents/views.js';
import { clip, code, context, esc, fitBlocks, header, LIMITS, section, type Block } from './limits.js';

type Msg = { text: string; blocks: Block[] };

export function helpMessage(): Msg {
  const text = [
    '*/diag <node>* — diagnose a node: root cause first, with evidence; offers the documented fix as *Approve fix* / *Dry run* / *Reject*.',
    '*/diag -l <label-selector>* — diagnose every node matching a Kubernetes label selector (e.g. `/diag -l pool=gpu`) and summarise.',
    '*/diag pause <duration> <reason>* — no fix starts until the pause ends (e.g. `/diag pause 2h zone-b maintenance`); everyone in the channel sees who and why.',
    '*/diag resume* — end the pause (approvers).',
    '*/diag help* — this message.',
    'A fix runs only after a second person approves it; every step is verified and recorded in the incident\'s thread.',
  ].join('\n');
  return { text: 'nodediag: /diag <node> | /diag -l <selector> | /diag pause <duration> <reason> | /diag resume | /diag help', blocks: [section(text)] };
}

/** An ephemeral refusal or error, with what to do about it. */
export function refusalMessage(reason: string, hint?: string): Msg {
  const text = `:warning: ${esc(reason)}${hint ? `\n_${esc(hint)}_` : ''}`;
  return { text: clip(`${reason}${hint ? ` — ${hint}` : ''}`, LIMITS.messageText), blocks: [section(text)] };
}

/** Told through the response_url when the bot cannot post in the channel. */
export function undeliverableMessage(what: string, again: string, code: string): Msg {
  const why = code === 'is_archived' ? 'this channel is archived' : 'nodediag is not a member of this channel';
  return refusalMessage(`nodediag cannot post ${what} here: ${why} (${code}). Nothing was run on any node.`, code === 'is_archived' ? `Run ${again} in an active channel.` : `Invite it with /invite @nodediag, then run ${again} again.`);
}

/** The answer to `/diag -l`: one summary. */
export function fleetMessage(selector: string, requester: string, entries: FleetEntry[] | null, progress?: FleetProgress): Msg {
  if (!entries) {
    const far = progress ? ` ${progress.done}/${progress.total} done${progress.notHealthy ? `, ${progress.notHealthy} not healthy so far` : ''}` : '';
    return { text: `Diagnosing nodes matching ${selector}…${far}`, blocks: [header(clip(`🔎 Diagnosing nodes matching ${selector}…`, LIMITS.headerText)), ...(progress ? [section(`*${progress.done}/${progress.total}* node(s) done${progress.notHealthy ? ` · *${progress.notHealthy}* not healthy so far` : ''}`)] : []), context(`Requested by <@${requester}>`)] };
  }
  // Worst first: a long fleet is cut to Slack's limits, and the healthy nodes are what may be cut.
  const rank = (e: FleetEntry) => ('error' in e ? 0 : !e.reachable ? 1 : e.findings.length ? 2 : 3);
  const ordered = [...entries].sort((a, b) => rank(a) - rank(b) || a.node.localeCompare(b.node));
  const rows = ordered.map((e) => {
    if ('error' in e) return `${e.node.padEnd(28)} error        ${e.code}`;
    const status = !e.reachable ? 'unreachable' : e.findings.length ? 'findings' : 'healthy';
    return `${e.node.padEnd(28)} ${status.padEnd(12)} ${e.findings[0]?.id ?? e.connectionError?.code ?? '-'}`;
  });
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.slice(29, 41).trim(), (counts.get(r.slice(29, 41).trim()) ?? 0) + 1);
  const blocks: Block[] = [
    header(clip(`Fleet: ${selector} — ${entries.length} node(s)`, LIMITS.headerText)),
    section(`${[...counts].map(([k, n]) => `*${n}* ${k}`).join(' · ')}\n${code(`${'NODE'.padEnd(28)} ${'STATUS'.padEnd(12)} TOP FINDING\n${rows.join('\n')}`, LIMITS.sectionText - 200)}`),
    context(`Requested by <@${requester}> · \`/diag <node>\` for the evidence and a fix`),
  ];
  return { text: `Fleet ${selector}: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`, blocks: fitBlocks(blocks) };
}
