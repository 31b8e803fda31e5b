/**
 * Builds the collaborators a terminal command needs from the configuration
 * and the command-line flags.
 */
import { createKubeClientInWorker } from '../adapters/kube-in-worker.js';
import type { KubeAccessOptions } from '../adapters/kube.js';
import { sharedDeps } from '../clusters/cluster-access.js';
import type { Config } from '../config.js';
import type { DiagnoseDeps } from '../diagnose/run-diagnosis.js';
import { UsageError } from '../errors.js';
import { DEFAULT_CLUSTER, loadClusterSpecs } from '../clusters/clusters.js';
import { loadInventory } from '../inventory/inventory.js';
import type { KubeClient } from '../ports.js';
import { createRedactor } from '../redact.js';

/** Diagnosis collaborators plus the Kubernetes writer (for fixes) and where the API is (for the fix lock). */
export interface CliContext extends DiagnoseDeps {
  kubeWriter: KubeClient | null;
  kubeAccess: KubeAccessOptions;
}

/** Flags that override the configuration. */
export interface ContextFlags {
  inventory?: string;
  kubeconfig?: string;
  /** A cluster of the clusters file (NODEDIAG_CLUSTERS). */
  cluster?: string;
}

/** The inventory, kubeconfig and context a command uses: flags first, then the clusters file, then the single-cluster settings. */
function whereFrom(config: Config, flags: ContextFlags): { inventoryPath?: string; kubeconfigPath?: string; context?: string } {
  if (!config.clustersPath) {
    if (flags.cluster && flags.cluster !== (config.clusterName ?? DEFAULT_CLUSTER)) throw new UsageError(`--cluster ${flags.cluster}: no clusters file is configured`, 'set NODEDIAG_CLUSTERS to the clusters file');
    return { inventoryPath: flags.inventory ?? config.inventoryPath, kubeconfigPath: flags.kubeconfig ?? config.kubeconfigPath };
  }
  const specs = loadClusterSpecs(config.clustersPath);
  const names = specs.map((c) => c.name).join(', ');
  const spec = flags.cluster ? specs.find((c) => c.name === flags.cluster) : specs.length === 1 ? specs[0] : undefined;
  if (flags.cluster && !spec) throw new UsageError(`there is no cluster "${flags.cluster}"`, `clusters: ${names}`);
  if (!spec && !flags.inventory) throw new UsageError(`several clusters are configured: say which with --cluster NAME`, `clusters: ${names}`);
  return {
    inventoryPath: flags.inventory ?? spec?.inventoryPath,
    kubeconfigPath: flags.kubeconfig ?? spec?.kubeconfigPath ?? config.kubeconfigPath,
    ...(spec?.context && !flags.kubeconfig ? { context: spec.context } : {}),
  };
}

export async function buildContext(config: Config, flags: ContextFlags, warn: (msg: string) => void): Promise<CliContext> {
  const where = whereFrom(config, flags);
  if (!where.inventoryPath) throw new UsageError('no inventory: pass --inventory FILE or set NODEDIAG_INVENTORY', 'see the inventory example in the README');
  const inventory = loadInventory(where.inventoryPath);
  const kubeAccess: KubeAccessOptions = { kubeconfigPath: where.kubeconfigPath, requestTimeoutMs: config.kubeTimeoutMs, ...(where.context ? { context: where.context } : {}) };
  const kube = createKubeClientInWorker(kubeAccess);
  return {
    ...sharedDeps({
      redact: createRedactor([config.slack.botToken, config.slack.signingSecret, config.slack.appToken]),
      maxOutputBytes: config.maxOutputBytes,
      onHostKeyRefused: (node, v) => {
        if (v.reason !== 'unknown') warn(`!! POSSIBLE ATTACK: ${node} presented ${v.presented}, not the pinned key (${v.reason})`);
      },
    }),
    inventory,
    kube: kube.client,
    kubeWriter: kube.client,
    kubeUnavailableReason: kube.client ? '' : kube.reason,
    kubeAccess,
  };
}
