/**
 * Product collaborators wired to a simulated fleet: the real SSH adapter,
 * the real Kubernetes adapter, a real audit log and lock in a temp dir.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubeClient } from '../../src/adapters/kube.js';
import { createSshConnector } from '../../src/adapters/ssh.js';
import { loadCatalogs, type Catalogs } from '../../src/catalog/load.js';
import { FileAuditLog } from '../../src/incidents/audit-log.js';
import { loadInventory } from '../../src/inventory/inventory.js';
import { systemClock } from '../../src/ports.js';
import { createRedactor } from '../../src/redact.js';
import type { FixDeps } from '../../src/runbooks/fix-service.js';
import { FileNodeLock } from '../../src/runbooks/lock.js';
import { startSimFleet, type SimFleet, type SimNodeSpec } from '../../src/sim/sim-fleet.js';

export interface SimWorld {
  fleet: SimFleet;
  deps: FixDeps;
  catalogs: Catalogs;
  dir: string;
  auditPath: string;
}

export async function simWorld(specs: SimNodeSpec[], opts: { timeScale?: number } = {}): Promise<SimWorld> {
  const catalogs = loadCatalogs();
  const fleet = await startSimFleet(specs, catalogs, { timeScale: opts.timeScale ?? 0.05 });
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-world-'));
  const k = createKubeClient({ kubeconfigPath: fleet.kubeconfigPath, requestTimeoutMs: 3000 });
  const redact = createRedactor();
  const auditPath = join(dir, 'audit.jsonl');
  const deps: FixDeps = {
    catalogs,
    inventory: loadInventory(fleet.inventoryPath),
    ssh: createSshConnector(),
    kube: k.client,
    kubeUnavailableReason: k.reason,
    kubeWriter: k.client,
    clock: systemClock,
    redact,
    maxOutputBytes: 256 * 1024,
    audit: new FileAuditLog(auditPath, redact),
    lock: new FileNodeLock(join(dir, 'locks')),
  };
  return { fleet, deps, catalogs, dir, auditPath };
}
