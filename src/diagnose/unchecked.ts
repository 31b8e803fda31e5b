/**
 * What a diagnosis could not check, said plainly: which checks did not run
 * (or were cut), why, which findings they leave undecided, and how to make
 * them checkable. Also what the node's layout means for the fixes. Pure.
 */
import type { Undecided } from './classify.js';
import type { CheckSummary } from './run-diagnosis.js';
import type { NodeLayout } from '../probes/layout.js';

/** One check that did not run, with what it leaves undecided. */
export interface UncheckedGroup {
  check: string;
  status: string;
  reason?: string;
  /** Findings that could be neither proven nor ruled out without it. */
  findings: string[];
  /** How to make it checkable. */
  hint: string;
}

function hintFor(status: string, reason: string | undefined, check: string): string {
  const why = reason ?? '';
  if (/^sudo refused/.test(why)) return 'install the sudoers lines on the node: `nodediag sudoers --user <ssh user>` (README: No root login needed)';
  if (/^command not found|not executable/.test(why)) return 'the tool is not where nodediag looked: install it, or give its path in the inventory (containerdPath, ctrPath, crictlPath)';
  if (status === 'timeout') return 'the node did not answer in time: diagnose again; if it keeps timing out, the node is overloaded or the command hangs';
  if (status === 'truncated' || /output cut/.test(why)) return 'its output was longer than the cap: raise NODEDIAG_MAX_OUTPUT_BYTES';
  if (status === 'skipped' && /Kubernetes|kubeconfig|KUBECONFIG/.test(why)) return 'give nodediag Kubernetes access (KUBECONFIG, or run it in the cluster)';
  if (status === 'skipped' && /not run: /.test(why)) return 'nodediag could not reach the node over SSH (see above)';
  if (/kubelet has not posted/.test(why)) return 'kubelet did not report since: check kubelet on the node';
  return `see why ${check} failed`;
}

/** The checks that did not run, each with the findings it leaves undecided and a hint. */
export function uncheckedGroups(checks: CheckSummary[], undecided: Undecided[]): UncheckedGroup[] {
  const groups = new Map<string, UncheckedGroup>();
  for (const c of checks) {
    if (c.status === 'ok') continue;
    groups.set(c.id, { check: c.id, status: c.status, ...(c.reason ? { reason: c.reason } : {}), findings: [], hint: hintFor(c.status, c.reason, c.id) });
  }
  for (const u of undecided) {
    for (const c of u.checks) {
      const g = groups.get(c.id) ?? { check: c.id, status: c.status, ...(c.reason ? { reason: c.reason } : {}), findings: [], hint: hintFor(c.status, c.reason, c.id) };
      if (!g.findings.includes(u.id)) g.findings.push(u.id);
      groups.set(c.id, g);
    }
  }
  return [...groups.values()];
}

/** One line per unchecked group, for terminals and Slack. */
export function uncheckedLines(groups: UncheckedGroup[]): string[] {
  return groups.map(
    (g) =>
      `${g.check} ${g.status}${g.reason ? ` (${g.reason})` : ''}${g.findings.length ? ` — cannot tell: ${g.findings.join(', ')}` : ''} — ${g.hint}`,
  );
}

/** What the node's layout means for the report, in words (empty for a plain containerd node with a persistent journal). */
export function layoutNotes(layout: NodeLayout | null): string[] {
  if (!layout) return [];
  const notes: string[] = [];
  const p = layout.params;
  switch (layout.flavour) {
    case 'k3s':
    case 'rke2':
      notes.push(
        `runtime: ${layout.flavour} with its embedded containerd (socket ${p.socket}); nodediag's fixes drive a standalone containerd and are not offered here — use \`${layout.flavour} crictl\`, \`systemctl restart ${layout.flavour === 'k3s' ? 'k3s' : 'rke2-server'}\` (or the agent unit), and edit ${p.containerdConfig.replace(/config\.toml$/, 'config.toml.tmpl')}, not the generated config.toml`,
      );
      break;
    case 'cri-o':
      notes.push(`runtime: CRI-O (socket ${p.socket}); the containerd findings and fixes do not apply — use \`crictl\`, \`journalctl -u crio\` and \`systemctl restart crio\``);
      break;
    case 'unknown':
      notes.push('runtime: not recognised (no containerd, k3s, RKE2 or CRI-O unit found); fixes are not offered');
      break;
    default:
      break;
  }
  if (layout.journal === 'volatile') notes.push('journal: volatile (not kept across reboots): evidence from before the last boot is gone');
  return notes;
}
