/**
 * The outbox in the Kubernetes API, shared by every replica: each queued
 * Slack post or update is a NodediagMessage custom resource, created before
 * `enqueue` returns, so that a replica that dies loses none of what it
 * queued; the replica that leads delivers every replica's messages in order
 * and deletes each once Slack has it. A message Slack refused for good stays,
 * labelled dead, for `kubectl get nodediagmessages -l nodediag.io/dead=true`.
 */
import { randomBytes } from 'node:crypto';
import type { OutboxItem, OutboxOp, OutboxStorage } from '../incidents/outbox.js';
import { httpStatus, openCustomResource, type KubeAccessOptions } from './kube.js';

/** The custom resource's coordinates. */
export const NODEDIAG_MESSAGE = { group: 'nodediag.io', version: 'v1alpha1', plural: 'nodediagmessages', kind: 'NodediagMessage' } as const;

/** Label of a message Slack refused for good. */
export const DEAD_LABEL = 'nodediag.io/dead';

interface MessageObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: { seq: number; op: OutboxOp; attempts: number; notBefore: number; sentBy?: string; sentAt?: number };
}

/** Options of the shared outbox storage. */
export interface KubeOutboxOptions extends KubeAccessOptions {
  namespace: string;
  now: () => number;
}

/** Tries of a create before `enqueue` gives up (the API restarting, a leader election in the control plane). */
const CREATE_TRIES = 4;

/** Creates the storage, checking once that the resource is served and allowed. */
export async function createKubeOutboxStorage(opts: KubeOutboxOptions): Promise<OutboxStorage> {
  const { lib, api, at, options, fail, checkServed, watch } = await openCustomResource(opts, NODEDIAG_MESSAGE, 'the shared outbox (NODEDIAG_STORE=kube)');
  // Names sort by time, then by process, then by order in the process: one order for every replica's messages.
  const tag = randomBytes(4).toString('hex');
  let last = 0;

  const toObject = (item: OutboxItem): MessageObject => ({
    apiVersion: `${NODEDIAG_MESSAGE.group}/${NODEDIAG_MESSAGE.version}`,
    kind: NODEDIAG_MESSAGE.kind,
    metadata: { name: item.id },
    // The schema's integers: a fractional backoff would be refused.
    spec: { seq: item.seq, op: item.op, attempts: item.attempts, notBefore: Math.ceil(item.notBefore), ...(item.sentBy ? { sentBy: item.sentBy, sentAt: Math.round(item.sentAt ?? 0) } : {}) },
  });
  const toItem = (o: MessageObject): OutboxItem => ({ id: o.metadata.name, ...o.spec });

  await checkServed();

  return {
    next() {
      last = Math.max(last + 1, opts.now() * 1000);
      return { id: `m-${String(last).padStart(16, '0')}-${tag}`, seq: last };
    },

    async list() {
      const out: OutboxItem[] = [];
      let cont: string | undefined;
      do {
        let page: { items: MessageObject[]; metadata?: { continue?: string } };
        try {
          page = await api.listNamespacedCustomObject({ ...at, limit: 500, labelSelector: `${DEAD_LABEL}!=true`, ...(cont ? { _continue: cont } : {}) }, options());
        } catch (err) {
          throw fail(err, 'list');
        }
        for (const o of page.items) if (o.spec?.op && typeof o.spec.seq === 'number') out.push(toItem(o));
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return out;
    },

    async add(item) {
      for (let i = 1; ; i++) {
        try {
          await api.createNamespacedCustomObject({ ...at, body: toObject(item) }, options());
          return;
        } catch (err) {
          const code = httpStatus(err);
          // A create that landed although its answer was lost.
          if (code === 409) return;
          if ((code !== undefined && code < 500 && code !== 429) || i === CREATE_TRIES) throw fail(err, 'create');
          await new Promise((r) => setTimeout(r, 250 * 2 ** i));
        }
      }
    },

    async save(item) {
      const { spec } = toObject(item);
      try {
        await api.patchNamespacedCustomObject(
          { ...at, name: item.id, body: { spec } },
          options([lib.setHeaderOptions('Content-Type', lib.PatchStrategy.MergePatch)]),
        );
      } catch (err) {
        throw fail(err, 'patch');
      }
    },

    async remove(item, dead) {
      try {
        if (dead) {
          await api.patchNamespacedCustomObject(
            { ...at, name: item.id, body: { metadata: { labels: { [DEAD_LABEL]: 'true' } } } },
            options([lib.setHeaderOptions('Content-Type', lib.PatchStrategy.MergePatch)]),
          );
        } else {
          await api.deleteNamespacedCustomObject({ ...at, name: item.id }, options());
        }
      } catch (err) {
        if (httpStatus(err) === 404) return;
        throw fail(err, dead ? 'patch' : 'delete');
      }
    },

    watch(onChange, onEnd) {
      // New items only: deliveries and removals are the leader's own doing (or, from an old leader, seen at the next re-list).
      return watch(`${DEAD_LABEL}!=true`, (type) => type === 'ADDED' && onChange(), onEnd);
    },
  };
}
