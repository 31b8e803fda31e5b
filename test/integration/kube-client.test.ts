/**
 * The Kubernetes adapter: the real @kubernetes/client-node against the API
 * stand-in over HTTPS, and the terminal's direct reads (node:https, plain
 * kubeconfigs) against the same stand-in, answer for answer.
 */
import { execFile } from 'node:child_process';
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer, type ServerOptions } from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubeClient } from '../../src/adapters/kube.js';
import { createDirectKubeReader, directKubeTarget } from '../../src/adapters/kube-direct.js';
import { createKubeClientInWorker } from '../../src/adapters/kube-in-worker.js';
import { loadCatalogs } from '../../src/catalog/load.js';
import type { KubeProbe } from '../../src/catalog/schema.js';
import { NodediagError } from '../../src/errors.js';
import { systemClock, type KubeClient, type KubeReader } from '../../src/ports.js';
import { runKubeProbes } from '../../src/probes/kube-collector.js';
import { createRedactor } from '../../src/redact.js';
import { KubeApiStandin, makeDaemonSetPod, makeEvent, makeNode } from '../../src/sim/kube-standin.js';
import { selfSignedCert } from '../../src/sim/self-signed.js';
import { freePort } from '../helpers/sshd.js';
import { REPO_ROOT } from '../lab/lab.js';

const dir = mkdtempSync(join(tmpdir(), 'nodediag-kube-'));
const api = new KubeApiStandin({ token: 'test-token-0123456789', tls: selfSignedCert(['127.0.0.1']), recreateDelayMs: 50 });
let kube: KubeClient;

function clientWith(kubeconfig: string, timeoutMs = 2000): KubeClient {
  const path = join(dir, `kc-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, kubeconfig);
  const k = createKubeClient({ kubeconfigPath: path, requestTimeoutMs: timeoutMs });
  if (!k.client) throw new Error(k.reason);
  return k.client;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof NodediagError ? `${err.code}: ${err.message}` : `other: ${(err as Error).message}`;
  }
}

beforeAll(async () => {
  await api.start();
  api.addNode(makeNode('gpu-node-1', '10.0.0.11', { pool: 'gpu' }, false));
  api.addNode(makeNode('cpu-node-1', '10.0.0.21', { pool: 'cpu' }));
  const pod = makeDaemonSetPod({
    namespace: 'gpu-operator',
    daemonSet: 'nvidia-container-toolkit-daemonset',
    node: 'gpu-node-1',
    container: 'nvidia-container-toolkit-ctr',
    image: 'nvcr.io/nvidia/k8s/container-toolkit:v1.17.0',
    health: 'crashloop',
    restarts: 681,
    hostPaths: [{ name: 'sock', path: '/run/containerd/containerd.sock' }],
  });
  api.addPod(pod);
  api.addPod(makeDaemonSetPod({ namespace: 'kube-system', daemonSet: 'kube-proxy', node: 'cpu-node-1', container: 'kube-proxy', image: 'kube-proxy:v1.30', health: 'running' }));
  api.addEvent(makeEvent({ namespace: 'gpu-operator', objNamespace: 'gpu-operator', kind: 'Pod', name: pod.metadata.name, type: 'Warning', reason: 'BackOff', message: 'Back-off restarting failed container', count: 681 }));
  api.addEvent(makeEvent({ namespace: 'default', kind: 'Node', name: 'gpu-node-1', type: 'Warning', reason: 'NodeNotReady', message: 'Node gpu-node-1 status is now: NodeNotReady' }));
  kube = clientWith(api.kubeconfig());
});
afterAll(async () => {
  await api.stop();
});

describe('Kubernetes adapter (real client-node, HTTPS stand-in)', () => {
  it('reads a node, its conditions and addresses; a missing node is null', async () => {
    const n = await kube.getNode('gpu-node-1');
    expect(n!.conditions.find((c) => c.type === 'Ready')!.status).toBe('False');
    expect(n!.addresses).toContainEqual({ type: 'InternalIP', address: '10.0.0.11' });
    expect(await kube.getNode('nope')).toBeNull();
  });

  it('lists nodes by label selector and pods by node', async () => {
    expect((await kube.listNodes('pool=gpu')).map((n) => n.name)).toEqual(['gpu-node-1']);
    const pods = await kube.listPodsOnNode('gpu-node-1');
    expect(pods).toHaveLength(1);
    expect(pods[0]).toMatchObject({ namespace: 'gpu-operator', owner: { kind: 'DaemonSet', name: 'nvidia-container-toolkit-daemonset' } });
    expect(pods[0]!.containers[0]).toMatchObject({ restartCount: 681, state: { kind: 'waiting', reason: 'CrashLoopBackOff' } });
    expect(pods[0]!.hostPaths).toEqual([{ volume: 'sock', path: '/run/containerd/containerd.sock', type: null }]);
  });

  it('collects node and pod events, rendered for the rules', async () => {
    const probes = loadCatalogs().probes.filter((p): p is KubeProbe => p.transport === 'kube');
    const obs = await runKubeProbes('gpu-node-1', probes, { kube, unavailableReason: '', runtimeSockets: ['/run/containerd/containerd.sock'], clock: systemClock, redact: createRedactor() });
    expect(obs.map((o) => o.status)).toEqual(['ok', 'ok', 'ok']);
    const events = obs.find((o) => o.check === 'k8s-events')!.lines.join('\n');
    expect(events).toMatch(/event Warning BackOff Pod\/gpu-operator\/nvidia-container-toolkit-daemonset-\w+: Back-off restarting failed container \(x681/);
    expect(events).toMatch(/event Warning NodeNotReady Node\/gpu-node-1/);
    expect(obs.find((o) => o.check === 'k8s-pods')!.lines.join('\n')).toMatch(/hostPath .* type=<unset> owner=DaemonSet\/nvidia-container-toolkit-daemonset/);
  });

  it('cordons with a merge patch (the API answers 415 to a JSON patch)', async () => {
    await kube.setUnschedulable('cpu-node-1', true);
    expect(api.nodes.get('cpu-node-1')!.spec.unschedulable).toBe(true);
    await kube.setUnschedulable('cpu-node-1', false);
    expect(api.nodes.get('cpu-node-1')!.spec.unschedulable).toBe(false);
  });

  it('deletes a pod; the DaemonSet stand-in recreates it under a new name', async () => {
    const [pod] = await kube.listPodsOnNode('cpu-node-1');
    await kube.deletePod(pod!.namespace, pod!.name);
    await new Promise((r) => setTimeout(r, 150));
    const after = await kube.listPodsOnNode('cpu-node-1');
    expect(after).toHaveLength(1);
    expect(after[0]!.name).not.toBe(pod!.name);
    await kube.deletePod('kube-system', 'already-gone');
  });

  it('names the missing permission on 403 and says so on 401', async () => {
    api.denials = [{ verb: 'list', resource: 'pods' }];
    try {
      expect(await codeOf(kube.listPodsOnNode('gpu-node-1'))).toMatch(/^KUBE_FORBIDDEN: forbidden: nodediag needs permission "list" on pods .*cannot list resource "pods"/);
      const probes = loadCatalogs().probes.filter((p): p is KubeProbe => p.transport === 'kube');
      const obs = await runKubeProbes('gpu-node-1', probes, { kube, unavailableReason: '', runtimeSockets: [], clock: systemClock, redact: createRedactor() });
      expect(obs.find((o) => o.check === 'k8s-pods')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/needs permission "list" on pods/) });
      expect(obs.find((o) => o.check === 'k8s-node')!.status).toBe('ok');
    } finally {
      api.denials = [];
    }
    const wrong = clientWith(api.kubeconfig('wrong-token-999999'));
    expect(await codeOf(wrong.getNode('gpu-node-1'))).toMatch(/^KUBE_UNAUTHORIZED: .*401/);
  });

  it('turns a 500, a hang and a closed port into errors, each within its deadline', async () => {
    api.faults = { failWith: 500 };
    expect(await codeOf(kube.listNodes())).toMatch(/^KUBE_ERROR: .*answered 500/);
    api.faults = { hang: true };
    const slow = clientWith(api.kubeconfig(), 300);
    const started = Date.now();
    expect(await codeOf(slow.listNodes())).toMatch(/^KUBE_UNREACHABLE: .*no answer in time/);
    expect(Date.now() - started).toBeLessThan(2000);
    api.faults = {};
    const gone = clientWith(api.kubeconfig().replace(/:\d+\n/, `:${await freePort()}\n`));
    expect(await codeOf(gone.listNodes())).toMatch(/^KUBE_UNREACHABLE/);
  });

  it('as built, loads the library as one bundled file (no file of the package) and behaves the same: reads, 403 named, 401 said', async () => {
    const kc = join(dir, 'kc-built');
    writeFileSync(kc, api.kubeconfig());
    api.denials = [{ verb: 'list', resource: 'pods' }];
    try {
      // A real process running the built adapter, every module it loads recorded.
      const script = [
        `import { registerHooks } from 'node:module';`,
        `const loaded = [];`,
        `registerHooks({ resolve: (spec, ctx, next) => { const r = next(spec, ctx); loaded.push(r.url); return r; } });`,
        `const { createKubeClient } = await import(${JSON.stringify(join(REPO_ROOT, 'dist', 'src', 'adapters', 'kube.js'))});`,
        `const code = (p) => p.then((v) => 'ok ' + (v && v.name), (e) => e.code + ': ' + e.message);`,
        `const k = createKubeClient({ kubeconfigPath: process.argv[1], requestTimeoutMs: 3000 }).client;`,
        `const node = await code(k.getNode('gpu-node-1'));`,
        `const pods = await code(k.listPodsOnNode('gpu-node-1'));`,
        `const wrong = createKubeClient({ kubeconfigPath: process.argv[2], requestTimeoutMs: 3000 }).client;`,
        `const unauthorized = await code(wrong.getNode('gpu-node-1'));`,
        `console.log(JSON.stringify({ node, pods, unauthorized, loaded }));`,
      ].join('\n');
      const wrongKc = join(dir, 'kc-built-wrong');
      writeFileSync(wrongKc, api.kubeconfig('wrong-token-999999'));
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--input-type=module', '-e', script, kc, wrongKc], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
      );
      const r = JSON.parse(out) as { node: string; pods: string; unauthorized: string; loaded: string[] };
      expect(r.node).toBe('ok gpu-node-1');
      expect(r.pods).toMatch(/^KUBE_FORBIDDEN: forbidden: nodediag needs permission "list" on pods/);
      expect(r.unauthorized).toMatch(/^KUBE_UNAUTHORIZED: .*401/);
      expect(r.loaded).toContainEqual(expect.stringMatching(/\/dist\/src\/vendor\/client-node\.js$/));
      expect(r.loaded.filter((u) => u.includes('/node_modules/'))).toEqual([]);
    } finally {
      api.denials = [];
    }
  });

  it('skips the checks, with the reason, when there is no Kubernetes access', async () => {
    const probes = loadCatalogs().probes.filter((p): p is KubeProbe => p.transport === 'kube');
    const obs = await runKubeProbes('n', probes, { kube: null, unavailableReason: 'no Kubernetes access configured', runtimeSockets: [], clock: systemClock, redact: createRedactor() });
    expect(obs.every((o) => o.status === 'skipped' && o.reason === 'no Kubernetes access configured')).toBe(true);
  });
});

/** The terminal's direct reader for a kubeconfig (which must be of the plain kind it reads). */
function directWith(kubeconfig: string, timeoutMs = 2000): KubeReader {
  const path = join(dir, `kc-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, kubeconfig);
  const target = directKubeTarget({ kubeconfigPath: path });
  if (!target) throw new Error('the stand-in\'s kubeconfig was not taken for direct reads');
  return createDirectKubeReader(target, { requestTimeoutMs: timeoutMs });
}

/** An HTTPS server of the test's own on loopback and a kubeconfig for it (the stand-in's user): `use` runs, then the server closes. */
async function withOwnServer(handler: RequestListener, use: (kubeconfig: string) => Promise<void>, tlsOptions: ServerOptions = {}): Promise<void> {
  const tls = selfSignedCert(['127.0.0.1'])!;
  const server = createServer({ key: tls.key, cert: tls.cert, ...tlsOptions }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    await use(api.kubeconfig().replace(/server: .*/, `server: https://127.0.0.1:${port}`).replace(/certificate-authority-data: .*/, `certificate-authority-data: ${Buffer.from(tls.cert).toString('base64')}`));
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

describe('direct reads (node:https, plain kubeconfig) against the same stand-in', () => {
  it('answers every read exactly as client-node does: nodes, pods with init containers, last states and volumes, events of every time field', async () => {
    const rich = makeDaemonSetPod({ namespace: 'monitoring', daemonSet: 'node-exporter', node: 'gpu-node-1', container: 'exporter', image: 'prom/node-exporter:v1.8', health: 'running', restarts: 3 });
    rich.metadata.annotations = { 'kubernetes.io/config.mirror': 'abc123' };
    rich.spec.volumes = [{ name: 'scratch', emptyDir: {} }, { name: 'proc', hostPath: { path: '/proc', type: 'Directory' } }];
    rich.status.initContainerStatuses = [{ name: 'init', ready: true, restartCount: 0, image: 'busybox', imageID: '', state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: '2026-12-02T10:00:00Z', finishedAt: '2026-12-02T10:00:01Z' } } }];
    rich.status.containerStatuses[0].lastState = { terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: '2026-12-02T10:01:00Z', finishedAt: '2026-12-02T10:05:00Z' } };
    api.addPod(rich);
    const microTime = makeEvent({ namespace: 'monitoring', objNamespace: 'monitoring', kind: 'Pod', name: rich.metadata.name, type: 'Normal', reason: 'Pulled', message: 'Container image already present' });
    delete microTime.lastTimestamp;
    delete microTime.firstTimestamp;
    delete microTime.count;
    microTime.eventTime = '2026-12-02T10:00:00.123456Z';
    api.addEvent(microTime);
    try {
      const direct = directWith(api.kubeconfig());
      const both = async <T>(call: (k: KubeReader) => Promise<T>) => {
        const [a, b] = await Promise.all([call(direct), call(kube)]);
        expect(a).toEqual(b);
        return a;
      };
      expect((await both((k) => k.getNode('gpu-node-1')))!.conditions.length).toBeGreaterThan(0);
      expect(await both((k) => k.getNode('nope'))).toBeNull();
      expect((await both((k) => k.listNodes())).map((n) => n.name).sort()).toEqual(['cpu-node-1', 'gpu-node-1']);
      expect(await both((k) => k.listNodes('pool=gpu'))).toHaveLength(1);
      const pods = await both((k) => k.listPodsOnNode('gpu-node-1'));
      expect(pods.find((p) => p.name === rich.metadata.name)).toMatchObject({
        mirror: true,
        localVolumes: ['scratch'],
        hostPaths: [{ volume: 'proc', path: '/proc', type: 'Directory' }],
        containers: [{ name: 'init', state: { kind: 'terminated', exitCode: 0 } }, { name: 'exporter', lastTerminated: { reason: 'OOMKilled', exitCode: 137, finishedAt: '2026-12-02T10:05:00.000Z' } }],
      });
      const events = await both((k) => k.listEvents('gpu-node-1', pods));
      expect(events).toContainEqual(expect.objectContaining({ reason: 'Pulled', count: 1, lastTimestamp: '2026-12-02T10:00:00.123Z' }));
      expect(events.map((e) => e.reason).sort()).toEqual(['BackOff', 'NodeNotReady', 'Pulled']);
    } finally {
      api.pods.delete(`monitoring/${rich.metadata.name}`);
    }
  });

  it('says what client-node says on 403, 401, 500, a hang (within its deadline) and a closed port', async () => {
    const same = async (call: (k: KubeReader) => Promise<unknown>, direct: KubeReader, library: KubeReader) => {
      const [a, b] = [await codeOf(call(direct)), await codeOf(call(library))];
      expect(a).toBe(b);
      return a;
    };
    api.denials = [{ verb: 'list', resource: 'pods' }];
    try {
      expect(await same((k) => k.listPodsOnNode('gpu-node-1'), directWith(api.kubeconfig()), kube)).toMatch(/^KUBE_FORBIDDEN: forbidden: nodediag needs permission "list" on pods .*cannot list resource "pods"/);
    } finally {
      api.denials = [];
    }
    expect(await same((k) => k.getNode('gpu-node-1'), directWith(api.kubeconfig('wrong-token-999999')), clientWith(api.kubeconfig('wrong-token-999999')))).toMatch(/^KUBE_UNAUTHORIZED: .*401/);
    api.faults = { failWith: 500 };
    try {
      expect(await same((k) => k.listNodes(), directWith(api.kubeconfig()), kube)).toMatch(/^KUBE_ERROR: .*answered 500/);
    } finally {
      api.faults = {};
    }
    api.faults = { hang: true };
    try {
      const started = Date.now();
      expect(await codeOf(directWith(api.kubeconfig(), 300).listNodes())).toMatch(/^KUBE_UNREACHABLE: .*no answer in time/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      api.faults = {};
    }
    const closed = api.kubeconfig().replace(/:\d+\n/, `:${await freePort()}\n`);
    expect(await same((k) => k.listNodes(), directWith(closed), clientWith(closed))).toMatch(/^KUBE_UNREACHABLE: .*ECONNREFUSED/);
  });

  it('refuses an answer over 64 MiB and stops reading one that would not end; reads one of several MiB', async () => {
    let sent = 0;
    let closedEarly = false;
    const answer: RequestListener = (req, res) => {
      const size = req.url!.includes('endless') ? 1024 * 1024 * 1024 : req.url!.startsWith('/api/v1/nodes') ? 64 * 1024 * 1024 + 1 : 6 * 1024 * 1024;
      res.writeHead(200, { 'content-type': 'application/json' });
      const head = '{"kind":"NodeList","items":[],"padding":"';
      const tail = '"}';
      res.write(head);
      sent = head.length;
      const chunk = 'x'.repeat(256 * 1024);
      const pump = () => {
        while (sent < size - tail.length) {
          const piece = chunk.slice(0, Math.min(chunk.length, size - tail.length - sent));
          sent += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end(tail);
      };
      res.on('close', () => (closedEarly = !res.writableFinished));
      pump();
    };
    await withOwnServer(answer, async (kc) => {
      const reader = directWith(kc, 20_000);
      expect(await reader.listPodsOnNode('n')).toEqual([]);
      expect(await codeOf(reader.listNodes())).toMatch(/^KUBE_ERROR: .*answer to list nodes was over 64 MiB/);
      // An answer that would never end is cut off, not read to its end.
      expect(await codeOf(reader.listNodes('endless'))).toMatch(/^KUBE_ERROR: .*over 64 MiB/);
      await new Promise((r) => setTimeout(r, 200));
      expect(closedEarly).toBe(true);
      expect(sent).toBeLessThan(128 * 1024 * 1024);
    });
  });

  it('proves itself with a client certificate where the kubeconfig has one (the server refuses the handshake without it)', async () => {
    const clientTls = selfSignedCert([], ['nodediag-client'])!;
    const answer: RequestListener = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(makeNode('mtls-node', '10.0.0.9')));
    };
    await withOwnServer(
      answer,
      async (base) => {
        const withCert = base.replace(/token: .*/, `client-certificate-data: ${Buffer.from(clientTls.cert).toString('base64')}\n    client-key-data: ${Buffer.from(clientTls.key).toString('base64')}`);
        expect((await directWith(withCert).getNode('mtls-node'))?.name).toBe('mtls-node');
        expect(await codeOf(directWith(base).getNode('mtls-node'))).toMatch(/^KUBE_UNREACHABLE/);
      },
      { ca: clientTls.cert, requestCert: true, rejectUnauthorized: true },
    );
  });

  it('sends a GET again, once, when a kept-alive connection was closed under it; not more', async () => {
    let served = 0;
    let dropEvery = 2;
    const perSocket = new WeakMap<object, number>();
    const answer: RequestListener = (req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      // The n-th request on one connection finds it closed, as after a server's idle timeout.
      if (n % dropEvery === 0) return void req.socket.destroy();
      served++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(makeNode('kept-alive', '10.0.0.8')));
    };
    await withOwnServer(answer, async (kc) => {
      const reader = directWith(kc);
      expect((await reader.getNode('kept-alive'))?.name).toBe('kept-alive');
      expect((await reader.getNode('kept-alive'))?.name).toBe('kept-alive');
      expect(served).toBe(2);
      // Every connection closed on its first request: no retry loop, the failure said.
      dropEvery = 1;
      expect(await codeOf(reader.getNode('kept-alive'))).toMatch(/^KUBE_UNREACHABLE: .*ECONNRESET/);
      expect(served).toBe(2);
    });
  });

  it('as the terminal\'s client: reads directly, writes through client-node', async () => {
    const path = join(dir, 'kc-terminal');
    writeFileSync(path, api.kubeconfig());
    const terminal = createKubeClientInWorker({ kubeconfigPath: path, requestTimeoutMs: 2000 }).client!;
    const from = api.requests.length;
    expect((await terminal.getNode('cpu-node-1'))!.unschedulable).toBe(false);
    await terminal.setUnschedulable('cpu-node-1', true);
    expect(api.nodes.get('cpu-node-1')!.spec.unschedulable).toBe(true);
    expect((await terminal.getNode('cpu-node-1'))!.unschedulable).toBe(true);
    await terminal.setUnschedulable('cpu-node-1', false);
    expect(api.nodes.get('cpu-node-1')!.spec.unschedulable).toBe(false);
    const calls = api.requests.slice(from).map((r) => `${r.method} ${r.userAgent === 'nodediag' ? 'direct' : 'client-node'}`);
    expect(calls).toEqual(['GET direct', 'PATCH client-node', 'GET direct', 'PATCH client-node']);
  });
});
