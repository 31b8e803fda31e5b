/**
 * The fleet safety rails as the incident flows consult them: the pause in
 * force, the storm gate, a node's retry budget, and the signals the flows
 * record for them (incidents opened, nodes found unhealthy or healthy, fix runs).
 */
import type { DiagnosisReport } from '../diagnose/run-diagnosis.js';
import { clusterNodeKey, DEFAULT_CLUSTER } from '../clusters/clusters.js';
import { errorMessage } from '../errors.js';
import { activePause, budgetRefusal, stormNow, type Pause, type Storm } from '../rails/gates.js';
import type { Incident } from './incident.js';
import type { IncidentServiceDeps } from './flow-context.js';
import type { Refusal } from './transitions.js';

/** How the rails know a node: its name, qualified by its cluster when there are several. */
export function railsKey(cluster: string | undefined, node: string): string {
  return clusterNodeKey(railsCluster(cluster), node);
}

/** The cluster part of a rails key: none for the unnamed cluster. */
export function railsCluster(cluster: string | undefined): string | undefined {
  return cluster === DEFAULT_CLUSTER ? undefined : cluster;
}

/** What the storm gate counts as an unhealthy node: unreachable, or a critical or high root cause (advice-level findings are not). */
export function unhealthy(report: DiagnosisReport): boolean {
  return !report.reachable || report.findings.some((f) => f.role === 'root-cause' && (f.severity === 'critical' || f.severity === 'high'));
}

/** A fleet signal the rails count. */
export type RailsSignal = 'incident-opened' | 'unhealthy' | 'healthy' | 'fix-run';

export class RailsGuard {
  constructor(
    private readonly d: Pick<IncidentServiceDeps, 'rails' | 'clock' | 'logger'>,
    private readonly clusterNames: readonly string[],
  ) {}

  /** The pause in force, if any. */
  pauseNow(): Pause | null {
    return activePause(this.d.rails.ledger.storedPause(), this.d.clock.now());
  }

  /** The pause as a refusal to start or approve a fix. */
  pauseRefusal(): Refusal | null {
    const p = this.pauseNow();
    return p ? { reason: `Fixes are paused by <@${p.by}> until ${p.until.slice(11, 16)} UTC: ${p.reason}`, hint: 'An approver can end the pause with /diag resume.' } : null;
  }

  /** The storm, if the gate holds now in the cluster (in any cluster when none is named). */
  stormNow(cluster?: string): Storm | null {
    for (const c of cluster ? [cluster] : this.clusterNames) {
      const storm = stormNow(this.d.rails.ledger.recent(), this.d.rails.scope(c), this.d.clock.now(), this.d.rails.config);
      if (storm) return storm;
    }
    return null;
  }

  /** Why the incident's node may not be fixed again now (its retry budget is spent), or null. */
  budgetSpent(inc: Incident): string | null {
    return budgetRefusal(this.d.rails.ledger.recent(), railsKey(inc.cluster, inc.node), this.d.clock.now(), this.d.rails.config);
  }

  /** The spent budget as a refusal to approve. */
  budgetRefusal(inc: Incident): Refusal | null {
    const spent = this.budgetSpent(inc);
    return spent ? { reason: `No more fixes on ${inc.node} for now: ${spent}.`, hint: 'Escalate to the node owners; the thread has every earlier run.' } : null;
  }

  /** Records a fleet signal; a failed write is logged (a fix run's is thrown: the run then does not start). */
  async record(inc: Incident, kind: RailsSignal): Promise<void> {
    try {
      await this.d.rails.ledger.record(railsKey(inc.cluster, inc.node), kind);
    } catch (err) {
      this.d.logger.error('rails ledger write failed', { error: errorMessage(err) });
      if (kind === 'fix-run') throw err;
    }
  }

  /** Loads what other replicas recorded (pause, fix runs, unhealthy nodes) before a rails decision. */
  async refresh(): Promise<void> {
    try {
      await this.d.rails.ledger.refresh();
    } catch (err) {
      this.d.logger.error('rails ledger read failed; deciding on what was last read', { error: errorMessage(err) });
    }
  }

  /** Sets or ends the pause for every replica. */
  setPause(p: Pause | null): Promise<void> {
    return this.d.rails.ledger.setPause(p);
  }
}
