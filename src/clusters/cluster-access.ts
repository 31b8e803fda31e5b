/**
 * The collaborators of diagnoses and fixes, put together in one place for
 * the bot, the terminal and the tests: what every cluster shares (catalogs,
 * SSH, clock, redaction, the output cap) and, per cluster, its inventory, its
 * Kubernetes client (kubeconfig and context), its fix lock, and an audit sink
 * that names it.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createKubeClient, createLeaseLock, type KubeAccessOptions } from '../adapters/kube.js';
import { createSshConnector, type SshConnectorOptions } from '../adapters/ssh.js';
import { loadCatalogs, type Catalogs } from '../catalog/load.js';
import type { Config } from '../config.js';
import { auditForCluster, type AuditSink } from '../incidents/audit-log.js';
import { loadInventory, type Inventory } from '../inventory/inventory.js';
import { systemClock, type Clock, type KubeClient, type KubeNodeWatcher } from '../ports.js';
import type { Redactor } from '../redact.js';
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

/** What every cluster shares. */
export type SharedDeps = Pick<FixDeps, 'catalogs' | 'ssh' | 'clock' | 'redact' | 'maxOutputBytes'>;

/** The shared collaborators: the catalogs as shipped, the SSH connector (told of refused host keys), the clock. */
export function sharedDeps(opts: { redact: Redactor; maxOutputBytes: number; onHostKeyRefused?: SshConnectorOptions['onHostKeyRefused']; clock?: Clock; catalogs?: Catalogs }): SharedDeps {
  return {
    catalogs: opts.catalogs ?? loadCatalogs(),
    ssh: createSshConnector(opts.onHostKeyRefused ? { onHostKeyRefused: opts.onHostKeyRefused } : {}),
    clock: opts.clock ?? systemClock,
    redact: opts.redact,
    maxOutputBytes: opts.maxOutputBytes,
  };
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

/** The lock settings of the configuration, for a process that calls itself `who` (the bot, the terminal). */
export function lockSettings(config: Config, who: string, given?: NodeLock): LockSettings {
  return {
    backend: config.lockBackend,
    stateDir: config.stateDir,
    namespace: config.leaseNamespace,
    identity: `${who}@${hostname()}/${process.pid}`,
    renewSeconds: config.leaseSeconds,
    kubeTimeoutMs: config.kubeTimeoutMs,
    ...(given ? { given } : {}),
  };
}

/** A cluster's fix lock: the same for the bot and the terminal, so they never fix one node at once. */
export async function createFixLock(locks: LockSettings, access: KubeAccessOptions, cluster?: string): Promise<NodeLock> {
  if (locks.given) return locks.given;
  if (locks.backend === 'lease') return createLeaseLock({ ...access, namespace: locks.namespace, identity: locks.identity, renewSeconds: locks.renewSeconds });
  return new FileNodeLock(cluster ? join(locks.stateDir, 'locks', cluster) : join(locks.stateDir, 'locks'));
}

/** One cluster's collaborators for diagnoses and fixes. */
export function fixDeps(shared: SharedDeps, inventory: Inventory, kube: { client: KubeClient | null; reason: string }, lock: NodeLock, audit: AuditSink): FixDeps {
  return { ...shared, inventory, kube: kube.client, kubeUnavailableReason: kube.client ? '' : kube.reason, kubeWriter: kube.client, lock, audit };
}

/** Builds every cluster's access; the first is the default. */
export async function openClusters(specs: ClusterSpec[], shared: SharedDeps & { audit: AuditSink }, locks: LockSettings): Promise<ClusterAccess[]> {
  const out: ClusterAccess[] = [];
  const several = specs.length > 1;
  for (const spec of specs) {
    const inventory = loadInventory(spec.inventoryPath);
    const access = { kubeconfigPath: spec.kubeconfigPath, requestTimeoutMs: locks.kubeTimeoutMs, ...(spec.context ? { context: spec.context } : {}) };
    const kube = createKubeClient(access);
    const lock = await createFixLock(locks, access, several ? spec.name : undefined);
    const { audit, ...common } = shared;
    out.push({
      name: spec.name,
      inventory,
      kube: kube.client,
      kubeUnavailableReason: kube.client ? '' : kube.reason,
      fix: fixDeps(common, inventory, kube, lock, spec.name === DEFAULT_CLUSTER ? audit : auditForCluster(audit, spec.name)),
    });
  }
  return out;
}

/** What cluster resolution needs from each cluster. */
export function clusterIndex(clusters: ClusterAccess[], specs: ClusterSpec[]): ClusterIndex[] {
  return clusters.map((c) => ({ name: c.name, nodes: new Set(c.inventory.nodes.map((n) => n.name)), channels: specs.find((s) => s.name === c.name)?.channels ?? [] }));
}
