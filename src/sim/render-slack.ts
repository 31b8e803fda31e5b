/**
 * Renders Slack messages (Block Kit) as terminal text, the way they read in
 * a Slack client: for the demo's Slack transcript. Pure.
 */
import type { EmulatedMessage } from './slack-emulator.js';

type B = Record<string, any>;

function mrkdwn(t: string): string {
  return t
    .replace(/```([\s\S]*?)```/g, (_m, code: string) => `\n${code.split('\n').map((l) => `    │ ${l}`).join('\n')}\n`)
    .replace(/<@(\w+)>/g, '@$1')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/:(\w[\w+-]*):/g, (_m, name: string) => ({ rotating_light: '🚨', white_check_mark: '✅', x: '❌', warning: '⚠️', mag: '🔎', arrow_forward: '▶', test_tube: '🧪', no_entry_sign: '🚫', large_green_circle: '🟢', red_circle: '🔴', gear: '⚙️', hourglass: '⌛', fast_forward: '⏩', white_circle: '⚪', no_entry: '⛔' })[name] ?? `:${name}:`)
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** One message as text lines. */
export function renderSlackMessage(m: EmulatedMessage, indent = ''): string {
  const out: string[] = [];
  for (const b of m.blocks as B[]) {
    if (b.type === 'header') out.push(`*${b.text.text}*`);
    else if (b.type === 'section') {
      if (b.text) out.push(mrkdwn(b.text.text));
      if (b.fields) out.push(b.fields.map((f: B) => mrkdwn(f.text).replace('\n', ': ')).join('   '));
    } else if (b.type === 'context') out.push(b.elements.map((e: B) => mrkdwn(e.text)).join(' '));
    else if (b.type === 'actions') out.push(b.elements.map((e: B) => `[ ${e.text.text} ]`).join(' '));
    else if (b.type === 'divider') out.push('────────');
  }
  if (out.length === 0) out.push(mrkdwn(m.text));
  return out.join('\n').split('\n').map((l) => `${indent}${l}`).join('\n');
}
