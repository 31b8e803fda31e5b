/**
 * Soak: 1,000 diagnoses and 100 approved fixes through the real Bolt receiver
 * against simulated nodes, with faults injected at random (Slack 429 and 500,
 * SSH connections reset, the Kubernetes API failing, nodes breaking, Slack
 * delivering an approval twice). At the end nothing is lost (every incident
 * has its message and a complete, verifiable audit trail), no fix ran twice,
 * and the heap is flat. The figures are printed.
 */
import { jest } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { verifyAuditLog } from '../../src/incidents/audit-log.js';
import type { Incident } from '../../src/incidents/incident.js';
import { SIM_FAULTS, type SimFault } from '../../src/sim/sim-node.js';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { slackWorld, type SlackWorld } from '../helpers/slack-world.js';
import { rng } from '../helpers/rng.js';

jest.setTimeout(300_000);
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const NODES = 24;
const CHANNELS = 8;
const DIAGNOSES = 1000;
const FIXES = 100;
const FIXABLE: SimFault[] = SIM_FAULTS.filter((f) => !['cni-not-ready--no-config', 'cert-expired'].includes(f));

describe('soak', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    // A fast clock: fixes poll for Readiness in real time; here a wait costs a few ms.
    let offset = 0;
    const clock = {
      now: () => Date.now() + offset,
      sleep: async (ms: number) => {
        await new Promise((r) => setTimeout(r, Math.min(ms, 5)));
        offset += Math.max(0, ms - 5);
      },
    };
    w = await slackWorld(
      Array.from({ length: NODES }, (_, i) => ({ name: `soak-node-${String(i).padStart(2, '0')}` })),
      {
        NODEDIAG_MAX_CONCURRENT_DIAGNOSES: '24',
        // A throughput soak, not a storm: the fleet rails (tested in rails.test.ts) are opened wide.
        NODEDIAG_MAX_CONCURRENT_FIXES: '64',
        NODEDIAG_STORM_UNHEALTHY_PERCENT: '100',
        NODEDIAG_STORM_INCIDENTS: '10000',
        NODEDIAG_FIX_RETRY_BUDGET: '100',
      },
      { outbox: { postIntervalMs: 2, updateIntervalMs: 2, tickMs: 5, baseBackoffMs: 20, maxBackoffMs: 400 }, clock, approvalTtlMs: 24 * 3600_000 },
    );
    w.slack.recordBodies = false;
    // Every command the bot sends (the probe batch is ~30 KB): kept, they would be the heap the check measures.
    for (const s of w.fleet.servers.values()) s.recordCommands = false;
  });
  afterAll(() => w.stop());

  it('loses nothing, runs no fix twice, and keeps memory flat', async () => {
    const r = rng(4242);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
    const faults = { slack429: 0, slack500: 0, sshReset: 0, kube500: 0, nodeBroken: 0, duplicateApproval: 0 };
    let served = 0;
    let busy = 0;
    const heap: number[] = [];
    const approved = new Set<string>();
    const nodes = [...w.fleet.nodes.keys()];

    const injectSomething = () => {
      const x = r();
      if (x < 0.15) {
        w.slack.fail(pick(['chat.postMessage', 'chat.update']), { status: 429, retryAfterSeconds: 0 }, 1 + Math.floor(r() * 3));
        faults.slack429++;
      } else if (x < 0.3) {
        w.slack.fail(pick(['chat.postMessage', 'chat.update']), { status: 500 }, 1 + Math.floor(r() * 3));
        faults.slack500++;
      } else if (x < 0.4) {
        const s = w.fleet.servers.get(pick(nodes))!;
        s.faults.resetAfterMs = 0;
        setTimeout(() => (s.faults = {}), 30 + r() * 100);
        faults.sshReset++;
      } else if (x < 0.48) {
        w.fleet.kube.faults = { failWith: 500 };
        setTimeout(() => (w.fleet.kube.faults = {}), 20 + r() * 60);
        faults.kube500++;
      } else {
        // One fault per node at a time: a second one would keep its fix waiting for Ready in real time.
        const healthy = nodes.filter((n) => w.fleet.nodes.get(n)!.ready);
        if (healthy.length) {
          w.fleet.nodes.get(pick(healthy))!.inject(pick(FIXABLE));
          faults.nodeBroken++;
        }
      }
    };

    const approveSome = async (want: number) => {
      const store = join(w.stateDir, 'incidents');
      const waiting = readdirSync(store)
        .filter((f) => /^inc-[0-9a-f]{16}\.json$/.test(f))
        .map((f) => JSON.parse(readFileSync(join(store, f), 'utf8')) as Incident)
        .filter((i) => i.state === 'awaiting-approval' && !approved.has(i.id));
      for (const inc of waiting.slice(0, want)) {
        approved.add(inc.id);
        await w.click(ACTIONS.approve, inc.id, 'U0APPROVER', inc.channel);
        const submit = () => w.submit(APPROVE_VIEW, inc.id, 'U0APPROVER');
        if (r() < 0.2) {
          faults.duplicateApproval++;
          await Promise.all([submit(), submit()]);
        } else await submit();
      }
    };

    for (let sent = 0; sent < DIAGNOSES; sent += 25) {
      if (r() < 0.7) injectSomething();
      const batch = await Promise.all(
        Array.from({ length: 25 }, () => w.slash(pick(nodes), `U0REQ${Math.floor(r() * 5)}`, `C0CHAN${Math.floor(r() * CHANNELS)}`)),
      );
      served += batch.filter((b) => b.status === 200).length;
      await w.server.service.idle();
      if (approved.size < FIXES && sent % 50 === 0) await approveSome(Math.min(12, FIXES - approved.size));
      if (sent % 100 === 0) process.stderr.write(`soak progress: ${sent + 25} diagnoses sent, ${approved.size} fixes approved\n`);
      if (sent % 250 === 0) {
        gc();
        heap.push(process.memoryUsage().heapUsed);
      }
    }
    for (let round = 0; approved.size < FIXES; round++) {
      if (round > 40) throw new Error(`only ${approved.size} fixes could be approved`);
      const healthy = nodes.filter((n) => w.fleet.nodes.get(n)!.ready).slice(0, 6);
      for (const n of healthy) w.fleet.nodes.get(n)!.inject(pick(FIXABLE));
      await Promise.all(healthy.map((n) => w.slash(n, 'U0REQ9', 'C0CHAN0')));
      await w.server.service.idle();
      await approveSome(FIXES - approved.size);
    }
    await w.server.service.idle();
    w.fleet.kube.faults = {};
    for (const s of w.fleet.servers.values()) s.faults = {};
    expect(await w.server.outbox.drain(120_000)).toBe(true);
    gc();
    heap.push(process.memoryUsage().heapUsed);

    // Nothing lost: every incident reached a final state and its message shows it; no dead letters.
    const incidents = readdirSync(join(w.stateDir, 'incidents'))
      .filter((f) => /^inc-[0-9a-f]{16}\.json$/.test(f))
      .map((f) => JSON.parse(readFileSync(join(w.stateDir, 'incidents', f), 'utf8')) as Incident);
    const unfinished = incidents.filter((i) => ['diagnosing', 'approved', 'running'].includes(i.state));
    expect(unfinished.map((i) => `${i.id} ${i.state}`)).toEqual([]);
    expect(readdirSync(join(w.stateDir, 'outbox', 'dead'))).toEqual([]);
    const posted = new Set([...w.slack.messages.values()].map((m) => m.text.split(':')[0]));
    expect(posted.size).toBeGreaterThan(0);
    const missingSummaries = incidents.filter((i) => 'outcome' in i && ![...w.slack.messages.values()].some((m) => m.text.startsWith(`Incident summary for ${i.node}`)));
    expect(missingSummaries).toEqual([]);

    // A complete, verifiable audit trail; no fix ran twice.
    const audit = join(w.stateDir, 'audit.jsonl');
    expect(verifyAuditLog(audit)).toMatchObject({ ok: true });
    const entries = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; incident?: string });
    const runs = new Map<string, number>();
    for (const e of entries) if (e.type === 'fix-requested' && e.incident) runs.set(e.incident, (runs.get(e.incident) ?? 0) + 1);
    expect([...runs.values()].filter((n) => n > 1)).toEqual([]);
    // Every fix that was asked for ended: it ran to its end, or was refused (another fix held the node).
    const ended = new Set(entries.filter((e) => e.type === 'run-finished' || e.type === 'fix-refused').map((e) => e.incident));
    expect([...runs.keys()].filter((id) => !ended.has(id))).toEqual([]);
    expect(runs.size).toBeGreaterThanOrEqual(FIXES * 0.9);

    // Memory flat: the heap after the run is within 10% (or 8 MB) of the heap after the first quarter
    // (which holds the bounded caches once warm: recent incidents, message keys).
    const [first, last] = [heap[1] ?? heap[0]!, heap.at(-1)!];
    expect(last - first).toBeLessThan(Math.max(first * 0.1, 8 * 1024 * 1024));

    const results = incidents.reduce<Record<string, number>>((acc, i) => ((acc[i.state] = (acc[i.state] ?? 0) + 1), acc), {});
    busy = w.slack.ephemerals.filter((e) => /busy/.test(e.text)).length;
    process.stdout.write(
      [
        `soak: ${served} requests served (${busy} answered "busy"), ${incidents.length} incidents: ${JSON.stringify(results)}`,
        `soak: ${runs.size} fixes approved, each started at most once (${entries.filter((e) => e.type === 'fix-refused').length} refused: the node's lock was held); faults injected and survived: ${JSON.stringify(faults)}`,
        `soak: ${w.slack.calls.length} Slack calls (${w.slack.calls.filter((c) => c.status !== 200).length} refused and retried), entries lost: 0, dead letters: 0`,
        `soak: heap after GC ${heap.map((h) => `${(h / 1e6).toFixed(1)} MB`).join(' → ')}`,
        '',
      ].join('\n'),
    );
  });
});
