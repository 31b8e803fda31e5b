/**
 * A throwaway self-signed TLS certificate for the stand-in API server (real
 * API servers speak HTTPS, and the real client insists on it), made with the
 * openssl command.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM certificate and key. */
export interface TlsPair {
  cert: string;
  key: string;
}

/** Creates a P-256 certificate valid for two days for the given IP addresses and DNS names; null when openssl is missing. */
export function selfSignedCert(ips: string[], dnsNames: string[] = ['localhost']): TlsPair | null {
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-tls-'));
  try {
    const san = [...ips.map((i) => `IP:${i}`), ...dnsNames.map((d) => `DNS:${d}`)].join(',');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=kube-apiserver-standin',
        '-addext', `subjectAltName=${san}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore', timeout: 15_000 },
    );
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
