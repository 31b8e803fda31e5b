import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalogs } from '../../src/catalog/load.js';
import { renderScript } from '../../src/catalog/template.js';
import { classify, classifyAll } from '../../src/diagnose/classify.js';
import { observationsOf, type Observation } from '../../src/diagnose/observation.js';
import { layoutNotes } from '../../src/diagnose/unchecked.js';
import { defaultLayout, resolveLayout } from '../../src/probes/layout.js';
import { statusOf } from '../../src/probes/ssh-collector.js';
import { fixtureObservations, readFixture } from '../fixtures/fixture.js';

const catalogs = loadCatalogs();

/** The node-layout probe's lines, as a real node printed them (lab captures). */
function layoutLines(fixture: string): string[] {
  const raw = readFixture(fixture).observations!.find((o) => o.check === 'node-layout')!.raw;
  return raw.split('\n').filter((l) => l.trim());
}

describe('where things are, read from real nodes', () => {
  it.each(['1.6', '1.7', '2.1'])('containerd %s as kubeadm installs it: paths from the running processes, the unit and kubeadm-flags.env', (v) => {
    const layout = resolveLayout(layoutLines(`lab/containerd-${v}/healthy`));
    expect(layout.flavour).toBe('containerd');
    expect(layout.params).toMatchObject({
      socket: '/run/containerd/containerd.sock',
      containerd: '/usr/bin/containerd',
      ctr: '/usr/bin/ctr',
      crictl: '-',
      containerdConfig: '/etc/containerd/config.toml',
      kubeletConfig: '/var/lib/kubelet/config.yaml',
      runtimeUnit: 'containerd',
    });
    expect(layout.sources.kubeletConfig).toBe('kubelet cmdline');
    // kubeadm-flags.env gives the endpoint; the running kubelet's command line shows it expanded.
    expect(layout.sources.socket).toBe('kubelet cmdline');
    expect(layout.sources.containerd).toBe('running process');
    expect(layout.journal).toBe('persistent');
    expect(layoutNotes(layout)).toEqual([]);
  });

  it("k3s: its embedded containerd's socket, root, state and config; the runtime unit is k3s; no containerd runbook is offered", () => {
    const layout = resolveLayout(layoutLines('lab/layout-k3s/healthy'));
    expect(layout.flavour).toBe('k3s');
    expect(layout.params).toMatchObject({
      socket: '/run/k3s/containerd/containerd.sock',
      containerdConfig: '/var/lib/rancher/k3s/agent/etc/containerd/config.toml',
      containerdRoot: '/var/lib/rancher/k3s/agent/containerd',
      containerdState: '/run/k3s/containerd',
      runtimeUnit: 'k3s',
    });
    expect(layoutNotes(layout)[0]).toMatch(/^runtime: k3s .*not offered here .*k3s crictl/);
    const hung = classify(observationsOf(fixtureObservations('lab/layout-k3s/containerd-hung', catalogs)), catalogs).find((f) => f.id === 'containerd-hung')!;
    expect(hung.evidence.join('\n')).toMatch(/ActiveState=active/);
    expect(hung.runbook).toBeNull();
  });

  it('CRI-O: recognised and named; the containerd findings do not apply', () => {
    const layout = resolveLayout(layoutLines('lab/layout-cri-o/healthy'));
    expect(layout.flavour).toBe('cri-o');
    expect(layout.params.socket).toBe('/var/run/crio/crio.sock');
    expect(layoutNotes(layout)[0]).toMatch(/^runtime: CRI-O/);
  });

  it('a volatile journal is named: evidence from before the last boot is gone', () => {
    const layout = resolveLayout(layoutLines('lab/layout-volatile-journal/healthy'));
    expect(layout.journal).toBe('volatile');
    expect(layoutNotes(layout)).toEqual([expect.stringMatching(/^journal: volatile/)]);
  });

  it('takes what the inventory pins over what it finds', () => {
    const layout = resolveLayout(layoutLines('lab/containerd-1.6/healthy'), { socket: '/var/run/other.sock', containerd: '/opt/bin/containerd' });
    expect(layout.params.socket).toBe('/var/run/other.sock');
    expect(layout.sources.socket).toBe('inventory');
    expect(layout.params.containerd).toBe('/opt/bin/containerd');
  });

  it('ignores values that are not plain absolute paths (they would reach shell scripts)', () => {
    const lines = [
      'unit containerd load=loaded active=active pid=5',
      'exec containerd running /usr/bin/containerd',
      'flag containerd cmdline --config=../../etc/shadow',
      'flag kubelet cmdline --config=/var/lib/kubelet/config.yaml;reboot',
      'flag kubelet envfile --container-runtime-endpoint=unix:///run/x y.sock',
    ];
    const layout = resolveLayout(lines);
    expect(layout.params.containerdConfig).toBe('/etc/containerd/config.toml');
    expect(layout.params.kubeletConfig).toBe('-');
    expect(layout.params.socket).toBe('/run/containerd/containerd.sock');
  });

  it('without a containerd unit, the flavour is unknown and no fix is offered', () => {
    const layout = resolveLayout(['unit containerd load=not-found active=inactive pid=0', 'unit kubelet load=not-found active=inactive pid=0']);
    expect(layout.flavour).toBe('unknown');
    expect(layoutNotes(layout)[0]).toMatch(/not recognised/);
  });
});

describe('node-layout, run by a real /bin/sh, when systemd cannot answer', () => {
  const probe = catalogs.probeById.get('node-layout')!;
  if (probe.transport !== 'ssh') throw new Error('node-layout is not an SSH probe');
  const bin = mkdtempSync(join(tmpdir(), 'nodediag-layout-'));
  // What systemctl says in a container or session without D-Bus.
  writeFileSync(join(bin, 'systemctl'), '#!/bin/sh\necho "Failed to connect to bus: No such file or directory" >&2\nexit 1\n');
  chmodSync(join(bin, 'systemctl'), 0o755);
  const out = execFileSync('/bin/sh', ['-c', renderScript(probe.script, { sudo: false, ...defaultLayout().params, since: '0' })], {
    encoding: 'utf8',
    env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  });
  const failedLayout: Observation = { check: 'node-layout', ...statusOf({ exitCode: 0, text: out, timedOut: false }, probe.timeoutMs, probe.ranIf), lines: out.split('\n'), raw: out, exitCode: 0, durationMs: 20, truncated: false };

  it('fails the check, saying why: without the units, how kubelet runs is unknown', () => {
    expect(failedLayout).toMatchObject({ status: 'failed', reason: 'it did not get to look: units=unreadable: Failed to connect to bus: No such file or directory' });
  });

  // Swap on, kubelet allowed to run with it by its command line (--fail-swap-on=false), not by its config file.
  const swapAllowedByFlag = fixtureObservations('lab/containerd-1.6/healthy--swap-allowed', catalogs).map((o) =>
    o.check === 'kubelet-config'
      ? { ...o, lines: o.lines.filter((l) => !/failSwapOn/.test(l)) }
      : o.check === 'node-layout'
        ? { ...o, lines: [...o.lines, 'flag kubelet cmdline --fail-swap-on=false'] }
        : o,
  );

  it('a swap finding that kubelet\'s flags could rule out is undecided, not reported', () => {
    expect(classifyAll(observationsOf(swapAllowedByFlag), catalogs).findings.map((f) => f.id)).toEqual([]);
    const withoutFlag = swapAllowedByFlag.map((o) => (o.check === 'node-layout' ? { ...o, lines: o.lines.filter((l) => !/fail-swap-on/.test(l)) } : o));
    expect(classifyAll(observationsOf(withoutFlag), catalogs).findings.map((f) => f.id)).toEqual(['swap-enabled']);

    const unreadable = swapAllowedByFlag.map((o) => (o.check === 'node-layout' ? failedLayout : o));
    const { findings, undecided } = classifyAll(observationsOf(unreadable), catalogs);
    expect(findings.map((f) => f.id)).toEqual([]);
    expect(undecided.find((u) => u.id === 'swap-enabled')?.checks).toEqual([expect.objectContaining({ id: 'node-layout', status: 'failed' })]);
  });
});
