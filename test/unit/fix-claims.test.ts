/**
 * The claims a process holds on the fixes it carries, over the real file
 * lock: which open incidents no live process carries any more, the cluster's
 * fix slots, and what an interrupted fix's release frees.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Incident } from '../../src/incidents/incident.js';
import { FixClaims } from '../../src/incidents/fix-claims.js';
import { FileNodeLock } from '../../src/runbooks/lock.js';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const MIN = 60_000;

function world(shared: boolean, slots = 1) {
  let now = T0;
  const slept: number[] = [];
  const lock = new FileNodeLock(mkdtempSync(join(tmpdir(), 'nodediag-claims-')));
  const clock = { now: () => now, sleep: async (ms: number) => void slept.push(ms) };
  const claims = new FixClaims(() => lock, { shared, slots, clock });
  return { claims, lock, slept, advance: (ms: number) => (now += ms) };
}

/** An open incident as the store keeps it, its last timeline entry at `lastAt`. */
function open(id: string, node: string, state: 'diagnosing' | 'approved' | 'running', lastAt = T0, waitingFor?: string[]): Incident {
  const at = new Date(lastAt).toISOString();
  return { id, node, state, createdAt: at, timeline: [{ at, what: state }], ...(waitingFor ? { waitingFor } : {}) } as unknown as Incident;
}

describe('orphaned incidents', () => {
  it('with one process, every open incident is its own leftover (it restarted)', async () => {
    const w = world(false);
    const all = [open('inc-a', 'n1', 'running'), open('inc-b', 'n2', 'approved'), open('inc-c', 'n3', 'diagnosing')];
    expect(await w.claims.orphaned(all)).toEqual(all);
  });

  it('with several, a fix is orphaned as soon as neither its incident lock nor its node lock is held, however recently it moved', async () => {
    const w = world(true);
    const running = open('inc-run', 'n1', 'running');
    const queued = open('inc-q', 'n2', 'approved', T0, ['n1']);
    // The approving process takes the incident lock before it records the approval.
    const carried = await w.claims.carry(queued);
    const stepping = await w.lock.acquire('n1', 'U1 (incident inc-run)', 30 * MIN);
    expect(await w.claims.orphaned([running, queued])).toEqual([]);
    w.advance(60 * MIN);
    // Quiet for an hour, but both are held by a live process.
    expect(await w.claims.orphaned([running, queued])).toEqual([]);
    await stepping.release();
    // Its steps done, the fix still finishing: its incident lock says it is carried.
    const finishing = await w.claims.carry(running);
    expect(await w.claims.orphaned([running, queued])).toEqual([]);
    await finishing!.release();
    expect((await w.claims.orphaned([running, queued])).map((i) => i.id)).toEqual(['inc-run']);
    await carried!.release();
    // Its last word a moment ago: no wait once nothing holds it.
    const fresh = open('inc-fresh', 'n3', 'approved', T0 + 60 * MIN);
    expect((await w.claims.orphaned([running, queued, fresh])).map((i) => i.id)).toEqual(['inc-run', 'inc-q', 'inc-fresh']);
  });

  it('a second process cannot carry a fix another carries', async () => {
    const w = world(true);
    const inc = open('inc-x', 'n1', 'approved');
    const held = await w.claims.carry(inc);
    await expect(w.claims.carry(inc)).rejects.toThrow(/held|lock/i);
    await held!.release();
    await (await w.claims.carry(inc))!.release();
  });

  it('a diagnosis is orphaned only when long overdue', async () => {
    const w = world(true);
    const d = open('inc-d', 'n1', 'diagnosing');
    w.advance(4 * MIN);
    expect(await w.claims.orphaned([d])).toEqual([]);
    w.advance(2 * MIN);
    expect(await w.claims.orphaned([d])).toEqual([d]);
  });
});

describe('fix slots', () => {
  it('a fix waits while the cluster\'s slots are taken, told for which nodes, and takes one once freed', async () => {
    const w = world(true, 1);
    const first = await w.claims.slot(open('inc-1', 'n1', 'approved'), async () => undefined);
    const told: string[][] = [];
    const second = w.claims.slot(open('inc-2', 'n2', 'approved'), async (nodes) => {
      told.push(nodes);
      if (told.length === 3) await first.release();
    });
    await (await second).release();
    expect(told).toEqual([['n1'], ['n1'], ['n1']]);
    expect(w.slept.length).toBeGreaterThanOrEqual(3);
  });

  it('release frees the node lock, the incident lock and the slot named for the fix, not another fix\'s slot', async () => {
    const w = world(true, 2);
    const gone = open('inc-gone', 'n1', 'running');
    await w.claims.carry(gone);
    await w.lock.acquire('n1', 'U1 (incident inc-gone)', 30 * MIN);
    await w.claims.slot(gone, async () => undefined);
    await w.claims.slot(open('inc-live', 'n2', 'running'), async () => undefined);
    await w.claims.release(gone);
    expect(await w.lock.holder('n1')).toBeNull();
    expect(await w.lock.holder('nodediag-incident-inc-gone')).toBeNull();
    expect(await w.lock.holder('nodediag-fix-slot-0')).toBeNull();
    expect((await w.lock.holder('nodediag-fix-slot-1'))?.holder).toBe('n2 (incident inc-live)');
  });
});
