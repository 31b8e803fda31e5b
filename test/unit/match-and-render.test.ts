import { evaluate } from '../../src/diagnose/match.js';
import { observationsOf, type Observation } from '../../src/diagnose/observation.js';
import { renderEvents, renderPods } from '../../src/probes/render-kube.js';
import type { KubePod } from '../../src/ports.js';

function obs(check: string, lines: string[], status: Observation['status'] = 'ok'): Observation {
  return { check, status, lines, exitCode: 0, durationMs: 1, truncated: false };
}

describe('matchers', () => {
  const o = observationsOf([
    obs('disk-space', ['/var/lib/containerd: /dev/sda1 100 95 5 95% /', '/var/log: /dev/sda2 100 40 60 40% /var']),
    obs('runtime-ping', [], 'timeout'),
    obs('kubelet-config', [], 'failed'),
  ]);
  const disk = '^(?<path>\\S+): \\S+\\s+\\d+\\s+\\d+\\s+\\d+\\s+(?<use>\\d+)%\\s+\\S+$';

  it('applies numeric bounds to a named group and collects its values', () => {
    const r = evaluate({ check: 'disk-space', line: disk, capture: { group: 'use', gte: 90 } }, o);
    expect(r.matched).toBe(true);
    expect(r.evidence).toHaveLength(1);
    expect(r.groups.path).toEqual(['/var/lib/containerd']);
    expect(evaluate({ check: 'disk-space', line: disk, capture: { group: 'use', gte: 96 } }, o).matched).toBe(false);
  });

  it('treats a timed-out check as evidence when asked, and quotes why', () => {
    const r = evaluate({ check: 'runtime-ping', status: ['timeout'] }, o);
    expect(r.matched).toBe(true);
    expect(r.evidence[0]!.line).toMatch(/^check timeout/);
  });

  it('never takes a failed or missing check for "no such line", nor for a line: it is unknown, and says which check', () => {
    expect(evaluate({ check: 'kubelet-config', noLine: 'cgroupDriver' }, o)).toMatchObject({ matched: 'unknown', unknownChecks: ['kubelet-config'] });
    expect(evaluate({ check: 'absent-check', noLine: 'x' }, o).matched).toBe('unknown');
    expect(evaluate({ check: 'kubelet-config', line: 'cgroupDriver' }, o).matched).toBe('unknown');
  });

  it('reads no line of a check that did not run, even if it printed one', () => {
    const printed = observationsOf([{ ...obs('containerd-config', ['config-dump-exit=1']), status: 'failed', reason: 'sudo refused: a password is required' }]);
    expect(evaluate({ check: 'containerd-config', line: '^config-dump-exit=[1-9]' }, printed).matched).toBe('unknown');
  });

  it('does not take "no such line" from output cut at its cap', () => {
    const cut = observationsOf([{ ...obs('containerd-journal', ['a', 'b']), truncated: true }]);
    expect(evaluate({ check: 'containerd-journal', noLine: 'is a directory' }, cut).matched).toBe('unknown');
    expect(evaluate({ check: 'containerd-journal', line: 'is a directory' }, cut).matched).toBe('unknown');
    expect(evaluate({ check: 'containerd-journal', line: '^a$' }, cut).matched).toBe(true);
  });

  it('takes no line from before the last line that clears it: a recovery the log records ends what came before', () => {
    // As the lab node's kubelet journal had them (journalctl -o short-iso), runtime down then back.
    const pleg = (t: string) => `2026-12-01T02:49:${t}+0000 bn1 kubelet[68]: E1201 02:49:${t}.628000      68 kubelet.go:2359] "Skipping pod synchronization" err="[container runtime is down, PLEG is not healthy: pleg was last seen active 25s ago; threshold is 3m0s]"`;
    const ready = '2026-12-01T02:50:06+0000 bn1 kubelet[68]: I1201 02:50:06.778000      68 kubelet_node_status.go:697] "Recording event message for node" node="bn1" event="NodeReady"';
    const rule = { check: 'kubelet-journal', line: 'PLEG is not healthy', clearedBy: 'event="NodeReady"' };
    expect(evaluate(rule, observationsOf([obs('kubelet-journal', [pleg('52'), pleg('57'), ready])])).matched).toBe(false);
    const again = evaluate(rule, observationsOf([obs('kubelet-journal', [pleg('52'), ready, pleg('59')])]));
    expect(again.matched).toBe(true);
    expect(again.evidence.map((e) => e.line)).toEqual([pleg('59')]);
    expect(evaluate({ check: 'kubelet-journal', line: 'PLEG is not healthy' }, observationsOf([obs('kubelet-journal', [pleg('52'), ready])])).matched).toBe(true);
  });

  it('combines with allOf / anyOf / not in three values', () => {
    const timeout = { check: 'runtime-ping', status: ['timeout' as const] };
    const unknownLine = { check: 'kubelet-config', line: 'x' };
    expect(evaluate({ allOf: [timeout, { not: timeout }] }, o).matched).toBe(false);
    expect(evaluate({ anyOf: [{ check: 'disk-space', line: 'nope' }, timeout] }, o).matched).toBe(true);
    // not(unknown) is unknown, never true.
    expect(evaluate({ not: unknownLine }, o).matched).toBe('unknown');
    expect(evaluate({ allOf: [timeout, { not: unknownLine }] }, o).matched).toBe('unknown');
    expect(evaluate({ allOf: [{ check: 'disk-space', line: 'nope' }, unknownLine] }, o).matched).toBe(false);
    expect(evaluate({ anyOf: [unknownLine, timeout] }, o).matched).toBe(true);
    expect(evaluate({ anyOf: [unknownLine, { check: 'disk-space', line: 'nope' }] }, o).matched).toBe('unknown');
  });

  it('counts distinct values of a group', () => {
    const pods = observationsOf([obs('k8s-pods', ['container a/p1/c reason=X', 'container a/p1/d reason=X', 'container a/p2/c reason=X'])]);
    const two = { check: 'k8s-pods', line: '^container (?<pod>[^/]+/[^/]+)/\\S+ reason=X', minDistinct: { group: 'pod', count: 2 } };
    expect(evaluate(two, pods).matched).toBe(true);
    expect(evaluate({ ...two, minDistinct: { group: 'pod', count: 3 } }, pods).matched).toBe(false);
  });
});

describe('Kubernetes rendering', () => {
  const pod: KubePod = {
    namespace: 'gpu-operator',
    name: 'toolkit-84xtt',
    uid: 'u',
    phase: 'Running',
    owner: { kind: 'DaemonSet', name: 'toolkit' },
    containers: [{ name: 'ctr', ready: false, restartCount: 681, state: { kind: 'waiting', reason: 'CrashLoopBackOff' }, lastTerminated: { reason: 'Error', exitCode: 1 } }],
    hostPaths: [
      { volume: 'sock', path: '/var/run/containerd/containerd.sock', type: null },
      { volume: 'other', path: '/etc/ssl', type: 'Directory' },
    ],
  };

  it('reports hostPaths onto the runtime socket (either /run spelling) and nothing else', () => {
    const lines = renderPods([pod], ['/run/containerd/containerd.sock']);
    expect(lines).toContain('container gpu-operator/toolkit-84xtt/ctr ready=false restarts=681 state=waiting reason=CrashLoopBackOff last=terminated:Error exit=1 pod-ref=gpu-operator/toolkit-84xtt@u');
    expect(lines).toContain('hostPath gpu-operator/toolkit-84xtt volume=sock path=/var/run/containerd/containerd.sock type=<unset> owner=DaemonSet/toolkit');
    expect(lines.some((l) => l.includes('/etc/ssl'))).toBe(false);
  });

  it('orders events newest first and flattens messages', () => {
    const lines = renderEvents([
      { type: 'Warning', reason: 'Old', message: 'a', kind: 'Pod', namespace: 'x', name: 'p', count: 1, lastTimestamp: '2026-01-01T00:00:00Z' },
      { type: 'Warning', reason: 'New', message: 'multi\n  line', kind: 'Node', name: 'n', count: 3, lastTimestamp: '2026-02-01T00:00:00Z' },
    ]);
    expect(lines[0]).toBe('event Warning New Node/n: multi line (x3) at=2026-02-01T00:00:00Z');
  });
});
