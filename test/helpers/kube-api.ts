/**
 * The API stand-in for a test file: started before its tests with nodediag's
 * CustomResourceDefinitions (manifests/kubernetes/crd.yaml) served, a
 * kubeconfig written for it, stopped after them.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeApiStandin } from '../../src/sim/kube-standin.js';
import { selfSignedCert } from '../../src/sim/self-signed.js';

/** Writes a one-context kubeconfig with a bearer token: trusting `caPem`, or (without it) skipping TLS verification. */
export function writeKubeconfig(path: string, o: { name: string; server: string; token: string; caPem?: string }): void {
  const tls = o.caPem ? { 'certificate-authority-data': Buffer.from(o.caPem).toString('base64') } : { 'insecure-skip-tls-verify': true };
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: o.name, cluster: { server: o.server, ...tls } }],
    users: [{ name: o.name, user: { token: o.token } }],
    contexts: [{ name: o.name, context: { cluster: o.name, user: o.name } }],
    'current-context': o.name,
  };
  writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
}

/** The CustomResourceDefinitions of manifests/kubernetes/crd.yaml (NodeIncident, NodediagRails). */
export const NODEDIAG_CRDS = parseAllDocuments(readFileSync(join(process.cwd(), 'manifests', 'kubernetes', 'crd.yaml'), 'utf8')).map((d) => d.toJS());

/** Registers the jest hooks; `kubeconfigPath()` is known once the stand-in has started. */
export function useKubeStandin(token: string): { api: KubeApiStandin; kubeconfigPath: () => string } {
  const api = new KubeApiStandin({ token, tls: selfSignedCert(['127.0.0.1']) });
  for (const crd of NODEDIAG_CRDS) api.registerCrd(crd);
  let path = '';
  beforeAll(async () => {
    await api.start();
    path = join(mkdtempSync(join(tmpdir(), 'nodediag-kube-')), 'kubeconfig');
    writeFileSync(path, api.kubeconfig());
  });
  afterAll(() => api.stop());
  return { api, kubeconfigPath: () => path };
}
