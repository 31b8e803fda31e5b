/** What the probes saw: the input of classification. */
import type { CheckStatus } from '../catalog/schema.js';

/** The result of one check (probe) on one node. */
export interface Observation {
  /** The probe id. */
  check: string;
  /** Whether the check could be performed (not whether the node is healthy). */
  status: CheckStatus;
  /** Output lines after the probe's parser (redacted, capped). */
  lines: string[];
  /** The output as the probe printed it (redacted, capped), before parsing: what fixtures keep. */
  raw?: string;
  /** Exit status of the remote command, when there was one. */
  exitCode: number | null;
  durationMs: number;
  /** Output was cut at the cap. */
  truncated: boolean;
  /** Why the check failed, timed out or was skipped. */
  reason?: string;
  /** The node's clock when the probe ran (journal probes), for line ages. */
  nodeNowSec?: number;
}

/** All observations of one diagnosis, by check id. */
export type Observations = ReadonlyMap<string, Observation>;

/** Builds an {@link Observations} map from a list. */
export function observationsOf(list: Observation[]): Observations {
  return new Map(list.map((o) => [o.check, o]));
}
