/**
 * How an incident changes: compare-and-set over the real file store, with
 * another writer (a replica) winning races in between, and this process's
 * own concurrent changes serialised.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Incident } from '../../src/incidents/incident.js';
import { IncidentRecord } from '../../src/incidents/incident-record.js';
import { FileIncidentStore, type IncidentStore } from '../../src/incidents/store.js';
import type { Refusal } from '../../src/incidents/transitions.js';

const ID = 'inc-0123456789abcdef';
const NOW = Date.parse('2026-11-30T12:00:00Z');

function awaiting(): Incident {
  return {
    id: ID,
    version: 1,
    node: 'n1',
    channel: 'C1',
    messageKey: `${ID}:msg`,
    threadKey: `${ID}:msg`,
    requester: 'U0REQ',
    createdAt: new Date(NOW).toISOString(),
    state: 'diagnosing',
    timeline: [],
  } as Incident;
}

/**
 * The real store, with another writer that gets in first for the next
 * `races` writes of this process: between this process's read and its write,
 * it writes its own change (one timeline line), so the write that follows
 * loses on its version.
 */
function racedStore(inner: FileIncidentStore, races: number): IncidentStore & { competitorWrites: number } {
  const s = {
    competitorWrites: 0,
    get: (id: string) => inner.get(id),
    create: (i: Incident) => inner.create(i),
    list: (states: Incident['state'][]) => inner.list(states),
    async put(next: Incident) {
      if (s.competitorWrites < races) {
        const theirs = (await inner.get(next.id))!;
        s.competitorWrites += 1;
        await inner.put({ ...theirs, version: theirs.version + 1, timeline: [...theirs.timeline, { at: theirs.createdAt, what: `replica B change ${s.competitorWrites}` }] });
      }
      return inner.put(next);
    },
  };
  return s;
}

async function world(races = 0) {
  const inner = new FileIncidentStore(mkdtempSync(join(tmpdir(), 'nodediag-record-')));
  const store = racedStore(inner, races);
  await inner.create(awaiting());
  const posted: unknown[] = [];
  const record = new IncidentRecord(
    {
      store,
      outbox: { enqueue: async (op: unknown) => void posted.push(op) } as never,
      views: { card: () => ({ text: 'card' }) } as never,
      clock: { now: () => NOW, sleep: async () => undefined },
      logger: { info() {}, warn() {}, error() {}, debug() {} } as never,
      auditPath: '/dev/null',
    },
    () => ({ audit: { append() {} } }) as never,
    () => null,
  );
  return { record, store, inner, posted };
}

/** A change that adds a line to the timeline, counting how often it was decided. */
function addLine(what: string, calls: { n: number }) {
  return (cur: Incident): Incident => {
    calls.n += 1;
    return { ...cur, timeline: [...cur.timeline, { at: cur.createdAt, what }] };
  };
}

describe('incident changes (compare-and-set)', () => {
  it('a change that loses a race is decided again on what the winner wrote, and both changes are kept', async () => {
    const w = await world(1);
    const calls = { n: 0 };
    const done = (await w.record.mutate(ID, addLine('replica A change', calls))) as Incident;
    expect(calls.n).toBe(2);
    expect(done.version).toBe(3);
    const stored = (await w.inner.get(ID))!;
    expect(stored.timeline.map((t) => t.what)).toEqual(['replica B change 1', 'replica A change']);
    expect(stored.version).toBe(3);
  });

  it('a refusal writes nothing', async () => {
    const w = await world();
    const r = await w.record.mutate(ID, () => ({ reason: 'no' }) satisfies Refusal);
    expect(r).toEqual({ reason: 'no' });
    expect((await w.inner.get(ID))!.version).toBe(1);
  });

  it('gives up with a refusal when it keeps losing, leaving the winner’s incident intact', async () => {
    const w = await world(1000);
    const calls = { n: 0 };
    const r = await w.record.mutate(ID, addLine('replica A change', calls));
    expect(r).toMatchObject({ reason: expect.stringMatching(/changing too fast/) });
    const stored = (await w.inner.get(ID))!;
    expect(stored.timeline.every((t) => t.what.startsWith('replica B'))).toBe(true);
    expect(stored.timeline.length).toBe(w.store.competitorWrites);
    // It did try again, but not forever.
    expect(calls.n).toBeGreaterThan(1);
    expect(calls.n).toBeLessThan(20);
  });

  it("this process's own concurrent changes of one incident are serialised: none is lost", async () => {
    const w = await world();
    const calls = { n: 0 };
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => w.record.mutate(ID, addLine(`change ${i}`, calls))));
    expect(results.every((r) => !('reason' in r))).toBe(true);
    expect(calls.n).toBe(12);
    const stored = (await w.inner.get(ID))!;
    expect(stored.version).toBe(13);
    expect(stored.timeline.map((t) => t.what).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `change ${i}`).sort());
  });

  it('an unknown incident is a refusal, not an error', async () => {
    const w = await world();
    expect(await w.record.mutate('inc-ffffffffffffffff', addLine('x', { n: 0 }))).toMatchObject({ reason: expect.stringMatching(/unknown/) });
  });

  it('a button that names no incident of ours, or comes from another channel, is refused', async () => {
    const w = await world();
    expect(await w.record.load('../../etc/passwd', 'C1')).toMatchObject({ reason: expect.stringMatching(/does not belong/) });
    expect(await w.record.load(ID, 'C2')).toMatchObject({ reason: expect.stringMatching(/own channel/) });
    expect(await w.record.load(ID, null)).toMatchObject({ id: ID });
  });

  it('a slotted note is posted once and then edited in place', async () => {
    const w = await world();
    await w.record.note(ID, 'first', undefined, 'alerts');
    await w.record.note(ID, 'second', undefined, 'alerts');
    expect(w.posted).toEqual([
      expect.objectContaining({ op: 'post', key: `${ID}:note:alerts`, message: { text: 'first' } }),
      expect.objectContaining({ op: 'update', key: `${ID}:note:alerts`, message: { text: 'second' } }),
    ]);
  });
});
