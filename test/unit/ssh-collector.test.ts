/**
 * The two probe batches on one connection, against a shell that runs each
 * command with a real /bin/sh (standard input included) and records when
 * each was sent: the second batch's session must not wait for the layout.
 */
import { spawn } from 'node:child_process';
import type { SshProbe } from '../../src/catalog/schema.js';
import type { ExecOptions, ExecResult, RemoteShell } from '../../src/ports.js';
import { systemClock } from '../../src/ports.js';
import { runSshProbes } from '../../src/probes/ssh-collector.js';
import { createRedactor } from '../../src/redact.js';

/** Runs commands locally as sshd would (`sh -c <command>`), streaming stdout, writing `input` when it resolves. */
class LocalShell implements RemoteShell {
  readonly sent: Array<{ command: string; atMs: number; input?: string; inputAtMs?: number }> = [];

  exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    const record: { command: string; atMs: number; input?: string; inputAtMs?: number } = { command, atMs: Date.now() };
    this.sent.push(record);
    const started = Date.now();
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
        opts.onStdout?.(d);
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      if (opts.input) {
        void opts.input.then((text) => {
          record.inputAtMs = Date.now();
          record.input = text;
          child.stdin.end(text);
        });
      }
      child.on('close', (code) => resolve({ exitCode: code, stdout, stderr, timedOut: false, truncated: false, durationMs: Date.now() - started }));
    });
  }

  close(): void {}
}

const probe = (id: string, script: string, stage: 'layout' | 'main' = 'main'): SshProbe => ({ id, title: id, transport: 'ssh', stage, script, timeoutMs: 8000, parser: 'lines' });

describe('SSH probes in two batches', () => {
  it("opens the second batch's session at once and sends it the script rendered with the layout as soon as the layout probe reports", async () => {
    const shell = new LocalShell();
    const probes = [
      probe('finder', 'sleep 1; echo "unit containerd load=loaded active=active pid=0"; echo "bin containerd /opt/cd/bin/containerd"', 'layout'),
      probe('beside', 'sleep 3; echo beside'),
      probe('after', 'echo "containerd={{containerd}}"'),
    ];
    const started = Date.now();
    const { observations, layout } = await runSshProbes(shell, probes, { sudo: false, overrides: {}, maxOutputBytes: 64 * 1024, clock: systemClock, redact: createRedactor() });
    expect(shell.sent).toHaveLength(2);
    const [first, second] = shell.sent;
    // Both sessions opened together, before the layout probe's second of sleep was over…
    expect(second!.atMs - started).toBeLessThan(500);
    // The scripts come on standard input (the commands themselves quote nothing).
    expect(first!.input).toContain('finder');
    expect(second!.input).toContain('after');
    for (const c of [first!, second!]) expect(c.command).toMatch(/^env LC_ALL=C timeout -k \d+ \d+ sh -c 'eval "\$\(cat\)"'$/);
    // …the script followed once the finder had reported (not when `beside` ended), rendered with what it found.
    expect(second!.inputAtMs! - started).toBeGreaterThanOrEqual(1000);
    expect(second!.inputAtMs! - started).toBeLessThan(2500);
    expect(layout.params.containerd).toBe('/opt/cd/bin/containerd');
    expect(observations.find((o) => o.check === 'after')).toMatchObject({ status: 'ok', lines: ["containerd='/opt/cd/bin/containerd'"] });
    expect(observations.map((o) => o.check)).toEqual(['finder', 'beside', 'after']);
  });
});
