/**
 * Builds the collaborators a terminal command needs from the configuration
 * and the command-line flags.
 */
import { createKubeClientInWorker } from '../adapters/kube-in-worker.js';
import { createSshConnector } from '../adapters/ssh.js';
import { loadCatalogs } from '../catalog/load.js';
import type { Config } from '../config.js';
import type { DiagnoseDeps } from '../diagnose/run-diagnosis.js';
import { UsageError } from '../errors.js';
import { loadInventory } from '../inventory/inventory.js';
import { systemClock, type KubeClient } from '../ports.js';
import { createRedactor } from '../redact.js';

/** Diagnosis collaborators plus the Kubernetes writer (for fixes). */
export interface CliContext extends DiagnoseDeps {
  kubeWriter: KubeClient | null;
}

/** Flags that override the configuration. */
export interface ContextFlags {
  inventory?: string;
  kubeconfig?: string;
}

export async function buildContext(config: Config, flags: ContextFlags, warn: (msg: string) => void): Promise<CliContext> {
  const inventoryPath = flags.inventory ?? config.inventoryPath;
  if (!inventoryPath) throw new UsageError('no inventory: pass --inventory FILE or set NODEDIAG_INVENTORY', 'see the inventory example in the README');
  const inventory = loadInventory(inventoryPath);
  const kube = createKubeClientInWorker({ kubeconfigPath: flags.kubeconfig ?? config.kubeconfigPath, requestTimeoutMs: config.kubeTimeoutMs });
  const redact = createRedactor([config.slack.botToken, config.slack.signingSecret, config.slack.appToken]);
  return {
    catalogs: loadCatalogs(),
    inventory,
    ssh: createSshConnector({
      onHostKeyRefused: (node, v) => {
        if (v.reason !== 'unknown') warn(`!! POSSIBLE ATTACK: ${node} presented ${v.presented}, not the pinned key (${v.reason})`);
      },
    }),
    kube: kube.client,
    kubeWriter: kube.client,
    kubeUnavailableReason: kube.client ? '' : kube.reason,
    clock: systemClock,
    redact,
    maxOutputBytes: config.maxOutputBytes,
  };
}
