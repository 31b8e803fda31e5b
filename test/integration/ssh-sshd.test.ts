/**
 * The SSH adapter against a real OpenSSH sshd on loopback.
 */
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createSshConnector } from '../../src/adapters/ssh.js';
import { loadCatalogs } from '../../src/catalog/load.js';
import type { SshProbe } from '../../src/catalog/schema.js';
import { NodediagError } from '../../src/errors.js';
import { systemClock, type SshTarget } from '../../src/ports.js';
import { runSshProbes } from '../../src/probes/ssh-collector.js';
import { createRedactor } from '../../src/redact.js';
import { freePort, startSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
const connector = createSshConnector();

function target(over: Partial<SshTarget> = {}): SshTarget {
  return {
    node: 'loopback',
    host: '127.0.0.1',
    port: sshd.port,
    user: sshd.user,
    privateKeyPath: sshd.clientKeyPath,
    hostKey: { kind: 'fingerprints', fingerprints: [sshd.hostKeyFingerprint] },
    connectTimeoutMs: 3000,
    ...over,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof NodediagError ? err.code : `other: ${(err as Error).message}`;
  }
}

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd.stop();
});

describe('ssh adapter against real sshd', () => {
  it('runs a command and returns its output and exit status', async () => {
    const shell = await connector.connect(target());
    try {
      const ok = await shell.exec('echo hello; echo oops >&2', { timeoutMs: 5000, maxOutputBytes: 1000 });
      expect(ok).toMatchObject({ exitCode: 0, stdout: 'hello\n', stderr: 'oops\n', timedOut: false, truncated: false });
      const bad = await shell.exec('exit 7', { timeoutMs: 5000, maxOutputBytes: 1000 });
      expect(bad.exitCode).toBe(7);
    } finally {
      shell.close();
    }
  });

  it('gives up on a command at its deadline', async () => {
    const shell = await connector.connect(target());
    try {
      const started = Date.now();
      const r = await shell.exec('sleep 30', { timeoutMs: 400, maxOutputBytes: 1000 });
      expect(r.timedOut).toBe(true);
      expect(r.exitCode).toBeNull();
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      shell.close();
    }
  });

  it('cuts output at the cap', async () => {
    const shell = await connector.connect(target());
    try {
      const r = await shell.exec('yes nodediag | head -c 5000000', { timeoutMs: 5000, maxOutputBytes: 10_000 });
      expect(r.truncated).toBe(true);
      expect(r.stdout.length).toBeLessThanOrEqual(10_000);
    } finally {
      shell.close();
    }
  });

  it('keeps more parallel commands than sshd allows sessions (MaxSessions 10) working', async () => {
    const shell = await connector.connect(target());
    try {
      const results = await Promise.all(Array.from({ length: 14 }, (_, i) => shell.exec(`echo ${i}`, { timeoutMs: 5000, maxOutputBytes: 100 })));
      expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 14 }, (_, i) => String(i)));
    } finally {
      shell.close();
    }
  });

  it('refuses a host whose key is not the pinned one, loudly', async () => {
    const refused: string[] = [];
    const loud = createSshConnector({ onHostKeyRefused: (node, v) => refused.push(`${node}:${v.reason}`) });
    const p = loud.connect(target({ hostKey: { kind: 'fingerprints', fingerprints: ['SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'] } }));
    await expect(p).rejects.toThrow(/POSSIBLE ATTACK: loopback presented host key ssh-ed25519 SHA256:/);
    expect(refused).toEqual(['loopback:mismatch']);
  });

  it('refuses a host missing from known_hosts and accepts it once listed', async () => {
    const kh = join(sshd.dir, 'known_hosts');
    writeFileSync(kh, `other.example ${sshd.hostKeyLine}\n`);
    expect(await codeOf(connector.connect(target({ hostKey: { kind: 'known-hosts', path: kh } })))).toBe('HOST_KEY_UNKNOWN');
    writeFileSync(kh, `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n`);
    const shell = await connector.connect(target({ hostKey: { kind: 'known-hosts', path: kh } }));
    shell.close();
  });

  it('reports a refused key, a missing key file, a closed port and a silent server as distinct errors', async () => {
    expect(await codeOf(connector.connect(target({ privateKeyPath: sshd.otherKeyPath })))).toBe('SSH_AUTH_FAILED');
    expect(await codeOf(connector.connect(target({ privateKeyPath: join(sshd.dir, 'missing') })))).toBe('KEY_FILE_UNREADABLE');
    expect(await codeOf(connector.connect(target({ port: await freePort() })))).toBe('SSH_UNREACHABLE');
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const started = Date.now();
    const err = await connector.connect(target({ port: (silent.address() as { port: number }).port, connectTimeoutMs: 800 })).then(() => null, (e: NodediagError) => e);
    expect(err).toMatchObject({ code: 'SSH_TIMEOUT', message: expect.stringMatching(/connected, but no SSH handshake within 800 ms/) });
    expect(Date.now() - started).toBeLessThan(3000);
    silent.close();
  });

  it('gives up on a host that never completes the TCP handshake (connect timeout)', async () => {
    // A listener whose process never accepts and whose accept queue is full: the kernel drops
    // further SYNs, exactly what a firewalled or dead host does to the bot.
    const code = `const s = require('net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(s.address().port + '\\n');
      setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 50);
    });`;
    const stuck = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
    const fillers: Socket[] = [];
    try {
      const port = await new Promise<number>((r) => stuck.stdout!.once('data', (d: Buffer) => r(Number(String(d).trim()))));
      await new Promise((r) => setTimeout(r, 200));
      for (let i = 0; i < 2; i++) {
        const s = connect(port, '127.0.0.1');
        fillers.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      const probe = connect(port, '127.0.0.1');
      fillers.push(probe);
      expect(await new Promise((r) => (probe.once('connect', () => r('connected')), setTimeout(() => r('no handshake'), 500)))).toBe('no handshake');

      const started = Date.now();
      const err = await connector.connect(target({ port, connectTimeoutMs: 800 })).then(() => null, (e: NodediagError) => e);
      expect(err).toMatchObject({ code: 'SSH_TIMEOUT', message: expect.stringMatching(/no TCP connection within 800 ms/) });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      for (const s of fillers) s.destroy();
      stuck.kill('SIGKILL');
    }
  });

  it('runs every catalog probe in one batch and reports each (this host is not a Kubernetes node)', async () => {
    const catalogs = loadCatalogs();
    const probes = catalogs.probes.filter((p): p is SshProbe => p.transport === 'ssh');
    const shell = await connector.connect(target());
    try {
      const { observations: obs, layout } = await runSshProbes(shell, probes, {
        sudo: false,
        overrides: {},
        maxOutputBytes: 64 * 1024,
        clock: systemClock,
        redact: createRedactor(),
      });
      // Reported with the layout probes first, then the others in catalog order.
      expect(obs.map((o) => o.check)).toEqual([...probes.filter((p) => p.stage === 'layout'), ...probes.filter((p) => p.stage !== 'layout')].map((p) => p.id));
      // No systemd unit for containerd here: the layout says so and falls back to the defaults.
      expect(layout.flavour).toBe('unknown');
      expect(layout.params.socket).toBe('/run/containerd/containerd.sock');
      for (const o of obs) expect(['ok', 'failed', 'timeout']).toContain(o.status);
      const clock = obs.find((o) => o.check === 'time-sync')!;
      expect(clock.lines.some((l) => /^clock-skew-seconds=0 /.test(l))).toBe(true);
      expect(obs.find((o) => o.check === 'swap')!.lines[0]).toMatch(/^Filename/);
    } finally {
      shell.close();
    }
  });

  it('starts the probes that need the layout as soon as the layout probe has reported, not when the probes beside it end', async () => {
    const probe = (id: string, script: string, stage: 'layout' | 'main' = 'main'): SshProbe => ({ id, title: id, transport: 'ssh', stage, script, timeoutMs: 8000, parser: 'lines' });
    const probes = [
      probe('finder', 'echo "unit containerd load=loaded active=active pid=0"; echo "bin containerd /opt/cd/bin/containerd"', 'layout'),
      probe('beside', 'sleep 2; echo "beside-end=$(date +%s%3N)"'),
      probe('after', 'echo "after-start=$(date +%s%3N) containerd={{containerd}}"'),
    ];
    const shell = await connector.connect(target());
    try {
      const { observations } = await runSshProbes(shell, probes, { sudo: false, overrides: {}, maxOutputBytes: 64 * 1024, clock: systemClock, redact: createRedactor() });
      const line = (id: string) => observations.find((o) => o.check === id)!.lines.join('\n');
      // Rendered with the path the finder reported…
      expect(line('after')).toMatch(/containerd='?\/opt\/cd\/bin\/containerd'?$/);
      // …and run while `beside` still slept.
      const afterStart = Number(/after-start=(\d+)/.exec(line('after'))![1]);
      const besideEnd = Number(/beside-end=(\d+)/.exec(line('beside'))![1]);
      expect(besideEnd - afterStart).toBeGreaterThan(1000);
      expect(observations.map((o) => o.check)).toEqual(['finder', 'beside', 'after']);
    } finally {
      shell.close();
    }
  });
});
