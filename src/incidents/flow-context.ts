/**
 * What the incident flows (diagnosis, approval, fix, recovery, pause) share:
 * the service's collaborators, the clusters and their access, the record of
 * incident changes, the fleet rails and the work running behind replies.
 */
import type { BackgroundWork } from '../concurrency.js';
import { DEFAULT_CLUSTER, type ClusterIndex } from '../clusters/clusters.js';
import type { ChatPort, Clock, Logger } from '../ports.js';
import type { MetricsSink } from '../metrics.js';
import type { RailsConfig } from '../rails/gates.js';
import type { RailsMemory } from '../rails/ledger.js';
import type { FixDeps } from '../runbooks/fix-service.js';
import type { IncidentRecord } from './incident-record.js';
import type { Outbox } from './outbox.js';
import type { RailsGuard } from './rails-guard.js';
import type { IncidentStore } from './store.js';
import type { AccessRules, IncidentViews } from './views.js';

/** Collaborators of the incident service. */
export interface IncidentServiceDeps {
  fix: FixDeps;
  store: IncidentStore;
  outbox: Outbox;
  /** For replies that cannot wait in the outbox: modals (trigger ids expire in 3 s). */
  chat: ChatPort;
  access: AccessRules;
  /** How incidents are shown (Slack's Block Kit in the bot). */
  views: IncidentViews;
  clock: Clock;
  logger: Logger;
  approvalTtlMs: number;
  maxConcurrentDiagnoses: number;
  fleetConcurrency: number;
  auditPath: string;
  /** The fleet safety rails: their settings, memory, and the nodes of each cluster (rails keys, see `railsKey`). */
  rails: { config: RailsConfig; ledger: RailsMemory; scope: (cluster: string) => ReadonlySet<string> };
  /**
   * The clusters: what resolution needs, and each one's own access (inventory,
   * Kubernetes, lock). Absent: one cluster, {@link fix}, named {@link DEFAULT_CLUSTER}.
   */
  clusters?: { index: ClusterIndex[]; fix: ReadonlyMap<string, FixDeps> };
  metrics?: MetricsSink;
  /** Other replicas share the store: what they are doing right now is not this process's leftover. */
  sharedStore?: boolean;
}

/** The clusters as the flows see them. */
export interface ClusterRoutes {
  /** What resolution needs (one, unnamed, cluster when none are configured). */
  readonly index: ClusterIndex[];
  /** The cluster names, the default one first. */
  readonly names: string[];
  /** The access to a cluster (the default cluster's for an incident without one). */
  of(cluster: string | undefined): FixDeps;
}

/** The routes of the configured clusters. */
export function clusterRoutes(d: Pick<IncidentServiceDeps, 'clusters' | 'fix'>): ClusterRoutes {
  const index = d.clusters?.index ?? [{ name: DEFAULT_CLUSTER, nodes: new Set<string>(), channels: [] }];
  return { index, names: index.map((c) => c.name), of: (cluster) => (cluster && d.clusters?.fix.get(cluster)) || d.fix };
}

/** What every incident flow is given. */
export interface FlowContext {
  readonly d: IncidentServiceDeps;
  readonly clusters: ClusterRoutes;
  readonly record: IncidentRecord;
  readonly rails: RailsGuard;
  readonly work: BackgroundWork;
  readonly metrics: MetricsSink;
}
