/**
 * Which process runs the periodic work (approval expiry, recovery of fixes
 * whose process died) when several share one Kubernetes API: the holder of
 * the `nodediag-leader` Lease, renewed while it lives, taken over by another
 * process once it lapses. With one process (the file store) it always leads.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { LockHeldError } from '../errors.js';
import type { LockHandle } from '../runbooks/lock.js';
import { createLeaseLock, type KubeAccessOptions } from './kube.js';

/** This process's part in the periodic work. */
export interface Leadership {
  /** This process, as the Lease names its holder. */
  readonly identity: string;
  /** Whether this process leads now: keeps or takes the lead (one API call when it already holds it). */
  lead(): Promise<boolean>;
  /** What the last {@link Leadership.lead} found. */
  readonly leading: boolean;
  /** Hands the lead over at once and takes no part any more (shutdown). */
  stop(): Promise<void>;
}

/** One process, nothing to share: it leads. */
export function soleLeader(): Leadership {
  return { identity: `${hostname()}/${process.pid}`, lead: async () => true, leading: true, stop: async () => undefined };
}

/** The Lease's name. */
export const LEADER_LEASE = 'nodediag-leader';

/** Held until the process stops; the Lease itself lapses `renewSeconds` after the last renewal. */
const HOLD_MS = 10 * 365 * 86_400_000;

/** Leadership through a coordination.k8s.io Lease in `namespace`. */
export async function createLeaderLease(opts: KubeAccessOptions & { namespace: string; renewSeconds: number }): Promise<Leadership> {
  // Unique per process and per server in it (tests run two in one process).
  const identity = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  const lock = await createLeaseLock({ ...opts, identity, leaseNameOf: () => LEADER_LEASE });
  let held: LockHandle | null = null;
  let stopped = false;
  const self = {
    identity,
    leading: false,
    async lead(): Promise<boolean> {
      if (stopped) return false;
      if (held) {
        // Renewals that failed long enough let another process take it: then this one no longer leads.
        const now = await lock.holder(LEADER_LEASE);
        if (now?.holder !== identity) held = null;
      }
      if (!held) {
        try {
          held = await lock.acquire(LEADER_LEASE, identity, HOLD_MS);
        } catch (err) {
          if (!(err instanceof LockHeldError)) throw err;
        }
      }
      self.leading = held !== null;
      return self.leading;
    },
    async stop(): Promise<void> {
      stopped = true;
      const h = held;
      held = null;
      self.leading = false;
      await h?.release();
    },
  };
  return self;
}
