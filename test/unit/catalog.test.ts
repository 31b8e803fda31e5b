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

/** Findings added since the design, each from an issue or a fault seen in the lab (public API too). */
const ADDED_IDS = ['orphan-holds-gpu', 'kubelet-down', 'containerd-cri-disabled'];

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
  // Added since: kubelet stopped or failed (start it again, checked to stay up).
  'kubelet-down',
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

  it('has exactly the finding ids of the design (and those added since), in any order', () => {
    expect(catalogs.findings.map((f) => f.id).sort()).toEqual([...DESIGN_IDS, ...ADDED_IDS].sort());
  });

  it('gives each runbook the id of the finding it fixes (one name per scenario)', () => {
    for (const f of catalogs.findings) if (f.runbook) expect(f.runbook).toBe(f.id);
    expect(
      variant((d) => {
        d.findings.find((f) => f.id === 'swap-enabled').runbook = 'disable-swap';
        d.runbooks.find((r) => r.id === 'swap-enabled').id = 'disable-swap';
      }),
    ).toThrow(/a runbook has the id of its finding \("swap-enabled"\), not "disable-swap"/);
  });

  it('gives a runbook to exactly the findings the design says have a fix', () => {
    expect(catalogs.findings.filter((f) => f.runbook).map((f) => f.id).sort()).toEqual([...WITH_RUNBOOK].sort());
  });

  it('names the entry and field of an invalid regex', () => {
    const load = variant((d) => {
      d.findings[3].when = { check: 'containerd-journal', line: '(unclosed' };
    });
    expect(load).toThrow(CatalogError);
    expect(load).toThrow(new RegExp(`findings\\[3\\] \\(${(findingCatalogData as Array<{ id: string }>)[3]!.id}\\)\\.when.*invalid regex`, 's'));
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
        d.runbooks.find((r) => r.id === 'containerd-down').steps[0].action.script = '{{sudo}}rm {{path}}';
      }),
    ).toThrow(/unknown template parameter \{\{path\}\}/);
  });

  it('refuses unanchored runbook parameter patterns', () => {
    expect(
      variant((d) => {
        const rb = d.runbooks.find((r) => r.id === 'containerd-leftover-shims');
        rb.params.shim.pattern = '[0-9]+@[0-9]+';
      }),
    ).toThrow(/params\.shim\.pattern: must be anchored/);
  });

  it('refuses a parameter taken from a preview capture that does not exist, and a capture without a value group', () => {
    expect(
      variant((d) => {
        d.runbooks.find((r) => r.id === 'containerd-config-invalid').params.candidateSha.preview = 'nope';
      }),
    ).toThrow(/"nope" is not a capture of the runbook's preview/);
    expect(
      variant((d) => {
        d.runbooks.find((r) => r.id === 'containerd-config-invalid').preview.captures.candidateSha = '^candidate-sha256=([0-9a-f]{64})$';
      }),
    ).toThrow(/captures\.candidateSha: needs a \(\?<value>…\) group/);
  });

  it('refuses duplicate ids and a capture group the regex does not declare', () => {
    expect(
      variant((d) => {
        d.probes.push({ ...d.probes[0] });
      }),
    ).toThrow(/probes: duplicate id "node-layout"/);
    expect(
      variant((d) => {
        d.findings.find((f) => f.id === 'disk-pressure').when = { check: 'disk-space', line: '(\\d+)%', capture: { group: 'use', gte: 90 } };
      }),
    ).toThrow(/capture group "use" is not a named group/);
  });

  it('quotes every shell variable a privileged command takes (one argument each, never split)', () => {
    const scripts = [
      ...catalogs.probes.flatMap((p) => (p.transport === 'ssh' ? [p.script] : [])),
      ...catalogs.runbooks.flatMap((r) => [r.preview?.script ?? '', ...r.steps.flatMap((s) => [s.action?.kind === 'ssh' ? s.action.script : '', s.skipIf?.script ?? '', s.requires?.script ?? '', s.verify && 'script' in s.verify ? s.verify.script : '', s.undo?.script ?? ''])]),
    ];
    let seen = 0;
    for (const script of scripts) {
      for (const m of script.matchAll(/\{\{sudo\}\}([^;|&\n)]*)/g)) {
        // Remove the quoted parts; what is left must hold no variable.
        const bare = m[1]!.replace(/"[^"]*"|'[^']*'/g, '');
        expect(bare).not.toMatch(/\$\{?[a-zA-Z_0-9]/);
        seen++;
      }
    }
    expect(seen).toBeGreaterThan(20);
  });
});
