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
  runtimeSockets: string[];
  clock: Clock;
  redact: Redactor;
  /** The node object, when it was already read to resolve the node's address. */
  node?: Promise<KubeNode | null>;
}

function obs(probe: KubeProbe, started: number, ctx: KubeProbeContext, lines: string[]): Observation {
  const redacted = lines.map(ctx.redact);
  return { check: probe.id, status: 'ok', lines: redacted, raw: redacted.join('\n'), exitCode: null, durationMs: ctx.clock.now() - started, truncated: false };
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
  const nodeP = ctx.node ?? kube.getNode(nodeName);
  const podsP = kube.listPodsOnNode(nodeName);
  const eventsP = podsP
    .catch(() => [] as KubePod[])
    .then((pods) => kube.listEvents(nodeName, troubledPods(pods).map((p) => ({ namespace: p.namespace, name: p.name }))));
  const settle = async (probe: KubeProbe): Promise<Observation> => {
    try {
      switch (probe.resource) {
        case 'node': {
          const node = await nodeP;
          if (!node) return { ...failed(probe, started, ctx, new Error(`Kubernetes has no Node named ${nodeName}`)) };
          return obs(probe, started, ctx, renderNode(node));
        }
        case 'pods':
          return obs(probe, started, ctx, renderPods(await podsP, ctx.runtimeSockets));
        case 'events':
          return obs(probe, started, ctx, renderEvents(await eventsP));
      }
    } catch (err) {
      return failed(probe, started, ctx, err);
    }
  };
  return Promise.all(probes.map(settle));
}
