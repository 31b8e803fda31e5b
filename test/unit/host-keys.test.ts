import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { fingerprintSha256, hostsFieldMatches, keyTypeOf, parseKnownHosts, verifyHostKey } from '../../src/adapters/host-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'nodediag-hk-'));
function keygen(name: string): { blob: Buffer; line: string; fingerprint: string } {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)]);
  const line = readFileSync(join(dir, `${name}.pub`), 'utf8').trim();
  const fingerprint = execFileSync('ssh-keygen', ['-lf', join(dir, `${name}.pub`)], { encoding: 'utf8' }).split(' ')[1]!;
  return { blob: Buffer.from(line.split(' ')[1]!, 'base64'), line, fingerprint };
}
const a = keygen('a');
const b = keygen('b');

describe('host-key pinning', () => {
  it('computes the same SHA256 fingerprint as ssh-keygen -lf', () => {
    expect(fingerprintSha256(a.blob)).toBe(a.fingerprint);
    expect(keyTypeOf(a.blob)).toBe('ssh-ed25519');
  });

  it('accepts the pinned key and refuses another one as a mismatch', () => {
    expect(verifyHostKey({ kind: 'fingerprints', fingerprints: [a.fingerprint] }, a.blob)).toMatchObject({ ok: true });
    expect(verifyHostKey({ kind: 'fingerprints', fingerprints: [a.fingerprint] }, b.blob)).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('reads known_hosts: plain, [host]:port, hashed names, negation and @revoked', () => {
    const salt = Buffer.from('0123456789abcdef0123');
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.9]:2222').digest('base64')}`;
    const [type, key] = a.line.split(' ');
    const text = [
      `# comment`,
      `10.0.0.7,gpu-node-7 ${type} ${key}`,
      `[10.0.0.8]:2222 ${type} ${key}`,
      `${hashed} ${type} ${key}`,
      `*.example,!bad.example ${type} ${key}`,
      `@revoked 10.0.0.10 ${b.line}`,
      'garbage',
    ].join('\n');
    const entries = parseKnownHosts(text);
    const pin = (host: string, port = 22) => ({ kind: 'known-hosts' as const, entries, host, port });
    expect(verifyHostKey(pin('10.0.0.7'), a.blob).ok).toBe(true);
    expect(verifyHostKey(pin('10.0.0.8', 2222), a.blob).ok).toBe(true);
    expect(verifyHostKey(pin('10.0.0.8'), a.blob)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(verifyHostKey(pin('10.0.0.9', 2222), a.blob).ok).toBe(true);
    expect(verifyHostKey(pin('10.0.0.7'), b.blob)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(verifyHostKey(pin('10.0.0.10'), b.blob)).toMatchObject({ ok: false, reason: 'revoked' });
    expect(hostsFieldMatches('*.example,!bad.example', 'good.example', 22)).toBe(true);
    expect(hostsFieldMatches('*.example,!bad.example', 'bad.example', 22)).toBe(false);
  });
});
