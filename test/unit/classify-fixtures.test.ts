import { execFileSync } from 'node:child_process';
import { loadCatalogs } from '../../src/catalog/load.js';
import { classify } from '../../src/diagnose/classify.js';
import { observationsOf, type Observation } from '../../src/diagnose/observation.js';
import { statusOf } from '../../src/probes/ssh-collector.js';
import { fixtureNames, fixtureObservations, readFixture } from '../fixtures/fixture.js';

const catalogs = loadCatalogs();
const all = [...fixtureNames('lab'), ...fixtureNames('documented')];
const healthy = all.filter((n) => readFixture(n).expect.length === 0);

function findingsOf(name: string) {
  return classify(observationsOf(fixtureObservations(name, catalogs)), catalogs);
}

describe('classification of captured fixtures', () => {
  it('has healthy-node fixtures and fault fixtures', () => {
    expect(healthy.length).toBeGreaterThan(0);
    expect(all.length).toBeGreaterThan(healthy.length);
  });

  it.each(all)('%s gives exactly the expected findings, in order', (name) => {
    expect(findingsOf(name).map((f) => f.id)).toEqual(readFixture(name).expect);
  });

  it.each(catalogs.findings.map((f) => f.id))('rule %s matches at least one fixture and no healthy-node fixture', (id) => {
    const hits = all.filter((n) => findingsOf(n).some((f) => f.id === id));
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.filter((n) => healthy.includes(n))).toEqual([]);
  });
});

describe('seed 000 (real lab capture)', () => {
  const findings = findingsOf('lab/socket-is-directory');
  const byId = new Map(findings.map((f) => [f.id, f]));

  it('names the socket directory as the root cause, first, with its runbook', () => {
    expect(findings[0]!.id).toBe('containerd-socket-is-directory');
    expect(findings[0]!.role).toBe('root-cause');
    expect(findings[0]!.runbook).toBe('containerd-socket-directory');
  });

  it('quotes the real evidence: the stat of the path and containerd\'s own message', () => {
    const evidence = findings[0]!.evidence.join('\n');
    expect(evidence).toMatch(/runtime-socket: type=directory path=\/run\/containerd\/containerd\.sock/);
    expect(evidence).toMatch(/containerd: failed to get listener for main endpoint: is a directory/);
  });

  it('links the crash-looping toolkit pod as a symptom and the untyped hostPath as contributing', () => {
    const crash = byId.get('pod-crashloop')!;
    expect(crash.role).toBe('symptom');
    expect(crash.linkedTo).toContain('containerd-socket-is-directory');
    expect(crash.params.pod?.[0]).toMatch(/^gpu-operator\/nvidia-container-toolkit-daemonset-/);
    const hostPath = byId.get('runtime-socket-hostpath-unsafe')!;
    expect(hostPath.role).toBe('contributing');
    expect(hostPath.linkedTo).toEqual(['containerd-socket-is-directory']);
    expect(hostPath.advice.join(' ')).toMatch(/type: Socket.*DaemonSet\/nvidia-container-toolkit-daemonset/);
    expect(findings[0]!.linkedTo).toEqual(expect.arrayContaining(['pod-crashloop', 'runtime-socket-hostpath-unsafe']));
  });
});

describe('seed 000 §8 (real lab capture)', () => {
  it('captures the left-over shim PIDs systemd named, for the runbook', () => {
    const shims = findingsOf('lab/leftover-shims').find((f) => f.id === 'containerd-leftover-shims')!;
    expect(shims.params.pid!.length).toBeGreaterThan(0);
    for (const pid of shims.params.pid!) expect(pid).toMatch(/^[1-9]\d*$/);
  });
});

describe('hung containerd (real lab capture)', () => {
  it('is named from an active service whose socket does not answer, not as containerd-down', () => {
    const ids = findingsOf('lab/containerd-hung').map((f) => f.id);
    expect(ids[0]).toBe('containerd-hung');
    expect(ids).not.toContain('containerd-down');
  });
});

describe('advice-only and conditional runbooks', () => {
  it('offers no runbook for a missing CNI config (the network add-on owns it), but one for netfilter', () => {
    expect(findingsOf('lab/cni-missing').find((f) => f.id === 'cni-not-ready')!.runbook).toBeNull();
    expect(findingsOf('lab/bridge-netfilter-off').find((f) => f.id === 'cni-not-ready')!.runbook).toBe('bridge-netfilter');
  });
});

describe('a refused sudo is not evidence', () => {
  // Captured live from the real sudo: an SSH user without the sudoers lines (or with crictl elsewhere).
  const refused = execFileSync('su', ['nobody', '-s', '/bin/sh', '-c', 'sudo -n /usr/bin/crictl version 2>&1; echo "runtime-ping-exit=$?"'], { encoding: 'utf8' });
  const withPing = (o: Pick<Observation, 'status' | 'reason'>) =>
    observationsOf(
      fixtureObservations('lab/healthy', catalogs).map((x) =>
        x.check === 'runtime-ping' ? { ...x, ...o, lines: refused.trim().split('\n'), raw: refused, exitCode: 0 } : x,
      ),
    );

  it('reports the check as failed with the reason, and does not call containerd hung', () => {
    expect(refused).toMatch(/^sudo: a password is required/m);
    const status = statusOf({ exitCode: 0, text: refused, timedOut: false }, 6000);
    expect(status).toEqual({ status: 'failed', reason: 'sudo refused: a password is required' });
    expect(classify(withPing(status), catalogs).map((f) => f.id)).not.toContain('containerd-hung');
  });

  it('would call it hung had the same probe timed out', () => {
    expect(classify(withPing({ status: 'timeout', reason: 'no answer within 6 s' }), catalogs).map((f) => f.id)).toContain('containerd-hung');
  });
});
