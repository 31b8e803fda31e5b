/**
 * Kubernetes objects as nodediag reads them: what a diagnosis asks the API
 * for, and the API's Node, Pod and Event (as client-node returns them, or as
 * the API's JSON: the same field names; times may be Date objects or RFC 3339
 * strings) reduced to the ports' types. Both clients (kube.ts, kube-direct.ts)
 * use these, so they ask and answer alike.
 */
import type * as K8s from '@kubernetes/client-node';
import type { KubeContainerStatus, KubeEvent, KubeNode, KubePod } from '../ports.js';

/** The list queries of a diagnosis's reads, whichever client makes them. */
export const READ_QUERIES = {
  podsOnNode: (node: string) => ({ fieldSelector: `spec.nodeName=${node}`, limit: 500 }),
  nodeEvents: (node: string) => ({ fieldSelector: `involvedObject.kind=Node,involvedObject.name=${node}`, limit: 100 }),
  podEvents: (pod: string) => ({ fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${pod}`, limit: 50 }),
  /** Events are read for this many of the pods given (the first ones). */
  podsWithEvents: 20,
};

/** A Node as the rules read it. */
export function toNode(n: K8s.V1Node): KubeNode {
  return {
    name: n.metadata?.name ?? '',
    labels: n.metadata?.labels ?? {},
    unschedulable: n.spec?.unschedulable === true,
    conditions: (n.status?.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      lastTransitionTime: c.lastTransitionTime ? new Date(c.lastTransitionTime).toISOString() : undefined,
      lastHeartbeatTime: c.lastHeartbeatTime ? new Date(c.lastHeartbeatTime).toISOString() : undefined,
    })),
    taints: (n.spec?.taints ?? []).map((t) => ({ key: t.key, value: t.value, effect: t.effect })),
    addresses: (n.status?.addresses ?? []).map((a) => ({ type: a.type, address: a.address })),
    ...(n.status?.nodeInfo?.machineID ? { machineID: n.status.nodeInfo.machineID } : {}),
    ...(n.status?.nodeInfo?.systemUUID ? { systemUUID: n.status.nodeInfo.systemUUID } : {}),
  };
}

function toContainer(s: K8s.V1ContainerStatus): KubeContainerStatus {
  const st = s.state;
  const state: KubeContainerStatus['state'] = st?.running
    ? { kind: 'running' }
    : st?.waiting
      ? { kind: 'waiting', reason: st.waiting.reason, message: st.waiting.message }
      : st?.terminated
        ? { kind: 'terminated', reason: st.terminated.reason, message: st.terminated.message, exitCode: st.terminated.exitCode }
        : { kind: 'unknown' };
  const last = s.lastState?.terminated;
  return {
    name: s.name,
    ready: s.ready,
    restartCount: s.restartCount,
    state,
    lastTerminated: last
      ? { reason: last.reason, exitCode: last.exitCode, finishedAt: last.finishedAt ? new Date(last.finishedAt).toISOString() : undefined }
      : undefined,
  };
}

/** A Pod as the rules read it: its containers (init containers first), owner and volumes. */
export function toPod(p: K8s.V1Pod): KubePod {
  const owner = p.metadata?.ownerReferences?.find((o) => o.controller) ?? p.metadata?.ownerReferences?.[0];
  return {
    namespace: p.metadata?.namespace ?? 'default',
    name: p.metadata?.name ?? '',
    uid: p.metadata?.uid ?? '',
    phase: p.status?.phase ?? 'Unknown',
    owner: owner ? { kind: owner.kind, name: owner.name } : undefined,
    containers: [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].map(toContainer),
    hostPaths: (p.spec?.volumes ?? [])
      .filter((v) => v.hostPath)
      .map((v) => ({ volume: v.name, path: v.hostPath!.path, type: v.hostPath!.type ? v.hostPath!.type : null })),
    createdAt: p.metadata?.creationTimestamp ? new Date(p.metadata.creationTimestamp).toISOString() : undefined,
    ...(p.metadata?.annotations?.['kubernetes.io/config.mirror'] ? { mirror: true } : {}),
    localVolumes: (p.spec?.volumes ?? []).filter((v) => v.emptyDir).map((v) => v.name),
  };
}

/** An Event, its time the latest it carries. */
export function toEvent(e: K8s.CoreV1Event): KubeEvent {
  const last = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp;
  return {
    type: e.type ?? 'Normal',
    reason: e.reason ?? '',
    message: e.message ?? '',
    kind: e.involvedObject.kind ?? '',
    namespace: e.involvedObject.namespace,
    name: e.involvedObject.name ?? '',
    count: e.count ?? 1,
    lastTimestamp: last ? new Date(last as unknown as string).toISOString() : undefined,
  };
}
