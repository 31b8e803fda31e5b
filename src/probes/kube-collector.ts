/**
 * Runs the Kubernetes checks: the Node, the pods on it (with their
 * runtime-socket hostPaths) and recent events for the node and its troubled
 * pods. Without Kubernetes access the checks are skipped with the reason.
 */
import type { KubeProbe } from '../catalog/schema.js';
import type { Observation } from '../diagnose/observation.js';
import { errorMessage } from '../errors.js';
import type { Clock, KubeNode, KubePod, KubeReader } from '../ports.js';
import type { Redactor } from '../redact.js';
import { renderEvents, renderNode, renderPods } from './render-kube.js';

/** What the Kubernetes checks need. */
export interface KubeProbeContext {
  kube: KubeReader | null;
  /** Why there is no Kubernetes access, when `kube` is null. */
  unavailableReason: string;
  /** The CRI socket paths whose hostPath mounts are reported (known once the node's layout is). */
  runtimeSockets: string[] | Promise<string[]>;
  clock: Clock;
  redact: Redactor;
  /** The node object, when it was already read to resolve the node's address. */
  node?: Promise<KubeNode | null>;
  /** Events last seen before this time (ms) are history, not evidence. */
  sinceMs?: number;
  /** Wait up to this long for kubelet to post the Node's status after `sinceMs`. */
  waitForNodeStatusMs?: number;
}

function obs(probe: KubeProbe, started: number, ctx: KubeProbeContext, lines: string[]): Observation {
  const redacted = lines.map(ctx.redact);
  return {
    check: probe.id,
    status: 'ok',
    lines: redacted,
    raw: redacted.join('\n'),
    exitCode: null,
    durationMs: ctx.clock.now() - started,
    truncated: false,
    nodeNowSec: Math.floor(ctx.clock.now() / 1000),
  };
}

/** When kubelet last posted the Node's Ready condition, in ms (null when unknown). */
export function lastStatusMs(node: KubeNode): number | null {
  const ready = node.conditions.find((c) => c.type === 'Ready');
  const t = Date.parse(ready?.lastHeartbeatTime ?? '');
  return Number.isNaN(t) ? null : t;
}

/** Reads the Node, waiting (bounded) until kubelet has posted its status after `sinceMs`. */
async function freshNode(kube: KubeReader, name: string, ctx: KubeProbeContext): Promise<KubeNode | null | 'stale'> {
  const since = ctx.sinceMs;
  const deadline = ctx.clock.now() + (ctx.waitForNodeStatusMs ?? 0);
  for (;;) {
    const node = await kube.getNode(name);
    if (!node || since === undefined || !ctx.waitForNodeStatusMs) return node;
    const at = lastStatusMs(node);
    // kubelet's timestamps have second precision: one stamped in the second the fix ended may predate it, so only a later second counts.
    if (at !== null && at >= (Math.floor(since / 1000) + 1) * 1000) return node;
    if (ctx.clock.now() >= deadline) return 'stale';
    await ctx.clock.sleep(1000);
  }
}

function failed(probe: KubeProbe, started: number, ctx: KubeProbeContext, err: unknown): Observation {
  return {
    check: probe.id,
    status: 'failed',
    lines: [],
    exitCode: null,
    durationMs: ctx.clock.now() - started,
    truncated: false,
    reason: ctx.redact(errorMessage(err)),
  };
}

/** Pods worth fetching events for: not ready, restarting, pending or failed. */
export function troubledPods(pods: KubePod[]): KubePod[] {
  return pods.filter(
    (p) => p.phase === 'Pending' || p.phase === 'Failed' || p.containers.some((c) => !c.ready || c.restartCount > 0 || c.state.kind === 'waiting'),
  );
}

/** Runs the kube probes for one node. */
export async function runKubeProbes(nodeName: string, probes: KubeProbe[], ctx: KubeProbeContext): Promise<Observation[]> {
  const kube = ctx.kube;
  if (!kube) {
    return probes.map((p) => ({ check: p.id, status: 'skipped' as const, lines: [], exitCode: null, durationMs: 0, truncated: false, reason: ctx.unavailableReason }));
  }
  const started = ctx.clock.now();
  const nodeP = ctx.node ?? freshNode(kube, nodeName, ctx);
  const podsP = kube.listPodsOnNode(nodeName);
  const eventsP = podsP
    .catch(() => [] as KubePod[])
    .then((pods) => kube.listEvents(nodeName, troubledPods(pods).map((p) => ({ namespace: p.namespace, name: p.name }))));
  const settle = async (probe: KubeProbe): Promise<Observation> => {
    try {
      switch (probe.resource) {
        case 'node': {
          const node = await nodeP;
          if (node === 'stale') {
            return {
              ...failed(probe, started, ctx, new Error(`kubelet has not posted the Node's status since the fix (waited ${Math.round((ctx.waitForNodeStatusMs ?? 0) / 1000)} s)`)),
              status: 'skipped' as const,
            };
          }
          if (!node) return { ...failed(probe, started, ctx, new Error(`Kubernetes has no Node named ${nodeName}`)) };
          return obs(probe, started, ctx, renderNode(node));
        }
        case 'pods':
          return obs(probe, started, ctx, renderPods(await podsP, await ctx.runtimeSockets));
        case 'events': {
          const events = await eventsP;
          const since = ctx.sinceMs;
          return obs(probe, started, ctx, renderEvents(since === undefined ? events : events.filter((e) => Date.parse(e.lastTimestamp ?? '') >= since)));
        }
      }
    } catch (err) {
      return failed(probe, started, ctx, err);
    }
  };
  return Promise.all(probes.map(settle));
}
