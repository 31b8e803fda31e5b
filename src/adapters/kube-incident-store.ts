/**
 * Incidents as NodeIncident custom resources (nodeincidents.nodediag.io), so
 * that several replicas share one truth and `kubectl get nodeincidents` shows
 * what the bot is doing. The identity (node, channel, requester) is the spec,
 * set once; everything that changes is the status, written through the status
 * subresource with the resourceVersion last read: a change made meanwhile by
 * another replica is a 409, surfaced as {@link ConflictError} so the caller
 * re-reads and decides again.
 */
import { KubeAccessError } from '../errors.js';
import { INCIDENT_ID, offerOf, TERMINAL_STATES, type Incident, type IncidentState } from '../incidents/incident.js';
import { ConflictError, type IncidentStore } from '../incidents/store.js';
import { httpStatus, openCustomResource, type KubeAccessOptions } from './kube.js';

/** The custom resource's coordinates. */
export const NODE_INCIDENT = { group: 'nodediag.io', version: 'v1alpha1', plural: 'nodeincidents', kind: 'NodeIncident' } as const;

/** Label carrying the incident's state, so open incidents are listed without reading closed ones. */
export const STATE_LABEL = 'nodediag.io/open';

/** What the custom resource holds: the spec never changes after creation. */
export interface NodeIncidentObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; creationTimestamp?: string };
  spec: { node: string; channel: string; requester: string; cluster?: string };
  status?: { state: IncidentState; finding?: string; approver?: string; incident: Incident };
}

/** Options of the Kubernetes-backed store. */
export interface KubeIncidentStoreOptions extends KubeAccessOptions {
  namespace: string;
  /** The cluster name shown on the resource (one bot, several clusters). */
  cluster?: string;
}

/** Who approved, for the printer column: every approver of a storm override, else the one. */
function approverColumn(offer: ReturnType<typeof offerOf>): { approver?: string } {
  if (offer?.approvals.length) return { approver: offer.approvals.join(',') };
  return offer?.approvedBy ? { approver: offer.approvedBy } : {};
}

/** The object for an incident (status included; the API ignores it on create). */
export function toNodeIncident(i: Incident, namespace: string, cluster?: string, resourceVersion?: string): NodeIncidentObject {
  return {
    apiVersion: `${NODE_INCIDENT.group}/${NODE_INCIDENT.version}`,
    kind: NODE_INCIDENT.kind,
    metadata: { name: i.id, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    spec: { node: i.node, channel: i.channel, requester: i.requester, ...(cluster ? { cluster } : {}) },
    status: {
      state: i.state,
      ...(i.finding ? { finding: i.finding } : {}),
      ...approverColumn(offerOf(i)),
      incident: i,
    },
  };
}

/** Creates the store; the client library loads here, once. */
export async function createKubeIncidentStore(opts: KubeIncidentStoreOptions): Promise<IncidentStore> {
  const { lib, api, at, options, fail, checkServed } = await openCustomResource(opts, NODE_INCIDENT, 'the Kubernetes incident store (NODEDIAG_STORE=kube)');
  const ns = opts.namespace;
  /** The resourceVersion of each incident version last read or written here: the precondition of the next write. */
  const seen = new Map<string, { version: number; rv: string }>();
  const remember = (id: string, version: number, rv: string | undefined) => {
    if (!rv) return;
    seen.delete(id);
    seen.set(id, { version, rv });
    if (seen.size > 2000) seen.delete(seen.keys().next().value!);
  };

  const read = async (id: string): Promise<Incident | null> => {
    let obj: NodeIncidentObject;
    try {
      obj = (await api.getNamespacedCustomObject({ ...at, name: id }, options())) as NodeIncidentObject;
    } catch (err) {
      if (httpStatus(err) === 404) return null;
      throw fail(err, 'get');
    }
    // Created but its first status write did not land: not an incident yet.
    if (!obj.status?.incident) return null;
    remember(id, obj.status.incident.version, obj.metadata.resourceVersion);
    return obj.status.incident;
  };

  const writeStatus = async (i: Incident, rv: string): Promise<void> => {
    try {
      const out = (await api.replaceNamespacedCustomObjectStatus({ ...at, name: i.id, body: toNodeIncident(i, ns, opts.cluster, rv) }, options())) as NodeIncidentObject;
      remember(i.id, i.version, out.metadata.resourceVersion);
    } catch (err) {
      const code = httpStatus(err);
      if (code === 409 || code === 404) {
        seen.delete(i.id);
        throw new ConflictError(i.id);
      }
      throw fail(err, 'update', '/status');
    }
  };

  // The open label lives in metadata, which the status subresource does not change: keep it in step on the main resource.
  const relabel = async (i: Incident): Promise<void> => {
    const written = seen.get(i.id);
    if (!TERMINAL_STATES.has(i.state) || written?.version !== i.version) return;
    try {
      // With the resourceVersion just written as precondition: a patch on top of another replica's change would make it look like ours.
      const out = (await api.patchNamespacedCustomObject(
        { ...at, name: i.id, body: { metadata: { resourceVersion: written.rv, labels: { [STATE_LABEL]: 'false' } } } },
        options([lib.setHeaderOptions('Content-Type', lib.PatchStrategy.MergePatch)]),
      )) as NodeIncidentObject;
      remember(i.id, i.version, out.metadata.resourceVersion);
    } catch {
      /* the label only narrows listing; list() also checks the state itself */
    }
  };

  await checkServed();

  return {
    async get(id) {
      if (!INCIDENT_ID.test(id)) return null;
      return read(id);
    },

    async create(incident) {
      const body = toNodeIncident(incident, ns, opts.cluster);
      body.metadata.labels = { [STATE_LABEL]: String(!TERMINAL_STATES.has(incident.state)) };
      let created: NodeIncidentObject;
      try {
        created = (await api.createNamespacedCustomObject({ ...at, body }, options())) as NodeIncidentObject;
      } catch (err) {
        if (httpStatus(err) === 409) throw new ConflictError(incident.id);
        throw fail(err, 'create');
      }
      if (!created.metadata.resourceVersion) throw new KubeAccessError('KUBE_ERROR', `the API created ${incident.id} without a resourceVersion`);
      await writeStatus(incident, created.metadata.resourceVersion);
    },

    async put(next) {
      let base = seen.get(next.id);
      if (!base || base.version !== next.version - 1) {
        const cur = await read(next.id);
        base = seen.get(next.id);
        if (!cur || !base || cur.version !== next.version - 1) throw new ConflictError(next.id);
      }
      await writeStatus(next, base.rv);
      await relabel(next);
    },

    async list(states) {
      const openOnly = states.every((s) => !TERMINAL_STATES.has(s));
      const out: Incident[] = [];
      let cont: string | undefined;
      do {
        let page: { items: NodeIncidentObject[]; metadata?: { continue?: string } };
        try {
          page = await api.listNamespacedCustomObject({ ...at, limit: 250, ...(cont ? { _continue: cont } : {}), ...(openOnly ? { labelSelector: `${STATE_LABEL}!=false` } : {}) }, options());
        } catch (err) {
          throw fail(err, 'list');
        }
        for (const o of page.items) {
          const i = o.status?.incident;
          if (!i || !states.includes(i.state)) continue;
          remember(i.id, i.version, o.metadata.resourceVersion);
          out.push(i);
        }
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return out;
    },
  };
}
