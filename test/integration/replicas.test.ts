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
import type { EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { incidentIdOf, slackWorld, until, type Replica, type SlackWorld } from '../helpers/slack-world.js';

jest.setTimeout(90_000);

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
    const views = w.slack.views.length;
    await b.click(ACTIONS.approve, id, 'U0APPROVER');
    await until(() => w.slack.views.length > views, 5000, 'the confirmation, opened by the other replica');
    await b.submit(APPROVE_VIEW, id, 'U0APPROVER');
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
