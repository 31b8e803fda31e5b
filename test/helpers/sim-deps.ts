/**
 * Product collaborators wired to a simulated fleet: the real SSH adapter,
 * the real Kubernetes adapter, a real audit log and lock in a temp dir.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubeClient } from '../../src/adapters/kube.js';
import { fixDeps, sharedDeps } from '../../src/clusters/cluster-access.js';
import { loadCatalogs, type Catalogs } from '../../src/catalog/load.js';
import { FileAuditLog } from '../../src/incidents/audit-log.js';
import { loadInventory } from '../../src/inventory/inventory.js';
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
  const deps = fixDeps(sharedDeps({ redact, maxOutputBytes: 256 * 1024, catalogs }), loadInventory(fleet.inventoryPath), k, new FileNodeLock(join(dir, 'locks')), new FileAuditLog(auditPath, redact));
  return { fleet, deps, catalogs, dir, auditPath };
}
