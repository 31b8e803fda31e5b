/**
 * The containerd-shims script, run by a real /bin/sh against real processes
 * on this machine: a live "shim" (a shell renamed containerd-shim-…, with a
 * shim's arguments and a child) is listed with its container process; a shim
 * that exited and waits to be reaped (`<defunct>`, no command line), and the
 * shim binary run for a moment by containerd (`-info`, which containerd 2.x
 * asks at start; `… start`; `… delete`) run no container and are not listed,
 * or a workload guard would see them "end" during a fix (it did, in the lab,
 * on containerd 2.1 in a restart loop).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHIMS_SCRIPT } from '../../src/catalog/probes.js';
import { renderScript } from '../../src/catalog/template.js';
import { defaultLayout } from '../../src/probes/layout.js';

describe('containerd-shims probe (run by a real /bin/sh)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-shims-'));
  const running: ChildProcess[] = [];
  afterAll(() => running.forEach((p) => p.kill('SIGKILL')));

  it('lists a live shim with its container process, and not a defunct one nor a passing one', async () => {
    const fakeShim = join(dir, 'containerd-shim-runc-v2');
    copyFileSync('/bin/sh', fakeShim);
    const dead = join(dir, 'containerd-shim-dead');
    copyFileSync('/bin/true', dead);
    const live = spawn(fakeShim, ['-c', 'sleep 30; true', 'shim', '-namespace', 'k8s.io', '-id', 'live-test-1', '-address', join(dir, 'none.sock')], { stdio: 'ignore' });
    // `sleep` never reaps the shim its shell started: it stays <defunct>.
    const reaper = spawn('/bin/sh', ['-c', `${dead} & exec sleep 30`], { stdio: 'ignore' });
    const passing = [['-info'], ['-namespace', 'k8s.io', '-address', join(dir, 'none.sock'), '-id', 'passing-1', 'start'], ['-namespace', 'k8s.io', '-address', join(dir, 'none.sock'), '-id', 'passing-2', 'delete']].map((args) =>
      spawn(fakeShim, ['-c', 'sleep 30', 'shim', ...args], { stdio: 'ignore' }),
    );
    running.push(live, reaper, ...passing);
    await new Promise((r) => setTimeout(r, 500));
    const zombie = execFileSync('ps', ['-o', 'pid=', '--ppid', String(reaper.pid)], { encoding: 'utf8' }).trim();
    expect(readFileSync(`/proc/${zombie}/stat`, 'utf8')).toMatch(/\) Z /);

    const script = renderScript(SHIMS_SCRIPT, { sudo: false, ...defaultLayout().params, since: '0' });
    const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
    const lines = out.split('\n');
    const shim = lines.find((l) => l.startsWith(`shim ${live.pid}@`));
    expect(shim).toMatch(/ ns=k8s\.io id=live-test-1 age=\d+ bundle=present task=unchecked gpu=no procs=\d+:sleep 30;$/);
    expect(lines.some((l) => l.startsWith(`shim ${zombie}@`))).toBe(false);
    for (const p of passing) expect(lines.some((l) => l.startsWith(`shim ${p.pid}@`))).toBe(false);
    // Of this test's shims, only the live one (the machine's other shims — a lab running beside — are not this test's).
    expect(lines.filter((l) => l.startsWith('shim ') && / id=(live-test|passing)-\d /.test(l))).toEqual([shim]);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^unlisted ${join(dir, 'none.sock').replace(/[.]/g, '\\.')} k8s\\.io `)));
  });
});
