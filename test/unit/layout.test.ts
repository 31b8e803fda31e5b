import { loadCatalogs } from '../../src/catalog/load.js';
import { classify } from '../../src/diagnose/classify.js';
import { observationsOf } from '../../src/diagnose/observation.js';
import { layoutNotes } from '../../src/diagnose/unchecked.js';
import { resolveLayout } from '../../src/probes/layout.js';
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
