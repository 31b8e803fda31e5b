/**
 * Parses the text of `/diag`. Nothing from Slack reaches a shell: a node name
 * must be an RFC 1123 name, a selector a Kubernetes label selector.
 */
import { errorMessage } from '../errors.js';
import { showUntrusted, validateNodeName } from '../inventory/node-name.js';

/** What `/diag` asked for. */
export type DiagRequest = { kind: 'help' } | { kind: 'node'; node: string } | { kind: 'fleet'; selector: string } | { kind: 'invalid'; reason: string; hint: string };

const SELECTOR = /^[A-Za-z0-9._/=!,() -]{1,512}$/;

export function parseDiagText(raw: string): DiagRequest {
  if (raw.length > 1000) return { kind: 'invalid', reason: 'That request is too long.', hint: 'Usage: /diag <node> or /diag -l <label-selector>' };
  const text = raw.trim();
  if (text === '' || text === 'help' || text === '-h' || text === '--help') return { kind: 'help' };
  const fleet = /^(?:-l|--selector)(?:\s+|=)(.*)$/s.exec(text);
  if (fleet) {
    const selector = fleet[1]!.trim();
    if (!SELECTOR.test(selector)) return { kind: 'invalid', reason: `"${showUntrusted(selector, 60)}" is not a valid label selector.`, hint: 'Example: /diag -l pool=gpu' };
    return { kind: 'fleet', selector };
  }
  const words = text.split(/\s+/);
  if (words.length > 1) return { kind: 'invalid', reason: 'One node at a time, please.', hint: 'Usage: /diag <node>, or /diag -l <label-selector> for many' };
  try {
    return { kind: 'node', node: validateNodeName(words[0]!) };
  } catch (err) {
    return { kind: 'invalid', reason: errorMessage(err), hint: 'Node names are Kubernetes node names, e.g. /diag gpu-node-7' };
  }
}
