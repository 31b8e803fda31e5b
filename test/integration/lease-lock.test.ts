/** Per-node fix locks as Leases: the real client-node against the API stand-in. */
import { createLeaseLock, fixLeaseName } from '../../src/adapters/kube.js';
import { LockHeldError } from '../../src/errors.js';
import type { NodeLock } from '../../src/runbooks/lock.js';
import { useKubeStandin } from '../helpers/kube-api.js';
import { useRealApiServer } from '../helpers/real-api.js';

const { api, kubeconfigPath: kubeconfig } = useKubeStandin('lease-token-0123456789');
const real = useRealApiServer();

const replica = (identity: string) => createLeaseLock({ kubeconfigPath: kubeconfig(), namespace: 'nodediag', identity });

/** A holder stalls past its one-second lease, another takes the node, then the first releases: the second still holds it. */
async function lateReleaseSparesTheNext(open: (identity: string) => Promise<NodeLock>, node: string): Promise<void> {
  const a = await open('bot-a');
  const late = await a.acquire(node, 'a fix whose process stalled', 1000);
  await new Promise((r) => setTimeout(r, 1200));
  const now = await (await open('bot-b')).acquire(node, 'the next fix', 60_000);
  await late.release();
  expect(await a.holder(node)).toMatchObject({ holder: 'the next fix' });
  await now.release();
  expect(await a.holder(node)).toBeNull();
}

describe('lease lock', () => {
  it('lets one replica fix a node and refuses the other, naming the holder', async () => {
    const a = await replica('bot-a');
    const b = await replica('bot-b');
    const held = await a.acquire('gpu-node-1', 'U111 (incident inc-1)', 60_000);
    await expect(b.acquire('gpu-node-1', 'U222', 60_000)).rejects.toThrow(LockHeldError);
    await expect(b.acquire('gpu-node-1', 'U222', 60_000)).rejects.toThrow(/held by U111 \(incident inc-1\)/);
    expect(await b.holder('gpu-node-1')).toMatchObject({ holder: 'U111 (incident inc-1)' });
    const other = await b.acquire('gpu-node-2', 'U222', 60_000);
    await held.release();
    const again = await b.acquire('gpu-node-1', 'U222', 60_000);
    await again.release();
    await other.release();
    expect(api.leases.size).toBe(0);
  });

  it('takes over a lease whose holder stopped renewing it', async () => {
    const a = await replica('bot-a');
    await a.acquire('gpu-node-3', 'crashed bot', 1000);
    await new Promise((r) => setTimeout(r, 1200));
    const b = await replica('bot-b');
    const h = await b.acquire('gpu-node-3', 'U333', 60_000);
    expect(api.leases.get(`nodediag/${fixLeaseName('gpu-node-3')}`)!.spec.holderIdentity).toBe('bot-b');
    await h.release();
  });

  it('resolves a race through optimistic concurrency: exactly one wins', async () => {
    const locks = await Promise.all(['r1', 'r2', 'r3', 'r4'].map(replica));
    const results = await Promise.allSettled(locks.map((l, i) => l.acquire('gpu-node-4', `replica ${i}`, 60_000)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof LockHeldError)).toBe(true);
    await locks[0]!.forceRelease('gpu-node-4');
  });

  it('renews a short lease while it is held, and lets it lapse once its holder is gone', async () => {
    const a = await createLeaseLock({ kubeconfigPath: kubeconfig(), namespace: 'nodediag', identity: 'bot-a', renewSeconds: 1 });
    const b = await replica('bot-b');
    const held = await a.acquire('gpu-node-5', 'a long fix', 60_000);
    await new Promise((r) => setTimeout(r, 2500));
    // Well past its one-second duration, still held: renewed.
    expect(await b.holder('gpu-node-5')).toMatchObject({ holder: 'a long fix' });
    await expect(b.acquire('gpu-node-5', 'U222', 60_000)).rejects.toThrow(LockHeldError);
    await held.release();
    expect(await b.holder('gpu-node-5')).toBeNull();
  });

  it("a holder whose lease lapsed and was taken by another does not free the other's on its late release", () => lateReleaseSparesTheNext(replica, 'gpu-node-6'));

  it('keeps long node names within the Lease name limit', () => {
    expect(fixLeaseName('a'.repeat(250)).length).toBeLessThanOrEqual(253);
  });
});

(real.available ? describe : describe.skip)('lease lock on the real API server (Leases as a CRD there)', () => {
  const on = (identity: string) => createLeaseLock({ kubeconfigPath: real.kubeconfigPath(), namespace: 'nodediag', identity });

  it('lets exactly one of racing replicas take a node, names the holder to the others, and frees it on release', async () => {
    const locks = await Promise.all(['r1', 'r2', 'r3', 'r4'].map(on));
    const results = await Promise.allSettled(locks.map((l, i) => l.acquire('gpu-node-9', `replica ${i}`, 60_000)));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof LockHeldError)).toBe(true);
    const holder = (await locks[0]!.holder('gpu-node-9'))!.holder;
    expect(holder).toMatch(/^replica \d$/);
    await won[0]!.release();
    expect(await locks[0]!.holder('gpu-node-9')).toBeNull();
  });

  it('takes over a lease whose holder stopped renewing it', async () => {
    await (await on('crashed')).acquire('gpu-node-8', 'crashed bot', 1000);
    await new Promise((r) => setTimeout(r, 1200));
    const h = await (await on('bot-b')).acquire('gpu-node-8', 'U333', 60_000);
    const lease = await real.call('GET', `/apis/coordination.k8s.io/v1/namespaces/nodediag/leases/${fixLeaseName('gpu-node-8')}`);
    expect(lease.body.spec.holderIdentity).toBe('bot-b');
    await h.release();
  });

  it("a holder whose lease lapsed and was taken by another does not free the other's on its late release", () => lateReleaseSparesTheNext(on, 'gpu-node-7'));
});
