/**
 * Which kubeconfigs the terminal reads itself (kube-direct.ts) and which it
 * leaves to client-node: only the plain kind, read as client-node reads it;
 * anything it does not know goes to the library.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { directKubeTarget } from '../../src/adapters/kube-direct.js';

const dir = mkdtempSync(join(tmpdir(), 'nodediag-kube-direct-'));
const CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>, extra = ''): string {
  const block = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`).join('\n');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: prod',
    '  cluster:',
    block(cluster),
    'users:',
    '- name: sre',
    '  user:',
    Object.keys(user).length ? block(user) : '    {}',
    'contexts:',
    '- name: prod',
    '  context:',
    '    cluster: prod',
    '    user: sre',
    'current-context: prod',
    extra,
  ].join('\n');
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const server = 'https://10.0.0.1:6443';
const caData = Buffer.from(CA).toString('base64');

describe('direct Kubernetes reads: which kubeconfigs', () => {
  it('takes a token with the CA as data, the trailing slash of the server dropped', () => {
    const t = directKubeTarget({ kubeconfigPath: write('token', kubeconfig({ server: `${server}/`, 'certificate-authority-data': caData }, { token: 'abc.def' })) });
    expect(t).toEqual({ server, ca: Buffer.from(CA), token: 'abc.def' });
  });

  it('reads certificate files relative to the kubeconfig, as client-node does, the file before the data', () => {
    const sub = join(dir, 'certs-rel');
    mkdirSync(join(sub, 'pki'), { recursive: true });
    writeFileSync(join(sub, 'pki', 'ca.crt'), CA);
    writeFileSync(join(sub, 'pki', 'client.crt'), 'CLIENT CERT');
    writeFileSync(join(sub, 'pki', 'client.key'), 'CLIENT KEY');
    const path = join(sub, 'config');
    writeFileSync(path, kubeconfig({ server, 'certificate-authority': 'pki/ca.crt', 'certificate-authority-data': Buffer.from('other').toString('base64') }, { 'client-certificate': 'pki/client.crt', 'client-key': join(sub, 'pki', 'client.key') }));
    expect(directKubeTarget({ kubeconfigPath: path })).toEqual({ server, ca: Buffer.from(CA), cert: Buffer.from('CLIENT CERT'), key: Buffer.from('CLIENT KEY') });
  });

  it('takes the named context over the current one, and KUBECONFIG when it names one file', () => {
    const doc = [
      'apiVersion: v1',
      'clusters:',
      '- name: prod',
      `  cluster: { server: "${server}", certificate-authority-data: "${caData}" }`,
      '- name: elsewhere',
      '  cluster: { server: "https://10.9.9.9:6443" }',
      'users:',
      '- name: sre',
      '  user: { token: t1 }',
      'contexts:',
      '- name: prod',
      '  context: { cluster: prod, user: sre }',
      '- name: other',
      '  context: { cluster: elsewhere, user: sre }',
      'current-context: prod',
    ].join('\n');
    const path = write('contexts', doc);
    expect(directKubeTarget({ kubeconfigPath: path })?.server).toBe(server);
    expect(directKubeTarget({ kubeconfigPath: path, context: 'other' })?.server).toBe('https://10.9.9.9:6443');
    expect(directKubeTarget({ kubeconfigPath: path, context: 'missing' })).toBeNull();
    expect(directKubeTarget({ env: { KUBECONFIG: path } })?.server).toBe(server);
    // Several files are merged by client-node's rules: left to it.
    expect(directKubeTarget({ env: { KUBECONFIG: [path, path].join(delimiter) } })).toBeNull();
  });

  it.each([
    ['an exec plugin', {}, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws', args: ['eks', 'get-token'] } }],
    ['an auth provider', {}, { 'auth-provider': { name: 'oidc', config: { 'id-token': 'x' } } }],
    ['a token file', {}, { 'token-file': '/var/run/secrets/token' }],
    ['basic auth', {}, { username: 'admin', password: 'secret' }],
    ['impersonation', {}, { token: 't', as: 'system:admin' }],
    ['a proxy', { 'proxy-url': 'http://proxy:3128' }, { token: 't' }],
    ['a TLS server name', { 'tls-server-name': 'api.internal' }, { token: 't' }],
    ['TLS verification off', { 'insecure-skip-tls-verify': true }, { token: 't' }],
    ['an http server', { server: 'http://10.0.0.1:8080' }, { token: 't' }],
    ['a client certificate without its key', {}, { 'client-certificate-data': caData }],
    ['a certificate file that is not there', { 'certificate-authority': '/nonexistent/ca.crt' }, { token: 't' }],
    ['a key it does not know', { 'disable-compression': true }, { token: 't' }],
  ])('leaves %s to client-node', (_what, cluster, user) => {
    const text = kubeconfig({ server, 'certificate-authority-data': caData, ...cluster }, user);
    expect(directKubeTarget({ kubeconfigPath: write(`left-${Math.random().toString(36).slice(2)}`, text) })).toBeNull();
  });

  it('leaves to client-node what it cannot read: no file, not YAML, a name twice, in-cluster credentials', () => {
    expect(directKubeTarget({ kubeconfigPath: join(dir, 'absent') })).toBeNull();
    expect(directKubeTarget({ kubeconfigPath: write('garbage', 'clusters: [unclosed') })).toBeNull();
    const dup = kubeconfig({ server }, { token: 't' }).replace('users:', '- name: prod\n  cluster:\n    server: https://10.1.1.1:6443\nusers:');
    expect(directKubeTarget({ kubeconfigPath: write('dup', dup) })).toBeNull();
    expect(directKubeTarget({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' } })).toBeNull();
  });
});
