/**
 * Renders Kubernetes objects as observation lines, the text the finding rules
 * match (formats documented in catalog/findings.ts). Pure.
 */
import type { KubeEvent, KubeNode, KubePod } from '../ports.js';

function quote(s: string | undefined, max = 300): string {
  const flat = (s ?? '').replace(/\s+/g, ' ').trim();
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max - 1)}…` : flat);
}

/** Lines for the k8s-node check. */
export function renderNode(node: KubeNode): string[] {
  const lines = [`node ${node.name} unschedulable=${node.unschedulable}`];
  for (const c of node.conditions) {
    lines.push(`condition ${c.type}=${c.status} reason=${c.reason ?? '-'} message=${quote(c.message)}`);
  }
  for (const t of node.taints) lines.push(`taint ${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`);
  for (const a of node.addresses) lines.push(`address ${a.type}=${a.address}`);
  return lines;
}

/** Lines for the k8s-pods check; `socketPaths` are the runtime socket paths whose hostPath mounts are reported. */
export function renderPods(pods: KubePod[], socketPaths: string[]): string[] {
  const watched = new Set(socketPaths.flatMap((p) => [p, p.replace(/^\/run\//, '/var/run/'), p.replace(/^\/var\/run\//, '/run/')]));
  const lines: string[] = [];
  for (const p of pods) {
    const owner = p.owner ? ` owner=${p.owner.kind}/${p.owner.name}` : '';
    lines.push(`pod ${p.namespace}/${p.name} phase=${p.phase}${owner} uid=${p.uid || '-'}${p.mirror ? ' mirror=true' : ''}`);
    for (const c of p.containers) {
      const reason = c.state.reason ? ` reason=${c.state.reason}` : '';
      const exit = c.state.exitCode !== undefined ? ` exit=${c.state.exitCode}` : '';
      const last = c.lastTerminated
        ? ` last=terminated:${c.lastTerminated.reason ?? 'Unknown'} exit=${c.lastTerminated.exitCode ?? '?'}${c.lastTerminated.finishedAt ? ` at=${c.lastTerminated.finishedAt}` : ''}`
        : '';
      lines.push(`container ${p.namespace}/${p.name}/${c.name} ready=${c.ready} restarts=${c.restartCount} state=${c.state.kind}${reason}${exit}${last} pod-ref=${p.namespace}/${p.name}@${p.uid || '-'}`);
    }
    for (const h of p.hostPaths) {
      if (!watched.has(h.path.replace(/\/+$/, ''))) continue;
      lines.push(`hostPath ${p.namespace}/${p.name} volume=${h.volume} path=${h.path} type=${h.type ?? '<unset>'}${owner}`);
    }
  }
  return lines;
}

/** Lines for the k8s-events check, newest first, at most `max`. */
export function renderEvents(events: KubeEvent[], max = 60): string[] {
  const sorted = [...events].sort((a, b) => (b.lastTimestamp ?? '').localeCompare(a.lastTimestamp ?? ''));
  return sorted.slice(0, max).map((e) => {
    const obj = e.namespace ? `${e.kind}/${e.namespace}/${e.name}` : `${e.kind}/${e.name}`;
    const when = e.lastTimestamp ? ` at=${e.lastTimestamp}` : '';
    return `event ${e.type} ${e.reason} ${obj}: ${e.message.replace(/\s+/g, ' ').trim().slice(0, 300)} (x${e.count})${when}`;
  });
}
