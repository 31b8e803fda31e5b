import { findingCatalogData } from '../../src/catalog/findings.js';
import { loadCatalogs } from '../../src/catalog/load.js';
import { probeCatalogData } from '../../src/catalog/probes.js';
import { runbookCatalogData } from '../../src/catalog/runbooks.js';
import { CatalogError } from '../../src/errors.js';

/** The finding ids ../shared/DESIGN.md defines (public API). */
const DESIGN_IDS = [
  'containerd-socket-is-directory',
  'containerd-hung',
  'containerd-config-invalid',
  'containerd-leftover-shims',
  'containerd-down',
  'runtime-socket-hostpath-unsafe',
  'pod-crashloop',
  'image-pull-failed',
  'shim-task-failed',
  'cgroup-driver-mismatch',
  'pleg-unhealthy',
  'csi-mount-failed',
  'node-not-ready',
  'probe-kill-loop',
  'oom-killed',
  'cni-not-ready',
  'disk-pressure',
  'security-policy-denied',
  'clock-skew',
  'cert-expired',
  'swap-enabled',
  'gpu-device-plugin-failed',
  'pod-sandbox-changed',
];

/** Findings DESIGN.md gives a fix runbook (the rest are advisory). */
const WITH_RUNBOOK = [
  'containerd-socket-is-directory',
  'containerd-hung',
  'containerd-config-invalid',
  'containerd-leftover-shims',
  'containerd-down',
  'cgroup-driver-mismatch',
  'pleg-unhealthy',
  'cni-not-ready',
  'disk-pressure',
  'clock-skew',
  'swap-enabled',
];

function variant(edit: (data: { probes: any[]; findings: any[]; runbooks: any[] }) => void) {
  const data = structuredClone({ probes: probeCatalogData, findings: findingCatalogData, runbooks: runbookCatalogData }) as {
    probes: any[];
    findings: any[];
    runbooks: any[];
  };
  edit(data);
  return () => loadCatalogs(data);
}

describe('catalog loading', () => {
  const catalogs = loadCatalogs();

  it('has exactly the finding ids of the design, in any order', () => {
    expect(catalogs.findings.map((f) => f.id).sort()).toEqual([...DESIGN_IDS].sort());
  });

  it('gives a runbook to exactly the findings the design says have a fix', () => {
    expect(catalogs.findings.filter((f) => f.runbook).map((f) => f.id).sort()).toEqual([...WITH_RUNBOOK].sort());
  });

  it('names the entry and field of an invalid regex', () => {
    const load = variant((d) => {
      d.findings[3].when = { check: 'containerd-journal', line: '(unclosed' };
    });
    expect(load).toThrow(CatalogError);
    expect(load).toThrow(/findings\[3\] \(containerd-leftover-shims\)\.when.*invalid regex/s);
  });

  it('refuses a rule that names an unknown check', () => {
    expect(
      variant((d) => {
        d.findings[0].when = { check: 'no-such-probe', line: 'x' };
      }),
    ).toThrow(/findings \(containerd-socket-is-directory\)\.when: unknown check "no-such-probe"/);
  });

  it('refuses a finding whose runbook does not exist', () => {
    expect(
      variant((d) => {
        d.findings[0].runbook = 'rm-rf-everything';
      }),
    ).toThrow(/unknown runbook "rm-rf-everything"/);
  });

  it('refuses a runbook step that uses an undeclared template parameter', () => {
    expect(
      variant((d) => {
        d.runbooks[0].steps[0].action.script = '{{sudo}}rm {{path}}';
      }),
    ).toThrow(/unknown template parameter \{\{path\}\}/);
  });

  it('refuses unanchored runbook parameter patterns', () => {
    expect(
      variant((d) => {
        const rb = d.runbooks.find((r) => r.id === 'containerd-kill-leftover-shims');
        rb.params.pid.pattern = '[0-9]+';
      }),
    ).toThrow(/params\.pid\.pattern: must be anchored/);
  });

  it('refuses duplicate ids and a capture group the regex does not declare', () => {
    expect(
      variant((d) => {
        d.probes.push({ ...d.probes[0] });
      }),
    ).toThrow(/probes: duplicate id "containerd-service"/);
    expect(
      variant((d) => {
        d.findings.find((f) => f.id === 'disk-pressure').when = { check: 'disk-space', line: '(\\d+)%', capture: { group: 'use', gte: 90 } };
      }),
    ).toThrow(/capture group "use" is not a named group/);
  });

  it('keeps every privileged command after {{sudo}} free of shell variables', () => {
    for (const p of catalogs.probes) {
      if (p.transport !== 'ssh') continue;
      for (const m of p.script.matchAll(/\{\{sudo\}\}([^;|&\n)]*)/g)) expect(m[1]).not.toMatch(/\$\{?[a-zA-Z_]/);
    }
  });
});
