/**
 * Fleet diagnosis: many nodes (by label selector or by name) with a
 * concurrency cap; one failure never stops the others.
 */
import { mapLimit } from '../concurrency.js';
import { NodediagError, UsageError, errorMessage } from '../errors.js';
import { diagnoseNode, type DiagnoseDeps, type DiagnosisReport } from './run-diagnosis.js';

/** A node that could not be diagnosed at all (bad name, not in the inventory…). */
export interface FleetError {
  node: string;
  error: string;
  code: string;
}

/** Per-node outcome of a fleet run. */
export type FleetEntry = DiagnosisReport | FleetError;

/** Resolves a label selector to node names through the Kubernetes API. */
export async function nodesForSelector(selector: string, deps: Pick<DiagnoseDeps, 'kube' | 'kubeUnavailableReason'>): Promise<string[]> {
  if (!/^[A-Za-z0-9._/=!,() -]+$/.test(selector) || selector.length > 512) {
    throw new UsageError(`"${selector.slice(0, 80)}" is not a valid label selector`, 'example: -l pool=gpu,zone!=b');
  }
  if (!deps.kube) throw new UsageError(`a label selector needs Kubernetes access: ${deps.kubeUnavailableReason}`);
  const nodes = await deps.kube.listNodes(selector);
  return nodes.map((n) => n.name).sort();
}

/** Diagnoses every node with at most `concurrency` at once. */
export async function diagnoseFleet(
  names: string[],
  deps: DiagnoseDeps,
  concurrency: number,
  onDone?: (entry: FleetEntry, done: number, total: number) => void,
): Promise<FleetEntry[]> {
  let done = 0;
  return mapLimit([...new Set(names)], concurrency, async (node) => {
    let entry: FleetEntry;
    try {
      entry = await diagnoseNode(node, deps);
    } catch (err) {
      entry = { node, error: deps.redact(errorMessage(err)), code: err instanceof NodediagError ? err.code : 'ERROR' };
    }
    done += 1;
    onDone?.(entry, done, names.length);
    return entry;
  });
}

/** Exit status of a fleet run: 3 if any node is unreachable or failed, else 1 if any has findings, else 0. */
export function fleetExitStatus(entries: FleetEntry[]): number {
  if (entries.some((e) => 'error' in e || !e.reachable)) return 3;
  return entries.some((e) => !('error' in e) && e.findings.length > 0) ? 1 : 0;
}
