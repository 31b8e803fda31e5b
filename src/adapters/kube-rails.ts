/**
 * The rails' memory in the Kubernetes API, shared by every replica: one
 * NodediagRails custom resource (`rails`, in the bot's namespace) holding the
 * pause and the recent fleet events (incidents opened, nodes unhealthy or
 * healthy, fix runs). Every change is a read-modify-write with the
 * resourceVersion read: on a 409 the change is applied again to what the
 * other replica wrote, so no event is lost and a pause set on one replica
 * stops fixes on all of them.
 */
import { KubeAccessError } from '../errors.js';
import type { LedgerEvent, Pause } from '../rails/gates.js';
import type { RailsMemory } from '../rails/ledger.js';
import { crdMissing, httpStatus, openCustomResource, type KubeAccessOptions } from './kube.js';

/** The custom resource's coordinates. */
export const NODEDIAG_RAILS = { group: 'nodediag.io', version: 'v1alpha1', plural: 'nodediagrails', kind: 'NodediagRails' } as const;

/** The one object's name. */
export const RAILS_OBJECT = 'rails';

/** Events kept at most, newest first kept (an object must stay well under etcd's 1.5 MB). */
export const MAX_SHARED_EVENTS = 10_000;

const KINDS = new Set<LedgerEvent['kind']>(['incident-opened', 'unhealthy', 'healthy', 'fix-run']);

interface RailsObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: { pause?: Pause | null; events?: LedgerEvent[] };
}

/** Options of the shared rails memory. */
export interface KubeRailsOptions extends KubeAccessOptions {
  namespace: string;
  /** How long fix runs count (the retry window)… */
  retryWindowMs: number;
  /** …and the other events (the storm window). */
  stormWindowMs: number;
  now: () => number;
}

/** Tries of one change against others' concurrent changes. */
const CAS_TRIES = 8;

/** Creates the shared rails memory, reading it once (and creating the object on first use). */
export async function createKubeRails(opts: KubeRailsOptions): Promise<RailsMemory> {
  const { api, server, at, options, fail } = await openCustomResource(opts, NODEDIAG_RAILS, 'the shared rails (NODEDIAG_STORE=kube)');
  const apiVersion = `${NODEDIAG_RAILS.group}/${NODEDIAG_RAILS.version}`;

  let events: LedgerEvent[] = [];
  let pause: Pause | null = null;
  let rv: string | undefined;

  const keep = (list: LedgerEvent[]): LedgerEvent[] => {
    const now = opts.now();
    const kept = list.filter((e) => e.at >= now - (e.kind === 'fix-run' ? opts.retryWindowMs : opts.stormWindowMs));
    return kept.length > MAX_SHARED_EVENTS ? kept.slice(kept.length - MAX_SHARED_EVENTS) : kept;
  };
  const take = (obj: RailsObject) => {
    rv = obj.metadata.resourceVersion;
    const list = Array.isArray(obj.spec?.events) ? obj.spec.events : [];
    events = keep(list.filter((e) => typeof e?.at === 'number' && typeof e.node === 'string' && KINDS.has(e.kind)));
    const p = obj.spec?.pause;
    pause = p && typeof p.until === 'string' && typeof p.by === 'string' ? p : null;
  };

  const load = async (): Promise<void> => {
    try {
      take((await api.getNamespacedCustomObject({ ...at, name: RAILS_OBJECT }, options())) as RailsObject);
      return;
    } catch (err) {
      if (httpStatus(err) !== 404) throw fail(err, 'get');
    }
    try {
      const body: RailsObject = { apiVersion, kind: NODEDIAG_RAILS.kind, metadata: { name: RAILS_OBJECT }, spec: { pause: null, events: [] } };
      take((await api.createNamespacedCustomObject({ ...at, body }, options())) as RailsObject);
    } catch (err) {
      // Another replica created it first: read theirs.
      if (httpStatus(err) !== 409) {
        if (httpStatus(err) === 404) {
          throw crdMissing(server, NODEDIAG_RAILS);
        }
        throw fail(err, 'create');
      }
      take((await api.getNamespacedCustomObject({ ...at, name: RAILS_OBJECT }, options())) as RailsObject);
    }
  };

  /** Applies `change` to the latest state and writes it with the resourceVersion it was read at. */
  const write = async (what: string, apply: (s: { events: LedgerEvent[]; pause: Pause | null }) => { events: LedgerEvent[]; pause: Pause | null }): Promise<void> => {
    for (let i = 0; i < CAS_TRIES; i++) {
      // Another replica won the last round: let it finish before reading again.
      if (i > 0) await new Promise((r) => setTimeout(r, Math.random() * 20 * i));
      if (rv === undefined) await load();
      const next = apply({ events: [...events], pause });
      const body: RailsObject = { apiVersion, kind: NODEDIAG_RAILS.kind, metadata: { name: RAILS_OBJECT, resourceVersion: rv! }, spec: { pause: next.pause, events: keep(next.events) } };
      try {
        take((await api.replaceNamespacedCustomObject({ ...at, name: RAILS_OBJECT, body }, options())) as RailsObject);
        return;
      } catch (err) {
        const code = httpStatus(err);
        if (code !== 409 && code !== 404) throw fail(err, 'update');
        await load();
      }
    }
    throw new KubeAccessError('KUBE_ERROR', `could not record ${what} in the shared rails: ${CAS_TRIES} concurrent changes in a row`, 'retry; if it persists, check for a process writing nodediagrails in a loop');
  };

  // This process's changes go one at a time: they would only conflict with each other.
  let queue: Promise<void> = Promise.resolve();
  const change: typeof write = (what, apply) => {
    const run = queue.then(() => write(what, apply));
    queue = run.catch(() => undefined);
    return run;
  };

  await load();
  return {
    refresh: load,
    recent: () => events,
    storedPause: () => pause,
    record: (node, kind) => change(`a ${kind} of ${node}`, (s) => ({ ...s, events: [...s.events, { at: opts.now(), node, kind }] })),
    setPause: (p) => change(p ? 'the pause' : 'the end of the pause', (s) => ({ ...s, pause: p })),
  };
}
