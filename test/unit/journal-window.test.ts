/**
 * The journal probes' window, run by a real /bin/sh with stand-ins for
 * `date`, `systemctl` and `journalctl` (the node's clock, the unit's last
 * start, and what the journal is asked for). The real /proc/uptime is
 * noted when `date` runs, just before the script reads it itself.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalogs } from '../../src/catalog/load.js';
import { renderScript } from '../../src/catalog/template.js';
import { defaultLayout } from '../../src/probes/layout.js';

const NOW = '1764567890.123456789';
const NOW_SEC = 1764567890.123456789;

const bin = mkdtempSync(join(tmpdir(), 'nodediag-journal-'));
function tool(name: string, body: string): void {
  writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, name), 0o755);
}
// `date` also notes the uptime when it ran: the script reads /proc/uptime right after it.
tool('date', `cat /proc/uptime > ${join(bin, 'uptime-at-date')}; echo ${NOW}`);
tool('systemctl', `cat ${join(bin, 'mono')}`);
tool('journalctl', `printf '%s\\n' "$@" > ${join(bin, 'asked')}; echo '-- No entries --'`);

function uptime(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** Runs the kubelet journal probe; returns the window start it asked journalctl for and the uptime range it ran in. */
function window(monoMicros: (upSec: number) => number, since = 0): { start: number; printed: string; earliest: number; latest: number } {
  const probe = loadCatalogs().probes.find((p) => p.id === 'kubelet-journal');
  if (probe?.transport !== 'ssh') throw new Error('kubelet-journal is not an SSH probe');
  const upBefore = uptime();
  const mono = monoMicros(upBefore);
  writeFileSync(join(bin, 'mono'), `${mono}\n`);
  const out = execFileSync('/bin/sh', ['-c', renderScript(probe.script, { sudo: false, ...defaultLayout().params, since: String(since) })], {
    encoding: 'utf8',
    env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  });
  const upAtDate = Number(readFileSync(join(bin, 'uptime-at-date'), 'utf8').split(' ')[0]);
  const asked = readFileSync(join(bin, 'asked'), 'utf8').split('\n');
  const start = Number(asked[asked.indexOf('--since') + 1]!.replace(/^@/, ''));
  // The unit's start on the wall clock, 50 ms earlier, as the script read the uptime: not before date's, and (busy machine) up to 50 ms after.
  const at = (up: number) => NOW_SEC - up + mono / 1e6 - 0.05;
  return { start, printed: out.split('\n')[0]!, earliest: at(upAtDate + 0.05), latest: at(upAtDate) };
}

describe('journal window (the probe script, run by a real /bin/sh)', () => {
  it('starts 50 ms before the unit last started, to the millisecond', () => {
    const w = window((up) => Math.max(1, Math.round((up - 60) * 1e6)));
    expect(w.start).toBeGreaterThanOrEqual(Math.floor(w.earliest * 1000) / 1000);
    expect(w.start).toBeLessThanOrEqual(Math.ceil(w.latest * 1000) / 1000);
    expect(w.printed).toBe(`window-start=${Math.floor(w.start)} now=1764567890`);
  });

  it('looks back 30 minutes when the unit never started', () => {
    expect(window(() => 0).start).toBe(1764566090.123);
  });

  it('never before `since` (after a fix, only what came after it counts)', () => {
    expect(window((up) => Math.max(1, Math.round((up - 600) * 1e6)), 1764567880).start).toBe(1764567880);
    // An earlier `since` does not widen the window.
    const w = window((up) => Math.max(1, Math.round((up - 60) * 1e6)), 1764567000);
    expect(w.start).toBeGreaterThan(1764567800);
  });

  it('reads a unit state it cannot parse as never started, as before', () => {
    writeFileSync(join(bin, 'mono'), 'n/a\n');
    const probe = loadCatalogs().probes.find((p) => p.id === 'kubelet-journal')!;
    if (probe.transport !== 'ssh') throw new Error('not ssh');
    tool('systemctl', 'echo garbage');
    try {
      execFileSync('/bin/sh', ['-c', renderScript(probe.script, { sudo: false, ...defaultLayout().params, since: '0' })], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
    } finally {
      tool('systemctl', `cat ${join(bin, 'mono')}`);
    }
    const asked = readFileSync(join(bin, 'asked'), 'utf8').split('\n');
    expect(asked[asked.indexOf('--since') + 1]).toBe('@1764566090.123');
  });
});
