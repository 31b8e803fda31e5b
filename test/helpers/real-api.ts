/**
 * A REAL Kubernetes API server for the custom-resource tests: upstream
 * apiextensions-apiserver (built from Debian's Go packages by
 * .ci/build-apiserver.sh, which says where: NODEDIAG_APISERVER_BIN) over a
 * real etcd, serving nodediag's CRDs (manifests/kubernetes/crd.yaml) and a
 * Lease CRD standing in for coordination.k8s.io (the server has no built-in
 * groups). It enforces what the stand-in only imitates: schema validation,
 * the CRDs' CEL rules, the status subresource, resourceVersion conflicts.
 * Where it is not built, the tests that need it say so and are skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODEDIAG_CRDS, writeKubeconfig } from './kube-api.js';
import { freePort } from './sshd.js';

/** coordination.k8s.io/v1 Lease as a CRD, with the fields the lease lock writes. */
const LEASE_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'leases.coordination.k8s.io', annotations: { 'api-approved.kubernetes.io': 'https://github.com/kubernetes/enhancements/pull/1102' } },
  spec: {
    group: 'coordination.k8s.io',
    scope: 'Namespaced',
    names: { kind: 'Lease', listKind: 'LeaseList', plural: 'leases', singular: 'lease' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                properties: {
                  holderIdentity: { type: 'string' },
                  leaseDurationSeconds: { type: 'integer' },
                  acquireTime: { type: 'string' },
                  renewTime: { type: 'string' },
                  leaseTransitions: { type: 'integer' },
                },
              },
            },
          },
        },
      },
    ],
  },
};

/** What a test file gets: whether the server runs, its kubeconfig, and raw requests for what the adapters do not do. */
export interface RealApi {
  readonly available: boolean;
  kubeconfigPath(): string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, any> }>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const binary = process.env.NODEDIAG_APISERVER_BIN;

/** Whether the real API server can run here (built, and etcd installed). */
export const REAL_API_AVAILABLE = Boolean(binary && existsSync(binary) && ['/usr/bin/etcd', '/usr/local/bin/etcd'].some(existsSync));

if (!REAL_API_AVAILABLE) {
  process.stderr.write('REAL API SERVER NOT AVAILABLE: the tests against it are skipped (build it with `bash .ci/build-apiserver.sh`, then set NODEDIAG_APISERVER_BIN; etcd from Debian\'s etcd-server)\n');
}

/** Registers the jest hooks that start etcd and the server before a test file's tests, and stop them after. */
export function useRealApiServer(): RealApi {
  const procs: ChildProcess[] = [];
  let port = 0;
  let token = '';
  let kubeconfig = '';
  const call: RealApi['call'] = (method, path, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        { host: '127.0.0.1', port, path, method, rejectUnauthorized: false, headers: { authorization: `Bearer ${token}`, ...(data ? { 'content-type': 'application/json' } : {}), ...headers }, timeout: 10_000 },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += String(c)));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: String(res.headers['content-type']).includes('json') ? JSON.parse(text) : { text } }));
        },
      );
      req.on('error', reject);
      req.end(data);
    });

  beforeAll(async () => {
    if (!REAL_API_AVAILABLE) return;
    const dir = mkdtempSync(join(tmpdir(), 'nodediag-real-api-'));
    const [client, peer] = [await freePort(), await freePort()];
    port = await freePort();
    const start = (cmd: string, args: string[], log: string) => {
      const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let tail = '';
      p.stderr!.on('data', (c) => (tail = (tail + String(c)).slice(-4000)));
      p.on('exit', (code) => code && writeFileSync(join(dir, log), tail));
      procs.push(p);
    };
    start('etcd', ['--data-dir', join(dir, 'etcd'), '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`, '--listen-peer-urls', `http://127.0.0.1:${peer}`], 'etcd.log');
    start(binary!, [`--etcd-servers=http://127.0.0.1:${client}`, `--secure-port=${port}`, '--bind-address=127.0.0.1', `--cert-dir=${join(dir, 'certs')}`, `--token-file=${join(dir, 'token')}`], 'apiserver.log');
    for (const deadline = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 200))) {
      if (Date.now() > deadline) throw new Error(`the real API server did not get ready (logs in ${dir})`);
      if (!existsSync(join(dir, 'token'))) continue;
      token = readFileSync(join(dir, 'token'), 'utf8');
      if ((await call('GET', '/readyz').catch(() => ({ status: 0 }))).status === 200) break;
    }
    for (const crd of [...NODEDIAG_CRDS, LEASE_CRD]) {
      const r = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
      if (r.status !== 201) throw new Error(`the real API server refused the CRD ${crd.metadata.name}: ${r.status} ${r.body.message}`);
    }
    for (const crd of [...NODEDIAG_CRDS, LEASE_CRD]) {
      for (const deadline = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 100))) {
        const r = await call('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
        if (r.body.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True')) break;
        if (Date.now() > deadline) throw new Error(`the CRD ${crd.metadata.name} was not established`);
      }
    }
    kubeconfig = join(dir, 'kubeconfig');
    writeKubeconfig(kubeconfig, { name: 'real', server: `https://127.0.0.1:${port}`, token });
  }, 90_000);

  afterAll(() => {
    for (const p of procs.reverse()) p.kill('SIGTERM');
  });

  return { available: REAL_API_AVAILABLE, kubeconfigPath: () => kubeconfig, call };
}
