/**
 * A STAND-IN for the Kubernetes API server (the real one cannot run here):
 * an HTTP server speaking the real API's paths, JSON shapes, status codes and
 * Status error bodies for the subset nodediag uses, so that the real
 * @kubernetes/client-node talks to it unchanged. It also stands in for two
 * controllers: the DaemonSet controller (a deleted DaemonSet pod is
 * recreated) and the node lifecycle controller (a node whose kubelet stops
 * posting status goes Ready=Unknown).
 *
 * Used by the demo, the tests and the lab. Not a Kubernetes implementation.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CustomResources } from './custom-resources.js';
import type { TlsPair } from './self-signed.js';

/** A JSON object as the API serves it. */
export type KObject = Record<string, any>;

/** A permission the stand-in refuses, as RBAC would (403). */
export interface Denial {
  verb: 'get' | 'list' | 'watch' | 'delete' | 'patch' | 'create' | 'update';
  resource: 'nodes' | 'pods' | 'events' | 'leases' | 'nodes/status' | 'pods/status' | 'pods/eviction';
}

/** A PodDisruptionBudget as far as evictions need it: the pods it covers and how many may go now. */
export interface StandinBudget {
  namespace: string;
  name: string;
  /** Pods whose `app` label has this value are covered. */
  app: string;
  disruptionsAllowed: number;
}

/** Faults the stand-in can inject. */
export interface KubeFaults {
  /** Delay before every answer. */
  latencyMs?: number;
  /** Answer every request with this status (e.g. 500). */
  failWith?: number;
  /** Accept connections but never answer. */
  hang?: boolean;
  /** Only requests whose path matches suffer the faults (all when absent). */
  paths?: RegExp;
}

/** Options of the stand-in. */
export interface KubeStandinOptions {
  /** Bearer token clients must present (401 otherwise). */
  token: string;
  /** Service-account user named in 403 messages. */
  user?: string;
  /** Address to listen on (default 127.0.0.1; the lab uses 0.0.0.0 so nodes reach it). */
  host?: string;
  /** Seconds without a kubelet status post before a heartbeat node goes Ready=Unknown. */
  nodeGraceSeconds?: number;
  /** Delay before the DaemonSet controller recreates a deleted pod. */
  recreateDelayMs?: number;
  /** Serve HTTPS with this certificate (the kubeconfig then pins it as the CA); plain HTTP otherwise. */
  tls?: TlsPair | null;
}

/** What a pod's containers look like when the stand-in creates one. */
export type PodHealth = 'running' | 'crashloop' | 'creating';

function status(code: number, reason: string, message: string, details?: KObject): KObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function get(obj: KObject, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as KObject)[k] : undefined), obj);
}

/** Evaluates a field selector such as `spec.nodeName=a,involvedObject.kind!=Pod`. */
export function fieldSelectorMatches(selector: string | null, obj: KObject): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term.trim());
    if (!m) return true;
    const value = String(get(obj, m[1]!) ?? '');
    return m[2] === '!=' ? value !== m[3] : value === m[3];
  });
}

/** Evaluates a label selector (=, ==, !=, exists, !exists, in, notin). */
export function labelSelectorMatches(selector: string | null, labels: Record<string, string> = {}): boolean {
  if (!selector) return true;
  const terms = selector.match(/[^,(]+(?:\([^)]*\))?/g) ?? [];
  return terms.every((raw) => {
    const term = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const set = m[3]!.split(',').map((s) => s.trim());
      const has = m[1]! in labels && set.includes(labels[m[1]!]!);
      return m[2] === 'in' ? has : !has;
    }
    if ((m = /^([^!=\s]+)\s*(!=|==|=)\s*(.*)$/.exec(term))) {
      const v = labels[m[1]!];
      return m[2] === '!=' ? v !== m[3] : v === m[3];
    }
    if (term.startsWith('!')) return !(term.slice(1) in labels);
    return term in labels;
  });
}

function mergePatch(target: KObject, patch: KObject): KObject {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete target[k];
    else if (v && typeof v === 'object' && !Array.isArray(v) && target[k] && typeof target[k] === 'object' && !Array.isArray(target[k])) {
      mergePatch(target[k], v);
    } else target[k] = v;
  }
  return target;
}

/** Builds a Node object. */
export function makeNode(name: string, internalIp: string, labels: Record<string, string> = {}, ready = true, machineID?: string): KObject {
  const t = now();
  const cond = (type: string, s: string, reason: string, message: string) => ({ type, status: s, reason, message, lastHeartbeatTime: t, lastTransitionTime: t });
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid: randomUUID(), labels: { 'kubernetes.io/hostname': name, ...labels }, creationTimestamp: t },
    spec: {},
    status: {
      conditions: [
        cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        ready
          ? cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status')
          : cond('Ready', 'False', 'KubeletNotReady', 'container runtime is down'),
      ],
      addresses: [
        { type: 'InternalIP', address: internalIp },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: { machineID: machineID ?? randomBytes(16).toString('hex'), systemUUID: randomUUID(), kubeletVersion: 'v1.30.4', containerRuntimeVersion: 'containerd://1.6.20' },
    },
  };
}

/** Container status for a pod in the given health. */
export function containerStatus(name: string, image: string, health: PodHealth, restarts: number): KObject {
  const base = { name, image, imageID: '', restartCount: restarts, started: health === 'running' };
  if (health === 'running') return { ...base, ready: true, state: { running: { startedAt: now() } } };
  if (health === 'creating') return { ...base, ready: false, state: { waiting: { reason: 'ContainerCreating' } } };
  return {
    ...base,
    ready: false,
    state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 5m0s restarting failed container=${name}` } },
    lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: now(), finishedAt: now() } },
  };
}

/** Builds a pod of a DaemonSet on a node. */
export function makeDaemonSetPod(opts: {
  namespace: string;
  daemonSet: string;
  node: string;
  container: string;
  image: string;
  health: PodHealth;
  restarts?: number;
  hostPaths?: Array<{ name: string; path: string; type?: string }>;
  name?: string;
}): KObject {
  const name = opts.name ?? `${opts.daemonSet}-${randomBytes(3).toString('hex').slice(0, 5)}`;
  const t = now();
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: opts.namespace,
      uid: randomUUID(),
      creationTimestamp: t,
      labels: { app: opts.daemonSet },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: opts.daemonSet, uid: randomUUID(), controller: true }],
    },
    spec: {
      nodeName: opts.node,
      containers: [{ name: opts.container, image: opts.image }],
      volumes: (opts.hostPaths ?? []).map((h) => ({ name: h.name, hostPath: { path: h.path, ...(h.type !== undefined ? { type: h.type } : {}) } })),
    },
    status: {
      phase: opts.health === 'creating' ? 'Pending' : 'Running',
      containerStatuses: [containerStatus(opts.container, opts.image, opts.health, opts.restarts ?? 0)],
    },
  };
}

/** Builds an event. */
export function makeEvent(opts: { namespace: string; kind: string; name: string; objNamespace?: string; type: string; reason: string; message: string; count?: number }): KObject {
  const t = now();
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${opts.name}.${randomBytes(8).toString('hex')}`, namespace: opts.namespace, uid: randomUUID() },
    involvedObject: { kind: opts.kind, name: opts.name, ...(opts.objNamespace ? { namespace: opts.objNamespace } : {}) },
    type: opts.type,
    reason: opts.reason,
    message: opts.message,
    count: opts.count ?? 1,
    firstTimestamp: t,
    lastTimestamp: t,
    source: { component: 'kubelet' },
  };
}

/** The stand-in server. */
export class KubeApiStandin {
  readonly nodes = new Map<string, KObject>();
  readonly pods = new Map<string, KObject>();
  readonly events: KObject[] = [];
  readonly leases = new Map<string, KObject>();
  /** Custom resources of the CRDs registered with {@link registerCrd}. */
  readonly customResources = new CustomResources(() => String(this.rv++));
  /** PodDisruptionBudgets evictions must respect. */
  readonly budgets: StandinBudget[] = [];
  /** Every request, for assertions ("no pod was deleted"). */
  readonly requests: Array<{ method: string; path: string; at: number; userAgent: string }> = [];
  denials: Denial[] = [];
  faults: KubeFaults = {};
  /** Called when the DaemonSet controller creates a replacement pod; returns its health. */
  podHealthFor: (node: string) => PodHealth = () => 'running';
  private server: Server | null = null;
  private rv = 1;
  private readonly heartbeats = new Map<string, number>();
  private timers = new Set<NodeJS.Timeout>();
  private lifecycle: NodeJS.Timeout | null = null;
  /** Open `?watch=true` streams on nodes. */
  private readonly nodeWatchers = new Set<ServerResponse>();

  constructor(private readonly opts: KubeStandinOptions) {}

  /** Starts listening on an ephemeral port; returns the base URL. */
  async start(port = 0): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = this.opts.tls ? createHttpsServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, handler) : createHttpServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(port, this.opts.host ?? '127.0.0.1', resolve));
    this.lifecycle = setInterval(() => this.checkHeartbeats(), 1000);
    this.lifecycle.unref();
    return this.url;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  get url(): string {
    const host = this.opts.host && this.opts.host !== '0.0.0.0' ? this.opts.host : '127.0.0.1';
    return `${this.opts.tls ? 'https' : 'http'}://${host}:${this.port}`;
  }

  async stop(): Promise<void> {
    if (this.lifecycle) clearInterval(this.lifecycle);
    for (const w of this.nodeWatchers) w.end();
    this.nodeWatchers.clear();
    for (const t of this.timers) clearTimeout(t);
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }

  /** A kubeconfig (YAML) pointing the real client at this stand-in. */
  kubeconfig(token = this.opts.token): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: standin',
      '  cluster:',
      `    server: ${this.url}`,
      ...(this.opts.tls
        ? [`    certificate-authority-data: ${Buffer.from(this.opts.tls.cert).toString('base64')}`]
        : ['    insecure-skip-tls-verify: true']),
      'users:',
      '- name: nodediag',
      '  user:',
      `    token: ${token}`,
      'contexts:',
      '- name: standin',
      '  context:',
      '    cluster: standin',
      '    user: nodediag',
      'current-context: standin',
      '',
    ].join('\n');
  }

  addNode(node: KObject): void {
    node.metadata.resourceVersion = String(this.rv++);
    this.nodes.set(node.metadata.name, node);
    this.nodeEvent('ADDED', node);
  }

  /** Streams a node change to every watcher, as the API server does (one JSON object per line). */
  private nodeEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', node: KObject): void {
    const line = `${JSON.stringify({ type, object: node })}\n`;
    for (const w of this.nodeWatchers) w.write(line);
  }

  /** Ends every node watch, as an API server does when a watch times out. */
  endNodeWatches(): void {
    for (const w of this.nodeWatchers) w.end();
    this.nodeWatchers.clear();
  }

  addPod(pod: KObject): void {
    pod.metadata.resourceVersion = String(this.rv++);
    this.pods.set(`${pod.metadata.namespace}/${pod.metadata.name}`, pod);
  }

  addEvent(event: KObject): void {
    this.events.push(event);
  }

  /** Pods on a node. */
  podsOn(node: string): KObject[] {
    return [...this.pods.values()].filter((p) => p.spec?.nodeName === node);
  }

  /** Marks a node as driven by a kubelet: it goes Ready=Unknown when the posts stop. */
  expectHeartbeats(node: string): void {
    this.heartbeats.set(node, Date.now());
  }

  /** Serves the custom resources a CustomResourceDefinition declares (e.g. manifests/kubernetes/crd.yaml). */
  registerCrd(crd: KObject): void {
    this.customResources.register(crd);
  }

  /** Sets a node's Ready condition (the stand-in for kubelet's status post in the demo). */
  setNodeReady(name: string, ready: boolean, message = ready ? 'kubelet is posting ready status' : 'container runtime is down'): void {
    const node = this.nodes.get(name);
    if (!node) return;
    const t = now();
    const cond = node.status.conditions.find((c: KObject) => c.type === 'Ready');
    const next = ready ? 'True' : 'False';
    if (cond.status !== next) cond.lastTransitionTime = t;
    Object.assign(cond, { status: next, reason: ready ? 'KubeletReady' : 'KubeletNotReady', message, lastHeartbeatTime: t });
    node.metadata.resourceVersion = String(this.rv++);
    this.nodeEvent('MODIFIED', node);
  }

  private checkHeartbeats(): void {
    const grace = (this.opts.nodeGraceSeconds ?? 10) * 1000;
    for (const [name, last] of this.heartbeats) {
      if (Date.now() - last < grace) continue;
      const node = this.nodes.get(name);
      const cond = node?.status.conditions.find((c: KObject) => c.type === 'Ready');
      if (node && cond && cond.status !== 'Unknown') {
        Object.assign(cond, { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: now() });
        node.metadata.resourceVersion = String(this.rv++);
        this.nodeEvent('MODIFIED', node);
      }
    }
  }

  private denied(verb: Denial['verb'], resource: Denial['resource']): boolean {
    return this.denials.some((d) => d.verb === verb && d.resource === resource);
  }

  private forbidden(res: ServerResponse, verb: string, resource: string, scope: string): void {
    const user = this.opts.user ?? 'system:serviceaccount:nodediag:nodediag';
    const group = resource === 'leases' ? 'coordination.k8s.io' : '';
    this.send(res, 403, status(403, 'Forbidden', `${resource} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${group}" ${scope}`, { kind: resource }));
  }

  private send(res: ServerResponse, code: number, body: KObject): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async body(req: IncomingMessage): Promise<KObject> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? JSON.parse(text) : {};
  }

  private list(kind: string, items: KObject[]): KObject {
    return { kind, apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, at: Date.now(), userAgent: String(req.headers['user-agent'] ?? '') });
    const faults = !this.faults.paths || this.faults.paths.test(url.pathname) ? this.faults : {};
    if (faults.hang) return;
    if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (req.headers.authorization !== `Bearer ${this.opts.token}`) {
      this.send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (faults.failWith) {
      this.send(res, faults.failWith, status(faults.failWith, 'InternalError', 'an error on the server ("stand-in fault") has prevented the request from succeeding'));
      return;
    }
    try {
      await this.route(method, url, req, res);
    } catch (err) {
      this.send(res, 400, status(400, 'BadRequest', `bad request: ${(err as Error).message}`));
    }
  }

  private async route(method: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const p = url.pathname;
    const field = url.searchParams.get('fieldSelector');
    const labels = url.searchParams.get('labelSelector');
    let m: RegExpExecArray | null;

    if (p === '/api/v1/nodes' && method === 'GET' && /^(true|1)$/.test(url.searchParams.get('watch') ?? '')) {
      if (this.denied('watch', 'nodes')) return this.forbidden(res, 'watch', 'nodes', 'at the cluster scope');
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      // Without a resourceVersion the API server starts with the current state as ADDED events.
      if (!url.searchParams.get('resourceVersion')) for (const n of this.nodes.values()) res.write(`${JSON.stringify({ type: 'ADDED', object: n })}\n`);
      this.nodeWatchers.add(res);
      res.on('close', () => this.nodeWatchers.delete(res));
      return;
    }
    if (p === '/api/v1/nodes' && method === 'GET') {
      if (this.denied('list', 'nodes')) return this.forbidden(res, 'list', 'nodes', 'at the cluster scope');
      const items = [...this.nodes.values()].filter((n) => labelSelectorMatches(labels, n.metadata.labels) && fieldSelectorMatches(field, n));
      return this.send(res, 200, this.list('NodeList', items));
    }
    if ((m = /^\/api\/v1\/nodes\/([^/]+)(\/status)?$/.exec(p))) {
      const name = decodeURIComponent(m[1]!);
      const node = this.nodes.get(name);
      const sub = m[2] ? 'nodes/status' : 'nodes';
      if (method === 'GET') {
        if (this.denied('get', 'nodes')) return this.forbidden(res, 'get', 'nodes', 'at the cluster scope');
        return node ? this.send(res, 200, node) : this.send(res, 404, status(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' }));
      }
      if (method === 'PATCH') {
        if (this.denied('patch', sub as Denial['resource'])) return this.forbidden(res, 'patch', sub, 'at the cluster scope');
        if (!String(req.headers['content-type']).startsWith('application/merge-patch+json') && !String(req.headers['content-type']).startsWith('application/strategic-merge-patch+json')) {
          return this.send(res, 415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`));
        }
        if (!node) return this.send(res, 404, status(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' }));
        const patch = await this.body(req);
        if (m[2]) this.heartbeats.has(name) && this.heartbeats.set(name, Date.now());
        if (m[2] && Array.isArray(patch.status?.conditions)) {
          for (const c of patch.status.conditions) {
            const cur = node.status.conditions.find((x: KObject) => x.type === c.type);
            if (cur) Object.assign(cur, c);
            else node.status.conditions.push(c);
          }
          delete patch.status.conditions;
        }
        mergePatch(node, patch);
        node.metadata.resourceVersion = String(this.rv++);
        this.nodeEvent('MODIFIED', node);
        return this.send(res, 200, node);
      }
    }
    if (p === '/api/v1/pods' && method === 'GET') {
      if (this.denied('list', 'pods')) return this.forbidden(res, 'list', 'pods', 'at the cluster scope');
      const items = [...this.pods.values()].filter((x) => fieldSelectorMatches(field, x) && labelSelectorMatches(labels, x.metadata.labels));
      return this.send(res, 200, this.list('PodList', items));
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/status)?$/.exec(p))) {
      const key = `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`;
      const pod = this.pods.get(key);
      const notFound = () => this.send(res, 404, status(404, 'NotFound', `pods "${m![2]}" not found`, { name: m![2], kind: 'pods' }));
      if (method === 'GET') return pod ? this.send(res, 200, pod) : notFound();
      if (method === 'DELETE') {
        if (this.denied('delete', 'pods')) return this.forbidden(res, 'delete', 'pods', `in the namespace "${m[1]}"`);
        if (!pod) return notFound();
        const options = await this.body(req);
        const uid = options.preconditions?.uid;
        if (uid && uid !== pod.metadata.uid) {
          return this.send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on Pod "${pod.metadata.name}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata.uid}`, { name: pod.metadata.name, kind: 'pods' }));
        }
        this.pods.delete(key);
        this.recreateIfOwned(pod);
        return this.send(res, 200, pod);
      }
      if (method === 'PATCH' && m[3]) {
        if (!pod) return notFound();
        mergePatch(pod, await this.body(req));
        pod.metadata.resourceVersion = String(this.rv++);
        return this.send(res, 200, pod);
      }
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/eviction$/.exec(p)) && method === 'POST') {
      if (this.denied('create', 'pods/eviction')) return this.forbidden(res, 'create', 'pods/eviction', `in the namespace "${m[1]}"`);
      const key = `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`;
      const pod = this.pods.get(key);
      if (!pod) return this.send(res, 404, status(404, 'NotFound', `pods "${m[2]}" not found`, { name: m[2], kind: 'pods' }));
      const body = await this.body(req);
      const uid = body.deleteOptions?.preconditions?.uid;
      if (uid && uid !== pod.metadata.uid) {
        return this.send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on Pod "${pod.metadata.name}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata.uid}`));
      }
      const budget = this.budgets.find((b) => b.namespace === pod.metadata.namespace && pod.metadata.labels?.app === b.app);
      if (budget && budget.disruptionsAllowed <= 0) {
        // What the real API server answers when a budget blocks: 429 with a DisruptionBudget cause, no Retry-After.
        return this.send(
          res,
          429,
          status(429, 'TooManyRequests', 'Cannot evict pod as it would violate the pod\'s disruption budget.', {
            causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${budget.name} needs 1 healthy pods and has 1 currently` }],
          }),
        );
      }
      if (budget) budget.disruptionsAllowed -= 1;
      this.pods.delete(key);
      this.recreateIfOwned(pod);
      return this.send(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
    }
    if ((m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?events$/.exec(p)) && method === 'GET') {
      if (this.denied('list', 'events')) return this.forbidden(res, 'list', 'events', m[1] ? `in the namespace "${m[1]}"` : 'at the cluster scope');
      const ns = m[1] ? decodeURIComponent(m[1]) : null;
      const items = this.events.filter((e) => (!ns || e.metadata.namespace === ns) && fieldSelectorMatches(field, e));
      return this.send(res, 200, this.list('EventList', items));
    }
    if ((m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(p))) {
      return this.leaseRoute(method, decodeURIComponent(m[1]!), m[2] ? decodeURIComponent(m[2]) : undefined, req, res);
    }
    if (p.startsWith('/apis/') && method === 'GET' && /^(true|1)$/.test(url.searchParams.get('watch') ?? '')) {
      // The current objects come first, once the headers are out.
      const first: string[] = [];
      let streaming = false;
      const watch = this.customResources.watch(p, url.searchParams, (line) => (streaming ? res.write(line) : first.push(line)), () => res.end());
      if (watch) {
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        for (const line of first) res.write(line);
        streaming = true;
        res.on('close', () => watch.stop());
        return;
      }
    }
    if (p.startsWith('/apis/')) {
      const body = method === 'POST' || method === 'PUT' || method === 'PATCH' ? await this.body(req) : null;
      const answer = this.customResources.handle(method, p, url.searchParams, String(req.headers['content-type'] ?? ''), body);
      if (answer) return this.send(res, answer.code, answer.body);
    }
    this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
  }

  private async leaseRoute(method: string, ns: string, name: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const verb = method === 'GET' ? 'get' : method === 'POST' ? 'create' : method === 'PUT' ? 'update' : 'delete';
    if (this.denied(verb as Denial['verb'], 'leases')) return this.forbidden(res, verb, 'leases', `in the namespace "${ns}"`);
    const key = `${ns}/${name}`;
    const existing = this.leases.get(key);
    const notFound = () => this.send(res, 404, status(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`, { name, group: 'coordination.k8s.io', kind: 'leases' }));
    if (method === 'GET' && name) return existing ? this.send(res, 200, existing) : notFound();
    if (method === 'POST') {
      const body = await this.body(req);
      const k = `${ns}/${body.metadata?.name}`;
      if (this.leases.has(k)) return this.send(res, 409, status(409, 'AlreadyExists', `leases.coordination.k8s.io "${body.metadata?.name}" already exists`, { name: body.metadata?.name, kind: 'leases' }));
      body.apiVersion = 'coordination.k8s.io/v1';
      body.kind = 'Lease';
      body.metadata = { ...body.metadata, namespace: ns, uid: randomUUID(), resourceVersion: String(this.rv++), creationTimestamp: now() };
      this.leases.set(k, body);
      return this.send(res, 201, body);
    }
    if (method === 'PUT' && name) {
      if (!existing) return notFound();
      const body = await this.body(req);
      if (body.metadata?.resourceVersion !== existing.metadata.resourceVersion) {
        return this.send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: 'leases' }));
      }
      body.apiVersion = 'coordination.k8s.io/v1';
      body.kind = 'Lease';
      body.metadata = { ...existing.metadata, ...body.metadata, resourceVersion: String(this.rv++) };
      this.leases.set(key, body);
      return this.send(res, 200, body);
    }
    if (method === 'DELETE' && name) {
      if (!existing) return notFound();
      const pre = (await this.body(req)).preconditions ?? {};
      for (const [field, want, have] of [['ResourceVersion', pre.resourceVersion, existing.metadata.resourceVersion], ['UID', pre.uid, existing.metadata.uid]]) {
        if (want && want !== have) {
          return this.send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": Precondition failed: ${field} in precondition: ${want}, ${field} in object meta: ${have}`, { name, group: 'coordination.k8s.io', kind: 'leases' }));
        }
      }
      this.leases.delete(key);
      return this.send(res, 200, status(200, '', '') as KObject);
    }
    this.send(res, 405, status(405, 'MethodNotAllowed', 'method not allowed'));
  }

  private recreateIfOwned(pod: KObject): void {
    const owner = pod.metadata.ownerReferences?.find((o: KObject) => o.controller);
    if (owner?.kind !== 'DaemonSet') return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const c = pod.spec.containers[0];
      const replacement = makeDaemonSetPod({
        namespace: pod.metadata.namespace,
        daemonSet: owner.name,
        node: pod.spec.nodeName,
        container: c.name,
        image: c.image,
        health: this.podHealthFor(pod.spec.nodeName),
        hostPaths: (pod.spec.volumes ?? []).filter((v: KObject) => v.hostPath).map((v: KObject) => ({ name: v.name, path: v.hostPath.path, type: v.hostPath.type })),
      });
      replacement.metadata.labels = pod.metadata.labels;
      replacement.metadata.ownerReferences = pod.metadata.ownerReferences;
      this.addPod(replacement);
    }, this.opts.recreateDelayMs ?? 200);
    this.timers.add(timer);
  }
}
