/**
 * A real OpenSSH sshd on loopback for integration tests: its own host key,
 * an authorized client key, no PAM. As root it logs in a user of its own
 * whose shell is /bin/sh: root's login shell reads the host's ~/.bashrc
 * (pyenv and the like take half a second per session), which would time
 * these tests, not the adapter.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fingerprintSha256 } from '../../src/adapters/host-keys.js';
import { waitTcp } from '../lab/lab.js';
import { freePort } from '../../src/sim/free-port.js';

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
export { freePort };

const TEST_USER = 'nodediag-sshd-test';

/** A login for the tests' sshd: /bin/sh, home / (created once). */
function testUser(): string {
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/', '--shell', '/bin/sh', TEST_USER]);
  }
  // UsePAM no: an account with a locked password ("!") is refused even for keys; "*" is no password, not locked.
  execFileSync('usermod', ['-p', '*', TEST_USER]);
  return TEST_USER;
}

export async function startSshd(extraConfig = ''): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-sshd-'));
  const keygen = (name: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)]);
  keygen('host_key');
  keygen('client_key');
  keygen('other_key');
  // sshd reads authorized_keys as the user logging in (the test user when run as root).
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o644 });
  chmodSync(dir, 0o755);
  const port = await freePort();
  const user = process.getuid?.() === 0 ? testUser() : userInfo().username;
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
