/**
 * Custom resources in the API stand-in, served from a real
 * CustomResourceDefinition (manifests/kubernetes/crd.yaml), following the API
 * conventions the bot relies on: a write naming a stale resourceVersion is a
 * 409 Conflict; a create of an existing name is a 409 AlreadyExists; with the
 * status subresource, create and writes to the main resource ignore `status`
 * and writes to `/status` change nothing but `status`; a merge patch may carry
 * a resourceVersion as its precondition; lists page with limit/continue and
 * filter by label selector; `spec` changes bump `metadata.generation`; bodies
 * must name the right apiVersion and kind; a watch streams ADDED, MODIFIED and
 * DELETED events, one JSON object per line (the current objects first, as
 * ADDED, when no resourceVersion is given).
 */
import { randomUUID } from 'node:crypto';

type KObject = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** An answer: HTTP status and JSON body. */
export interface CrAnswer {
  code: number;
  body: KObject;
}

function status(code: number, reason: string, message: string, details?: KObject): CrAnswer {
  return { code, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code } };
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: KObject, patch: KObject): KObject {
  const out: KObject = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (typeof v === 'object' && !Array.isArray(v)) out[k] = mergePatch(out[k], v);
    else out[k] = v;
  }
  return out;
}

/** Equality-based label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated. */
export function labelSelectorMatches(selector: string | null, labels: Record<string, string> = {}): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const t = term.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([^!=\s]+)\s*!=\s*(\S*)$/.exec(t))) return labels[m[1]!] !== m[2];
    if ((m = /^([^!=\s]+)\s*==?\s*(\S*)$/.exec(t))) return labels[m[1]!] === m[2];
    if ((m = /^!([^!=\s]+)$/.exec(t))) return !(m[1]! in labels);
    return t in labels;
  });
}

/** One served resource kind, from its CRD. */
interface Served {
  group: string;
  version: string;
  plural: string;
  kind: string;
  listKind: string;
  statusSubresource: boolean;
  objects: Map<string, KObject>;
}

/** An open watch on a kind in a namespace. */
interface Watcher {
  kind: Served;
  ns: string;
  selector: string | null;
  write: (line: string) => void;
  end: () => void;
}

/** The custom resources the stand-in serves. */
export class CustomResources {
  private readonly served = new Map<string, Served>();
  private readonly watchers = new Set<Watcher>();

  constructor(private readonly nextRv: () => string) {}

  /** Serves the kinds a CustomResourceDefinition declares. */
  register(crd: KObject): void {
    const spec = crd.spec;
    for (const v of spec.versions.filter((x: KObject) => x.served)) {
      this.served.set(`${spec.group}/${v.name}/${spec.names.plural}`, {
        group: spec.group,
        version: v.name,
        plural: spec.names.plural,
        kind: spec.names.kind,
        listKind: spec.names.listKind ?? `${spec.names.kind}List`,
        statusSubresource: Boolean(v.subresources?.status),
        objects: new Map(),
      });
    }
  }

  /** Stored objects of a kind (for assertions). */
  objects(group: string, version: string, plural: string): Map<string, KObject> {
    return this.served.get(`${group}/${version}/${plural}`)?.objects ?? new Map();
  }

  /**
   * Opens a watch on `/apis/{group}/{version}/namespaces/{ns}/{plural}`:
   * `write` gets one line per event until `stop`; null when the path is not a
   * served kind's collection.
   */
  watch(path: string, query: URLSearchParams, write: (line: string) => void, end: () => void): { stop(): void } | null {
    const m = /^\/apis\/([^/]+)\/([^/]+)\/namespaces\/([^/]+)\/([^/]+)$/.exec(path);
    const kind = m ? this.served.get(`${m[1]}/${m[2]}/${m[4]}`) : undefined;
    if (!m || !kind) return null;
    const w: Watcher = { kind, ns: decodeURIComponent(m[3]!), selector: query.get('labelSelector'), write, end };
    if (!query.get('resourceVersion')) {
      for (const [k, o] of kind.objects) if (k.startsWith(`${w.ns}/`) && labelSelectorMatches(w.selector, o.metadata.labels)) write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
    }
    this.watchers.add(w);
    return { stop: () => this.watchers.delete(w) };
  }

  /** Ends every open watch, as an API server does when a watch times out. */
  endWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }

  /** Open watches (for assertions). */
  get watching(): number {
    return this.watchers.size;
  }

  /** Tells the watchers of an object's kind and namespace what happened to it (one it no longer matches is DELETED for them). */
  private emit(kind: Served, type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KObject, old?: KObject): void {
    for (const w of this.watchers) {
      if (w.kind !== kind || w.ns !== obj.metadata.namespace) continue;
      const now = labelSelectorMatches(w.selector, obj.metadata.labels);
      const before = old ? labelSelectorMatches(w.selector, old.metadata.labels) : false;
      const seen = type === 'DELETED' ? (now ? 'DELETED' : null) : now ? (type === 'MODIFIED' && !before ? 'ADDED' : type) : before ? 'DELETED' : null;
      if (seen) w.write(`${JSON.stringify({ type: seen, object: obj })}\n`);
    }
  }

  /** Handles `/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status]]`, or returns null when the path is not a served kind. */
  handle(method: string, path: string, query: URLSearchParams, contentType: string, body: KObject | null): CrAnswer | null {
    const m = /^\/apis\/([^/]+)\/([^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+)(\/status)?)?$/.exec(path);
    if (!m) return null;
    const kind = this.served.get(`${m[1]}/${m[2]}/${m[4]}`);
    if (!kind) return null;
    const ns = decodeURIComponent(m[3]!);
    const name = m[5] ? decodeURIComponent(m[5]) : undefined;
    const sub = Boolean(m[6]);
    if (sub && !kind.statusSubresource) return status(404, 'NotFound', 'the server could not find the requested resource');
    const key = `${ns}/${name}`;
    const existing = name ? kind.objects.get(key) : undefined;
    const resource = `${kind.plural}.${kind.group}`;
    const notFound = () => status(404, 'NotFound', `${resource} "${name}" not found`, { name, group: kind.group, kind: kind.plural });
    const conflict = () =>
      status(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: kind.group, kind: kind.plural });
    const apiVersion = `${kind.group}/${kind.version}`;
    const wrongType = (b: KObject) => (b.apiVersion !== apiVersion || b.kind !== kind.kind ? status(400, 'BadRequest', `the API version in the data (${b.apiVersion}) and kind (${b.kind}) do not match ${apiVersion} ${kind.kind}`) : null);

    if (method === 'GET' && name) return existing ? { code: 200, body: existing } : notFound();
    if (method === 'GET') {
      const all = [...kind.objects.entries()]
        .filter(([k, o]) => k.startsWith(`${ns}/`) && labelSelectorMatches(query.get('labelSelector'), o.metadata.labels))
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([, o]) => o);
      const from = Number(query.get('continue') ? Buffer.from(query.get('continue')!, 'base64url').toString() : 0);
      const limit = Number(query.get('limit') ?? 0) || all.length;
      const items = all.slice(from, from + limit);
      const more = from + limit < all.length;
      return { code: 200, body: { apiVersion, kind: kind.listKind, metadata: { resourceVersion: this.nextRv(), ...(more ? { continue: Buffer.from(String(from + limit)).toString('base64url') } : {}) }, items } };
    }
    if (method === 'POST' && !name) {
      if (!body) return status(400, 'BadRequest', 'no body');
      const bad = wrongType(body);
      if (bad) return bad;
      const n = body.metadata?.name;
      if (!n) return status(422, 'Invalid', `${kind.kind}.${kind.group} is invalid: metadata.name: Required value`);
      if (kind.objects.has(`${ns}/${n}`)) return status(409, 'AlreadyExists', `${resource} "${n}" already exists`, { name: n, group: kind.group, kind: kind.plural });
      const { status: _ignored, ...rest } = body;
      const obj: KObject = {
        ...(kind.statusSubresource ? rest : body),
        metadata: { ...body.metadata, namespace: ns, uid: randomUUID(), resourceVersion: this.nextRv(), generation: 1, creationTimestamp: now() },
      };
      kind.objects.set(`${ns}/${n}`, obj);
      this.emit(kind, 'ADDED', obj);
      return { code: 201, body: obj };
    }
    if (method === 'PUT' && name) {
      if (!existing) return notFound();
      if (!body) return status(400, 'BadRequest', 'no body');
      const bad = wrongType(body);
      if (bad) return bad;
      if (body.metadata?.name !== name) return status(400, 'BadRequest', `the name of the object (${body.metadata?.name}) does not match the name on the URL (${name})`);
      if (body.metadata?.resourceVersion && body.metadata.resourceVersion !== existing.metadata.resourceVersion) return conflict();
      let obj: KObject;
      if (sub) obj = { ...existing, status: body.status, metadata: { ...existing.metadata } };
      else if (kind.statusSubresource) obj = { ...body, status: existing.status, metadata: { ...existing.metadata, labels: body.metadata.labels, annotations: body.metadata.annotations } };
      else obj = { ...body, metadata: { ...existing.metadata, labels: body.metadata.labels, annotations: body.metadata.annotations } };
      if (obj.status === undefined) delete obj.status;
      return { code: 200, body: this.store(kind, key, existing, obj) };
    }
    if (method === 'PATCH' && name) {
      if (!existing) return notFound();
      if (!/^application\/merge-patch\+json/.test(contentType)) return status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
      if (!body) return status(400, 'BadRequest', 'no body');
      const pre = body.metadata?.resourceVersion;
      if (pre && pre !== existing.metadata.resourceVersion) return conflict();
      const patched = mergePatch(existing, body);
      let obj: KObject;
      if (sub) obj = { ...existing, status: patched.status };
      else obj = { ...patched, ...(kind.statusSubresource ? { status: existing.status } : {}), metadata: { ...existing.metadata, labels: patched.metadata?.labels, annotations: patched.metadata?.annotations } };
      if (obj.status === undefined) delete obj.status;
      return { code: 200, body: this.store(kind, key, existing, obj) };
    }
    if (method === 'DELETE' && name) {
      if (!existing) return notFound();
      kind.objects.delete(key);
      this.emit(kind, 'DELETED', existing);
      return { code: 200, body: existing };
    }
    return status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  }

  private store(kind: Served, key: string, old: KObject, obj: KObject): KObject {
    const specChanged = JSON.stringify(old.spec) !== JSON.stringify(obj.spec);
    obj.metadata = { ...obj.metadata, resourceVersion: this.nextRv(), generation: (old.metadata.generation ?? 1) + (specChanged ? 1 : 0) };
    for (const k of ['labels', 'annotations']) if (obj.metadata[k] === undefined) delete obj.metadata[k];
    kind.objects.set(key, obj);
    this.emit(kind, 'MODIFIED', obj, old);
    return obj;
  }
}
