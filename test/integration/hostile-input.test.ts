/**
 * Hostile input: fuzzed /diag text (length, unicode, shell metacharacters,
 * selectors) and malformed or tampered payloads, through the parser and the
 * real Bolt receiver. Nothing may crash the bot, and nothing but a valid node
 * name may ever reach a node. Seeded, so a failure reproduces.
 */
import { blockActionBody, sendSigned } from '../../src/sim/slack-emulator.js';
import { parseDiagText } from '../../src/slack/command-parse.js';
import { SIGNING_SECRET, slackWorld, type SlackWorld } from '../helpers/slack-world.js';
import { rng } from '../helpers/rng.js';

const PIECES = [
  'gpu-node-1', 'gpu-node-2', ';', '&&', '|', '`id`', '$(reboot)', '${IFS}', "'", '"', '\\', '\n', '\t', ' ', '-l', '--selector', '=', '!=', 'pool=gpu',
  '..', '/', '*', '?', '~', '#', 'é', '节点', '\u202e', '\u0000', '\u001b[31m', '🙂', 'A', 'Node', 'x'.repeat(70), '.', '-', 'in (a,b)', '%0a', '<@U123>', '&lt;',
];

function fuzz(r: () => number): string {
  const n = 1 + Math.floor(r() * 6);
  let s = '';
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)]!;
  return r() < 0.05 ? s.repeat(200) : s;
}

const RFC1123 = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

describe('the /diag parser under fuzzing', () => {
  it('never throws, and only an RFC 1123 name or a plain selector gets through (20,000 inputs)', () => {
    const r = rng(1234);
    for (let i = 0; i < 20_000; i++) {
      const input = fuzz(r);
      const req = parseDiagText(input);
      if (req.kind === 'node') {
        expect(req.node).toMatch(RFC1123);
        expect(req.node.length).toBeLessThanOrEqual(253);
      } else if (req.kind === 'fleet') {
        expect(req.selector).toMatch(/^[A-Za-z0-9._/=!,() -]{1,512}$/);
      } else if (req.kind === 'invalid') {
        expect(req.reason).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u202e]/);
      }
    }
  });
});

describe('the bot under hostile input', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-1' }, { name: 'gpu-node-2' }]);
  });
  afterAll(() => w.stop());

  it('answers 200 fuzzed slash commands without crashing, and runs nothing for anything but a known node', async () => {
    const r = rng(99);
    const inputs = Array.from({ length: 200 }, () => fuzz(r)).filter((t) => !/^\s*(gpu-node-[12])\s*$/.test(t));
    for (let i = 0; i < inputs.length; i += 20) {
      const batch = await Promise.all(inputs.slice(i, i + 20).map((t) => w.slash(t, 'U0FUZZ')));
      for (const res of batch) expect(res.status).toBe(200);
    }
    await w.server.service.idle();
    for (const s of w.fleet.servers.values()) expect(s.commands).toEqual([]);
    expect((await fetch(w.url.replace('/slack/events', '/healthz'))).status).toBe(200);
  });

  it('survives malformed and tampered interaction payloads', async () => {
    const bodies = [
      'payload=not-json',
      `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', actions: [] }))}`,
      `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', user: { id: 'U1' }, actions: [{ action_id: 'nodediag_approve', value: 'x'.repeat(5000) }] }))}`,
      `payload=${encodeURIComponent(JSON.stringify({ type: 'view_submission', user: { id: 'U1' }, view: { callback_id: 'nodediag_approve_confirm', private_metadata: { evil: true } } }))}`,
      blockActionBody('nodediag_approve', 'inc-zzzz', 'U0APPROVER', 'C0INCIDENT'),
      blockActionBody('nodediag_unknown_action', 'inc-0000000000000000', 'U0APPROVER', 'C0INCIDENT'),
    ];
    for (const b of bodies) {
      // Bolt answers garbage with an error status; what matters is that the bot stays up and acts on nothing.
      const res = await sendSigned(w.url, SIGNING_SECRET, b);
      expect(res.status).toBeGreaterThanOrEqual(200);
    }
    await w.server.service.idle();
    expect(w.slack.views).toHaveLength(0);
    for (const srv of w.fleet.servers.values()) expect(srv.commands).toEqual([]);
    expect((await fetch(w.url.replace('/slack/events', '/healthz'))).status).toBe(200);
  });
});
