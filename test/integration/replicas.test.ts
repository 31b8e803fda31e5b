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
import type { EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockActionBody, sendSigned, viewSubmissionBody } from '../../src/sim/slack-emulator.js';
import { approve, CHANNEL, incidentIdOf, SIGNING_SECRET, slackWorld, until, type Replica, type SlackWorld } from '../helpers/slack-world.js';
import { freePort } from '../helpers/sshd.js';

jest.setTimeout(120_000);

const shared = { NODEDIAG_STORE: 'kube', NODEDIAG_LOCK_BACKEND: 'lease' };
const text = (m: EmulatedMessage | undefined) => JSON.stringify(m?.blocks ?? []);

describe('two replicas, one truth', () => {
  let w: SlackWorld;
  let b: Replica;
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, { name: 'gpu-node-2', faults: ['containerd-socket-is-directory'] }, { name: 'gpu-node-3', faults: ['cgroup-driver-mismatch'] }, ...[4, 5, 6, 7, 8, 9].map((i) => ({ name: `gpu-node-${i}` }))], shared);
    b = await w.replica();
  });
  afterAll(async () => {
    await b?.server.stop();
    await w?.stop();
  });

  const resource = (id: string) => w.fleet.kube.customResources.objects(NODE_INCIDENT.group, NODE_INCIDENT.version, NODE_INCIDENT.plural).get(`nodediag/${id}`);
  const card = (node: string) => [...w.slack.messages.values()].find((m) => !m.threadTs && m.text.startsWith(`${node}:`) && text(m).includes(ACTIONS.approve));
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

  it('the same approval submitted on both replicas at once runs the fix once; either replica then says it ran', async () => {
    await w.slash('gpu-node-2', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-2'), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    const views = w.slack.views.length;
    await Promise.all([w.click(ACTIONS.approve, id, 'U0APPROVER'), b.click(ACTIONS.approve, id, 'U0APPROVER2')]);
    await until(() => w.slack.views.length >= views + 2, 5000, 'both confirmations');
    await Promise.all([w.submit(APPROVE_VIEW, id, 'U0APPROVER'), b.submit(APPROVE_VIEW, id, 'U0APPROVER2')]);
    await until(() => summaries(c)[0], 30_000, 'the summary');
    // Let a second run, if there were one, show itself.
    await new Promise((r) => setTimeout(r, 1500));
    expect(summaries(c)).toHaveLength(1);
    expect(w.fleet.servers.get('gpu-node-2')!.commands.filter((x) => x.includes('systemctl stop containerd'))).toHaveLength(1);
    const approver = resource(id)!.status.approver as string;
    expect(['U0APPROVER', 'U0APPROVER2']).toContain(approver);
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
    // The first fix is held on the API (cordon, drain) long enough for the second approval to land meanwhile.
    w.fleet.kube.faults = { latencyMs: 1000 };
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

  it('one process leads the sweeps through the nodediag-leader Lease; when it stops, another leads', async () => {
    const servers = [w.server, b.server];
    await until(() => servers.filter((s) => s.leader.leading).length === 1, 5000, 'one leader');
    const holder = () => w.fleet.kube.leases.get('nodediag/nodediag-leader')?.spec.holderIdentity as string | undefined;
    expect(holder()).toMatch(/\/\d+\/[0-9a-f]{8}$/);
    const first = holder();
    const leader = servers.find((s) => s.leader.leading)!;
    const other = servers.find((s) => s !== leader)!;
    // Several sweeps later, still one leader.
    await new Promise((r) => setTimeout(r, 1000));
    expect(servers.filter((s) => s.leader.leading)).toEqual([leader]);
    await leader.leader.stop();
    await until(() => other.leader.leading, 5000, 'the other process to lead');
    expect(leader.leader.leading).toBe(false);
    expect(holder()).not.toBe(first);
  });

  it('a replica that starts while another runs a fix leaves that fix alone', async () => {
    await w.slash('gpu-node-3', 'U0REQUESTER');
    const c = await until(() => card('gpu-node-3'), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    // Held on the API (cordon, drain) long enough for a replica to start meanwhile.
    w.fleet.kube.faults = { latencyMs: 300 };
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
    w = await slackWorld([{ name: 'gpu-node-1', faults: ['cgroup-driver-mismatch'] }, ...[2, 3, 4, 5, 6].map((i) => ({ name: `gpu-node-${i}` }))], { ...shared, NODEDIAG_LEASE_SECONDS: '3' });
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await w?.stop();
  });

  it('costs an "interrupted" note from the other replica within the lease time, the node lock released, nothing re-run', async () => {
    // The real `nodediag serve` in a process of its own, so that it can be SIGKILLed.
    const port = await freePort();
    child = spawn(process.execPath, [join(process.cwd(), 'dist', 'src', 'cli.js'), 'serve'], {
      env: { PATH: process.env.PATH ?? '', ...w.env, PORT: String(port), NODEDIAG_STATE_DIR: mkdtempSync(join(tmpdir(), 'nodediag-killed-')), NODEDIAG_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    for (let t = Date.now(); !(await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok; await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() - t > 20_000) throw new Error('the second process did not get ready');
    }
    const url = `http://127.0.0.1:${port}/slack/events`;

    await w.slash('gpu-node-1', 'U0REQUESTER');
    const c = await until(() => [...w.slack.messages.values()].find((m) => !m.threadTs && m.text.startsWith('gpu-node-1:') && text(m).includes(ACTIONS.approve)), 20_000, 'the card');
    const id = incidentIdOf(c)!;
    const resource = () => w.fleet.kube.customResources.objects(NODE_INCIDENT.group, NODE_INCIDENT.version, NODE_INCIDENT.plural).get(`nodediag/${id}`);
    // The API answers slowly, so the fix (cordon, drain) is still running when its process dies.
    w.fleet.kube.faults = { latencyMs: 400 };
    const views = w.slack.views.length;
    await sendSigned(url, SIGNING_SECRET, blockActionBody(ACTIONS.approve, id, 'U0APPROVER', CHANNEL));
    await until(() => w.slack.views.length > views, 5000, 'the confirmation');
    await sendSigned(url, SIGNING_SECRET, viewSubmissionBody(APPROVE_VIEW, id, 'U0APPROVER'));
    await until(() => resource()?.status?.state === 'running' && [...w.fleet.kube.leases.values()].some((l) => l.metadata.annotations?.['nodediag.dev/node'] === 'gpu-node-1'), 20_000, 'the fix running under its Lease');
    child.kill('SIGKILL');
    const killedAt = Date.now();
    w.fleet.kube.faults = {};
    const note = await until(() => w.slack.thread(c.ts).find((t) => /process running this fix stopped/.test(t.text)), 40_000, 'the interrupted note');
    // Lease (3 s) + the take-over grace (10 s) + a sweep, measured from the kill.
    expect(Date.now() - killedAt).toBeLessThan(25_000);
    expect(note.text).toMatch(/nothing will re-run without a new approval/);
    expect(resource()!.status.state).toBe('interrupted');
    expect([...w.fleet.kube.leases.values()].some((l) => l.metadata.annotations?.['nodediag.dev/node'] === 'gpu-node-1')).toBe(false);
    await new Promise((r) => setTimeout(r, 1500));
    expect(w.slack.thread(c.ts).filter((t) => /process running this fix stopped/.test(t.text))).toHaveLength(1);
    expect(w.slack.thread(c.ts).filter((t) => t.text.startsWith('Incident summary'))).toHaveLength(1);
  });
});
