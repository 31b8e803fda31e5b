/**
 * The outbox's storage, one contract for both backings (a process's folder;
 * NodediagMessage resources shared by replicas, through the real client-node
 * against the API stand-in serving the real CRD), and the shared outbox in
 * motion: two processes queue, only the leader delivers (to the Slack
 * emulator through the real Web API client), and a leader that dies in the
 * middle of a post costs neither a lost nor a doubled message.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubeOutboxStorage, DEAD_LABEL, NODEDIAG_MESSAGE } from '../../src/adapters/kube-outbox.js';
import { createSlackChat } from '../../src/adapters/slack-web.js';
import { FileOutboxStorage, Outbox, type OutboxItem, type OutboxStorage } from '../../src/incidents/outbox.js';
import { silentLogger, systemClock, type ChatPort } from '../../src/ports.js';
import { SlackEmulator } from '../../src/sim/slack-emulator.js';
import { useKubeStandin } from '../helpers/kube-api.js';
import { useRealApiServer } from '../helpers/real-api.js';
import { until } from '../helpers/slack-world.js';

const { api, kubeconfigPath } = useKubeStandin('outbox-token-0123456789');
const real = useRealApiServer();
const base = mkdtempSync(join(tmpdir(), 'nodediag-outbox-'));
let n = 0;
const fresh = () => `ns-${++n}-${Math.random().toString(36).slice(2, 8)}`;
/** The NodediagMessage storage of a namespace on the stand-in. */
const stored = (ns: string) => createKubeOutboxStorage({ kubeconfigPath: kubeconfigPath(), namespace: ns, now: () => Date.now() });

type Make = (where: string) => Promise<OutboxStorage>;
const storages: Array<[string, Make]> = [
  ['a folder', async (where) => new FileOutboxStorage(join(base, where))],
  ['NodediagMessage resources', (where) => stored(where)],
  ...(real.available ? [['NodediagMessage resources on the real API server', (where: string) => createKubeOutboxStorage({ kubeconfigPath: real.kubeconfigPath(), namespace: where, now: () => Date.now() })] as [string, Make]] : []),
];

const post = (key: string, text = key): OutboxItem['op'] => ({ op: 'post', key, channel: 'C0OPS', message: { text } });

describe.each(storages)('the outbox storage in %s', (_name, make) => {
  it('keeps items in the order named, their changes, and dead letters aside', async () => {
    const where = fresh();
    const s = await make(where);
    const items = ['a', 'b', 'c'].map((k): OutboxItem => ({ ...s.next(), op: post(k), attempts: 0, notBefore: 0 }));
    expect(new Set(items.map((i) => i.id)).size).toBe(3);
    for (const i of [items[2]!, items[0]!, items[1]!]) await s.add(i);
    const again = await make(where);
    const listed = (await again.list()).sort((x, y) => x.seq - y.seq);
    expect(listed.map((i) => (i.op as { key: string }).key)).toEqual(['a', 'b', 'c']);
    // A name handed out after a restart comes after every kept one.
    expect(again.next().seq).toBeGreaterThan(items[2]!.seq);

    await again.save({ ...listed[0]!, attempts: 3, notBefore: 42, sentBy: 'pod-a/1', sentAt: 7 });
    await again.remove(listed[1]!, false);
    await again.remove(listed[2]!, true);
    const left = await (await make(where)).list();
    expect(left).toEqual([expect.objectContaining({ id: listed[0]!.id, attempts: 3, notBefore: 42, sentBy: 'pod-a/1', sentAt: 7 })]);
  });

  it('a create that is repeated (its first answer lost) keeps one item', async () => {
    const s = await make(fresh());
    const item: OutboxItem = { ...s.next(), op: post('x'), attempts: 0, notBefore: 0 };
    await s.add(item);
    await s.add(item);
    expect(await s.list()).toHaveLength(1);
  });
});

it('a dead letter stays for inspection: a file in dead/, a labelled resource', async () => {
  const folder = fresh();
  const f = new FileOutboxStorage(join(base, folder));
  const a: OutboxItem = { ...f.next(), op: post('dead'), attempts: 6, notBefore: 0 };
  await f.add(a);
  await f.remove(a, true);
  expect(readdirSync(join(base, folder, 'dead'))).toEqual([`${a.id}.json`]);

  const ns = fresh();
  const k = await stored(ns);
  const b: OutboxItem = { ...k.next(), op: post('dead'), attempts: 6, notBefore: 0 };
  await k.add(b);
  await k.remove(b, true);
  const kept = api.customResources.objects(NODEDIAG_MESSAGE.group, NODEDIAG_MESSAGE.version, NODEDIAG_MESSAGE.plural).get(`${ns}/${b.id}`);
  expect(kept?.metadata.labels?.[DEAD_LABEL]).toBe('true');
});

describe('the shared outbox: two processes, one leader delivers', () => {
  const slack = new SlackEmulator('xoxb-outbox');
  let chat: ChatPort;
  beforeAll(async () => {
    await slack.start();
    chat = createSlackChat('xoxb-outbox', { apiUrl: slack.url });
  });
  afterAll(() => slack.stop());

  /** A process: its outbox over the shared storage, leading when told. */
  const process = async (ns: string, name: string, lead: { now: boolean }, via: ChatPort = chat, refreshMs = 50, storage?: OutboxStorage) => {
    storage ??= await stored(ns);
    const outbox = new Outbox(join(base, `${ns}-${name}`), via, systemClock, silentLogger, { postIntervalMs: 5, refreshMs, storage, shared: { identity: name, delivers: () => lead.now } });
    await outbox.start();
    return outbox;
  };
  const texts = (channel: string) => [...slack.messages.values()].filter((m) => m.channel === channel).map((m) => m.text);
  /** Process a leads through `aChat`; b queues. `handOver` stops a and makes b lead. */
  const twoProcesses = async (ns: string, aChat: ChatPort) => {
    const leadA = { now: true };
    const leadB = { now: false };
    const a = await process(ns, 'a', leadA, aChat);
    const b = await process(ns, 'b', leadB);
    const handOver = async () => {
      leadA.now = false;
      await a.stop();
      leadB.now = true;
    };
    return { b, handOver };
  };
  /** A process that reaches Slack, then dies before it hears back. */
  const diesAfterPosting: () => ChatPort = () => ({ ...chat, post: (c, m, t, k) => chat.post(c, m, t, k).then(() => new Promise<never>(() => undefined)) });

  it('what the other process queues, the leader delivers, in order, once', async () => {
    const ns = fresh();
    const a = await process(ns, 'a', { now: true });
    const b = await process(ns, 'b', { now: false });
    for (const k of ['one', 'two', 'three']) await b.enqueue({ ...post(`${ns}-${k}`), channel: 'C1' });
    await a.enqueue({ ...post(`${ns}-four`), channel: 'C1' });
    // The leader's drain covers what it queued itself and what the other process queued before.
    expect(await a.drain(5000)).toBe(true);
    expect(texts('C1')).toHaveLength(4);
    expect(await b.drain(5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(texts('C1')).toEqual(['one', 'two', 'three', 'four'].map((k) => `${ns}-${k}`));
    expect(b.pending).toBe(0);
    await until(async () => (await (await stored(ns)).list()).length === 0, 5000, 'the delivered resources deleted');
    await Promise.all([a.stop(), b.stop()]);
  });

  it('a leader that dies after Slack took its post: the next leader finds it there and does not post it again', async () => {
    const ns = fresh();
    const { b, handOver } = await twoProcesses(ns, diesAfterPosting());
    await b.enqueue({ ...post(`${ns}-card`), channel: 'C2' });
    await until(() => texts('C2').length === 1, 5000, 'the post at Slack');
    await handOver();
    await b.enqueue({ ...post(`${ns}-after`), channel: 'C2' });
    await until(() => texts('C2').length >= 2, 5000, 'the next post');
    await new Promise((r) => setTimeout(r, 300));
    expect(texts('C2')).toEqual([`${ns}-card`, `${ns}-after`]);
    // It asked Slack rather than guessing.
    expect(slack.calls.some((c) => c.method === 'conversations.history' && c.args.channel === 'C2')).toBe(true);
    await b.stop();
  });

  it('a leader that dies before Slack took its post: the next leader posts it', async () => {
    const ns = fresh();
    const { b, handOver } = await twoProcesses(ns, { ...chat, post: () => new Promise<never>(() => undefined) });
    await b.enqueue({ ...post(`${ns}-card`), channel: 'C3' });
    // Recorded as handed to Slack by a.
    await until(async () => (await (await stored(ns)).list())[0]?.sentBy === 'a', 5000, 'the post handed over by a');
    await handOver();
    await until(() => texts('C3').length === 1, 5000, 'the post from b');
    await new Promise((r) => setTimeout(r, 300));
    expect(texts('C3')).toEqual([`${ns}-card`]);
    await b.stop();
  });

  it('a delivered message whose removal did not land is never posted again; its removal is sent again', async () => {
    const ns = fresh();
    const real = await stored(ns);
    let blips = 1;
    const flaky: OutboxStorage = {
      ...real,
      remove: async (item, dead) => {
        if (blips-- > 0) throw new Error('the API blipped');
        return real.remove(item, dead);
      },
    };
    let skewMs = 0;
    const clock = { ...systemClock, now: () => Date.now() + skewMs };
    const a = new Outbox(join(base, `${ns}-a`), chat, clock, silentLogger, { postIntervalMs: 5, refreshMs: 50, storage: flaky, shared: { identity: 'a', delivers: () => true } });
    await a.start();
    await a.enqueue({ ...post(`${ns}-once`), channel: 'C5' });
    await until(() => texts('C5').length === 1, 5000, 'the post');
    // Several listings still show it.
    await new Promise((r) => setTimeout(r, 400));
    expect(await real.list()).toHaveLength(1);
    expect(texts('C5')).toEqual([`${ns}-once`]);
    skewMs = 2 * 60_000;
    await until(async () => (await real.list()).length === 0, 5000, 'the removal sent again');
    expect(texts('C5')).toEqual([`${ns}-once`]);
    await a.stop();
  });

  it('a post threaded under a message the dead leader posted goes into that thread', async () => {
    const ns = fresh();
    const { b, handOver } = await twoProcesses(ns, diesAfterPosting());
    await b.enqueue({ ...post(`${ns}-root`), channel: 'C4' });
    await b.enqueue({ op: 'post', key: `${ns}-reply`, channel: 'C4', threadKey: `${ns}-root`, message: { text: `${ns}-reply` } });
    await until(() => texts('C4').length === 1, 5000, 'the root at Slack');
    await handOver();
    await until(() => texts('C4').length === 2, 5000, 'the reply');
    const root = [...slack.messages.values()].find((m) => m.text === `${ns}-root`)!;
    expect(slack.thread(root.ts).map((m) => m.text)).toEqual([`${ns}-root`, `${ns}-reply`]);
    await b.stop();
  });

  const feeds: Array<[string, () => string]> = [['the stand-in', kubeconfigPath], ...(real.available ? [['the real API server', () => real.kubeconfigPath()] as [string, () => string]] : [])];
  it.each(feeds)('the leader follows the queue on %s: what another process queues goes out at once, its re-list a minute away', async (_name, kubeconfig) => {
    const ns = fresh();
    const on = () => createKubeOutboxStorage({ kubeconfigPath: kubeconfig(), namespace: ns, now: () => Date.now() });
    const a = await process(ns, 'a', { now: true }, chat, 60_000, await on());
    const b = await process(ns, 'b', { now: false }, chat, 60_000, await on());
    // Past the leader's first read at start.
    await new Promise((r) => setTimeout(r, 300));
    const queuedAt = Date.now();
    await b.enqueue({ ...post(`${ns}-first`), channel: 'C5' });
    await until(() => texts('C5').length === 1, 5000, 'the post, well before the next re-list');
    expect(Date.now() - queuedAt).toBeLessThan(2000);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('a feed the API server ends is opened again', async () => {
    const ns = fresh();
    const a = await process(ns, 'a', { now: true }, chat, 60_000);
    const b = await process(ns, 'b', { now: false }, chat, 60_000);
    await until(() => api.customResources.watching >= 2, 5000, 'both feeds open');
    api.customResources.endWatches();
    await until(() => api.customResources.watching >= 2, 5000, 'both feeds open again');
    await b.enqueue({ ...post(`${ns}-after`), channel: 'C6' });
    await until(() => texts('C6').length === 1, 3000, 'the post through the reopened feed');
    await Promise.all([a.stop(), b.stop()]);
  });
});
