/**
 * What a process holds for the fixes it carries, through the fix lock
 * (Leases shared by replicas, or files for one process): an incident lock
 * from the approval to the fix's last word, one of the cluster's fix slots
 * while it runs (the node's own lock is the executor's, while the steps run);
 * and, for a sweep, which open incidents no live process carries any more.
 */
import { LockHeldError } from '../errors.js';
import type { Clock } from '../ports.js';
import { DEFAULT_LOCK_TTL_MS } from '../runbooks/execute.js';
import type { LockHandle, NodeLock } from '../runbooks/lock.js';
import type { Incident } from './incident.js';

/** The fix lock's names for a cluster's fix slots (`…0` to `…N-1`): lock names no real node has. */
export const FIX_SLOT_LOCK = 'nodediag-fix-slot-';

/** The lock name of the incident lock: once it lapses, the process that carried the fix is gone. */
export const INCIDENT_LOCK = 'nodediag-incident-';

/** How long a fix may be carried holding its lock (a lease lapses sooner when its process dies: it stops renewing). */
const INCIDENT_HOLD_MS = 24 * 3600_000;

/** How often a fix waiting for a slot another process holds looks again. */
export const SLOT_POLL_MS = 2000;

/** A diagnosis open this long is no live process's any more. */
export const STALE_DIAGNOSIS_MS = 5 * 60_000;

/** How the claims are kept. */
export interface FixClaimsOptions {
  /** Several processes share the incidents (and the locks): claims tell who still lives. */
  shared: boolean;
  /** The cluster's fix slots (NODEDIAG_MAX_CONCURRENT_FIXES). */
  slots: number;
  clock: Clock;
}

/** Who holds a lock named for an incident: the node, without the incident id. */
const holderNode = (holder: string) => holder.replace(/ \(incident .*$/, '');
const holderName = (inc: Incident) => `${inc.node} (incident ${inc.id})`;

/** The claims of one process on the fixes it carries, over each cluster's fix lock. */
export class FixClaims {
  constructor(
    private readonly lockOf: (cluster: string | undefined) => NodeLock,
    private readonly o: FixClaimsOptions,
  ) {}

  /**
   * Takes the incident lock (shared incidents only; one process has nothing
   * to tell). Taken before the approval is recorded and held to the verdict,
   * so an approved or running fix whose incident lock is free has no process.
   */
  async carry(inc: Incident): Promise<LockHandle | null> {
    if (!this.o.shared) return null;
    return this.lockOf(inc.cluster).acquire(`${INCIDENT_LOCK}${inc.id}`, holderName(inc), INCIDENT_HOLD_MS);
  }

  /** One of the cluster's fix slots; waits, telling `onWait` whose fixes hold them, while all are taken. */
  async slot(inc: Incident, onWait: (waitingFor: string[]) => Promise<void>): Promise<LockHandle> {
    const lock = this.lockOf(inc.cluster);
    for (;;) {
      const holders: string[] = [];
      for (let i = 0; i < this.o.slots; i++) {
        try {
          return await lock.acquire(`${FIX_SLOT_LOCK}${i}`, holderName(inc), DEFAULT_LOCK_TTL_MS);
        } catch (err) {
          if (!(err instanceof LockHeldError)) throw err;
          holders.push(holderNode(err.holder));
        }
      }
      await onWait(holders);
      await this.o.clock.sleep(SLOT_POLL_MS);
    }
  }

  /** Frees what an interrupted fix held: the node's lock, its incident lock, and the slot named for it (or, with one process, any left by its previous run). */
  async release(inc: Incident): Promise<void> {
    const lock = this.lockOf(inc.cluster);
    await lock.forceRelease(inc.node);
    await lock.forceRelease(`${INCIDENT_LOCK}${inc.id}`);
    for (let i = 0; i < this.o.slots; i++) {
      const slot = `${FIX_SLOT_LOCK}${i}`;
      const held = await lock.holder(slot);
      // A lapsed slot in a shared store is free already, and another process may be taking it right now.
      if (held ? held.holder.endsWith(`(incident ${inc.id})`) : !this.o.shared) await lock.forceRelease(slot);
    }
  }

  /**
   * The open incidents no live process carries: with one process, all of them
   * (it restarted); with several, fixes whose incident and node locks have
   * both lapsed, and diagnoses long overdue.
   */
  async orphaned(open: Incident[]): Promise<Incident[]> {
    if (!this.o.shared) return open;
    const now = this.o.clock.now();
    const out: Incident[] = [];
    for (const inc of open) {
      if (inc.state === 'diagnosing') {
        if (now - Date.parse(inc.createdAt) > STALE_DIAGNOSIS_MS) out.push(inc);
        continue;
      }
      const lock = this.lockOf(inc.cluster);
      if (!(await lock.holder(`${INCIDENT_LOCK}${inc.id}`)) && !(await lock.holder(inc.node))) out.push(inc);
    }
    return out;
  }
}
