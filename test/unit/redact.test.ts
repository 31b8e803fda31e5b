import { createRedactor, redact } from '../../src/redact.js';
import { ORDINARY_LINES, SECRET_CORPUS } from '../fixtures/secrets-corpus.js';

describe('redaction', () => {
  const secrets = {
    bot: 'xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
    app: 'xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef',
    jwt: 'eyJhbGciOiJSUzI1NiIsImtpZCI6IkFCQyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6eCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ',
    pem: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZWQy\n-----END OPENSSH PRIVATE KEY-----',
  };

  it.each([
    ['a Slack bot token', `token=${secrets.bot} failed`, secrets.bot],
    ['an app-level token', `using ${secrets.app}`, secrets.app],
    ['a bearer header', `Authorization: Bearer abc.def-ghi_jkl0123456789`, 'abc.def-ghi_jkl0123456789'],
    ['a service-account JWT', `token: ${secrets.jwt}`, secrets.jwt],
    ['a private key block', `key:\n${secrets.pem}\nafter`, 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ'],
    ['a truncated private key', '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx', 'MIIEowIBAAKCAQEAx'],
    ['kubeconfig client-key-data', 'client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0t', 'LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0t'],
    ['a password in a URL', 'https://admin:hunter2hunter2@registry.local/v2/', 'hunter2hunter2'],
    ['password=…', 'db password=correct-horse-battery', 'correct-horse-battery'],
    ['an AWS key id', 'AKIAIOSFODNN7EXAMPLE used', 'AKIAIOSFODNN7EXAMPLE'],
  ])('removes %s', (_what, text, secret) => {
    const out = redact(text);
    expect(out).not.toContain(secret);
    expect(out).toContain('[REDACTED]');
  });

  it('removes known secret values wherever they appear, and leaves ordinary text alone', () => {
    const r = createRedactor(['s3cr3t-signing-value', 'abc']);
    expect(r('sig s3cr3t-signing-value!')).toBe('sig [REDACTED]!');
    expect(r('abc stays: short values are not masked')).toBe('abc stays: short values are not masked');
    const line = '2026-11-22T21:32:25+0000 n containerd[9249]: containerd: failed to get listener for main endpoint: is a directory';
    expect(r(line)).toBe(line);
  });
});

describe('the corpus of secrets found on GPU nodes', () => {
  it.each(SECRET_CORPUS.map((c) => [c.what, c] as const))('removes %s', (_what, c) => {
    expect(redact(c.line)).not.toContain(c.secret);
    expect(redact(c.line)).toContain('[REDACTED]');
  });

  it.each(ORDINARY_LINES)('leaves ordinary evidence whole: %s', (line) => {
    expect(redact(line)).toBe(line);
  });

  it('is idempotent (a redacted text redacted again is the same)', () => {
    for (const c of SECRET_CORPUS) expect(redact(redact(c.line))).toBe(redact(c.line));
  });
});
