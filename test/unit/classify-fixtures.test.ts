import { execFileSync } from 'node:child_process';
import { loadCatalogs } from '../../src/catalog/load.js';
import { classify, classifyAll } from '../../src/diagnose/classify.js';
import { observationsOf, type Observation } from '../../src/diagnose/observation.js';
import type { SshProbe } from '../../src/catalog/schema.js';
import { renderScript } from '../../src/catalog/template.js';
import { defaultLayout } from '../../src/probes/layout.js';
import { statusOf } from '../../src/probes/ssh-collector.js';
import { fixtureNames, fixtureObservations, readFixture } from '../fixtures/fixture.js';

const catalogs = loadCatalogs();
const all = [...fixtureNames('lab'), ...fixtureNames('documented')];
const healthy = all.filter((n) => readFixture(n).expect.length === 0);
const VERSIONS = ['1.6', '1.7', '2.1'];

function findingsOf(name: string) {
  return classify(observationsOf(fixtureObservations(name, catalogs)), catalogs);
}

describe('classification of captured fixtures', () => {
  it('has healthy-node fixtures and fault fixtures, from each containerd version', () => {
    expect(healthy.length).toBeGreaterThan(0);
    expect(all.length).toBeGreaterThan(healthy.length);
    for (const v of VERSIONS) expect(fixtureNames(`lab/containerd-${v}`)).toContain(`lab/containerd-${v}/healthy`);
  });

  it.each(all)('%s gives exactly the expected findings, in order', (name) => {
    expect(findingsOf(name).map((f) => f.id)).toEqual(readFixture(name).expect);
  });

  it.each(catalogs.findings.map((f) => f.id))('rule %s matches at least one fixture and no healthy-node fixture', (id) => {
    const hits = all.filter((n) => findingsOf(n).some((f) => f.id === id));
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.filter((n) => healthy.includes(n))).toEqual([]);
  });

  // Each runtime finding works on every containerd version the lab runs (fixtures named after the finding).
  const runtimeFaults = fixtureNames('lab/containerd-1.6')
    .map((n) => n.split('/').at(-1)!)
    .filter((s) => s.startsWith('containerd-'));
  it.each(VERSIONS.flatMap((v) => runtimeFaults.map((s) => [v, s] as const)))('containerd %s: %s is named as the root cause', (v, scenario) => {
    const name = `lab/containerd-${v}/${scenario}`;
    expect(all).toContain(name);
    expect(findingsOf(name).find((f) => f.role === 'root-cause')?.id).toBe(scenario.replace(/--.*$/, ''));
  });
});

describe('seed 000 (real lab capture)', () => {
  const findings = findingsOf('lab/containerd-1.6/containerd-socket-is-directory');
  const byId = new Map(findings.map((f) => [f.id, f]));

  it('names the socket directory as the root cause, first, with its runbook', () => {
    expect(findings[0]!.id).toBe('containerd-socket-is-directory');
    expect(findings[0]!.role).toBe('root-cause');
    expect(findings[0]!.runbook).toBe('containerd-socket-is-directory');
  });

  it("quotes the real evidence: the stat of the path and containerd's own message", () => {
    const evidence = findings[0]!.evidence.join('\n');
    expect(evidence).toMatch(/runtime-socket: type=directory path=\/run\/containerd\/containerd\.sock/);
    expect(evidence).toMatch(/containerd: failed to get listener for main endpoint: is a directory/);
  });

  it('links the crash-looping toolkit pod as a symptom (naming it with its UID) and the untyped hostPath as contributing', () => {
    const crash = byId.get('pod-crashloop')!;
    expect(crash.role).toBe('symptom');
    expect(crash.linkedTo).toContain('containerd-socket-is-directory');
    expect(crash.params.pod?.[0]).toMatch(/^gpu-operator\/nvidia-container-toolkit-daemonset-/);
    expect(crash.params.podRef?.[0]).toMatch(/^gpu-operator\/nvidia-container-toolkit-daemonset-\S+@[0-9a-f-]{36}$/);
    const hostPath = byId.get('runtime-socket-hostpath-unsafe')!;
    expect(hostPath.role).toBe('contributing');
    expect(hostPath.linkedTo).toEqual(['containerd-socket-is-directory']);
    expect(hostPath.advice.join(' ')).toMatch(/type: Socket.*DaemonSet\/nvidia-container-toolkit-daemonset/);
    expect(findings[0]!.linkedTo).toEqual(expect.arrayContaining(['pod-crashloop', 'runtime-socket-hostpath-unsafe']));
  });
});

describe.each(VERSIONS)('left-over shims, read right (real containerd %s)', (v) => {
  it('a restart storm with running containers is containerd-down: its routine "left-over" lines name no shim to kill', () => {
    const f = findingsOf(`lab/containerd-${v}/containerd-down--restart-storm`);
    expect(f.find((x) => x.role === 'root-cause')!.id).toBe('containerd-down');
    expect(f.map((x) => x.id)).not.toContain('containerd-leftover-shims');
    const journal = fixtureObservations(`lab/containerd-${v}/containerd-down--restart-storm`, catalogs).find((o) => o.check === 'containerd-journal')!;
    expect(journal.raw).toMatch(/Found left-over process \d+ \(containerd-shim\) in control group while starting unit\. Ignoring\./);
  });

  it('an orphaned shim (its task unknown to containerd) is named by PID and start time, and its GPU use reported', () => {
    const f = findingsOf(`lab/containerd-${v}/containerd-leftover-shims`);
    const shims = f.find((x) => x.id === 'containerd-leftover-shims')!;
    expect(shims.params.shim).toHaveLength(1);
    expect(shims.params.shim![0]).toMatch(/^[1-9]\d*@\d+$/);
    expect(f.map((x) => x.id)).toContain('orphan-holds-gpu');
    // The healthy GPU workload's shim is not an orphan.
    expect(shims.evidence.join('\n')).not.toMatch(/id=lab-gpu /);
  });
});

describe.each(['1.6', '2.1'])('hung containerd (real lab capture, %s)', (v) => {
  it('is named from an active service whose socket does not answer, not as containerd-down', () => {
    const ids = findingsOf(`lab/containerd-${v}/containerd-hung`).map((f) => f.id);
    expect(ids[0]).toBe('containerd-hung');
    expect(ids).not.toContain('containerd-down');
  });
});

describe('advice-only and conditional runbooks', () => {
  it('offers no runbook for a missing CNI config (the network add-on owns it), but one for netfilter', () => {
    expect(findingsOf('lab/containerd-1.6/cni-not-ready--no-config').find((f) => f.id === 'cni-not-ready')!.runbook).toBeNull();
    expect(findingsOf('lab/containerd-1.6/cni-not-ready').find((f) => f.id === 'cni-not-ready')!.runbook).toBe('cni-not-ready');
  });
});

describe.each(VERSIONS)('kubelet stopped (real lab capture, containerd %s)', (v) => {
  it('is the root cause, with the start-kubelet runbook; on a cordoned node the evidence says so (maintenance?)', () => {
    const name = `lab/containerd-${v}/kubelet-down`;
    const kubelet = findingsOf(name).find((f) => f.role === 'root-cause')!;
    expect(kubelet).toMatchObject({ id: 'kubelet-down', runbook: 'kubelet-down' });
    expect(kubelet.evidence.join('\n')).not.toMatch(/unschedulable=true/);
    const cordoned = fixtureObservations(name, catalogs).map((o) => (o.check === 'k8s-node' ? { ...o, lines: o.lines.map((l) => l.replace(/^(node \S+ unschedulable=)false$/, '$1true')) } : o));
    expect(cordoned.find((o) => o.check === 'k8s-node')!.lines).toContainEqual(expect.stringMatching(/^node \S+ unschedulable=true$/));
    expect(classify(observationsOf(cordoned), catalogs).find((f) => f.id === 'kubelet-down')!.evidence).toContainEqual(expect.stringMatching(/^k8s-node: node \S+ unschedulable=true$/));
  });

  it('failing at start on its own error (its --config file gone) is advice only, quoting why: starting it again fixes nothing', () => {
    const kubelet = findingsOf(`lab/containerd-${v}/kubelet-down--config-missing`).find((f) => f.role === 'root-cause')!;
    expect(kubelet).toMatchObject({ id: 'kubelet-down', runbook: null });
    expect(kubelet.evidence).toContainEqual(expect.stringMatching(/^kubelet-service: SubState=auto-restart$/));
    expect(kubelet.evidence).toContainEqual(expect.stringMatching(/"command failed" err="failed to load kubelet config file, path: \/var\/lib\/kubelet\/config\.yaml/));
    // Probed as systemd starts the next attempt, whose error is not logged yet: still in a restart loop, still no runbook.
    const between = fixtureObservations(`lab/containerd-${v}/kubelet-down--config-missing`, catalogs).map((o) => (o.check === 'kubelet-journal' ? { ...o, lines: o.lines.filter((l) => !/command failed|Main process exited|Failed with result/.test(l)) } : o));
    expect(classify(observationsOf(between), catalogs).find((f) => f.id === 'kubelet-down')).toMatchObject({ role: 'root-cause', runbook: null });
  });
});

/** A check that did not run, in each way it can fail on a real node. */
const FAILURES: Array<[string, (o: Observation) => Observation]> = [
  ['sudo refused', (o) => ({ ...o, ...statusOf({ exitCode: 1, text: 'sudo: a password is required', timedOut: false }, 5000), lines: [...o.lines], exitCode: 1 })],
  ['binary missing', (o) => ({ ...o, status: 'failed', reason: 'command not found: sh: 1: containerd: not found', lines: [...o.lines], exitCode: 127 })],
  ['probe timeout', (o) => ({ ...o, status: 'timeout', reason: 'no answer within 6 s', lines: [...o.lines], exitCode: 124 })],
  ['output over the cap', (o) => ({ ...o, truncated: true, reason: 'output cut at 262144 bytes', lines: o.lines.slice(0, 1) })],
];

describe('a check that did not run is never evidence', () => {
  // Every (fixture, finding, check its evidence quotes) triple.
  const triples = all.flatMap((name) =>
    findingsOf(name).flatMap((f) => [...new Set(f.evidence.map((e) => e.split(':')[0]!))].filter((c) => catalogs.probeById.has(c)).map((check) => [name, f.id, check] as const)),
  );

  it('has cases for every finding with evidence', () => {
    const covered = new Set(triples.map(([, id]) => id));
    expect(catalogs.findings.map((f) => f.id).filter((id) => !covered.has(id))).toEqual([]);
  });

  it.each(FAILURES.map(([mode]) => mode))('%s: no finding keeps evidence from that check, and one it proved alone is undecided, without a runbook', (mode) => {
    const degrade = FAILURES.find(([m]) => m === mode)![1];
    for (const [name, id, check] of triples) {
      const obs = fixtureObservations(name, catalogs).map((o) => (o.check === check ? degrade(o) : o));
      const { findings, undecided } = classifyAll(observationsOf(obs), catalogs);
      const ok = new Set(obs.filter((o) => o.status === 'ok' && !o.truncated).map((o) => o.check));
      for (const f of findings) {
        for (const e of f.evidence) {
          const from = e.split(':')[0]!;
          // A quoted line comes from a check that ran (a line found before the cap is still a line); a status line says so itself.
          if (catalogs.probeById.has(from) && !/^[\w-]+: check (failed|timeout|skipped)/.test(e)) {
            expect({ name, mode, finding: f.id, from, ran: ok.has(from) || (mode === 'output over the cap' && from === check) }).toMatchObject({ ran: true });
          }
        }
      }
      const still = findings.find((f) => f.id === id);
      if (!still) expect({ name, mode, id, check, undecided: undecided.some((u) => u.id === id) || mode === 'output over the cap' }).toMatchObject({ undecided: true });
    }
  });

  it('a healthy node whose sudo is refused everywhere has no finding: every privileged check is undecided, with the reason', () => {
    const refused = execFileSync('su', ['nobody', '-s', '/bin/sh', '-c', 'sudo -n /usr/bin/containerd config dump 2>&1; echo "config-dump-exit=$?"'], { encoding: 'utf8' });
    expect(refused).toMatch(/^sudo: a password is required/m);
    const privileged = new Set(catalogs.probes.filter((p) => p.transport === 'ssh' && p.script.includes('{{sudo}}')).map((p) => p.id));
    for (const v of VERSIONS) {
      const obs = fixtureObservations(`lab/containerd-${v}/healthy`, catalogs).map((o) =>
        privileged.has(o.check) ? { ...o, ...statusOf({ exitCode: 0, text: refused, timedOut: false }, 6000), lines: refused.trim().split('\n'), raw: refused } : o,
      );
      const { findings, undecided } = classifyAll(observationsOf(obs), catalogs);
      expect(findings).toEqual([]);
      expect(undecided.map((u) => u.id)).toEqual(expect.arrayContaining(['containerd-config-invalid']));
      expect(undecided.find((u) => u.id === 'containerd-config-invalid')!.checks[0]).toMatchObject({ id: 'containerd-config', status: 'failed', reason: 'sudo refused: a password is required' });
    }
  });

  it('a refused sudo is not a hung containerd; a probe that timed out while the service is active is', () => {
    const refused = execFileSync('su', ['nobody', '-s', '/bin/sh', '-c', 'sudo -n /usr/bin/crictl version 2>&1; echo "runtime-ping-exit=$?"'], { encoding: 'utf8' });
    const withPing = (o: Pick<Observation, 'status' | 'reason'>) =>
      observationsOf(
        fixtureObservations('lab/containerd-1.6/healthy', catalogs).map((x) =>
          x.check === 'runtime-ping' ? { ...x, ...o, lines: refused.trim().split('\n'), raw: refused, exitCode: 0 } : x,
        ),
      );
    const status = statusOf({ exitCode: 0, text: refused, timedOut: false }, 6000);
    expect(status).toEqual({ status: 'failed', reason: 'sudo refused: a password is required' });
    expect(classify(withPing(status), catalogs).map((f) => f.id)).not.toContain('containerd-hung');
    expect(classify(withPing({ status: 'timeout', reason: 'no answer within 6 s' }), catalogs).map((f) => f.id)).toContain('containerd-hung');
  });
});

describe('a probe that could not look is a failed check, not an empty one', () => {
  const sshProbes = catalogs.probes.filter((p): p is SshProbe => p.transport === 'ssh');

  it('every SSH probe names the line that proves it looked', () => {
    expect(sshProbes.filter((p) => !p.ranIf).map((p) => p.id)).toEqual([]);
  });

  // Run for real, here, as an unprivileged user where systemd cannot be reached: what a node without D-Bus, or a user without rights, prints.
  it.each(['containerd-service', 'kubelet-service', 'containerd-journal', 'kubelet-journal'])('%s run where systemctl cannot reach systemd: failed, with the reason', (id) => {
    const probe = sshProbes.find((p) => p.id === id)!;
    const script = renderScript(probe.script, { sudo: false, ...defaultLayout().params, since: '0' });
    let text: string;
    let exitCode = 0;
    try {
      // Even where systemd runs (CI), an unprivileged systemctl reaches it only through this bus.
      text = execFileSync('su', ['nobody', '-s', '/bin/sh', '-c', `export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/system_bus_socket\n${script}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stdout: string; status: number };
      text = e.stdout;
      exitCode = e.status;
    }
    const status = statusOf({ exitCode, text, timedOut: false }, probe.timeoutMs, probe.ranIf);
    expect(status.status).toBe('failed');
    expect(status.reason).toBeTruthy();
  });
});
