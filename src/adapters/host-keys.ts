/**
 * Host-key pinning: SHA256 fingerprints as `ssh-keygen -lf` prints them, and
 * OpenSSH known_hosts files (plain and hashed host names, `[host]:port`,
 * wildcards, `@revoked`). Pure apart from reading the known_hosts file.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** `SHA256:<base64 without padding>` of a raw SSH public key blob. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (e.g. `ssh-ed25519`). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  if (len > 64 || keyBlob.length < 4 + len) return 'unknown';
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** Normalises a pinned fingerprint (`SHA256:abc=` and `abc` both accepted). */
export function normaliseFingerprint(fp: string): string {
  const body = fp.trim().replace(/^SHA256:/i, '').replace(/=+$/, '');
  return `SHA256:${body}`;
}

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  marker: 'revoked' | 'cert-authority' | null;
  hosts: string;
  keyType: string;
  keyBlob: Buffer;
}

/** Parses known_hosts text; malformed lines are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = null;
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') {
      marker = parts[0] === '@revoked' ? 'revoked' : 'cert-authority';
      parts.shift();
    }
    const [hosts, keyType, b64] = parts;
    if (!hosts || !keyType || !b64) continue;
    const keyBlob = Buffer.from(b64, 'base64');
    if (keyBlob.length === 0) continue;
    out.push({ marker, hosts, keyType, keyBlob });
  }
  return out;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function hostMatchesPattern(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  return globToRegExp(pattern).test(name);
}

/** Whether a known_hosts `hosts` field names this host and port (negations honoured). */
export function hostsFieldMatches(field: string, host: string, port: number): boolean {
  const name = port === 22 ? host : `[${host}]:${port}`;
  let matched = false;
  for (const pattern of field.split(',')) {
    if (pattern.startsWith('!')) {
      if (hostMatchesPattern(pattern.slice(1), name)) return false;
    } else if (hostMatchesPattern(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The decision on a presented host key. */
export type HostKeyVerdict =
  | { ok: true; fingerprint: string }
  | { ok: false; reason: 'unknown' | 'mismatch' | 'revoked'; presented: string; expected: string[] };

/** Pinned keys for one node, resolved from the inventory. */
export type ResolvedPin =
  | { kind: 'fingerprints'; fingerprints: string[] }
  | { kind: 'known-hosts'; entries: KnownHostEntry[]; host: string; port: number };

/** Reads a known_hosts file into a pin for one host. */
export function knownHostsPin(path: string, host: string, port: number): ResolvedPin {
  return { kind: 'known-hosts', entries: parseKnownHosts(readFileSync(path, 'utf8')), host, port };
}

/** Key types the pin accepts, to steer the SSH negotiation towards a pinned key. */
export function pinnedKeyTypes(pin: ResolvedPin): string[] | undefined {
  if (pin.kind !== 'known-hosts') return undefined;
  const types = pin.entries
    .filter((e) => e.marker === null && hostsFieldMatches(e.hosts, pin.host, pin.port))
    .map((e) => e.keyType);
  return types.length ? [...new Set(types)] : undefined;
}

/** Decides whether a presented host key is the pinned one. */
export function verifyHostKey(pin: ResolvedPin, keyBlob: Buffer): HostKeyVerdict {
  const presented = fingerprintSha256(keyBlob);
  const shown = `${keyTypeOf(keyBlob)} ${presented}`;
  if (pin.kind === 'fingerprints') {
    const expected = pin.fingerprints.map(normaliseFingerprint);
    if (expected.includes(presented)) return { ok: true, fingerprint: presented };
    return { ok: false, reason: expected.length ? 'mismatch' : 'unknown', presented: shown, expected };
  }
  const forHost = pin.entries.filter((e) => hostsFieldMatches(e.hosts, pin.host, pin.port));
  if (forHost.some((e) => e.marker === 'revoked' && e.keyBlob.equals(keyBlob))) {
    return { ok: false, reason: 'revoked', presented: shown, expected: [] };
  }
  const plain = forHost.filter((e) => e.marker === null);
  if (plain.some((e) => e.keyBlob.equals(keyBlob))) return { ok: true, fingerprint: presented };
  const expected = plain.map((e) => `${e.keyType} ${fingerprintSha256(e.keyBlob)}`);
  return { ok: false, reason: expected.length ? 'mismatch' : 'unknown', presented: shown, expected };
}
