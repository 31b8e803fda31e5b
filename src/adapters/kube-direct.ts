/**
 * The terminal's Kubernetes reads without the client library, for a
 * kubeconfig of the plain kind: an https server and its CA, a bearer token
 * or a client certificate. The diagnosis's few GETs then cost one TLS
 * connection instead of loading @kubernetes/client-node (~0.25 s of CPU,
 * taken from the SSH probes running beside it on the same cores). Anything
 * else a kubeconfig can say (exec plugins, auth providers, token files,
 * proxies, impersonation, a TLS server name, several files in KUBECONFIG,
 * in-cluster credentials) is left to client-node, as is every write: this
 * module reads the kubeconfig only to decide that it can, and says no to
 * whatever it does not know.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { KubeAccessError } from '../errors.js';
import type { KubeReader } from '../ports.js';
import { kubeSource, mapError, type KubeAccessOptions, type Operation } from './kube.js';
import { READ_QUERIES, toEvent, toNode, toPod } from './kube-objects.js';
import type * as K8s from '@kubernetes/client-node';

/** Where the API is and how to prove who we are, read from a plain kubeconfig. */
export interface DirectKubeTarget {
  /** The server URL without its trailing slash (it may carry a path prefix, as behind a proxy). */
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
}

/** The largest answer read (a list of 500 pods with their managed fields is a few MB). */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

// Keys this module knows the meaning of; any other key sends the kubeconfig to client-node.
const CLUSTER_KEYS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'extensions']);
const USER_KEYS = new Set(['token', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'extensions']);

type Named = { name?: unknown } & Record<string, unknown>;

function byName(list: unknown, name: unknown, field: string): Record<string, unknown> | null {
  if (!Array.isArray(list) || typeof name !== 'string') return null;
  const names = list.map((e: Named) => e?.name);
  // client-node refuses a kubeconfig with a name twice: it says why, not this module.
  if (new Set(names).size !== names.length) return null;
  const entry = (list as Named[]).find((e) => e?.name === name)?.[field];
  return entry && typeof entry === 'object' ? (entry as Record<string, unknown>) : null;
}

/** One credential from its file (relative to the kubeconfig, as client-node reads it) or else its base64 data. */
function fileOrData(dir: string, file: unknown, data: unknown): Buffer | undefined | null {
  if (file !== undefined && typeof file !== 'string') return null;
  if (file) return readFileSync(isAbsolute(file) ? file : join(dir, file));
  if (data === undefined) return undefined;
  return typeof data === 'string' ? Buffer.from(data, 'base64') : null;
}

/** The kubeconfig file the access options name, when there is exactly one. */
function kubeconfigFile(opts: KubeAccessOptions): string | null {
  const source = kubeSource(opts);
  if (source?.kind === 'file') return source.path;
  if (source?.kind !== 'env') return null;
  const files = ((opts.env ?? process.env).KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  return files.length === 1 ? files[0]! : null;
}

/**
 * The API and credentials when the kubeconfig is of the plain kind this
 * module reads exactly as client-node would, else null (client-node then
 * reads it, and reports what is wrong with it).
 */
export function directKubeTarget(opts: KubeAccessOptions): DirectKubeTarget | null {
  try {
    const file = kubeconfigFile(opts);
    if (!file) return null;
    const doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
    if (!doc || typeof doc !== 'object') return null;
    const context = byName(doc.contexts, opts.context ?? doc['current-context'], 'context');
    if (!context) return null;
    const cluster = byName(doc.clusters, context.cluster, 'cluster');
    const user = byName(doc.users, context.user, 'user');
    if (!cluster || !user) return null;
    if (Object.keys(cluster).some((k) => !CLUSTER_KEYS.has(k)) || Object.keys(user).some((k) => !USER_KEYS.has(k))) return null;
    if (cluster['insecure-skip-tls-verify'] !== undefined && cluster['insecure-skip-tls-verify'] !== false) return null;
    if (typeof cluster.server !== 'string' || !/^https:\/\/[^/]/.test(cluster.server)) return null;
    if (user.token !== undefined && (typeof user.token !== 'string' || !user.token)) return null;
    const dir = dirname(file);
    const ca = fileOrData(dir, cluster['certificate-authority'], cluster['certificate-authority-data']);
    const cert = fileOrData(dir, user['client-certificate'], user['client-certificate-data']);
    const key = fileOrData(dir, user['client-key'], user['client-key-data']);
    if (ca === null || cert === null || key === null || !cert !== !key) return null;
    return {
      server: cluster.server.replace(/\/$/, ''),
      ...(ca ? { ca } : {}),
      ...(cert && key ? { cert, key } : {}),
      ...(typeof user.token === 'string' ? { token: user.token } : {}),
    };
  } catch {
    return null;
  }
}

/** An answer other than 2xx, shaped as client-node's ApiException so that mapError reads it the same way. */
class ApiAnswer extends Error {
  constructor(
    readonly code: number,
    readonly headers: Record<string, unknown>,
    readonly body: string,
  ) {
    super(`HTTP ${code}`);
  }
}

/** Reads the API over node:https: the diagnosis's calls, each with its deadline and an answer cap. */
export function createDirectKubeReader(target: DirectKubeTarget, opts: { requestTimeoutMs?: number } = {}): KubeReader {
  const ms = opts.requestTimeoutMs ?? 5000;
  // One agent: the calls after the first reuse its connection or resume its TLS session. Idle sockets do not keep the process alive.
  const agent = new Agent({ keepAlive: true, ...(target.ca ? { ca: target.ca } : {}), ...(target.cert ? { cert: target.cert, key: target.key } : {}) });
  const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'nodediag', ...(target.token ? { Authorization: `Bearer ${target.token}` } : {}) };

  // Rejects with what went wrong as it came (an answer other than 2xx, a socket error, the deadline); `get` maps it.
  const fetchJson = <T>(path: string, op: Operation, retried = false): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const req = request(`${target.server}${path}`, { method: 'GET', agent, headers, signal: AbortSignal.timeout(ms) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy(new KubeAccessError('KUBE_ERROR', `the Kubernetes API's answer to ${op.verb} ${op.resource} was over ${MAX_ANSWER_BYTES / 1024 / 1024} MiB: not read`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) return reject(new ApiAnswer(status, res.headers, body));
          try {
            resolve(JSON.parse(body) as T);
          } catch {
            reject(new KubeAccessError('KUBE_ERROR', `the Kubernetes API answered ${op.verb} ${op.resource} with something that is not JSON`));
          }
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed while idle fails at once: a GET is sent again, once, on a new one.
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET') fetchJson<T>(path, op, true).then(resolve, reject);
        else reject(err);
      });
      req.end();
    });
  const mapped = (err: unknown, op: Operation) => (err instanceof KubeAccessError ? err : mapError(err, op, target.server));
  const get = async <T>(path: string, op: Operation): Promise<T> => {
    try {
      return await fetchJson<T>(path, op);
    } catch (err) {
      throw mapped(err, op);
    }
  };

  const q = (params: Record<string, string | number>) => new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
  return {
    async getNode(name) {
      const op = { verb: 'get', resource: 'nodes', scope: 'cluster-wide' };
      try {
        return toNode(await fetchJson<K8s.V1Node>(`/api/v1/nodes/${encodeURIComponent(name)}`, op));
      } catch (err) {
        if (err instanceof ApiAnswer && err.code === 404) return null;
        throw mapped(err, op);
      }
    },
    async listNodes(labelSelector) {
      const list = await get<K8s.V1NodeList>(`/api/v1/nodes${labelSelector ? `?${q({ labelSelector })}` : ''}`, { verb: 'list', resource: 'nodes', scope: 'cluster-wide' });
      return (list.items ?? []).map(toNode);
    },
    async listPodsOnNode(node) {
      const list = await get<K8s.V1PodList>(`/api/v1/pods?${q(READ_QUERIES.podsOnNode(node))}`, { verb: 'list', resource: 'pods', scope: 'all namespaces' });
      return (list.items ?? []).map(toPod);
    },
    async listEvents(node, pods) {
      const op = { verb: 'list', resource: 'events', scope: 'all namespaces' };
      const nodeEvents = get<K8s.CoreV1EventList>(`/api/v1/events?${q(READ_QUERIES.nodeEvents(node))}`, op);
      const podEvents = pods
        .slice(0, READ_QUERIES.podsWithEvents)
        .map((p) =>
          get<K8s.CoreV1EventList>(
            `/api/v1/namespaces/${encodeURIComponent(p.namespace)}/events?${q(READ_QUERIES.podEvents(p.name))}`,
            { ...op, scope: `namespace ${p.namespace}` },
          ),
        );
      const lists = await Promise.all([nodeEvents, ...podEvents]);
      return lists.flatMap((l) => (l.items ?? []).map(toEvent));
    },
  };
}
