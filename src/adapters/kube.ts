/**
 * The Kubernetes adapter: the only module that imports @kubernetes/client-node
 * (loaded lazily, as one bundled file where the build made it: a diagnosis
 * without Kubernetes access does not pay for it, one with it pays little).
 * Every call has a deadline; errors become coded errors that name the missing
 * permission, never a raw response body.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { KubeAccessError, LockHeldError } from '../errors.js';
import type { LockHandle, LockInfo, NodeLock } from '../runbooks/lock.js';
import type { KubeClient, KubeNodeWatcher, WatchHandle } from '../ports.js';
import { READ_QUERIES, toEvent, toNode, toPod } from './kube-objects.js';
import { redact } from '../redact.js';
import type * as K8s from '@kubernetes/client-node';
import type { CLIENT_NODE_EXPORTS } from './client-node-exports.js';

/** Where the Kubernetes credentials come from. */
export interface KubeAccessOptions {
  /** A kubeconfig file; else KUBECONFIG / ~/.kube/config / in-cluster, in that order. */
  kubeconfigPath?: string;
  /** Deadline of each API call. */
  requestTimeoutMs?: number;
  /** The kubeconfig context to use (else its current context). */
  context?: string;
  /** Environment to read KUBECONFIG / in-cluster variables from. */
  env?: NodeJS.ProcessEnv;
}

/** The library as nodediag uses it: only what the build bundles. */
type Lib = Pick<typeof K8s, (typeof CLIENT_NODE_EXPORTS)[number]>;

/** The parts of the library nodediag uses, bundled into one file by `npm run build` (scripts/bundle.mjs). */
const BUNDLE = new URL('../vendor/client-node.js', import.meta.url);

/**
 * Loads client-node once: the one-file bundle where the build made it (a
 * fraction of the package's start-up CPU), else the package itself.
 */
function loadClientNode(): Promise<Lib> {
  clientNode ??= (existsSync(fileURLToPath(BUNDLE)) ? (import(BUNDLE.href) as Promise<Lib>) : import('@kubernetes/client-node')).catch((err: unknown) => {
    clientNode = undefined;
    throw err;
  });
  return clientNode;
}
let clientNode: Promise<Lib> | undefined;

/** Starts loading client-node now, for a client made later (a failure shows then). */
export function preloadClientNode(): void {
  loadClientNode().catch(() => undefined);
}

/** Client-node call options that abort the call after `ms`. */
export function timeoutOptions(lib: Lib, ms: number, extra: K8s.ConfigurationOptions[] = []): K8s.ConfigurationOptions {
  const signal: K8s.ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(AbortSignal.timeout(ms));
      return new lib.Observable(Promise.resolve(ctx));
    },
    post: (ctx) => new lib.Observable(Promise.resolve(ctx)),
  };
  const more = extra.flatMap((o) => (o.middleware ?? []) as K8s.ObservableMiddleware[]);
  return { middleware: [signal, ...more], middlewareMergeStrategy: 'append' } as K8s.ConfigurationOptions;
}

/** What an API call was for, to name the permission in a 403. */
export interface Operation {
  verb: string;
  resource: string;
  scope: string;
}

/** The HTTP status of a client-node failure: only an ApiException carries one in `code` (a DOMException's numeric code is not one). */
export function httpStatus(err: unknown): number | undefined {
  const e = err as { code?: unknown; headers?: unknown };
  return typeof e.code === 'number' && e.headers !== undefined ? e.code : undefined;
}

/** A client-node failure as a coded error naming the permission or the reason, never a raw body. */
export function mapError(err: unknown, op: Operation, server: string): KubeAccessError {
  const e = err as { code?: number | string; body?: unknown; headers?: unknown; name?: string; cause?: { code?: string; name?: string }; message?: string };
  const aborted = [e.name, e.cause?.name].some((n) => n === 'TimeoutError' || n === 'AbortError');
  const status = aborted ? undefined : httpStatus(err);
  const need = `"${op.verb}" on ${op.resource} (${op.scope})`;
  if (status === 401) {
    return new KubeAccessError('KUBE_UNAUTHORIZED', `the Kubernetes API at ${server} refused the credentials (401)`, 'the token or client certificate in the kubeconfig is invalid or expired');
  }
  if (status === 403) {
    let detail = '';
    try {
      const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
      if (body && typeof body === 'object' && 'message' in body) detail = `: ${redact(String((body as { message: unknown }).message)).slice(0, 300)}`;
    } catch {
      /* body is not JSON: the permission named below is enough */
    }
    return new KubeAccessError('KUBE_FORBIDDEN', `forbidden: nodediag needs permission ${need}${detail}`, 'grant it in the ClusterRole (see manifests/rbac.yaml)');
  }
  if (status !== undefined) return new KubeAccessError('KUBE_ERROR', `the Kubernetes API answered ${status} to ${op.verb} ${op.resource}`);
  const code = e.cause?.code ?? (typeof e.code === 'string' ? e.code : undefined);
  const why = aborted ? 'no answer in time' : (code ?? redact(e.message ?? 'network error').slice(0, 200));
  return new KubeAccessError('KUBE_UNREACHABLE', `cannot reach the Kubernetes API at ${server}: ${why}`);
}

/** The Lease that locks fixes on one node (names stay within Kubernetes' 253 characters). */
export function fixLeaseName(node: string): string {
  const name = `nodediag-fix-${node}`;
  return name.length <= 253 ? name : `nodediag-fix-${createHash('sha256').update(node).digest('hex').slice(0, 32)}`;
}

/** The API does not serve one of nodediag's custom resources: its CRD is not installed. */
export function crdMissing(server: string, kind: { group: string; version: string; plural: string }): KubeAccessError {
  return new KubeAccessError('KUBE_ERROR', `the API at ${server} does not serve ${kind.plural}.${kind.group}/${kind.version}`, 'install the CRDs: kubectl apply -f manifests/kubernetes/crd.yaml');
}

/** One kind of nodediag's custom resources, opened for an adapter: its API client and what each call repeats. */
export interface CustomResourceAccess {
  lib: Lib;
  api: K8s.CustomObjectsApi;
  server: string;
  /** Per-call options: the request timeout, and extra options such as a patch content type. */
  options(extra?: K8s.ConfigurationOptions[]): K8s.ConfigurationOptions;
  /** The kind's coordinates in the namespace, as the client's calls take them. */
  at: { group: string; version: string; plural: string; namespace: string };
  /** A failed call of `verb` as a coded error naming the permission it needs. */
  fail(err: unknown, verb: string, sub?: string): KubeAccessError;
  /** Fails at start, not at first use, when the kind is not served or not allowed. */
  checkServed(): Promise<void>;
  /** Watches the kind in the namespace (objects matching `labelSelector`): `onEvent` per change until stopped or ended. */
  watch(labelSelector: string, onEvent: (type: string) => void, onEnd: (err?: Error) => void): Promise<{ stop(): void }>;
}

/** Opens one kind of custom resource in a namespace (the client library loads here, once). */
export async function openCustomResource(opts: KubeAccessOptions & { namespace: string }, kind: { group: string; version: string; plural: string }, purpose: string): Promise<CustomResourceAccess> {
  const { lib, kc, server } = await openKube(opts, purpose);
  const api = kc.makeApiClient(lib.CustomObjectsApi);
  const ms = opts.requestTimeoutMs ?? 5000;
  const at = { group: kind.group, version: kind.version, plural: kind.plural, namespace: opts.namespace };
  const fail = (err: unknown, verb: string, sub = '') => mapError(err, { verb, resource: `${kind.plural}${sub}`, scope: `API group ${kind.group}, namespace ${opts.namespace}` }, server);
  return {
    lib,
    api,
    server,
    options: (extra = []) => timeoutOptions(lib, ms, extra),
    at,
    fail,
    async checkServed() {
      try {
        await api.listNamespacedCustomObject({ ...at, limit: 1 }, timeoutOptions(lib, ms));
      } catch (err) {
        if (httpStatus(err) === 404) throw crdMissing(server, kind);
        throw fail(err, 'list');
      }
    },
    watch(labelSelector, onEvent, onEnd) {
      const path = `/apis/${kind.group}/${kind.version}/namespaces/${encodeURIComponent(opts.namespace)}/${kind.plural}`;
      return openWatch(lib, kc, path, { labelSelector }, (type) => onEvent(type), onEnd, (err) => fail(err, 'watch'));
    },
  };
}

/**
 * A watch on `path`: `onEvent` per event until stopped, `onEnd` once when
 * the server or the network ends it (not after `stop`); an open that fails
 * is thrown as `failed` maps it.
 */
async function openWatch<T>(lib: Lib, kc: K8s.KubeConfig, path: string, query: Record<string, string>, onEvent: (type: string, obj: T) => void, onEnd: (err?: Error) => void, failed: (err: unknown) => Error): Promise<WatchHandle> {
  let ended = false;
  const abort = await new lib.Watch(kc)
    .watch(path, { ...query, allowWatchBookmarks: false }, onEvent, (err: unknown) => {
      if (ended) return;
      ended = true;
      onEnd(err ? new Error(redact(String((err as Error)?.message ?? err)).slice(0, 200)) : undefined);
    })
    .catch((err: unknown) => {
      throw failed(err);
    });
  return {
    stop() {
      ended = true;
      abort.abort();
    },
  };
}

/** The client library with a loaded kubeconfig, for adapters that need more than {@link KubeClient}. */
export async function openKube(opts: KubeAccessOptions, purpose: string): Promise<{ lib: Lib; kc: K8s.KubeConfig; server: string }> {
  const source = kubeSource(opts);
  if (!source) throw new KubeAccessError('KUBE_ERROR', `${purpose} needs Kubernetes access`, 'give nodediag a kubeconfig (NODEDIAG_KUBECONFIG), or run it in the cluster');
  const lib = await loadClientNode();
  const kc = loadKubeConfig(lib, source, opts.context);
  return { lib, kc, server: kc.getCurrentCluster()?.server ?? 'unknown' };
}

/**
 * Per-node fix locks as coordination.k8s.io Leases. With `renewSeconds`, a
 * held Lease lasts that long and is renewed while the fix runs, so when the
 * process running it dies the lock lapses within seconds (and another
 * process can say the fix was interrupted) instead of at the fix's deadline.
 */
export async function createLeaseLock(opts: KubeAccessOptions & { namespace: string; identity: string; renewSeconds?: number; leaseNameOf?: (key: string) => string }): Promise<NodeLock> {
  const leaseName = opts.leaseNameOf ?? fixLeaseName;
  const { lib, kc, server } = await openKube(opts, 'the lease lock (NODEDIAG_LOCK_BACKEND=lease)');
  const api = kc.makeApiClient(lib.CoordinationV1Api);
  const ms = opts.requestTimeoutMs ?? 5000;
  const ns = opts.namespace;
  const op = (verb: string) => ({ verb, resource: 'leases', scope: `namespace ${ns}` });
  const read = async (node: string): Promise<K8s.V1Lease | null> => {
    try {
      return await api.readNamespacedLease({ name: leaseName(node), namespace: ns }, timeoutOptions(lib, ms));
    } catch (err) {
      if ((err as { code?: number }).code === 404) return null;
      throw mapError(err, op('get'), server);
    }
  };
  const live = (l: K8s.V1Lease, now: number) =>
    Boolean(l.spec?.holderIdentity) && new Date(l.spec!.renewTime ?? 0).getTime() + (l.spec!.leaseDurationSeconds ?? 0) * 1000 > now;
  const info = (l: K8s.V1Lease): LockInfo => ({
    holder: l.metadata?.annotations?.['nodediag.dev/holder'] ?? l.spec?.holderIdentity ?? 'unknown',
    since: l.spec?.acquireTime ? new Date(l.spec.acquireTime).toISOString() : 'unknown',
    expiresAt: new Date(new Date(l.spec?.renewTime ?? 0).getTime() + (l.spec?.leaseDurationSeconds ?? 0) * 1000).toISOString(),
  });
  return {
    async acquire(node, holder, ttlMs): Promise<LockHandle> {
      const now = new Date();
      const duration = opts.renewSeconds ? Math.min(opts.renewSeconds, Math.max(1, Math.ceil(ttlMs / 1000))) : Math.max(1, Math.ceil(ttlMs / 1000));
      const deadline = now.getTime() + ttlMs;
      const body = (resourceVersion?: string, renewTime = now): K8s.V1Lease => ({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: leaseName(node), namespace: ns, annotations: { 'nodediag.dev/holder': holder, 'nodediag.dev/node': node }, ...(resourceVersion ? { resourceVersion } : {}) },
        spec: { holderIdentity: opts.identity, leaseDurationSeconds: duration, acquireTime: now, renewTime },
      });
      const current = await read(node);
      if (current && live(current, now.getTime())) {
        const i = info(current);
        throw new LockHeldError(node, i.holder, i.since);
      }
      let held: K8s.V1Lease;
      try {
        if (current) held = await api.replaceNamespacedLease({ name: leaseName(node), namespace: ns, body: body(current.metadata?.resourceVersion) }, timeoutOptions(lib, ms));
        else held = await api.createNamespacedLease({ namespace: ns, body: body() }, timeoutOptions(lib, ms));
      } catch (err) {
        if ((err as { code?: number }).code === 409) {
          const winner = await read(node);
          const i = winner ? info(winner) : { holder: 'another replica', since: 'just now' };
          throw new LockHeldError(node, i.holder, i.since);
        }
        throw mapError(err, op(current ? 'update' : 'create'), server);
      }
      // Renewed at a third of its duration until released or the fix's own deadline; a failed renewal is tried again at the next tick.
      const renewal = opts.renewSeconds
        ? setInterval(() => {
            if (Date.now() > deadline) return clearInterval(renewal!);
            api
              .replaceNamespacedLease({ name: leaseName(node), namespace: ns, body: body(held.metadata?.resourceVersion, new Date()) }, timeoutOptions(lib, ms))
              .then((l) => (held = l))
              .catch(() => undefined);
          }, (duration * 1000) / 3)
        : undefined;
      renewal?.unref();
      // Ours while it is the Lease this acquisition wrote (a renewal in flight may have moved its resourceVersion on).
      const stillOurs = (l: K8s.V1Lease | null) => l?.spec?.holderIdentity === opts.identity && l.metadata?.annotations?.['nodediag.dev/holder'] === holder && new Date(l.spec?.acquireTime ?? 0).getTime() === now.getTime();
      return {
        release: async () => {
          if (renewal) clearInterval(renewal);
          // Deleted only as we last wrote it: if it lapsed (renewals failed) and another process took it, it is theirs now, and stays.
          for (let lease: K8s.V1Lease | null = held, attempt = 0; stillOurs(lease) && attempt < 3; attempt++) {
            try {
              await api.deleteNamespacedLease({ name: leaseName(node), namespace: ns, body: { preconditions: { resourceVersion: lease!.metadata?.resourceVersion } } }, timeoutOptions(lib, ms));
              return;
            } catch (err) {
              const code = (err as { code?: number }).code;
              if (code === 404) return;
              if (code !== 409) throw mapError(err, op('delete'), server);
            }
            lease = await read(node);
          }
        },
      };
    },
    async holder(node) {
      const l = await read(node);
      return l && live(l, Date.now()) ? info(l) : null;
    },
    async forceRelease(node) {
      try {
        await api.deleteNamespacedLease({ name: leaseName(node), namespace: ns }, timeoutOptions(lib, ms));
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw mapError(err, op('delete'), server);
      }
    },
  };
}

/** The kubeconfig from where the credentials are, on the named context. */
function loadKubeConfig(lib: Lib, source: KubeSource, context: string | undefined): K8s.KubeConfig {
  const kc = new lib.KubeConfig();
  try {
    if (source.kind === 'file') kc.loadFromFile(source.path);
    else if (source.kind === 'env') kc.loadFromDefault();
    else kc.loadFromCluster();
  } catch (err) {
    throw new KubeAccessError('KUBE_ERROR', `cannot load the kubeconfig: ${redact((err as Error).message).slice(0, 200)}`, 'check KUBECONFIG / NODEDIAG_KUBECONFIG');
  }
  useContext(kc, context);
  return kc;
}

/** Switches to the named context, refusing one the kubeconfig does not have. */
function useContext(kc: K8s.KubeConfig, context: string | undefined): void {
  if (!context) return;
  if (!kc.getContexts().some((c) => c.name === context)) {
    throw new KubeAccessError('KUBE_ERROR', `the kubeconfig has no context "${context}"`, `contexts: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'}`);
  }
  kc.setCurrentContext(context);
}

/** Where credentials come from, decided without loading the client library. */
type KubeSource = { kind: 'file'; path: string } | { kind: 'env' } | { kind: 'cluster' };

/** Where credentials would come from, or null when there are none (no library loaded). */
export function kubeSource(opts: KubeAccessOptions): KubeSource | null {
  const env = opts.env ?? process.env;
  if (opts.kubeconfigPath) return { kind: 'file', path: opts.kubeconfigPath };
  if (env.KUBECONFIG) return { kind: 'env' };
  if (env.KUBERNETES_SERVICE_HOST) return { kind: 'cluster' };
  const home = join(homedir(), '.kube', 'config');
  return existsSync(home) ? { kind: 'file', path: home } : null;
}

async function connectKube(source: KubeSource, opts: KubeAccessOptions): Promise<KubeClient & KubeNodeWatcher> {
  const lib = await loadClientNode();
  const kc = loadKubeConfig(lib, source, opts.context);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeAccessError('KUBE_ERROR', 'the kubeconfig has no current cluster');
  const server = cluster.server;
  const core = kc.makeApiClient(lib.CoreV1Api);
  const ms = opts.requestTimeoutMs ?? 5000;
  const call = async <T>(op: Operation, fn: (o: K8s.ConfigurationOptions) => Promise<T>, extra: K8s.ConfigurationOptions[] = []): Promise<T> => {
    try {
      return await fn(timeoutOptions(lib, ms, extra));
    } catch (err) {
      throw mapError(err, op, server);
    }
  };

  const client: KubeClient = {
    async getNode(name) {
      try {
        return toNode(await core.readNode({ name }, timeoutOptions(lib, ms)));
      } catch (err) {
        if ((err as { code?: number }).code === 404) return null;
        throw mapError(err, { verb: 'get', resource: 'nodes', scope: 'cluster-wide' }, server);
      }
    },
    async listNodes(labelSelector) {
      const list = await call({ verb: 'list', resource: 'nodes', scope: 'cluster-wide' }, (o) => core.listNode({ labelSelector }, o));
      return list.items.map(toNode);
    },
    async listPodsOnNode(node) {
      const list = await call({ verb: 'list', resource: 'pods', scope: 'all namespaces' }, (o) =>
        core.listPodForAllNamespaces(READ_QUERIES.podsOnNode(node), o),
      );
      return list.items.map(toPod);
    },
    async listEvents(node, pods) {
      const op = { verb: 'list', resource: 'events', scope: 'all namespaces' };
      const nodeEvents = call(op, (o) =>
        core.listEventForAllNamespaces(READ_QUERIES.nodeEvents(node), o),
      );
      const podEvents = pods.slice(0, READ_QUERIES.podsWithEvents).map((p) =>
        call({ ...op, scope: `namespace ${p.namespace}` }, (o) =>
          core.listNamespacedEvent({ namespace: p.namespace, ...READ_QUERIES.podEvents(p.name) }, o),
        ),
      );
      const lists = await Promise.all([nodeEvents, ...podEvents]);
      return lists.flatMap((l) => l.items.map(toEvent));
    },
    async deletePod(namespace, name, uid) {
      try {
        await core.deleteNamespacedPod({ namespace, name, ...(uid ? { body: { preconditions: { uid } } } : {}) }, timeoutOptions(lib, ms));
        return 'deleted';
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404) return 'gone';
        // 409 Conflict: the precondition failed, a new pod of the same name is not the one the finding named.
        if (code === 409 && uid) return 'uid-changed';
        throw mapError(err, { verb: 'delete', resource: 'pods', scope: `namespace ${namespace}` }, server);
      }
    },
    async evictPod(namespace, name, uid) {
      try {
        await core.createNamespacedPodEviction(
          {
            name,
            namespace,
            body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace }, ...(uid ? { deleteOptions: { preconditions: { uid } } } : {}) },
          },
          timeoutOptions(lib, ms),
        );
        return 'evicted';
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404) return 'gone';
        if (code === 409 && uid) return 'gone';
        // 429: a PodDisruptionBudget does not allow this disruption now (no Retry-After is sent).
        if (code === 429) return 'blocked-by-budget';
        throw mapError(err, { verb: 'create', resource: 'pods/eviction', scope: `namespace ${namespace}` }, server);
      }
    },
    async setUnschedulable(node, unschedulable) {
      await call(
        { verb: 'patch', resource: 'nodes', scope: 'cluster-wide' },
        (o) => core.patchNode({ name: node, body: { spec: { unschedulable } } }, o),
        [lib.setHeaderOptions('Content-Type', lib.PatchStrategy.MergePatch)],
      );
    },
  };
  return Object.assign(client, {
    watchNodes(onNode: Parameters<KubeNodeWatcher['watchNodes']>[0], onEnd: Parameters<KubeNodeWatcher['watchNodes']>[1]): Promise<WatchHandle> {
      return openWatch<K8s.V1Node>(
        lib,
        kc,
        '/api/v1/nodes',
        {},
        (type, obj) => {
          if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') onNode(toNode(obj), type);
        },
        onEnd,
        (err) => mapError(err, { verb: 'watch', resource: 'nodes', scope: 'cluster-wide' }, server),
      );
    },
  });
}

/**
 * Builds a Kubernetes client, or returns null with the reason when no
 * credentials are configured (the diagnosis then says which checks were
 * skipped). The client library loads in the background: SSH work does not
 * wait for it.
 */
export function createKubeClient(opts: KubeAccessOptions = {}): { client: KubeClient & KubeNodeWatcher; reason: '' } | { client: null; reason: string } {
  const source = kubeSource(opts);
  if (!source) return { client: null, reason: 'no Kubernetes access configured (set KUBECONFIG, or run the bot in the cluster)' };
  const ready = connectKube(source, opts);
  ready.catch(() => undefined);
  const client: KubeClient & KubeNodeWatcher = {
    watchNodes: async (onNode, onEnd) => (await ready).watchNodes(onNode, onEnd),
    getNode: async (name) => (await ready).getNode(name),
    listNodes: async (sel) => (await ready).listNodes(sel),
    listPodsOnNode: async (node) => (await ready).listPodsOnNode(node),
    listEvents: async (node, pods) => (await ready).listEvents(node, pods),
    deletePod: async (ns, name, uid) => (await ready).deletePod(ns, name, uid),
    evictPod: async (ns, name, uid) => (await ready).evictPod(ns, name, uid),
    setUnschedulable: async (node, u) => (await ready).setUnschedulable(node, u),
  };
  return { client, reason: '' };
}
