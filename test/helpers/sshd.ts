/**
 * A real OpenSSH sshd on loopback for integration tests: its own host key,
 * an authorized client key, no PAM. Runs as the current user.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fingerprintSha256 } from '../../src/adapters/host-keys.js';
import { waitTcp } from '../lab/lab.js';

export interface TestSshd {
  port: number;
  user: string;
  clientKeyPath: string;
  otherKeyPath: string;
  hostKeyFingerprint: string;
  hostKeyLine: string;
  dir: string;
  stop(): Promise<void>;
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startSshd(extraConfig = ''): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-sshd-'));
  const keygen = (name: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)]);
  keygen('host_key');
  keygen('client_key');
  keygen('other_key');
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o600 });
  const port = await freePort();
  const user = userInfo().username;
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'LogLevel ERROR',
      extraConfig,
      '',
    ].join('\n'),
  );
  if (!existsSync('/run/sshd') && process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += String(d)));
  try {
    await waitTcp('127.0.0.1', port, 10_000);
  } catch {
    child.kill('SIGKILL');
    throw new Error(`sshd did not start: ${stderr}`);
  }
  const hostPub = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim();
  return {
    port,
    user,
    dir,
    clientKeyPath: join(dir, 'client_key'),
    otherKeyPath: join(dir, 'other_key'),
    hostKeyFingerprint: fingerprintSha256(Buffer.from(hostPub.split(' ')[1]!, 'base64')),
    hostKeyLine: hostPub,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 50));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
