/**
 * The rails' memory, one contract for both backings: the state directory
 * (one bot process) and the NodediagRails custom resource that replicas
 * share (NODEDIAG_STORE=kube), through the real client-node against the API
 * stand-in serving the real CRD. Two instances stand for two processes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubeRails, NODEDIAG_RAILS } from '../../src/adapters/kube-rails.js';
import { budgetRefusal, DEFAULT_RAILS, type Pause } from '../../src/rails/gates.js';
import { RailsLedger, type RailsMemory } from '../../src/rails/ledger.js';
import { KubeApiStandin } from '../../src/sim/kube-standin.js';
import { selfSignedCert } from '../../src/sim/self-signed.js';
import { useKubeStandin } from '../helpers/kube-api.js';
import { useRealApiServer } from '../helpers/real-api.js';

const { api, kubeconfigPath: kubeconfig } = useKubeStandin('rails-token-0123456789');
const real = useRealApiServer();

const HOUR = 3600_000;
let clock = Date.parse('2026-11-30T12:00:00Z');
const now = () => clock;
const windows = { retryWindowMs: 24 * HOUR, stormWindowMs: 10 * 60_000 };

/** Builds a memory over a backing; two calls with the same `where` are two processes sharing it. */
type Make = (where: string) => Promise<RailsMemory>;
const base = mkdtempSync(join(tmpdir(), 'nodediag-rails-file-'));
const memories: Array<[string, Make]> = [
  ['the state directory', async (where) => new RailsLedger(join(base, where), windows.retryWindowMs, now)],
  ['the NodediagRails resource', async (where) => createKubeRails({ kubeconfigPath: kubeconfig(), namespace: where, ...windows, now })],
  ...(real.available ? [['the NodediagRails resource on the real API server', async (where: string) => createKubeRails({ kubeconfigPath: real.kubeconfigPath(), namespace: where, ...windows, now })] as [string, Make]] : []),
];

const pause: Pause = { by: 'U0OPS', reason: 'zone-b maintenance', at: '2026-11-30T12:00:00Z', until: '2026-11-30T14:00:00Z', channel: 'C0OPS' };

describe.each(memories)('the rails memory in %s', (_name, make) => {
  let n = 0;
  const fresh = () => `ns-${++n}-${Math.random().toString(36).slice(2, 8)}`;

  it('keeps events and the pause across a restart', async () => {
    const where = fresh();
    const a = await make(where);
    await a.record('prod/gpu-node-1', 'fix-run');
    await a.record('prod/gpu-node-2', 'unhealthy');
    await a.setPause(pause);
    const restarted = await make(where);
    expect(restarted.recent().map((e) => [e.node, e.kind])).toEqual([
      ['prod/gpu-node-1', 'fix-run'],
      ['prod/gpu-node-2', 'unhealthy'],
    ]);
    expect(restarted.storedPause()).toEqual(pause);
    await restarted.setPause(null);
    expect((await make(where)).storedPause()).toBeNull();
  });
});

describe('the rails shared by replicas (NodediagRails)', () => {
  const make = (ns: string) => createKubeRails({ kubeconfigPath: kubeconfig(), namespace: ns, ...windows, now });
  const object = (ns: string) => api.customResources.objects(NODEDIAG_RAILS.group, NODEDIAG_RAILS.version, NODEDIAG_RAILS.plural).get(`${ns}/rails`);

  it('a pause set by one replica is seen by the other after a refresh, and so is its end', async () => {
    const [a, b] = [await make('shared-pause'), await make('shared-pause')];
    await a.setPause(pause);
    expect(b.storedPause()).toBeNull();
    await b.refresh();
    expect(b.storedPause()).toEqual(pause);
    expect(object('shared-pause')?.spec.pause).toMatchObject({ by: 'U0OPS', until: pause.until });
    await b.setPause(null);
    await a.refresh();
    expect(a.storedPause()).toBeNull();
  });

  it('loses no event when two replicas record at the same moment (each write names the resourceVersion it read)', async () => {
    const [a, b] = [await make('shared-race'), await make('shared-race')];
    await Promise.all([
      ...Array.from({ length: 15 }, (_, i) => a.record(`prod/node-a${i}`, 'unhealthy')),
      ...Array.from({ length: 15 }, (_, i) => b.record(`prod/node-b${i}`, 'unhealthy')),
    ]);
    await a.refresh();
    const nodes = a.recent().map((e) => e.node).sort();
    expect(nodes).toHaveLength(30);
    expect(new Set(nodes).size).toBe(30);
    expect(object('shared-race')?.spec.events).toHaveLength(30);
  });

  it('a node\'s fix runs on two replicas count against one retry budget', async () => {
    const [a, b] = [await make('shared-budget'), await make('shared-budget')];
    await a.record('prod/gpu-node-7', 'fix-run');
    expect(budgetRefusal(b.recent(), 'prod/gpu-node-7', now(), DEFAULT_RAILS)).toBeNull();
    await b.record('prod/gpu-node-7', 'fix-run');
    await a.refresh();
    expect(budgetRefusal(a.recent(), 'prod/gpu-node-7', now(), DEFAULT_RAILS)).toMatch(/2 fix runs on prod\/gpu-node-7/);
  });

  it('forgets fleet signals after the storm window and fix runs after the retry window', async () => {
    const a = await make('shared-windows');
    await a.record('prod/gpu-node-1', 'unhealthy');
    await a.record('prod/gpu-node-1', 'fix-run');
    clock += 11 * 60_000;
    await a.record('prod/gpu-node-2', 'incident-opened');
    expect((await make('shared-windows')).recent().map((e) => e.kind)).toEqual(['fix-run', 'incident-opened']);
    clock += 24 * HOUR;
    await a.record('prod/gpu-node-3', 'healthy');
    expect(object('shared-windows')?.spec.events.map((e: { node: string }) => e.node)).toEqual(['prod/gpu-node-3']);
  });

  it('says which CRD to install when the API does not serve it', async () => {
    const bare = new KubeApiStandin({ token: 'bare-token-0123456789', tls: selfSignedCert(['127.0.0.1']) });
    await bare.start();
    try {
      const file = join(mkdtempSync(join(tmpdir(), 'nodediag-rails-bare-')), 'kubeconfig');
      writeFileSync(file, bare.kubeconfig());
      await expect(createKubeRails({ kubeconfigPath: file, namespace: 'nodediag', ...windows, now })).rejects.toThrow(/does not serve nodediagrails\.nodediag\.io/);
    } finally {
      await bare.stop();
    }
  });
});
