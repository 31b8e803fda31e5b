/**
 * The fleet safety rails through the real bot: the storm gate (two
 * approvers), one fix at a time in the cluster (the second waits, and says
 * for what), the retry budget (escalate instead of a third try), and
 * /diag pause (survives a restart) — each in the audit log.
 */
import { jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import type { EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { approve, CHANNEL, incidentIdOf, slackWorld, until, type SlackWorld } from '../helpers/slack-world.js';

jest.setTimeout(120_000);

function cardFor(w: SlackWorld, node: string, what: (m: EmulatedMessage) => boolean = () => true): EmulatedMessage | undefined {
  return [...w.slack.messages.values()].filter((m) => !m.threadTs && m.text.startsWith(`${node}:`) && what(m)).at(-1);
}

const text = (m: EmulatedMessage | undefined) => JSON.stringify(m?.blocks ?? []);
const offered = (m: EmulatedMessage) => text(m).includes(ACTIONS.approve);

function audit(w: SlackWorld): Array<{ type: string; node: string; actor: string; data?: Record<string, unknown> }> {
  return readFileSync(join(w.stateDir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

const refusedTo = (w: SlackWorld, user: string, re: RegExp) => w.slack.ephemerals.find((e) => e.user === user && re.test(e.text));

describe('storm gate', () => {
  let w: SlackWorld;
  // Four nodes, two broken: 50% of the fleet, above the 30% the gate allows.
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, { name: 'gpu-node-2', faults: ['containerd-socket-is-directory'] }, { name: 'gpu-node-3' }, { name: 'gpu-node-4' }]);
  });
  afterAll(() => w?.stop());

  it('says "storm: human triage first" with the nodes; one approver runs nothing; the second runs the fix', async () => {
    await w.slash('gpu-node-1', 'U0REQUESTER');
    await until(() => cardFor(w, 'gpu-node-1', offered), 20_000, 'the first card');
    await w.slash('gpu-node-2', 'U0REQUESTER');
    const second = await until(() => cardFor(w, 'gpu-node-2', (m) => /Storm: human triage first/.test(text(m))), 20_000, 'the storm card');
    expect(text(second)).toMatch(/2 of 4 nodes \(50%\) are unhealthy/);
    expect(text(second)).toMatch(/`gpu-node-1`, `gpu-node-2`/);
    expect(text(second)).toMatch(/Override storm: approve \(1 of 2\)/);
    // The card offered before the storm is held too.
    const first = await until(() => cardFor(w, 'gpu-node-1', (m) => /Storm: human triage first/.test(text(m))), 10_000, 'the first card held');
    const id = incidentIdOf(second)!;

    await approve(w, id, 'U0APPROVER');
    await until(() => w.slack.thread(second.ts).find((m) => /approved as 1 of 2/.test(m.text)), 10_000, 'the first approval noted');
    await new Promise((r) => setTimeout(r, 500));
    expect(audit(w).filter((e) => e.type === 'step-started')).toEqual([]);
    // The same approver again does not count twice.
    await w.click(ACTIONS.approve, id, 'U0APPROVER');
    await until(() => refusedTo(w, 'U0APPROVER', /approved this fix already/), 5000, 'the refusal of a second click');

    await approve(w, id, 'U0APPROVER2');
    const summary = await until(() => w.slack.thread(second.ts).find((m) => m.text.startsWith('Incident summary')), 30_000, 'the summary');
    expect(summary.text).toMatch(/fixed/);
    expect(audit(w).map((e) => e.type)).toEqual(expect.arrayContaining(['storm-gate', 'storm-override-approval', 'approved']));
    expect(audit(w).find((e) => e.type === 'approved')!.data).toMatchObject({ approvers: ['U0APPROVER', 'U0APPROVER2'] });
    expect(first).toBeDefined();
  });
});

describe('one fix at a time in the cluster', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    // Two broken of seven: no storm.
    w = await slackWorld([
      { name: 'gpu-node-1', faults: ['cgroup-driver-mismatch'] },
      { name: 'gpu-node-2', faults: ['containerd-socket-is-directory'] },
      ...[3, 4, 5, 6, 7].map((i) => ({ name: `gpu-node-${i}` })),
    ]);
  });
  afterAll(() => w?.stop());

  it('a second approved fix waits, its card says for which node, and runs when the first ends', async () => {
    await w.slash('gpu-node-1', 'U0REQUESTER');
    await w.slash('gpu-node-2', 'U0REQUESTER');
    const a = await until(() => cardFor(w, 'gpu-node-1', offered), 20_000, 'card 1');
    const b = await until(() => cardFor(w, 'gpu-node-2', offered), 20_000, 'card 2');
    // The first fix is held long enough on the API (cordon, drain) that the second approval lands while it runs.
    w.fleet.kube.faults = { latencyMs: 300 };
    await approve(w, incidentIdOf(a)!, 'U0APPROVER');
    await until(() => audit(w).find((e) => e.node === 'gpu-node-1' && e.type === 'step-started'), 20_000, 'the first fix running');
    await approve(w, incidentIdOf(b)!, 'U0APPROVER2');
    const [first, second] = ['gpu-node-1', 'gpu-node-2'];
    await until(() => /queued: waiting for the fix on gpu-node-1 to finish/.test(text(w.slack.messages.get(b.ts))), 10_000, 'the queued card');
    w.fleet.kube.faults = {};
    for (const m of [a, b]) await until(() => w.slack.thread(m.ts).find((t) => t.text.startsWith('Incident summary')), 60_000, 'both summaries');
    // In the audit log, every step of the second fix comes after the last of the first: never both at once.
    const log = audit(w);
    const lastOfFirst = log.map((e, i) => [e, i] as const).filter(([e]) => e.node === first && e.type === 'step-started').at(-1)![1];
    const firstOfSecond = log.findIndex((e) => e.node === second && e.type === 'step-started');
    expect(firstOfSecond).toBeGreaterThan(lastOfFirst);
    expect(log.some((e) => e.type === 'fix-queued' && e.node === second)).toBe(true);
  });
});

describe('retry budget', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, ...[2, 3, 4, 5].map((i) => ({ name: `gpu-node-${i}` }))], { NODEDIAG_FIX_RETRY_BUDGET: '1' });
  });
  afterAll(() => w?.stop());

  it('after the budget of fix runs, the card escalates instead of offering the fix again', async () => {
    await w.slash('gpu-node-1', 'U0REQUESTER');
    const first = await until(() => cardFor(w, 'gpu-node-1', offered), 20_000, 'the card');
    await approve(w, incidentIdOf(first)!, 'U0APPROVER');
    await until(() => w.slack.thread(first.ts).find((m) => m.text.startsWith('Incident summary')), 30_000, 'the summary');
    // It breaks again the same way.
    w.fleet.nodes.get('gpu-node-1')!.inject('containerd-socket-is-directory');
    const before = w.slack.messages.size;
    await w.slash('gpu-node-1', 'U0REQUESTER');
    const again = await until(() => [...w.slack.messages.values()].slice(before).find((m) => !m.threadTs && /Escalate: a human must look/.test(text(m))), 20_000, 'the escalation card');
    expect(text(again)).toMatch(/1 fix runs on gpu-node-1 in the last 24 h \(the budget is 1\)/);
    expect(text(again)).not.toContain(ACTIONS.approve);
    expect(audit(w).some((e) => e.type === 'escalated' && e.node === 'gpu-node-1')).toBe(true);
  });
});

describe('/diag pause and /diag resume', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, ...[2, 3, 4].map((i) => ({ name: `gpu-node-${i}` }))]);
  });
  afterAll(() => w?.stop());

  it('nothing runs while paused; everyone sees who paused and why; the pause survives a restart; an approver resumes', async () => {
    await w.slash('pause 2h zone-b <!channel> maintenance', 'U0REQUESTER');
    const notice = await until(() => [...w.slack.messages.values()].find((m) => m.channel === CHANNEL && /paused every nodediag fix/.test(m.text)), 10_000, 'the pause notice');
    expect(notice.text).toMatch(/<@U0REQUESTER> paused every nodediag fix until .* UTC: zone-b !channel maintenance/);
    expect(notice.text).not.toMatch(/<!channel>/);

    await w.slash('gpu-node-1', 'U0REQUESTER');
    const card = await until(() => cardFor(w, 'gpu-node-1', offered), 20_000, 'the card');
    await until(() => /Fixes are paused by <@U0REQUESTER>/.test(text(w.slack.messages.get(card.ts))), 5000, 'the pause on the card');
    await w.click(ACTIONS.approve, incidentIdOf(card)!, 'U0APPROVER');
    await until(() => refusedTo(w, 'U0APPROVER', /Fixes are paused by <@U0REQUESTER>.*zone-b/), 5000, 'the refusal');

    await w.restart();
    await w.click(ACTIONS.approve, incidentIdOf(card)!, 'U0APPROVER2');
    await until(() => refusedTo(w, 'U0APPROVER2', /Fixes are paused/), 5000, 'still paused after the restart');
    expect(audit(w).filter((e) => e.type === 'step-started')).toEqual([]);

    // A requester may pull the brake; only an approver may release it.
    await w.slash('resume', 'U0REQUESTER');
    await until(() => refusedTo(w, 'U0REQUESTER', /Only an approver can resume/), 5000, 'the refusal to resume');
    await w.slash('resume', 'U0APPROVER');
    await until(() => [...w.slack.messages.values()].find((m) => /resumed nodediag fixes/.test(m.text)), 5000, 'the resume notice');
    await approve(w, incidentIdOf(card)!, 'U0APPROVER');
    await until(() => w.slack.thread(card.ts).find((m) => m.text.startsWith('Incident summary')), 30_000, 'the summary');
    expect(audit(w).map((e) => e.type)).toEqual(expect.arrayContaining(['fixes-paused', 'fixes-resumed']));
  });

  it('refuses a pause without a valid duration or a reason, in the acknowledgement, pausing nothing', async () => {
    const answers = await Promise.all(['pause forever', 'pause 30m', 'pause 30d because', 'pause 30s because'].map((t) => w.slash(t, 'U0REQUESTER')));
    expect(answers.map((a) => JSON.parse(a.body).text)).toEqual([
      expect.stringMatching(/"forever" is not a duration from 1m to 7d/),
      expect.stringMatching(/Say why fixes pause/),
      expect.stringMatching(/"30d" is not a duration/),
      expect.stringMatching(/"30s" is not a duration/),
    ]);
    expect(w.server.service.pauseNow()).toBeNull();
  });
});
