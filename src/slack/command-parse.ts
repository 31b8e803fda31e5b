/**
 * Parses the text of `/diag`. Nothing from Slack reaches a shell: a node name
 * must be an RFC 1123 name, a selector a Kubernetes label selector.
 */
import { errorMessage } from '../errors.js';
import { showUntrusted, validateNodeName } from '../inventory/node-name.js';

/** What `/diag` asked for. */
export type DiagRequest = { kind: 'help' } | { kind: 'node'; node: string } | { kind: 'fleet'; selector: string } | { kind: 'invalid'; reason: string; hint: string };

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

export function parseDiagText(raw: string): DiagRequest {
  if (raw.length > 1000) return { kind: 'invalid', reason: 'That request is too long.', hint: 'Usage: /diag <node> or /diag -l <label-selector>' };
  const text = raw.trim();
  if (text === '' || text === 'help' || text === '-h' || text === '--help') return { kind: 'help' };
  const fleet = /^(?:-l|--selector)(?:\s+|=)(.*)$/s.exec(text);
  if (fleet) {
    const selector = unwrap(fleet[1]!.trim());
    if (!SELECTOR.test(selector)) return { kind: 'invalid', reason: `"${showUntrusted(selector, 60)}" is not a valid label selector.`, hint: 'Example: /diag -l pool=gpu' };
    return { kind: 'fleet', selector };
  }
  const words = text.split(/\s+/);
  if (words.length > 1) return { kind: 'invalid', reason: 'One node at a time, please.', hint: 'Usage: /diag <node>, or /diag -l <label-selector> for many' };
  try {
    // Kubernetes node names are lowercase, so "GPU-Node-7" can only mean gpu-node-7.
    return { kind: 'node', node: validateNodeName(unwrap(words[0]!).toLowerCase()) };
  } catch (err) {
    return { kind: 'invalid', reason: errorMessage(err), hint: 'Node names are Kubernetes node names, e.g. /diag gpu-node-7' };
  }
}
