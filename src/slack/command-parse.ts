/**
 * Parses the text of `/diag`. Nothing from Slack reaches a shell: a node name
 * must be an RFC 1123 name, a selector a Kubernetes label selector.
 */
import { errorMessage } from '../errors.js';
import { showUntrusted, validateNodeName } from '../inventory/node-name.js';
import { parseDuration } from '../rails/gates.js';
import { CLUSTER_NAME } from '../clusters/clusters.js';

/** What `/diag` asked for. */
export type DiagRequest =
  | { kind: 'help' }
  | { kind: 'node'; node: string; cluster?: string }
  | { kind: 'fleet'; selector: string; cluster?: string }
  | { kind: 'pause'; durationMs: number; reason: string }
  | { kind: 'resume' }
  | { kind: 'invalid'; reason: string; hint: string };

const PAUSE_USAGE = 'Usage: /diag pause <duration> <reason>, e.g. /diag pause 2h zone-b maintenance (1m to 7d)';

const SELECTOR = /^[A-Za-z0-9._/=!,() -]{1,512}$/;

/** Pairs people wrap names in when they paste them (code, bold, italics, quotes). */
const WRAPPERS: Array<[string, string]> = [['`', '`'], ['*', '*'], ['_', '_'], ['"', '"'], ["'", "'"], ['\u201c', '\u201d'], ['\u2018', '\u2019']];

/**
 * What the person meant, before validation: Slack's link markup
 * (`<http://name|name>`, which Slack's composer may add to a dotted name)
 * becomes its label, one pair of formatting or quotes around the whole text
 * is dropped. The result is still validated, so this only ever helps a valid
 * name through.
 */
function unwrap(text: string): string {
  const link = /^<(?:https?:\/\/)?([^|<>]*?)\/?(?:\|([^<>]*))?>$/.exec(text);
  if (link) text = (link[2] ?? link[1]!).replace(/^https?:\/\//, '');
  for (const [open, close] of WRAPPERS) {
    if (text.length > 2 && text.startsWith(open) && text.endsWith(close)) return text.slice(open.length, -close.length).trim();
  }
  return text;
}

/** `--cluster NAME` (or `--cluster=NAME`) anywhere in the text: the name, and the text without it. */
function takeCluster(text: string): { cluster?: string; rest: string } | { invalid: string } {
  const m = /(?:^|\s)--cluster(?:=|\s+)(\S*)/.exec(text);
  if (!m) return /(?:^|\s)--cluster\s*$/.test(text) ? { invalid: 'Which cluster? Usage: /diag <node> --cluster NAME' } : { rest: text };
  const name = unwrap(m[1]!).toLowerCase();
  if (!CLUSTER_NAME.test(name)) return { invalid: `"${showUntrusted(m[1]!, 40)}" is not a cluster name.` };
  return { cluster: name, rest: (text.slice(0, m.index) + ' ' + text.slice(m.index + m[0].length)).trim() };
}

export function parseDiagText(raw: string): DiagRequest {
  if (raw.length > 1000) return { kind: 'invalid', reason: 'That request is too long.', hint: 'Usage: /diag <node> or /diag -l <label-selector>' };
  const taken = takeCluster(raw.trim());
  if ('invalid' in taken) return { kind: 'invalid', reason: taken.invalid, hint: 'Usage: /diag <node> [--cluster NAME]' };
  const parsed = parseRequest(taken.rest);
  if (!taken.cluster) return parsed;
  if (parsed.kind === 'node' || parsed.kind === 'fleet') return { ...parsed, cluster: taken.cluster };
  if (parsed.kind === 'invalid') return parsed;
  return { kind: 'invalid', reason: '--cluster goes with a node or a selector.', hint: 'Usage: /diag <node> --cluster NAME' };
}

function parseRequest(text: string): DiagRequest {
  if (text === '' || text === 'help' || text === '-h' || text === '--help') return { kind: 'help' };
  const fleet = /^(?:-l|--selector)(?:\s+|=)(.*)$/s.exec(text);
  if (fleet) {
    const selector = unwrap(fleet[1]!.trim());
    if (!SELECTOR.test(selector)) return { kind: 'invalid', reason: `"${showUntrusted(selector, 60)}" is not a valid label selector.`, hint: 'Example: /diag -l pool=gpu' };
    return { kind: 'fleet', selector };
  }
  const pause = /^pause(?:\s+(\S+))?(?:\s+([\s\S]*))?$/i.exec(text);
  if (pause) {
    const durationMs = pause[1] ? parseDuration(pause[1]) : null;
    if (durationMs === null) return { kind: 'invalid', reason: pause[1] ? `"${showUntrusted(pause[1], 20)}" is not a duration from 1m to 7d.` : 'How long should fixes pause?', hint: PAUSE_USAGE };
    // The reason is shown to everyone in the channel: plain text, no mentions or markup that could ping or mislead.
    const reason = (pause[2] ?? '').replace(/[<>&*_~`]/g, '').replace(/\s+/g, ' ').trim().slice(0, 300);
    if (!reason) return { kind: 'invalid', reason: 'Say why fixes pause: everyone in the channel sees it.', hint: PAUSE_USAGE };
    return { kind: 'pause', durationMs, reason };
  }
  if (/^resume$/i.test(text)) return { kind: 'resume' };
  const words = text.split(/\s+/);
  if (words.length > 1) return { kind: 'invalid', reason: 'One node at a time, please.', hint: 'Usage: /diag <node>, or /diag -l <label-selector> for many' };
  try {
    // Kubernetes node names are lowercase, so "GPU-Node-7" can only mean gpu-node-7.
    return { kind: 'node', node: validateNodeName(unwrap(words[0]!).toLowerCase()) };
  } catch (err) {
    return { kind: 'invalid', reason: errorMessage(err), hint: 'Node names are Kubernetes node names, e.g. /diag gpu-node-7' };
  }
}
