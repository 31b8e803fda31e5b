/**
 * Each cluster's own access, built once for the bot: its inventory, its
 * Kubernetes client (kubeconfig and context), its fix lock, and an audit sink
 * that names it. What is not per cluster (catalogs, SSH, clock, redaction,
 * the audit file) is shared.
 */
import { join } from 'node:path';
import { createKubeClient, createLeaseLock } from '../adapters/kube.js';
import { auditForCluster, type AuditSink } from '../incidents/audit-log.js';
import { loadInventory, type Inventory } from '../inventory/inventory.js';
import type { KubeClient, KubeNodeWatcher } from '../ports.js';
import type { FixDeps } from '../runbooks/fix-service.js';
import { FileNodeLock, type NodeLock } from '../runbooks/lock.js';
import { DEFAULT_CLUSTER, type ClusterIndex, type ClusterSpec } from './clusters.js';

/** One cluster, ready to diagnose and fix. */
export interface ClusterAccess {
  name: string;
  inventory: Inventory;
  kube: KubeClient & KubeNodeWatcher | null;
  kubeUnavailableReason: string;
  fix: FixDeps;
}

/** How locks are made: Leases in each cluster's API, or files under the state directory. */
export interface LockSettings {
  backend: 'file' | 'lease';
  stateDir: string;
  namespace: string;
  identity: string;
  renewSeconds: number;
  kubeTimeoutMs: number;
  /** A lock given from outside (tests): used for every cluster. */
  given?: NodeLock;
}

/** Builds every cluster's access; the first is the default. */
export async function openClusters(specs: ClusterSpec[], shared: Omit<FixDeps, 'inventory' | 'kube' | 'kubeUnavailableReason' | 'kubeWriter' | 'lock' | 'audit'> & { audit: AuditSink }, locks: LockSettings): Promise<ClusterAccess[]> {
  const out: ClusterAccess[] = [];
  const several = specs.length > 1;
  for (const spec of specs) {
    const inventory = loadInventory(spec.inventoryPath);
    const access = { kubeconfigPath: spec.kubeconfigPath, requestTimeoutMs: locks.kubeTimeoutMs, ...(spec.context ? { context: spec.context } : {}) };
    const kube = createKubeClient(access);
    const lock =
      locks.given ??
      (locks.backend === 'lease'
        ? await createLeaseLock({ ...access, namespace: locks.namespace, identity: locks.identity, renewSeconds: locks.renewSeconds })
        : new FileNodeLock(several ? join(locks.stateDir, 'locks', spec.name) : join(locks.stateDir, 'locks')));
    out.push({
      name: spec.name,
      inventory,
      kube: kube.client,
      kubeUnavailableReason: kube.client ? '' : kube.reason,
      fix: {
        ...shared,
        inventory,
        kube: kube.client,
        kubeUnavailableReason: kube.client ? '' : kube.reason,
        kubeWriter: kube.client,
        lock,
        audit: spec.name === DEFAULT_CLUSTER ? shared.audit : auditForCluster(shared.audit, spec.name),
      },
    });
  }
  return out;
}

/** What cluster resolution needs from each cluster. */
export function clusterIndex(clusters: ClusterAccess[], specs: ClusterSpec[]): ClusterIndex[] {
  return clusters.map((c) => ({ name: c.name, nodes: new Set(c.inventory.nodes.map((n) => n.name)), channels: specs.find((s) => s.name === c.name)?.channels ?? [] }));
}
