/**
 * One bot, two clusters: each a simulated fleet with its own API stand-in and
 * inventory, both with a node named gpu-node-1 (healthy in prod-a, broken in
 * prod-b). The bot never guesses which one is meant; said or bound to the
 * channel, the right node is diagnosed and fixed, and the cluster is named on
 * the card, the summary and every audit entry.
 */
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalogs } from '../../src/catalog/load.js';
import { startSimFleet, type SimFleet } from '../../src/sim/sim-fleet.js';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import type { EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { incidentIdOf, slackWorld, until, type SlackWorld } from '../helpers/slack-world.js';

jest.setTimeout(90_000);

const text = (m: EmulatedMessage | undefined) => JSON.stringify(m?.blocks ?? []);

/** A clusters file (NODEDIAG_CLUSTERS) naming each simulated fleet's inventory and kubeconfig. */
function clustersFile(clusters: Array<{ name: string; fleet: SimFleet; channels?: string[] }>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'nodediag-clusters-')), 'clusters.yaml');
  const lines = clusters.map((c) => `  - { name: ${c.name}, inventory: ${c.fleet.inventoryPath}, kubeconfig: ${c.fleet.kubeconfigPath}${c.channels ? `, channels: [${c.channels.join(', ')}]` : ''} }`);
  writeFileSync(file, `clusters:\n${lines.join('\n')}\n`);
  return file;
}

describe('one bot, two clusters', () => {
  let a: SimFleet;
  let b: SimFleet;
  let w: SlackWorld;
  beforeAll(async () => {
    const catalogs = loadCatalogs();
    a = await startSimFleet([{ name: 'gpu-node-1' }, { name: 'gpu-node-2' }], catalogs, { timeScale: 0.02 });
    b = await startSimFleet([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, ...[3, 4, 5, 6].map((i) => ({ name: `gpu-node-${i}` }))], catalogs, { timeScale: 0.02 });
    const file = clustersFile([
      { name: 'prod-a', fleet: a, channels: ['C0PRODA'] },
      { name: 'prod-b', fleet: b, channels: ['C0PRODB'] },
    ]);
    w = await slackWorld([], { NODEDIAG_CLUSTERS: file }, {}, undefined, a);
  });
  afterAll(async () => {
    await w?.stop();
    await a?.stop();
    await b?.stop();
  });

  const cards = () => [...w.slack.messages.values()].filter((m) => !m.threadTs);
  const audit = () => readFileSync(join(w.stateDir, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; node: string; incident?: string; cluster?: string });
  const stops = (f: SimFleet) => f.servers.get('gpu-node-1')!.commands.filter((c) => c.includes('systemctl stop containerd')).length;

  it('refuses to guess a node name both clusters have, and a cluster that does not exist', async () => {
    const before = cards().length;
    await w.slash('gpu-node-1', 'U0REQUESTER', 'C0OTHER');
    const told = await until(() => w.slack.ephemerals.find((e) => e.user === 'U0REQUESTER' && /2 clusters: prod-a, prod-b/.test(e.text)), 10_000, 'the refusal');
    expect(told.text).toMatch(/--cluster prod-a/);
    await w.slash('gpu-node-1 --cluster prod-c', 'U0REQUESTER', 'C0OTHER');
    await until(() => w.slack.ephemerals.find((e) => /There is no cluster "prod-c"/.test(e.text)), 10_000, 'the unknown-cluster refusal');
    await new Promise((r) => setTimeout(r, 300));
    expect(cards().length).toBe(before);
  });

  it('in the channel bound to prod-a, diagnoses prod-a\'s gpu-node-1 (healthy) and says so', async () => {
    await w.slash('gpu-node-1', 'U0REQUESTER', 'C0PRODA');
    const card = await until(() => cards().find((m) => m.channel === 'C0PRODA' && /^gpu-node-1 \(cluster prod-a\): healthy/.test(m.text)), 20_000, 'the prod-a card');
    expect(text(card)).not.toContain(ACTIONS.approve);
  });

  it('with --cluster prod-b, fixes prod-b\'s gpu-node-1 only; the card, the summary and the audit entries name prod-b', async () => {
    await w.slash('gpu-node-1 --cluster prod-b', 'U0REQUESTER', 'C0OTHER');
    const card = await until(() => cards().find((m) => /^gpu-node-1 \(cluster prod-b\):/.test(m.text) && text(m).includes(ACTIONS.approve)), 20_000, 'the prod-b card');
    expect(text(card)).toMatch(/containerd-socket-is-directory/);
    const id = incidentIdOf(card)!;
    const views = w.slack.views.length;
    await w.click(ACTIONS.approve, id, 'U0APPROVER', 'C0OTHER');
    await until(() => w.slack.views.length > views, 5000, 'the confirmation');
    await w.submit(APPROVE_VIEW, id, 'U0APPROVER');
    const summary = await until(() => w.slack.thread(card.ts).find((m) => m.text.startsWith('Incident summary')), 30_000, 'the summary');
    expect(summary.text).toBe('Incident summary for gpu-node-1 (cluster prod-b): fixed');
    expect(b.nodes.get('gpu-node-1')!.runtimeHealthy).toBe(true);
    expect(stops(b)).toBe(1);
    expect(stops(a)).toBe(0);
    const entries = audit().filter((e) => e.incident === id);
    expect(entries.map((e) => e.type)).toEqual(expect.arrayContaining(['diagnosis-requested', 'approved', 'step-started', 'step-finished']));
    expect(entries.every((e) => e.cluster === 'prod-b')).toBe(true);
  });

  it('from a terminal too: nodediag diag needs --cluster to tell the two gpu-node-1 apart, and then reads the right one', async () => {
    const cli = (args: string[]) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) =>
        execFile(process.execPath, [join(process.cwd(), 'dist', 'src', 'cli.js'), ...args], { env: { PATH: process.env.PATH ?? '', NODEDIAG_CLUSTERS: w.env.NODEDIAG_CLUSTERS! }, timeout: 60_000 }, (err, out, errOut) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: String(out), err: String(errOut) }),
        ),
      );
    // The fix above healed prod-b's node: it breaks again the same way.
    b.nodes.get('gpu-node-1')!.inject('containerd-socket-is-directory');
    const ambiguous = await cli(['diag', 'gpu-node-1']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.err).toMatch(/several clusters are configured: say which with --cluster NAME/);
    expect(ambiguous.err).toMatch(/prod-a, prod-b/);
    const broken = await cli(['diag', 'gpu-node-1', '--cluster', 'prod-b', '--json']);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.out).findings.find((f: { role: string }) => f.role === 'root-cause').id).toBe('containerd-socket-is-directory');
    const healthy = await cli(['diag', 'gpu-node-1', '--cluster', 'prod-a', '--json']);
    expect(healthy.code).toBe(0);
    expect(JSON.parse(healthy.out).findings).toEqual([]);
  });
});

describe('the node watch, on every cluster', () => {
  let c: SimFleet;
  let d: SimFleet;
  let w: SlackWorld;
  beforeAll(async () => {
    const catalogs = loadCatalogs();
    c = await startSimFleet([{ name: 'gpu-node-1' }, { name: 'gpu-node-2' }, { name: 'gpu-node-3' }], catalogs, { timeScale: 0.02 });
    d = await startSimFleet([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, ...[4, 5, 6].map((i) => ({ name: `gpu-node-${i}` }))], catalogs, { timeScale: 0.02 });
    const file = clustersFile([
      { name: 'prod-c', fleet: c },
      { name: 'prod-d', fleet: d },
    ]);
    w = await slackWorld([], { NODEDIAG_CLUSTERS: file, NODEDIAG_WATCH_NODES: 'true', NODEDIAG_NOT_READY_SECONDS: '10', NODEDIAG_ALERT_CHANNEL: 'C0ALERTS' }, {}, undefined, c);
  });
  afterAll(async () => {
    await w?.stop();
    await c?.stop();
    await d?.stop();
  });

  it('a node NotReady in the second cluster opens an incident naming that cluster; the same name Ready in the first opens none', async () => {
    const cards = () => [...w.slack.messages.values()].filter((m) => !m.threadTs);
    const card = await until(() => cards().find((m) => /^gpu-node-1 \(cluster prod-d\):/.test(m.text) && text(m).includes('NodeNotReady')), 40_000, 'the prod-d watch card');
    expect(card.channel).toBe('C0ALERTS');
    expect(text(card)).toMatch(/containerd-socket-is-directory/);
    await new Promise((r) => setTimeout(r, 500));
    expect(cards().filter((m) => /cluster prod-c/.test(m.text))).toEqual([]);
    expect(cards().filter((m) => /^gpu-node-1/.test(m.text))).toHaveLength(1);
  });
});
