/**
 * The real Bolt app (HTTP receiver) driven by signed requests as Slack sends
 * them, talking to the emulated Web API, diagnosing and fixing simulated
 * nodes: the whole story and its refusals.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { limitProblems } from '../../src/slack/blocks/limits.js';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { sendSigned, slackSignature, slashCommandBody, type EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { CHANNEL, incidentIdOf, SIGNING_SECRET, slackWorld, type SlackWorld } from '../helpers/slack-world.js';

const REQ = 'U0REQUESTER';
const APPROVER = 'U0APPROVER';
const STRANGER = 'U0STRANGER';

function buttonsOf(m: EmulatedMessage): string[] {
  const actions = (m.blocks as Array<{ type: string; elements?: Array<{ action_id: string }> }>).find((b) => b.type === 'actions');
  return actions?.elements?.map((e) => e.action_id) ?? [];
}

function textOf(m: EmulatedMessage): string {
  return JSON.stringify(m.blocks);
}

async function incidentFor(w: SlackWorld, node: string): Promise<{ root: EmulatedMessage; id: string }> {
  const root = await w.until(
    () => [...w.slack.messages.values()].find((m) => !m.threadTs && m.text.startsWith(`${node}:`) && buttonsOf(m).includes(ACTIONS.approve)),
    15_000,
    `the incident message for ${node} with buttons`,
  );
  return { root, id: incidentIdOf(root)! };
}

function lastEphemeral(w: SlackWorld, user: string): string {
  return w.slack.ephemerals.filter((e) => e.user === user).at(-1)?.text ?? '';
}

describe('the Slack bot, end to end (seed 000 on a simulated node)', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-7', faults: ['containerd-socket-is-directory'], toolkitPod: true }]);
  });
  afterAll(() => w.stop());

  it('/diag → incident card → Approve by a second person → steps in the thread → summary', async () => {
    const ack = await w.slash('gpu-node-7', REQ);
    expect(ack.status).toBe(200);
    expect(ack.body).toBe('');

    const { root, id } = await incidentFor(w, 'gpu-node-7');
    expect(root.text).toMatch(/containerd-socket-is-directory \(root cause\)/);
    expect(textOf(root)).toMatch(/Evidence/);
    expect(textOf(root)).toMatch(/failed to get listener for main endpoint: is a directory/);
    expect(textOf(root)).toMatch(/runtime-socket-hostpath-unsafe/);
    expect(buttonsOf(root)).toEqual([ACTIONS.approve, ACTIONS.dryRun, ACTIONS.reject]);
    expect(id).toMatch(/^inc-[0-9a-f]{16}$/);

    await w.click(ACTIONS.dryRun, id, APPROVER);
    const dry = await w.until(() => w.slack.thread(root.ts).find((m) => m.text.startsWith('Dry run')), 5000, 'the dry run');
    expect(textOf(dry)).toMatch(/rmdir/);
    expect(w.fleet.nodes.get('gpu-node-7')!.state.socket).toBe('directory');

    await w.click(ACTIONS.approve, id, REQ);
    await w.until(() => lastEphemeral(w, REQ).includes('a colleague must approve'), 5000, 'the self-approval refusal');
    await w.click(ACTIONS.approve, id, STRANGER);
    await w.until(() => lastEphemeral(w, STRANGER).includes('not an approver'), 5000, 'the stranger refusal');
    expect(w.slack.views).toHaveLength(0);

    await w.click(ACTIONS.approve, id, APPROVER);
    const modal = await w.until(() => w.slack.views[0], 5000, 'the confirmation modal');
    expect(modal.private_metadata).toBe(id);
    expect(JSON.stringify(modal.blocks)).toMatch(/Stop containerd[\s\S]*systemctl stop containerd[\s\S]*rmdir[\s\S]*Delete the crash-looping pods/);

    const submitted = await w.submit(APPROVE_VIEW, id, APPROVER);
    expect(submitted.status).toBe(200);
    const summary = await w.until(() => w.slack.thread(root.ts).find((m) => m.text.startsWith('Incident summary')), 20_000, 'the summary');
    expect(summary.text).toMatch(/fixed/);
    expect(textOf(summary)).toMatch(/Timeline/);
    expect(textOf(summary)).toMatch(new RegExp(`<@${APPROVER}>`));
    expect(textOf(summary)).toMatch(/type: Socket/);
    expect(textOf(summary)).toMatch(/Audit log: entries \d+–\d+/);
    await w.until(() => w.slack.messages.get(root.ts)!.text.includes('Fixed'), 5000, 'the card to say fixed');

    const thread = w.slack.thread(root.ts).map((m) => m.text);
    expect(thread.some((t) => /requested by <@U0REQUESTER>/.test(t))).toBe(true);
    expect(thread.some((t) => t.includes(`@${APPROVER} approved the fix`))).toBe(true);
    const steps = thread.filter((t) => /^Step \d\/6/.test(t));
    expect(steps).toEqual([
      'Step 1/6: Check the directory at the socket path is empty — ok',
      expect.stringMatching(/^Step 2\/6: Stop containerd .* — ok$/),
      ...[3, 4, 5, 6].map((n) => expect.stringMatching(new RegExp(`^Step ${n}/6: .* — ok$`))),
    ]);
    expect(w.fleet.nodes.get('gpu-node-7')!.runtimeHealthy).toBe(true);

    // A second approval of the same incident (double click, Slack retry) never runs anything twice.
    const runs = () => w.fleet.servers.get('gpu-node-7')!.commands.filter((c) => c.includes('systemctl stop containerd')).length;
    expect(runs()).toBe(1);
    await w.submit(APPROVE_VIEW, id, 'U0APPROVER2');
    await w.click(ACTIONS.approve, id, 'U0APPROVER2');
    await w.until(() => /already run/.test(lastEphemeral(w, 'U0APPROVER2')), 5000, 'the already-run refusal');
    expect(runs()).toBe(1);

    const audit = readFileSync(join(w.stateDir, 'audit.jsonl'), 'utf8');
    expect(audit).toMatch(/"type":"diagnosis-requested"[\s\S]*"type":"approved"[\s\S]*"type":"run-finished"/);
  });

  it('keeps every message and modal it sent within Block Kit limits (Slack would refuse them)', () => {
    const sent = w.slack.calls.filter((c) => ['chat.postMessage', 'chat.update', 'views.open'].includes(c.method));
    expect(sent.length).toBeGreaterThan(10);
    expect(sent.filter((c) => c.error === 'invalid_blocks' || c.error === 'invalid_arguments')).toEqual([]);
    for (const c of sent) {
      const problems = c.method === 'views.open' ? limitProblems({ blocks: c.args.view.blocks }, 'modal') : limitProblems(c.args as never);
      expect(problems).toEqual([]);
    }
  });
});

describe('refusals and bad input', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld(
      [
        { name: 'gpu-node-1', faults: ['containerd-down'] },
        { name: 'gpu-node-2', faults: ['containerd-down'] },
        { name: 'gpu-node-3', faults: ['containerd-down'] },
      ],
      { NODEDIAG_CHANNELS: `${CHANNEL},C0OTHER` },
      { approvalTtlMs: 60_000 },
    );
  });
  afterAll(() => w.stop());

  it('answers help, invalid names, unknown nodes and other channels ephemerally, running nothing', async () => {
    const help = await w.slash('help', REQ);
    expect(JSON.parse(help.body)).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/\/diag <node>/) });
    const evil = await w.slash('node; rm -rf /', REQ);
    expect(JSON.parse(evil.body).text).toMatch(/One node at a time/);
    const meta = await w.slash('$(reboot)', REQ);
    expect(JSON.parse(meta.body).text).toMatch(/shell metacharacters/);
    const unknown = await w.slash('gpu-node-9', REQ);
    expect(JSON.parse(unknown.body).text).toMatch(/not in nodediag's inventory.*Did you mean "gpu-node-1", "gpu-node-2", "gpu-node-3"/s);
    const elsewhere = await w.slash('gpu-node-1', REQ, 'C0RANDOM');
    expect(JSON.parse(elsewhere.body).text).toMatch(/not enabled in this channel/);
    const long = await w.slash('x'.repeat(5000), REQ);
    expect(JSON.parse(long.body).text).toMatch(/too long/);
    for (const n of w.fleet.servers.values()) expect(n.commands).toEqual([]);
  });

  it('refuses forged, unsigned and replayed (stale) requests', async () => {
    const body = slashCommandBody('gpu-node-1', REQ, CHANNEL);
    const forged = await sendSigned(w.url, 'not-the-secret', body);
    expect(forged.status).toBe(401);
    const unsigned = await sendSigned(w.url, SIGNING_SECRET, body, { signature: 'v0=deadbeef' });
    expect(unsigned.status).toBe(401);
    const stale = Math.floor(Date.now() / 1000) - 6 * 60;
    const replayed = await sendSigned(w.url, SIGNING_SECRET, body, { timestamp: stale, signature: slackSignature(SIGNING_SECRET, stale, body) });
    expect(replayed.status).toBe(401);
    for (const n of w.fleet.servers.values()) expect(n.commands).toEqual([]);
  });

  it('refuses tampered button values, unknown incidents and approvals from another channel', async () => {
    await w.click(ACTIONS.approve, 'inc-0000000000000000', APPROVER);
    await w.until(() => lastEphemeral(w, APPROVER).includes('unknown'), 5000, 'unknown incident');
    await w.click(ACTIONS.approve, '../../etc/passwd', APPROVER);
    await w.until(() => lastEphemeral(w, APPROVER).includes('does not belong'), 5000, 'tampered value');
    await w.slash('gpu-node-1', REQ);
    const { id } = await incidentFor(w, 'gpu-node-1');
    await w.click(ACTIONS.approve, id, APPROVER, 'C0OTHER');
    await w.until(() => lastEphemeral(w, APPROVER).includes("incident's own channel"), 5000, 'other channel');
    expect(w.slack.views).toHaveLength(0);
  });

  it('closes an incident on Reject; a later Approve is refused', async () => {
    await w.slash('gpu-node-2', REQ);
    const { root, id } = await incidentFor(w, 'gpu-node-2');
    await w.click(ACTIONS.reject, id, APPROVER);
    await w.until(() => w.slack.messages.get(root.ts)!.text.includes('Rejected'), 5000, 'rejected card');
    expect(buttonsOf(w.slack.messages.get(root.ts)!)).toEqual([ACTIONS.rediagnose]);
    await w.click(ACTIONS.approve, id, 'U0APPROVER2');
    await w.until(() => lastEphemeral(w, 'U0APPROVER2').includes('rejected'), 5000, 'approve after reject');
    await w.until(() => w.slack.thread(root.ts).some((m) => m.text.startsWith('Incident summary')), 5000, 'summary after reject');
    expect(w.fleet.nodes.get('gpu-node-2')!.state.containerd.state).not.toBe('running');
  });

  it('expires approvals, then re-diagnoses in the thread when someone clicks Approve', async () => {
    await w.slash('gpu-node-3', REQ);
    const { root, id } = await incidentFor(w, 'gpu-node-3');
    const file = join(w.stateDir, 'incidents', `${id}.json`);
    const inc = JSON.parse(readFileSync(file, 'utf8'));
    inc.expiresAt = new Date(Date.now() - 1000).toISOString();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, JSON.stringify(inc));
    (w.server.service as unknown as { c: { d: { store: { cache: Map<string, unknown> } } } }).c.d.store.cache.delete(id);
    await w.click(ACTIONS.approve, id, APPROVER);
    await w.until(() => lastEphemeral(w, APPROVER).includes('expired'), 5000, 'expired refusal');
    await w.until(() => w.slack.messages.get(root.ts)!.text.includes('approval window closed'), 5000, 'expired card');
    const again = await w.until(() => w.slack.thread(root.ts).find((m) => m.ts !== root.ts && buttonsOf(m).includes(ACTIONS.approve)), 10_000, 'a fresh diagnosis in the thread');
    expect(again.text).toMatch(/containerd-down/);
    expect(w.slack.views).toHaveLength(0);
  });
});

describe('/diag -l: the fleet summary', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld([
      { name: 'a-gpu-healthy', labels: { pool: 'gpu' } },
      { name: 'z-gpu-broken', faults: ['containerd-down'], labels: { pool: 'gpu' } },
      { name: 'cpu-node', labels: { pool: 'cpu' } },
    ]);
  });
  afterAll(() => w.stop());

  it('diagnoses the matching nodes and lists them worst first in one message', async () => {
    const res = await w.slash('-l pool=gpu', REQ);
    expect(res.status).toBe(200);
    const msg = await w.until(() => [...w.slack.messages.values()].find((m) => m.updates > 0 && /Fleet pool=gpu/.test(m.text)), 15_000, 'the fleet summary');
    const table = JSON.stringify(msg.blocks);
    expect(table).toMatch(/2 node\(s\)/);
    expect(table.indexOf('z-gpu-broken')).toBeGreaterThan(-1);
    expect(table.indexOf('z-gpu-broken')).toBeLessThan(table.indexOf('a-gpu-healthy'));
    expect(table).toMatch(/z-gpu-broken\s+findings\s+containerd-down/);
    expect(table).not.toContain('cpu-node');
    expect(w.fleet.servers.get('cpu-node')!.commands).toEqual([]);
    // Before the table, the message said how many nodes matched and how far it was.
    const updates = w.slack.calls.filter((c) => c.method === 'chat.update' && c.args.ts === msg.ts).map((c) => String(c.args.text));
    expect(updates[0]).toMatch(/Diagnosing nodes matching pool=gpu… 0\/2 done/);
    expect(updates.at(-1)).toMatch(/^Fleet pool=gpu/);
  });
});

describe('a channel the bot is not in', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-5', faults: ['containerd-down'] }]);
  });
  afterAll(() => w.stop());

  it('tells the requester through the response_url how to fix it, offers nothing and runs nothing', async () => {
    w.slack.unreachable.set('C0PRIVATE', 'channel_not_found');
    const res = await w.slash('gpu-node-5', REQ, 'C0PRIVATE');
    expect(res.status).toBe(200);
    const reply = await w.until(() => w.slack.responses[0], 15_000, 'the reply through the response_url');
    expect(reply.body).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/cannot post the incident for gpu-node-5 here.*channel_not_found.*\/invite @nodediag/s) });
    await w.server.service.idle();
    const dir = join(w.stateDir, 'incidents');
    const [inc] = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
    expect(inc).toMatchObject({ node: 'gpu-node-5', state: 'closed', undeliverable: 'channel_not_found' });
    expect(w.fleet.servers.get('gpu-node-5')!.commands.some((c) => c.includes('systemctl restart'))).toBe(false);
    expect(w.slack.responses).toHaveLength(1);
  });

  it('says the same for a fleet summary', async () => {
    w.slack.unreachable.set('C0ARCHIVED', 'is_archived');
    await w.slash('-l kubernetes.io/os=linux', REQ, 'C0ARCHIVED');
    const reply = await w.until(() => w.slack.responses[1], 15_000, 'the reply through the response_url');
    expect(reply.body.text).toMatch(/cannot post the fleet summary here: this channel is archived.*Run \/diag -l in an active channel/s);
  });
});

describe('Slack trouble', () => {
  it('retries a post Slack answers 429 (Retry-After) or 500 to, and loses nothing', async () => {
    const w = await slackWorld([{ name: 'gpu-node-4', faults: ['containerd-down'] }]);
    try {
      w.slack.fail('chat.postMessage', { status: 429, retryAfterSeconds: 1 });
      w.slack.fail('chat.update', { status: 500 }, 2);
      await w.slash('gpu-node-4', REQ);
      const { root } = await incidentFor(w, 'gpu-node-4');
      expect(w.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.status === 429)).toHaveLength(1);
      expect(w.slack.calls.filter((c) => c.method === 'chat.update' && c.status === 500)).toHaveLength(2);
      const posts = w.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.status === 200);
      const first429 = w.slack.calls.find((c) => c.status === 429)!;
      expect(posts[0]!.at - first429.at).toBeGreaterThanOrEqual(900);
      expect(await w.server.outbox.drain(10_000)).toBe(true);
      expect(w.server.outbox.pending).toBe(0);
      expect(w.slack.thread(root.ts).some((m) => /requested by/.test(m.text))).toBe(true);
    } finally {
      await w.stop();
    }
  });
});

describe('a root cause whose fix cannot run on this node', () => {
  it('shows the diagnosis with why the fix cannot run and what to do, offering nothing (not "not diagnosed")', async () => {
    const w = await slackWorld([{ name: 'gpu-node-6', faults: ['containerd-config-invalid'] }]);
    try {
      // No config that loaded was ever kept on this node: the repair's preview finds no candidate and refuses.
      w.fleet.nodes.get('gpu-node-6')!.state.lastGood = false;
      await w.slash('gpu-node-6', REQ);
      const card = await w.until(
        () => [...w.slack.messages.values()].find((m) => !m.threadTs && m.text.startsWith('gpu-node-6:') && /cannot run on this node/.test(textOf(m))),
        15_000,
        'the card saying the fix cannot run',
      );
      expect(card.text).toMatch(/^gpu-node-6: containerd-config-invalid \(root cause\)/);
      expect(textOf(card)).not.toMatch(/not diagnosed|Could not diagnose/);
      expect(textOf(card)).toMatch(/The fix cannot run on this node:\* the runbook cannot be planned on this node: error: no candidate config loads/);
      expect(textOf(card)).toMatch(/What to do/);
      expect(buttonsOf(card)).not.toContain(ACTIONS.approve);
    } finally {
      await w.stop();
    }
  });
});
