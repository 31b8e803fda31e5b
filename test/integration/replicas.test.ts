/**
 * Two bot processes' twins sharing incidents as NodeIncident resources
 * (NODEDIAG_STORE=kube) and fix locks as Leases, through the real
 * client-node against the API stand-in serving the real CRD: a card posted by
 * one is approved on the other (Socket Mode hands an envelope to any
 * connection), and an approval submitted on both at once runs the fix once.
 */
import { jest } from '@jest/globals';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { NODE_INCIDENT } from '../../src/adapters/kube-incident-store.js';
import { NODEDIAG_RAILS } from '../../src/adapters/kube-rails.js';
import { NODEDIAG_MESSAGE } from '../../src/adapters/kube-outbox.js';
import type { EmulatedMessage } from '../../src/sim/slack-emulator.js';
import type { ChildProcess } from 'node:child_process';
import { blockActionBody, sendSigned, viewSubmissionBody } from '../../src/sim/slack-emulator.js';
import { approve, CHANNEL, incidentIdOf, serveProcess, SIGNING_SECRET, slackWorld, until, type Replica, type SlackWorld } from '../helpers/slack-world.js';

jest.setTimeout(120_000);

const shared = { NODEDIAG_STORE: 'kube', NODEDIAG_LOCK_BACKEND: 'lease' };
/** The core API (Nodes, Pods, evictions): slowed to hold a fix's cordon and drain, while incidents and Leases answer at once. */
const CORE_API = /^\/api\/v1\//;
const text = (m: EmulatedMessage | undefined) => JSON.stringify(m?.blocks ?? []);
/** A world's NodeIncident resource, and the card of a node that offers an approval. */
const resourceIn = (w: SlackWorld, id: string) => w.fleet.kube.customResources.objects(NODE_INCIDENT.group, NODE_INCIDENT.version, NODE_INCIDENT.plural).get(`nodediag/${id}`);
const cardIn = (w: SlackWorld, node: string) => [...w.slack.messages.values()].find((m) => !m.threadTs && m.text.startsWith(`${node}:`) && text(m).includes(ACTIONS.approve));

describe('three replicas, one truth', () => {
  let w: SlackWorld;
  let b: Replica;
  let c3: Replica;
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, { name: 'gpu-node-2', faults: ['containerd-socket-is-directory'] }, { name: 'gpu-node-3', faults: ['cgroup-driver-mismatch'] }, ...[4, 5, 6, 7, 8, 9].map((i) => ({ name: `gpu-node-${i}` }))], shared);
    b = await w.replica();
    c3 = await w.replica();
  });
  afterAll(async () => {
    await c3?.server.stop();
    await b?.server.stop();
    await w?.stop();
  });

  const resource = (id: string) => resourceIn(w, id);
  const card = (node: string) => cardIn(w, node);
  const summaries = (m: EmulatedMessage) => w.slack.thread(m.ts).filter((t) => t.text.startsWith('Incident summary'));

  it('a card posted by one replica is approved and fixed through the other; the NodeIncident tells the story', async () => {
    await w.slash('gpu-node-1', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-1'), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    expect(resource(id)).toMatchObject({ spec: { node: 'gpu-node-1', requester: 'U0REQUESTER' }, status: { state: 'awaiting-approval', finding: 'containerd-socket-is-directory' } });
    // The confirmation is opened and submitted through the other replica.
    await approve(w, id, 'U0APPROVER', b);
    await until(() => summaries(c)[0], 30_000, 'the summary');
    expect(summaries(c)[0]!.text).toMatch(/fixed/);
    await until(() => resource(id)?.status?.state === 'fixed', 5000, 'the resource fixed');
    expect(resource(id)!.status.approver).toBe('U0APPROVER');
  });

  it('the same approval submitted on the three replicas at once runs the fix once; any replica then says it ran', async () => {
    await c3.slash('gpu-node-2', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-2'), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    const views = w.slack.views.length;
    await Promise.all([w.click(ACTIONS.approve, id, 'U0APPROVER'), b.click(ACTIONS.approve, id, 'U0APPROVER2'), c3.click(ACTIONS.approve, id, 'U0APPROVER3')]);
    await until(() => w.slack.views.length >= views + 3, 5000, 'three confirmations');
    await Promise.all([w.submit(APPROVE_VIEW, id, 'U0APPROVER'), b.submit(APPROVE_VIEW, id, 'U0APPROVER2'), c3.submit(APPROVE_VIEW, id, 'U0APPROVER3')]);
    await until(() => summaries(c)[0], 30_000, 'the summary');
    // Let a second run, if there were one, show itself.
    await new Promise((r) => setTimeout(r, 1500));
    expect(summaries(c)).toHaveLength(1);
    expect(w.fleet.servers.get('gpu-node-2')!.commands.filter((x) => x.includes('systemctl stop containerd'))).toHaveLength(1);
    const approver = resource(id)!.status.approver as string;
    expect(['U0APPROVER', 'U0APPROVER2', 'U0APPROVER3']).toContain(approver);
    expect(w.slack.thread(c.ts).filter((t) => / approved the fix/.test(t.text))).toHaveLength(1);
    // Either replica, asked again, knows it ran.
    await b.click(ACTIONS.approve, id, 'U0APPROVER2');
    await until(() => w.slack.ephemerals.find((e) => e.user === 'U0APPROVER2' && /already run/.test(e.text)), 5000, 'the already-run refusal');
    expect(resource(id)!.status.state).toBe('fixed');
  });

  it('a pause set on one replica stops approvals on the other; resumed there, the fix runs; the NodediagRails resource shows it', async () => {
    const rails = () => w.fleet.kube.customResources.objects(NODEDIAG_RAILS.group, NODEDIAG_RAILS.version, NODEDIAG_RAILS.plural).get('nodediag/rails');
    // gpu-node-1 was fixed above: it breaks again the same way.
    w.fleet.nodes.get('gpu-node-1')!.inject('containerd-socket-is-directory');
    const before = new Set([...w.slack.messages.values()].map((m) => incidentIdOf(m)));
    await w.slash('gpu-node-1', 'U0REQUESTER');
    const c = await until(() => [...w.slack.messages.values()].find((m) => !m.threadTs && m.text.startsWith('gpu-node-1:') && text(m).includes(ACTIONS.approve) && !before.has(incidentIdOf(m))), 20_000, 'the new card');
    const id = incidentIdOf(c)!;
    await w.slash('pause 30m rollout in zone-b', 'U0REQUESTER');
    await until(() => rails()?.spec?.pause?.by === 'U0REQUESTER', 5000, 'the pause in the shared rails');
    await b.click(ACTIONS.approve, id, 'U0APPROVER');
    const refused = await until(() => w.slack.ephemerals.find((e) => e.user === 'U0APPROVER' && /Fixes are paused by <@U0REQUESTER>/.test(e.text)), 5000, 'the refusal on the other replica');
    expect(refused.text).toMatch(/rollout in zone-b/);
    await b.slash('resume', 'U0APPROVER');
    await until(() => rails() && !rails()!.spec.pause, 5000, 'the pause ended in the shared rails');
    await approve(w, id, 'U0APPROVER');
    await until(() => summaries(c)[0], 30_000, 'the summary');
    expect(summaries(c)[0]!.text).toMatch(/fixed/);
    // Both replicas' runs on gpu-node-1 count against its one retry budget.
    expect(rails()!.spec.events.filter((e: { node: string; kind: string }) => e.kind === 'fix-run' && e.node.endsWith('gpu-node-1'))).toHaveLength(2);
  });

  it('one fix at a time in the cluster across replicas: the second approved waits for the first, its card saying which', async () => {
    const stops = (node: string) => w.fleet.servers.get(node)!.commands.filter((x) => x.includes('systemctl stop containerd')).length;
    for (const n of ['gpu-node-4', 'gpu-node-5']) w.fleet.nodes.get(n)!.inject('containerd-socket-is-directory');
    await w.slash('gpu-node-4', 'U0REQUESTER');
    await b.slash('gpu-node-5', 'U0REQUESTER');
    const first = await until(() => card('gpu-node-4'), 20_000, 'card 4');
    const second = await until(() => card('gpu-node-5'), 20_000, 'card 5');
    // The first fix is held on the core API (cordon, drain) long enough for the second approval to land meanwhile.
    w.fleet.kube.faults = { latencyMs: 1000, paths: CORE_API };
    await approve(w, incidentIdOf(first)!, 'U0APPROVER');
    await until(() => /Running step/.test(text(w.slack.messages.get(first.ts))), 20_000, 'the first fix running');
    await approve(w, incidentIdOf(second)!, 'U0APPROVER2', b);
    await until(() => /queued: waiting for the fix on gpu-node-4 to finish/.test(text(w.slack.messages.get(second.ts))), 15_000, 'the queued card, from the other replica');
    // Longer than a slot poll: still waiting while the first runs.
    await new Promise((r) => setTimeout(r, 2500));
    expect(summaries(first)).toHaveLength(0);
    expect(stops('gpu-node-5')).toBe(0);
    w.fleet.kube.faults = {};
    for (const m of [first, second]) await until(() => summaries(m)[0], 60_000, 'both summaries');
    expect(summaries(first)[0]!.text).toMatch(/fixed/);
    expect(summaries(second)[0]!.text).toMatch(/fixed/);
  });

  it('with the API answering slowly, the approval modal is still answered within Slack\'s 3 s, and the fix goes on behind it', async () => {
    w.fleet.nodes.get('gpu-node-7')!.inject('containerd-socket-is-directory');
    await w.slash('gpu-node-7', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-7'), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    const views = w.slack.views.length;
    await b.click(ACTIONS.approve, id, 'U0APPROVER');
    await until(() => w.slack.views.length > views, 10_000, 'the confirmation');
    w.fleet.kube.faults = { latencyMs: 1000 };
    try {
      const answer = await b.submit(APPROVE_VIEW, id, 'U0APPROVER');
      expect(answer.ms).toBeLessThan(3000);
      expect(answer.body).toMatch(/Approval received/);
    } finally {
      w.fleet.kube.faults = {};
    }
    await until(() => summaries(c)[0], 60_000, 'the summary');
    expect(summaries(c)[0]!.text).toMatch(/fixed/);
    expect(resource(id)!.status.approver).toBe('U0APPROVER');
  });

  it("an approved fix does not start when the node's name now leads to another machine than the one diagnosed", async () => {
    w.fleet.nodes.get('gpu-node-6')!.inject('containerd-socket-is-directory');
    await w.slash('gpu-node-6', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-6'), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    // As if the diagnosis had reached the name at another address (a node replaced under the same name since).
    resource(id)!.status.incident.report.host = '10.9.9.9';
    await approve(w, id, 'U0APPROVER', c3);
    const summary = await until(() => summaries(c)[0], 30_000, 'the summary');
    expect(summary.text).toMatch(/not started|did not start|nothing ran|aborted/i);
    expect(w.slack.thread(c.ts).some((t) => /gpu-node-6 now resolves to 127\.0\.0\.1, not 10\.9\.9\.9 where it was diagnosed; re-diagnose/.test(t.text) || /now resolves to 127\.0\.0\.1/.test(JSON.stringify(w.slack.messages.get(c.ts)?.blocks)))).toBe(true);
    expect(w.fleet.servers.get('gpu-node-6')!.commands.filter((x) => x.includes('systemctl stop containerd'))).toHaveLength(0);
  });

  it('one process of three leads the sweeps and the outbox through the nodediag-leader Lease; when it stops, one other leads', async () => {
    const servers = [w.server, b.server, c3.server];
    await until(() => servers.filter((s) => s.leader.leading).length === 1, 5000, 'one leader');
    const holder = () => w.fleet.kube.leases.get('nodediag/nodediag-leader')?.spec.holderIdentity as string | undefined;
    expect(holder()).toMatch(/\/\d+\/[0-9a-f]{8}$/);
    const first = holder();
    const leader = servers.find((s) => s.leader.leading)!;
    const others = servers.filter((s) => s !== leader);
    // Several sweeps later, still one leader.
    await new Promise((r) => setTimeout(r, 1000));
    expect(servers.filter((s) => s.leader.leading)).toEqual([leader]);
    await leader.leader.stop();
    await until(() => others.filter((s) => s.leader.leading).length === 1, 5000, 'another process to lead');
    expect(leader.leader.leading).toBe(false);
    expect(holder()).not.toBe(first);
  });

  it('a replica that starts while another runs a fix leaves that fix alone', async () => {
    await w.slash('gpu-node-3', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-3'), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    // Held on the core API (cordon, drain) long enough for a replica to start meanwhile.
    w.fleet.kube.faults = { latencyMs: 300, paths: CORE_API };
    const views = w.slack.views.length;
    await w.click(ACTIONS.approve, id, 'U0APPROVER');
    await until(() => w.slack.views.length > views, 5000, 'the confirmation');
    await w.submit(APPROVE_VIEW, id, 'U0APPROVER');
    await until(() => resource(id)?.status?.state === 'running', 20_000, 'the fix running');
    const late = await w.replica();
    try {
      w.fleet.kube.faults = {};
      await until(() => summaries(c)[0], 60_000, 'the summary');
      expect(summaries(c)[0]!.text).toMatch(/fixed/);
      expect(w.slack.thread(c.ts).some((t) => /restarted while the fix ran/.test(t.text))).toBe(false);
      expect(resource(id)!.status.state).toBe('fixed');
    } finally {
      w.fleet.kube.faults = {};
      await late.server.stop();
    }
  });
});

describe('a replica killed mid-fix', () => {
  let w: SlackWorld;
  let child: ChildProcess | null = null;
  beforeAll(async () => {
    // Enough healthy nodes that three broken ones stay under the storm gate's 30%.
    w = await slackWorld([{ name: 'gpu-node-1', faults: ['cgroup-driver-mismatch'] }, ...Array.from({ length: 13 }, (_, i) => ({ name: `gpu-node-${i + 2}` }))], { ...shared, NODEDIAG_LEASE_SECONDS: '3' });
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await w?.stop();
  });

  /** The real `nodediag serve` in a process of its own, so that it can be SIGKILLed; its Slack request URL. */
  const serveChild = async (): Promise<string> => {
    const served = await serveProcess(w);
    child = served.child;
    return served.url;
  };
  const card = (node: string) => cardIn(w, node);
  const resource = (id: string) => resourceIn(w, id);

  it('costs an "interrupted" note from the other replica within the lease time, the node lock released, nothing re-run', async () => {
    const url = await serveChild();

    await w.slash('gpu-node-1', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-1'), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    // The core API answers slowly, so the fix (cordon, drain) is still running when its process dies.
    w.fleet.kube.faults = { latencyMs: 400, paths: CORE_API };
    const views = w.slack.views.length;
    await sendSigned(url, SIGNING_SECRET, blockActionBody(ACTIONS.approve, id, 'U0APPROVER', CHANNEL));
    await until(() => w.slack.views.length > views, 5000, 'the confirmation');
    // Slack takes no message meanwhile: what the dying replica says waits in the shared outbox.
    for (const m of ['chat.postMessage', 'chat.update']) w.slack.outage.add(m);
    await sendSigned(url, SIGNING_SECRET, viewSubmissionBody(APPROVE_VIEW, id, 'U0APPROVER'));
    await until(() => resource(id)?.status?.state === 'running' && [...w.fleet.kube.leases.values()].some((l) => l.metadata.annotations?.['nodediag.dev/node'] === 'gpu-node-1'), 20_000, 'the fix running under its Lease');
    const queued = () => [...w.fleet.kube.customResources.objects(NODEDIAG_MESSAGE.group, NODEDIAG_MESSAGE.version, NODEDIAG_MESSAGE.plural).values()];
    await until(() => queued().some((o) => /approved the fix/.test(JSON.stringify(o.spec.op))), 5000, 'the approval queued in the API');
    child!.kill('SIGKILL');
    const killedAt = Date.now();
    w.slack.outage.clear();
    w.fleet.kube.faults = {};
    const note = await until(() => w.slack.thread(c.ts).find((t) => /process running this fix stopped/.test(t.text)), 40_000, 'the interrupted note');
    // Its Leases lapse (3 s: NODEDIAG_LEASE_SECONDS above), then a sweep (0.2 s) and the post; no quiet time on top, measured from the kill.
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeLessThan(3_000 + 3_000);
    expect(note.text).toMatch(/nothing will re-run without a new approval/);
    expect(resource(id)!.status.state).toBe('interrupted');
    expect([...w.fleet.kube.leases.values()].some((l) => l.metadata.annotations?.['nodediag.dev/node'] === 'gpu-node-1')).toBe(false);
    await new Promise((r) => setTimeout(r, 1500));
    expect(w.slack.thread(c.ts).filter((t) => /process running this fix stopped/.test(t.text))).toHaveLength(1);
    expect(w.slack.thread(c.ts).filter((t) => t.text.startsWith('Incident summary'))).toHaveLength(1);
    // What the killed replica queued reached the thread, once; nothing is left queued.
    expect(w.slack.thread(c.ts).filter((t) => / approved the fix/.test(t.text))).toHaveLength(1);
    await until(() => queued().length === 0, 10_000, 'the shared outbox empty');
  });

  it('a fix queued on a replica that is killed while it waits is marked interrupted by another; it never runs', async () => {
    for (const n of ['gpu-node-2', 'gpu-node-3']) w.fleet.nodes.get(n)!.inject('containerd-socket-is-directory');
    const url = await serveChild();
    await w.slash('gpu-node-2', 'U0REQUESTER');
    await w.slash('gpu-node-3', 'U0REQUESTER');
    const first = await until(() => card('gpu-node-2'), 20_000, 'card 2');
    const second = await until(() => card('gpu-node-3'), 20_000, 'card 3');
    const id = incidentIdOf(second)!;
    const firstId = incidentIdOf(first)!;
    // The first fix is held on the core API (cordon, drain) while the second is approved on the other process.
    w.fleet.kube.faults = { latencyMs: 400, paths: CORE_API };
    await approve(w, firstId, 'U0APPROVER');
    await until(() => resource(firstId)?.status?.state === 'running', 20_000, 'the first fix running');
    const views = w.slack.views.length;
    await sendSigned(url, SIGNING_SECRET, blockActionBody(ACTIONS.approve, id, 'U0APPROVER2', CHANNEL));
    await until(() => w.slack.views.length > views, 10_000, 'the confirmation');
    await sendSigned(url, SIGNING_SECRET, viewSubmissionBody(APPROVE_VIEW, id, 'U0APPROVER2'));
    await until(() => resource(id)?.status?.incident?.waitingFor?.length, 20_000, 'the second fix queued on the other process');
    child!.kill('SIGKILL');
    w.fleet.kube.faults = {};
    const note = await until(() => w.slack.thread(second.ts).find((t) => /process holding this approved fix stopped while it waited for the fix on gpu-node-2; nothing ran/.test(t.text)), 40_000, 'the interrupted note');
    expect(note.text).toMatch(/Nothing will run without a new approval/);
    expect(resource(id)!.status.state).toBe('interrupted');
    await until(() => resource(firstId)?.status?.state === 'fixed', 60_000, 'the first fix done');
    await new Promise((r) => setTimeout(r, 1500));
    expect(w.fleet.servers.get('gpu-node-3')!.commands.filter((x) => x.includes('systemctl stop containerd'))).toHaveLength(0);
    expect(w.slack.thread(second.ts).filter((t) => /nothing ran/.test(t.text))).toHaveLength(1);
  });
});
