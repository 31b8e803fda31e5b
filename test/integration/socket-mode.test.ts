/**
 * Socket Mode, the default for most teams: the real Bolt app with its real
 * @slack/socket-mode client connects through `apps.connections.open` to the
 * Socket Mode stand-in, receives slash commands and interactions as
 * envelopes, acknowledges them on the socket, and survives Slack's routine
 * reconnect request; with two replicas connected, any envelope may reach
 * either, and the shared incidents keep one story.
 */
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { blockActionPayload, slashCommandPayload, viewSubmissionPayload, type EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { APP_TOKEN, CHANNEL, incidentIdOf, slackWorld, type Replica, type SlackWorld } from '../helpers/slack-world.js';

function cardFor(w: SlackWorld, node: string): EmulatedMessage | undefined {
  return [...w.slack.messages.values()].find((m) => !m.threadTs && m.text.startsWith(`${node}:`) && JSON.stringify(m.blocks).includes(ACTIONS.approve));
}

describe('Socket Mode', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld(
      [
        { name: 'gpu-node-7', faults: ['containerd-socket-is-directory'], toolkitPod: true },
        { name: 'gpu-node-8', faults: ['containerd-down'] },
      ],
      { SLACK_APP_TOKEN: APP_TOKEN },
    );
  });
  afterAll(() => w.stop());

  it('connects with the app-level token and serves health checks without a public endpoint', async () => {
    await w.slack.socketMode.connected();
    const open = w.slack.calls.filter((c) => c.method === 'apps.connections.open');
    expect(open).toHaveLength(1);
    expect(open[0]!.error).toBeUndefined();
    expect(w.server.slack.mode).toBe('socket');
    expect((await fetch(w.url.replace('/slack/events', '/readyz'))).status).toBe(200);
  });

  it('runs the whole story over the socket: /diag → card → approval → steps → summary', async () => {
    const sm = w.slack.socketMode;
    const ack = await sm.deliver('slash_commands', slashCommandPayload('gpu-node-7', 'U0REQUESTER', CHANNEL));
    expect(ack.payload ?? {}).not.toHaveProperty('text');

    const root = await w.until(() => cardFor(w, 'gpu-node-7'), 15_000, 'the card');
    expect(root.text).toMatch(/containerd-socket-is-directory \(root cause\)/);
    const id = incidentIdOf(root)!;

    await sm.deliver('interactive', blockActionPayload(ACTIONS.approve, id, 'U0APPROVER', CHANNEL, root.ts));
    const modal = await w.until(() => w.slack.views[0], 5000, 'the confirmation modal');
    expect(modal.private_metadata).toBe(id);
    await sm.deliver('interactive', viewSubmissionPayload(APPROVE_VIEW, id, 'U0APPROVER'));

    const summary = await w.until(() => w.slack.thread(root.ts).find((m) => m.text.startsWith('Incident summary')), 20_000, 'the summary');
    expect(summary.text).toMatch(/fixed/);
    expect(w.fleet.nodes.get('gpu-node-7')!.runtimeHealthy).toBe(true);
  });

  it('answers bad input in the acknowledgement, ephemerally, running nothing', async () => {
    const ack = await w.slack.socketMode.deliver('slash_commands', slashCommandPayload('node; rm -rf /', 'U0REQUESTER', CHANNEL));
    expect(ack.payload).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/One node at a time/) });
    expect(w.fleet.servers.get('gpu-node-8')!.commands).toEqual([]);
  });

  it('does not act twice on a redelivered envelope (Slack retries an unacknowledged one)', async () => {
    const sm = w.slack.socketMode;
    await sm.deliver('slash_commands', slashCommandPayload('gpu-node-8', 'U0REQUESTER', CHANNEL));
    const root = await w.until(() => cardFor(w, 'gpu-node-8'), 15_000, 'the card for gpu-node-8');
    const id = incidentIdOf(root)!;
    const click = blockActionPayload(ACTIONS.approve, id, 'U0APPROVER', CHANNEL, root.ts);
    await sm.deliver('interactive', click);
    await sm.deliver('interactive', click, { retryAttempt: 1 });
    await w.until(() => w.slack.views.length >= 2, 5000, 'the modal');
    const submit = viewSubmissionPayload(APPROVE_VIEW, id, 'U0APPROVER');
    await sm.deliver('interactive', submit);
    await sm.deliver('interactive', submit, { retryAttempt: 1 });
    await w.until(() => w.slack.thread(root.ts).find((m) => m.text.startsWith('Incident summary')), 20_000, 'the summary');
    await w.server.service.idle();
    const starts = w.fleet.servers.get('gpu-node-8')!.commands.filter((c) => /systemctl (re)?start containerd/.test(c) && !c.includes('probe() {'));
    expect(starts).toHaveLength(1);
  });

  it('reconnects when Slack asks it to (refresh_requested) and keeps answering', async () => {
    const sm = w.slack.socketMode;
    sm.requestRefresh();
    await sm.connected(2, 15_000);
    expect(w.slack.calls.filter((c) => c.method === 'apps.connections.open').length).toBeGreaterThanOrEqual(2);
    const ack = await sm.deliver('slash_commands', slashCommandPayload('help', 'U0REQUESTER', CHANNEL));
    expect(ack.payload).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/\/diag <node>/) });
  });
});

describe('Socket Mode with replicas sharing incidents', () => {
  let w: SlackWorld;
  let b: Replica;
  beforeAll(async () => {
    // Enough healthy nodes that two broken ones stay under the storm gate.
    w = await slackWorld(
      [{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, { name: 'gpu-node-2', faults: ['containerd-down'] }, ...[3, 4, 5, 6, 7, 8, 9].map((i) => ({ name: `gpu-node-${i}` }))],
      { SLACK_APP_TOKEN: APP_TOKEN, NODEDIAG_STORE: 'kube', NODEDIAG_LOCK_BACKEND: 'lease' },
    );
    b = await w.replica();
    await w.slack.socketMode.connected(2, 15_000, 2);
  });
  afterAll(async () => {
    await b?.server.stop();
    await w?.stop();
  });

  const starts = (node: string) => w.fleet.servers.get(node)!.commands.filter((c) => /systemctl (re)?start containerd/.test(c) && !c.includes('probe() {'));

  it('the command, the click and the confirmation may each reach another replica: the fix runs once', async () => {
    const sm = w.slack.socketMode;
    expect(sm.open).toBe(2);
    await sm.deliver('slash_commands', slashCommandPayload('gpu-node-1', 'U0REQUESTER', CHANNEL), { via: 0 });
    const root = await w.until(() => cardFor(w, 'gpu-node-1'), 20_000, 'the card');
    const id = incidentIdOf(root)!;
    const views = w.slack.views.length;
    // The modal is opened by the replica the click reached; its submission reaches the other.
    await sm.deliver('interactive', blockActionPayload(ACTIONS.approve, id, 'U0APPROVER', CHANNEL, root.ts), { via: 1 });
    await w.until(() => w.slack.views.length > views, 5000, 'the confirmation modal');
    await sm.deliver('interactive', viewSubmissionPayload(APPROVE_VIEW, id, 'U0APPROVER'), { via: 0 });
    const summary = await w.until(() => w.slack.thread(root.ts).find((m) => m.text.startsWith('Incident summary')), 30_000, 'the summary');
    expect(summary.text).toMatch(/fixed/);
    expect(w.fleet.nodes.get('gpu-node-1')!.runtimeHealthy).toBe(true);
  });

  it('envelopes handed out at random, a retried submission reaching the other replica: one approval, one run, one summary', async () => {
    const sm = w.slack.socketMode;
    await sm.deliver('slash_commands', slashCommandPayload('gpu-node-2', 'U0REQUESTER', CHANNEL));
    const root = await w.until(() => cardFor(w, 'gpu-node-2'), 20_000, 'the card');
    const id = incidentIdOf(root)!;
    const views = w.slack.views.length;
    await sm.deliver('interactive', blockActionPayload(ACTIONS.approve, id, 'U0APPROVER', CHANNEL, root.ts));
    await w.until(() => w.slack.views.length > views, 5000, 'the confirmation modal');
    const submit = viewSubmissionPayload(APPROVE_VIEW, id, 'U0APPROVER');
    // Slack retries an envelope whose acknowledgement it did not see, on any connection.
    await Promise.all([sm.deliver('interactive', submit, { via: 0 }), sm.deliver('interactive', submit, { via: 1, retryAttempt: 1 })]);
    await w.until(() => w.slack.thread(root.ts).find((m) => m.text.startsWith('Incident summary')), 30_000, 'the summary');
    await new Promise((r) => setTimeout(r, 1500));
    await Promise.all([w.server.service.idle(), b.server.service.idle()]);
    expect(starts('gpu-node-2')).toHaveLength(1);
    expect(w.slack.thread(root.ts).filter((m) => m.text.startsWith('Incident summary'))).toHaveLength(1);
    expect(w.slack.thread(root.ts).filter((m) => / approved the fix/.test(m.text))).toHaveLength(1);
  });
});
