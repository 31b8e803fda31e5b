/**
 * One contract, two incident stores: the file store (CLI, demo, one replica)
 * and NodeIncident custom resources (several replicas), the latter through
 * the real client-node against the API stand-in serving the real CRD
 * manifest. Then what only the shared store promises: replicas that race on
 * one incident never both win, and `kubectl get nodeincidents` has its columns.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubeIncidentStore, NODE_INCIDENT } from '../../src/adapters/kube-incident-store.js';
import { fieldsOf, newIncidentId, type FixOffer, type Incident } from '../../src/incidents/incident.js';
import { ConflictError, FileIncidentStore, type IncidentStore } from '../../src/incidents/store.js';
import { NODEDIAG_CRDS, useKubeStandin } from '../helpers/kube-api.js';
import { useRealApiServer } from '../helpers/real-api.js';

const { api, kubeconfigPath: kubeconfig } = useKubeStandin('store-token-0123456789');
const real = useRealApiServer();
const crd = NODEDIAG_CRDS.find((d) => d.spec.names.kind === 'NodeIncident');

/** An incident offering a fix; `over` may move it to any state with what that state holds. */
function incident(over: Record<string, unknown> = {}): Incident {
  return {
    id: newIncidentId(),
    version: 1,
    node: 'gpu-node-1',
    channel: 'C0INCIDENT',
    messageKey: 'C0INCIDENT:1700000000.000100',
    threadKey: 'C0INCIDENT:1700000000.000100',
    requester: 'U0REQUESTER',
    createdAt: new Date().toISOString(),
    state: 'awaiting-approval',
    finding: 'containerd-socket-is-directory',
    plan: { runbook: 'containerd-socket-is-directory', hash: 'a'.repeat(64), title: 'Replace the directory', impact: 'containerd restarts', suggestCordon: false, stepTitles: ['check', 'fix'] } as unknown as FixOffer['plan'],
    expiresAt: new Date(Date.now() + 15 * 60_000).toISOString(),
    approvalsNeeded: 1,
    approvals: [],
    timeline: [{ at: new Date().toISOString(), what: 'diagnosed' }],
    ...over,
  } as Incident;
}

const next = (i: Incident, change: Record<string, unknown> = {}): Incident => ({ ...structuredClone(i), ...change, version: i.version + 1 }) as Incident;

/** Builds a store; `replica` names a second process sharing the same backing. */
type Make = (replica: string) => Promise<IncidentStore>;

const fileDir = mkdtempSync(join(tmpdir(), 'nodediag-store-file-'));
const stores: Array<[string, Make]> = [
  ['file store', async () => new FileIncidentStore(join(fileDir, 'incidents'))],
  ['NodeIncident custom resources', async () => createKubeIncidentStore({ kubeconfigPath: kubeconfig(), namespace: 'nodediag', cluster: 'lab' })],
  ...(real.available ? [['NodeIncident custom resources on the real API server', async () => createKubeIncidentStore({ kubeconfigPath: real.kubeconfigPath(), namespace: 'nodediag', cluster: 'lab' })] as [string, Make]] : []),
];

describe.each(stores)('%s', (_name, make) => {
  let store: IncidentStore;
  beforeAll(async () => {
    store = await make('a');
  });

  it('gives back what was created, and null for an unknown or malformed id', async () => {
    const i = incident();
    await store.create(i);
    expect(await store.get(i.id)).toEqual(i);
    expect(await store.get(newIncidentId())).toBeNull();
    expect(await store.get('../../etc/passwd')).toBeNull();
  });

  it('refuses to create an incident twice', async () => {
    const i = incident();
    await store.create(i);
    await expect(store.create(i)).rejects.toThrow(ConflictError);
  });

  it('writes the next version only: a stale or skipped version is a conflict, and nothing changes', async () => {
    const i = incident();
    await store.create(i);
    const approved = next(i, { state: 'approved', approvedBy: 'U0APPROVER' });
    await store.put(approved);
    expect(await store.get(i.id)).toEqual(approved);
    await expect(store.put(next(i, { state: 'rejected' }))).rejects.toThrow(ConflictError);
    await expect(store.put({ ...next(approved), version: approved.version + 2 })).rejects.toThrow(ConflictError);
    expect(await store.get(i.id)).toEqual(approved);
  });

  it('lets exactly one of racing writers of the same version win', async () => {
    const i = incident();
    await store.create(i);
    const results = await Promise.allSettled(['U1', 'U2', 'U3', 'U4'].map((u) => store.put(next(i, { state: 'approved', approvedBy: u }))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof ConflictError)).toBe(true);
    expect((await store.get(i.id))!.version).toBe(2);
  });

  it('lists incidents by state, a closed one only when closed states are asked for', async () => {
    const open = incident({ node: 'gpu-node-7' });
    const done = incident({ node: 'gpu-node-7' });
    await store.create(open);
    await store.create(done);
    await store.put(next(done, { state: 'approved' }));
    await store.put(next(next(done, { state: 'approved' }), { state: 'fixed' }));
    const awaiting = (await store.list(['awaiting-approval'])).map((x) => x.id);
    expect(awaiting).toContain(open.id);
    expect(awaiting).not.toContain(done.id);
    const fixed = await store.list(['fixed']);
    expect(fixed.map((x) => x.id)).toContain(done.id);
    expect(fixed.every((x) => x.state === 'fixed')).toBe(true);
  });

  it('lists every open incident when there are more than one page of them', async () => {
    const many = Array.from({ length: 260 }, () => incident({ node: 'gpu-node-9', state: 'running' }));
    for (let k = 0; k < many.length; k += 20) await Promise.all(many.slice(k, k + 20).map((i) => store.create(i)));
    const running = new Set((await store.list(['running'])).map((x) => x.id));
    expect(many.every((i) => running.has(i.id))).toBe(true);
  });
});

describe('NodeIncident custom resources, shared by replicas', () => {
  const replica = () => createKubeIncidentStore({ kubeconfigPath: kubeconfig(), namespace: 'nodediag', cluster: 'lab' });
  const objects = () => api.customResources.objects(NODE_INCIDENT.group, NODE_INCIDENT.version, NODE_INCIDENT.plural);

  it('a double click on two replicas changes the incident once; the loser re-reads and sees the winner', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const i = incident();
    await a.create(i);
    const seenByA = (await a.get(i.id))!;
    const seenByB = (await b.get(i.id))!;
    const results = await Promise.allSettled([a.put(next(seenByA, { state: 'approved', approvedBy: 'U0APPROVER' })), b.put(next(seenByB, { state: 'approved', approvedBy: 'U0APPROVER2' }))]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const winner = (await b.get(i.id))!;
    expect(winner.version).toBe(2);
    expect(['U0APPROVER', 'U0APPROVER2']).toContain(fieldsOf(winner).approvedBy);
    // The loser, deciding again on what it re-read, moves the incident on from there.
    await b.put(next(winner, { state: 'running' }));
    expect((await a.get(i.id))!.state).toBe('running');
  });

  it('a replica holding an old read cannot write over a newer state', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const i = incident();
    await a.create(i);
    const old = (await b.get(i.id))!;
    await a.put(next(old, { state: 'rejected', rejectedBy: 'U0APPROVER' }));
    await expect(b.put(next(old, { state: 'approved', approvedBy: 'U0APPROVER2' }))).rejects.toThrow(ConflictError);
    expect((await b.get(i.id))!.state).toBe('rejected');
  });

  it('keeps the identity in the spec and the state in the status, so the printer columns tell the story', async () => {
    const s = await replica();
    const i = incident({ node: 'gpu-node-3', requester: 'U0REQUESTER' });
    await s.create(i);
    await s.put(next(i, { state: 'approved', approvedBy: 'U0APPROVER', approvals: ['U0APPROVER'] }));
    const obj = objects().get(`nodediag/${i.id}`)!;
    const columns = crd.spec.versions[0].additionalPrinterColumns as Array<{ name: string; jsonPath: string }>;
    const at = (path: string) => path.split('.').slice(1).reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
    const row = Object.fromEntries(columns.map((c) => [c.name, at(c.jsonPath)]));
    expect(row).toMatchObject({ Node: 'gpu-node-3', Finding: 'containerd-socket-is-directory', State: 'approved', Requester: 'U0REQUESTER', Approver: 'U0APPROVER', Cluster: 'lab' });
    expect(typeof row.Age).toBe('string');
    expect(obj.metadata.generation).toBe(1);
  });

  it('names the missing permission when RBAC refuses the status write', async () => {
    const s = await replica();
    const i = incident();
    await s.create(i);
    const put = api.customResources.handle.bind(api.customResources);
    api.customResources.handle = (method, path, ...rest) =>
      method === 'PUT' && path.endsWith('/status')
        ? { code: 403, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'nodeincidents.nodediag.io "x" is forbidden: User "system:serviceaccount:nodediag:nodediag" cannot update resource "nodeincidents/status" in API group "nodediag.io" in the namespace "nodediag"' } }
        : put(method, path, ...rest);
    try {
      await expect(s.put(next(i, { state: 'approved' }))).rejects.toThrow(/needs permission "update" on nodeincidents\/status \(API group nodediag\.io, namespace nodediag\)/);
    } finally {
      api.customResources.handle = put;
    }
  });
});

(real.available ? describe : describe.skip)('what only the real API server checks', () => {
  it('refuses a change of an incident\'s spec (the CRD\'s CEL rule) and a status without its required shape', async () => {
    const store = await createKubeIncidentStore({ kubeconfigPath: real.kubeconfigPath(), namespace: 'cel', cluster: 'lab' });
    const i = incident();
    await store.create(i);
    const path = `/apis/${NODE_INCIDENT.group}/${NODE_INCIDENT.version}/namespaces/cel/${NODE_INCIDENT.plural}/${i.id}`;
    const obj = (await real.call('GET', path)).body;
    const moved = await real.call('PUT', path, { ...obj, spec: { ...obj.spec, node: 'gpu-node-2' } });
    expect(moved.status).toBe(422);
    expect(moved.body.message).toMatch(/the spec of an incident never changes/);
    const missing = await real.call('POST', `/apis/${NODE_INCIDENT.group}/${NODE_INCIDENT.version}/namespaces/cel/${NODE_INCIDENT.plural}`, { apiVersion: `${NODE_INCIDENT.group}/${NODE_INCIDENT.version}`, kind: NODE_INCIDENT.kind, metadata: { name: 'inc-0000000000000000' }, spec: { node: 'gpu-node-1' } });
    expect(missing.status).toBe(422);
    expect(missing.body.message).toMatch(/spec\.channel: Required value/);
    // The store's own writes still pass, the status with them.
    await store.put(next(i, { state: 'rejected', rejectedBy: 'U0APPROVER' }));
    expect((await store.get(i.id))?.state).toBe('rejected');
  });
});
