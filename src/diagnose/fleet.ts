/**
 * Fleet diagnosis: many nodes (by label selector or by name) with a
 * concurrency cap; one failure never stops the others.
 */
import { mapLimit } from '../concurrency.js';
import { NodediagError, UsageError, errorMessage } from '../errors.js';
import type { KubeNode } from '../ports.js';
import { diagnoseNode, type DiagnoseDeps, type DiagnosisReport } from './run-diagnosis.js';

/** A node that could not be diagnosed at all (bad name, not in the inventory…). */
export interface FleetError {
  node: string;
  error: string;
  code: string;
}

/** Per-node outcome of a fleet run. */
export type FleetEntry = DiagnosisReport | FleetError;

/** Resolves a label selector to the matching Nodes through the Kubernetes API. */
export async function nodesForSelector(selector: string, deps: Pick<DiagnoseDeps, 'kube' | 'kubeUnavailableReason'>): Promise<KubeNode[]> {
  if (!/^[A-Za-z0-9._/=!,() -]+$/.test(selector) || selector.length > 512) {
    throw new UsageError(`"${selector.slice(0, 80)}" is not a valid label selector`, 'example: -l pool=gpu,zone!=b');
  }
  if (!deps.kube) throw new UsageError(`a label selector needs Kubernetes access: ${deps.kubeUnavailableReason}`);
  const nodes = await deps.kube.listNodes(selector);
  return nodes.sort((a, b) => a.name.localeCompare(b.name));
}

/** Diagnoses every node with at most `concurrency` at once. */
export async function diagnoseFleet(
  targets: Array<string | KubeNode>,
  deps: DiagnoseDeps,
  concurrency: number,
  onDone?: (entry: FleetEntry, done: number, total: number) => void,
): Promise<FleetEntry[]> {
  let done = 0;
  const unique = [...new Map(targets.map((t) => [typeof t === 'string' ? t : t.name, t])).values()];
  return mapLimit(unique, concurrency, async (target) => {
    const node = typeof target === 'string' ? target : target.name;
    let entry: FleetEntry;
    try {
      entry = await diagnoseNode(node, deps, typeof target === 'string' ? undefined : target);
      // A fleet report needs findings and checks; raw outputs of hundreds of nodes would only fill memory.
      entry.observations = [];
    } catch (err) {
      entry = { node, error: deps.redact(errorMessage(err)), code: err instanceof NodediagError ? err.code : 'ERROR' };
    }
    done += 1;
    onDone?.(entry, done, unique.length);
    return entry;
  });
}

/** Exit status of a fleet run: 3 if any node is unreachable or failed, else 1 if any has findings, else 0. */
export function fleetExitStatus(entries: FleetEntry[]): number {
  if (entries.some((e) => 'error' in e || !e.reachable)) return 3;
  return entries.some((e) => !('error' in e) && e.findings.length > 0) ? 1 : 0;
}
