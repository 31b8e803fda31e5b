/**
 * Three bot processes against a REAL Kubernetes API server: their incidents
 * (NodeIncident), shared Slack outbox (NodediagMessage), rails and Leases live
 * in upstream apiextensions-apiserver over a real etcd, which enforces the
 * schema, the status subresource, CEL rules and resourceVersion conflicts
 * itself. The core API (Nodes, Pods, evictions), which that server does not
 * serve, comes from the stand-in through one split endpoint
 * (test/helpers/split-api.ts). Skipped, loudly, where the server is not built.
 */
import { jest } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { NODE_INCIDENT } from '../../src/adapters/kube-incident-store.js';
import { NODEDIAG_MESSAGE } from '../../src/adapters/kube-outbox.js';
import { fixLeaseName } from '../../src/adapters/kube.js';
import { loadCatalogs } from '../../src/catalog/load.js';
import { startSimFleet, type SimFleet } from '../../src/sim/sim-fleet.js';
import { blockActionBody, sendSigned, viewSubmissionBody, type EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { useRealApiServer } from '../helpers/real-api.js';
import { CHANNEL, incidentIdOf, serveProcess, SIGNING_SECRET, slackWorld, until, type Replica, type SlackWorld } from '../helpers/slack-world.js';
import { splitApi, type SplitApi } from '../helpers/split-api.js';

jest.setTimeout(180_000);

const real = useRealApiServer();
const NS = 'nodediag';
const incidents = `/apis/${NODE_INCIDENT.group}/${NODE_INCIDENT.version}/namespaces/${NS}/${NODE_INCIDENT.plural}`;
const messages = `/apis/${NODEDIAG_MESSAGE.group}/${NODEDIAG_MESSAGE.version}/namespaces/${NS}/${NODEDIAG_MESSAGE.plural}`;
const leases = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

(real.available ? describe : describe.skip)('three replicas on a real API server', () => {
  let fleet: SimFleet;
  let split: SplitApi;
  let w: SlackWorld;
  let b: Replica;
  let c3: Replica;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    fleet = await startSimFleet(
      [{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, { name: 'gpu-node-2', faults: ['cgroup-driver-mismatch'] }, ...[3, 4, 5, 6, 7, 8, 9, 10].map((i) => ({ name: `gpu-node-${i}` }))],
      loadCatalogs(),
      { timeScale: 0.02 },
    );
    split = await splitApi(fleet.kubeconfigPath, real.kubeconfigPath());
    w = await slackWorld([], { NODEDIAG_STORE: 'kube', NODEDIAG_LOCK_BACKEND: 'lease', NODEDIAG_LEASE_SECONDS: '3' }, {}, undefined, { inventoryPath: fleet.inventoryPath, kubeconfigPath: split.kubeconfigPath });
    b = await w.replica();
    c3 = await w.replica();
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await c3?.server.stop();
    await b?.server.stop();
    await w?.stop();
    await split?.stop();
    await fleet?.stop();
  });

  const resource = async (id: string) => (await real.call('GET', `${incidents}/${id}`)).body;
  const card = (node: string) => [...w.slack.messages.values()].find((m) => !m.threadTs && m.text.startsWith(`${node}:`) && JSON.stringify(m.blocks).includes(ACTIONS.approve));
  const thread = (m: EmulatedMessage, re: RegExp) => w.slack.thread(m.ts).filter((t) => re.test(t.text));
  const nodeLeaseHeld = async (node: string) => (await real.call('GET', `${leases}/${fixLeaseName(node)}`)).status === 200;
  /** What the world looks like when a wait times out: Slack's side, the API's side, and this process's load. */
  const explain = async () => {
    const names = async (path: string) => ((await real.call('GET', path)).body.items as Array<{ metadata: { name: string }; status?: { state?: string }; spec?: { holderIdentity?: string; renewTime?: string } }>) ?? [];
    return [
      `slack messages: ${JSON.stringify([...w.slack.messages.values()].map((m) => `${m.threadTs ? '  ' : ''}${m.text.slice(0, 100)}`))}`,
      `slack ephemerals: ${JSON.stringify(w.slack.ephemerals.map((e) => e.text.slice(0, 100)))}; calls refused: ${w.slack.calls.filter((call) => call.status !== 200).length}`,
      `incidents: ${JSON.stringify((await names(incidents)).map((i) => `${i.metadata.name} ${i.status?.state}`))}`,
      `outbox entries: ${(await names(messages)).length}; leases: ${JSON.stringify((await names(leases)).map((l) => `${l.metadata.name} ${l.spec?.holderIdentity} ${l.spec?.renewTime}`))}`,
      `load ${loadavg().map((x) => x.toFixed(1)).join(' ')}, heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB, open files ${readdirSync('/proc/self/fd').length}`,
    ].join('\n');
  };

  it('an approval submitted on the three at once runs the fix once, and `kubectl get nodeincidents` tells the story', async () => {
    await c3.slash('gpu-node-1', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-1'), 60_000, 'the card', explain);
    const id = incidentIdOf(c)!;
    expect(await resource(id)).toMatchObject({ spec: { node: 'gpu-node-1', requester: 'U0REQUESTER' }, status: { state: 'awaiting-approval', finding: 'containerd-socket-is-directory' } });
    const views = w.slack.views.length;
    await Promise.all([w.click(ACTIONS.approve, id, 'U0APPROVER'), b.click(ACTIONS.approve, id, 'U0APPROVER2'), c3.click(ACTIONS.approve, id, 'U0APPROVER3')]);
    await until(() => w.slack.views.length >= views + 3, 10_000, 'three confirmations');
    await Promise.all([w.submit(APPROVE_VIEW, id, 'U0APPROVER'), b.submit(APPROVE_VIEW, id, 'U0APPROVER2'), c3.submit(APPROVE_VIEW, id, 'U0APPROVER3')]);
    await until(() => thread(c, /^Incident summary/)[0], 40_000, 'the summary', explain);
    await new Promise((r) => setTimeout(r, 1500));
    expect(thread(c, /^Incident summary/)).toHaveLength(1);
    expect(thread(c, / approved the fix/)).toHaveLength(1);
    expect(fleet.servers.get('gpu-node-1')!.commands.filter((x) => x.includes('systemctl stop containerd'))).toHaveLength(1);
    await until(async () => (await resource(id)).status?.state === 'fixed', 10_000, 'the resource fixed', explain);
    // What `kubectl get nodeincidents` prints: the server's own Table, from the CRD's printer columns.
    const table = (await real.call('GET', incidents, undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' })).body;
    const columns = (table.columnDefinitions as Array<{ name: string }>).map((col) => col.name);
    expect(columns).toEqual(expect.arrayContaining(['Name', 'Node', 'Finding', 'State', 'Requester', 'Approver', 'Age']));
    const row = (table.rows as Array<{ cells: unknown[] }>).find((r) => r.cells[0] === id)!;
    const cell = (name: string) => row.cells[columns.indexOf(name)];
    expect([cell('Node'), cell('Finding'), cell('State'), cell('Requester')]).toEqual(['gpu-node-1', 'containerd-socket-is-directory', 'fixed', 'U0REQUESTER']);
    expect(['U0APPROVER', 'U0APPROVER2', 'U0APPROVER3']).toContain(cell('Approver'));
    // Every message was delivered and then removed from the shared outbox; the node's lock is free again.
    await until(async () => ((await real.call('GET', messages)).body.items as unknown[]).length === 0, 10_000, 'the shared outbox empty');
    expect(await nodeLeaseHeld('gpu-node-1')).toBe(false);
    expect(split.counts.real).toBeGreaterThan(0);
    expect(split.counts.core).toBeGreaterThan(0);
  });

  it('a real `nodediag serve` SIGKILLed mid-fix costs an "interrupted" note from another within the Lease time; nothing re-runs, no post is lost', async () => {
    const served = await serveProcess(w);
    child = served.child;
    const url = served.url;
    await w.slash('gpu-node-2', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-2'), 60_000, 'the card', explain);
    const id = incidentIdOf(c)!;
    // The core API answers slowly, so the fix (cordon, drain) is still running when its process dies.
    fleet.kube.faults = { latencyMs: 400 };
    const views = w.slack.views.length;
    await sendSigned(url, SIGNING_SECRET, blockActionBody(ACTIONS.approve, id, 'U0APPROVER', CHANNEL));
    await until(() => w.slack.views.length > views, 10_000, 'the confirmation');
    // Slack takes no message meanwhile: what the dying process says waits in the shared outbox, in the real API.
    for (const m of ['chat.postMessage', 'chat.update']) w.slack.outage.add(m);
    await sendSigned(url, SIGNING_SECRET, viewSubmissionBody(APPROVE_VIEW, id, 'U0APPROVER'));
    await until(async () => (await resource(id)).status?.state === 'running' && (await nodeLeaseHeld('gpu-node-2')), 30_000, 'the fix running under its Lease', explain);
    await until(async () => JSON.stringify((await real.call('GET', messages)).body.items).includes('approved the fix'), 10_000, 'the approval queued in the API');
    child.kill('SIGKILL');
    const killedAt = Date.now();
    w.slack.outage.clear();
    fleet.kube.faults = {};
    const note = await until(() => thread(c, /process running this fix stopped/)[0], 40_000, 'the interrupted note', explain);
    // Its Leases lapse (3 s), then a sweep and the post: well within twice the Lease.
    expect(Date.now() - killedAt).toBeLessThan(3_000 + 3_000);
    expect(note.text).toMatch(/nothing will re-run without a new approval/);
    expect((await resource(id)).status.state).toBe('interrupted');
    expect(await nodeLeaseHeld('gpu-node-2')).toBe(false);
    await new Promise((r) => setTimeout(r, 1500));
    expect(thread(c, /process running this fix stopped/)).toHaveLength(1);
    expect(thread(c, /^Incident summary/)).toHaveLength(1);
    expect(thread(c, / approved the fix/)).toHaveLength(1);
    await until(async () => ((await real.call('GET', messages)).body.items as unknown[]).length === 0, 10_000, 'the shared outbox empty');
  });
});
