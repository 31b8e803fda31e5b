/**
 * Socket Mode, the default for most teams: the real Bolt app with its real
 * @slack/socket-mode client connects through `apps.connections.open` to the
 * Socket Mode stand-in, receives slash commands and interactions as
 * envelopes, acknowledges them on the socket, and survives Slack's routine
 * reconnect request.
 */
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { blockActionPayload, slashCommandPayload, viewSubmissionPayload, type EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { APP_TOKEN, CHANNEL, incidentIdOf, slackWorld, type SlackWorld } from '../helpers/slack-world.js';

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
