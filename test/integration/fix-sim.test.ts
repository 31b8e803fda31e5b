/**
 * Runbook execution against simulated nodes whose state really changes (the
 * real SSH and Kubernetes clients on the wire), including the failure paths.
 * The real-node lab runs the same runbooks against real containerd.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditError, LockHeldError } from '../../src/errors.js';
import { FileAuditLog, lastStepsStarted, verifyAuditLog } from '../../src/incidents/audit-log.js';
import { createRedactor } from '../../src/redact.js';
import { prepareFix, runFix, type PreparedFix } from '../../src/runbooks/fix-service.js';
import type { SimFault } from '../../src/sim/sim-node.js';
import { simWorld, type SimWorld } from '../helpers/sim-deps.js';

async function prepared(w: SimWorld, node: string, finding: string): Promise<PreparedFix> {
  const p = await prepareFix(node, finding, w.deps);
  if ('notNeeded' in p) throw new Error(`${finding} does not hold on ${node}`);
  return p;
}

function stepScripts(w: SimWorld, node: string): string[] {
  return w.fleet.servers.get(node)!.commands.filter((c) => !c.includes('probe() {'));
}

/** Each runbook, by the simulated fault that calls for it. */
const RUNBOOK_CASES: Array<[string, SimFault, string]> = [
  ['containerd-socket-directory', 'socket-is-directory', 'containerd-socket-is-directory'],
  ['containerd-restart-hung', 'containerd-hung', 'containerd-hung'],
  ['containerd-config-reset', 'config-invalid', 'containerd-config-invalid'],
  ['containerd-kill-leftover-shims', 'leftover-shims', 'containerd-leftover-shims'],
  ['containerd-restart', 'containerd-down', 'containerd-down'],
  ['cgroup-driver-systemd', 'cgroup-driver-mismatch', 'cgroup-driver-mismatch'],
  ['containerd-restart-pleg', 'pleg-unhealthy', 'pleg-unhealthy'],
  ['bridge-netfilter', 'bridge-netfilter-off', 'cni-not-ready'],
  ['disk-cleanup', 'disk-pressure', 'disk-pressure'],
  ['enable-ntp', 'clock-skew', 'clock-skew'],
  ['disable-swap', 'swap-enabled', 'swap-enabled'],
];

describe('every runbook, against a simulated node whose state changes', () => {
  let w: SimWorld;
  beforeAll(async () => {
    w = await simWorld(RUNBOOK_CASES.map(([rb, fault]) => ({ name: `node-${rb}`, faults: [fault], toolkitPod: fault === 'socket-is-directory' })));
  });
  afterAll(() => w.fleet.stop());

  it('covers every runbook in the catalog', () => {
    expect(RUNBOOK_CASES.map(([rb]) => rb).sort()).toEqual(w.catalogs.runbooks.map((r) => r.id).sort());
  });

  it.each(RUNBOOK_CASES)('%s fixes %s', async (rb, _fault, finding) => {
    const node = `node-${rb}`;
    const p = await prepared(w, node, finding);
    expect(p.plan.runbook).toBe(rb);
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect({ result: outcome.result, summary: outcome.summary }).toEqual({ result: 'fixed', summary: expect.stringMatching(/steps done/) });
    expect(outcome.after!.findings.map((f) => f.id)).not.toContain(finding);
    expect(outcome.after!.findings.filter((f) => f.role === 'root-cause')).toEqual([]);
    expect(verifyAuditLog(w.auditPath).ok).toBe(true);
  });
});

describe('failure paths', () => {
  let w: SimWorld;
  beforeEach(async () => {
    w = await simWorld([{ name: 'gpu-node-1', faults: ['socket-is-directory'], toolkitPod: true }]);
  });
  afterEach(() => w.fleet.stop());

  it('stops with "not-needed" when the finding no longer holds at the re-check, running nothing', async () => {
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const node = w.fleet.nodes.get('gpu-node-1')!;
    node.state.socket = 'socket';
    node.state.containerd.state = 'running';
    const before = stepScripts(w, 'gpu-node-1').length;
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('not-needed');
    expect(outcome.steps).toEqual([]);
    expect(stepScripts(w, 'gpu-node-1').length).toBe(before);
  });

  it('refuses to start when the audit log cannot be written: no audit, no action', async () => {
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const before = w.fleet.servers.get('gpu-node-1')!.commands.length;
    // A directory where the log file should be: not writable, even for root.
    mkdirSync(join(w.dir, 'blocked.jsonl'));
    const deps = { ...w.deps, audit: new FileAuditLog(join(w.dir, 'blocked.jsonl'), createRedactor()) };
    await expect(runFix(p, deps, { actor: 'test' })).rejects.toThrow(AuditError);
    expect(w.fleet.servers.get('gpu-node-1')!.commands.length).toBe(before);
  });

  it('refuses a second fix on the same node and names who holds it', async () => {
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const first = runFix(p, w.deps, { actor: 'U111 (alice)' });
    await new Promise((r) => setTimeout(r, 30));
    await expect(runFix(p, w.deps, { actor: 'U222 (bob)' })).rejects.toThrow(LockHeldError);
    await expect(runFix(p, w.deps, { actor: 'U222 (bob)' })).rejects.toThrow(/held by U111 \(alice\)/);
    expect((await first).result).toBe('fixed');
    const audit = readFileSync(w.auditPath, 'utf8');
    expect(audit).toMatch(/"type":"fix-refused"/);
  });

  it('stops at a failing step, says what is done and what is not, and names the follow-up (the seed\'s chain)', async () => {
    const node = w.fleet.nodes.get('gpu-node-1')!;
    node.state.socket = 'socket';
    node.state.containerd = { ...node.state.containerd, state: 'running', hung: true };
    const p = await prepared(w, 'gpu-node-1', 'containerd-hung');
    // While containerd restarts, the toolkit pod's untyped hostPath mount turns the socket path into a directory.
    const publish = node.onChange;
    node.onChange = (n) => {
      if (n.state.containerd.state === 'auto-restart') n.state.socket = 'directory';
      publish(n);
    };
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('failed');
    expect(outcome.stoppedAt).toBe(2);
    expect(outcome.summary).toMatch(/stopped at step 2\/2 "Restart containerd and check the runtime answers": exited 1/);
    expect(outcome.summary).toMatch(/done before it: 1\. Kill the hung containerd main process/);
    expect(outcome.followUps.map((f) => f.id)).toEqual(['containerd-socket-is-directory']);
  });

  it('fails a step whose verification does not pass, without running the rest', async () => {
    const node = w.fleet.nodes.get('gpu-node-1')!;
    node.inject('disk-pressure');
    node.state.disk.unusedImages = false;
    const p = await prepared(w, 'gpu-node-1', 'disk-pressure');
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('failed');
    const prune = outcome.steps.find((s) => s.id === 'prune-images')!;
    expect(prune.status).toBe('failed');
    expect(prune.reason).toMatch(/verification failed: check failed .*still \d+% on \//);
  });

  it('refuses a precondition that does not hold (a socket-path directory with files) and changes nothing', async () => {
    w.fleet.nodes.get('gpu-node-1')!.state.socketDirEntries = 2;
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('aborted');
    expect(outcome.steps.find((s) => s.id === 'remove-socket-directory')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^refused: .*holds files/) });
    expect(w.fleet.nodes.get('gpu-node-1')!.state.socket).toBe('directory');
  });

  it('stops and records the last completed step when the connection is lost mid-run; it never resumes on its own', async () => {
    const server = w.fleet.servers.get('gpu-node-1')!;
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const publish = w.fleet.nodes.get('gpu-node-1')!.onChange;
    w.fleet.nodes.get('gpu-node-1')!.onChange = (n) => {
      if (n.state.socket === 'missing' && n.state.containerd.state === 'inactive') server.faults.resetAfterMs = 0;
      publish(n);
    };
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    server.faults = {};
    expect(outcome.result).toBe('failed');
    expect(outcome.summary).toMatch(/stopped at step 2\/5|stopped at step 3\/5/);
    expect(outcome.summary).toMatch(/connection (closed|reset|lost)|cannot open a channel|SSH_CONNECTION_LOST|connection error/i);
    const entries = readFileSync(w.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const last = entries.filter((e) => e.type === 'step-finished').at(-1);
    expect(last.data.status).toBe('failed');
    expect(entries.at(-1).type).toBe('run-finished');
    const sentAfter = server.commands.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(server.commands.length).toBe(sentAfter);
  });
});

describe('planning', () => {
  let w: SimWorld;
  beforeAll(async () => {
    w = await simWorld([{ name: 'gpu-node-2', faults: ['leftover-shims'] }]);
  });
  afterAll(() => w.fleet.stop());

  it('expands one kill step per PID systemd named, each checked before the kill', async () => {
    const p = await prepared(w, 'gpu-node-2', 'containerd-leftover-shims');
    const kills = p.plan.steps.filter((s) => s.id === 'kill-shim');
    expect(kills.map((s) => s.title)).toEqual(['Kill left-over shim 797']);
    expect(kills[0]!.action).toEqual({ kind: 'ssh', script: "kill -KILL '797'", timeoutMs: 10_000 });
    expect(kills[0]!.requires!.script).toContain("/proc/'797'/comm");
  });

  it('refuses a PID that is not a number before anything reaches a shell', async () => {
    const { planRunbook } = await import('../../src/runbooks/plan.js');
    const p = await prepared(w, 'gpu-node-2', 'containerd-leftover-shims');
    const evil = { ...p.finding, params: { pid: ['797', '1; reboot'] } };
    expect(() => planRunbook(w.catalogs, evil, { node: 'gpu-node-2', sudo: false, runtimeSocket: '/run/containerd/containerd.sock', stamp: '20261122T000000Z' })).toThrow(/refused pid value "1; reboot"/);
  });
});

describe('audit log hash chain', () => {
  let w: SimWorld;
  beforeAll(async () => {
    w = await simWorld([{ name: 'gpu-node-3', faults: ['containerd-down'] }]);
    const p = await prepared(w, 'gpu-node-3', 'containerd-down');
    await runFix(p, w.deps, { actor: 'test' });
  });
  afterAll(() => w.fleet.stop());

  function tampered(edit: (lines: string[]) => string[]): ReturnType<typeof verifyAuditLog> {
    const copy = join(w.dir, `tampered-${Math.random().toString(36).slice(2)}.jsonl`);
    const lines = readFileSync(w.auditPath, 'utf8').trim().split('\n');
    writeFileSync(copy, `${edit(lines).join('\n')}\n`);
    copyFileSync(`${w.auditPath}.head`, `${copy}.head`);
    return verifyAuditLog(copy);
  }

  it('is intact as written', () => {
    expect(verifyAuditLog(w.auditPath)).toMatchObject({ ok: true });
  });

  it('detects an edited entry', () => {
    const v = tampered((l) => l.map((x, i) => (i === 2 ? x.replace('"actor":"test"', '"actor":"someone-else"') : x)));
    expect(v).toMatchObject({ ok: false, problem: { line: 3, reason: expect.stringMatching(/altered/) } });
  });

  it('detects a removed entry, including the last one', () => {
    expect(tampered((l) => l.filter((_x, i) => i !== 3))).toMatchObject({ ok: false, problem: { line: 4 } });
    expect(tampered((l) => l.slice(0, -1))).toMatchObject({ ok: false, problem: { reason: expect.stringMatching(/removed from the end/) } });
  });

  it('names the last step started by an incident, even after a torn last line', () => {
    const copy = join(w.dir, 'torn.jsonl');
    const log = new FileAuditLog(copy, createRedactor());
    log.append({ type: 'step-started', node: 'n1', actor: 'U1', incident: 'inc-a', data: { index: 1, title: 'Stop containerd' } });
    log.append({ type: 'step-started', node: 'n2', actor: 'U1', incident: 'inc-b', data: { index: 1, title: 'Stop containerd' } });
    log.append({ type: 'step-started', node: 'n1', actor: 'U1', incident: 'inc-a', data: { index: 2, title: 'Remove the directory' } });
    writeFileSync(copy, `${readFileSync(copy, 'utf8')}{"type":"step-started","incident":"inc-a","da`);
    const found = lastStepsStarted(copy, new Set(['inc-a', 'inc-c']));
    expect([...found]).toEqual([['inc-a', { index: 2, title: 'Remove the directory' }]]);
  });

  it('detects reordered entries', () => {
    expect(tampered((l) => [l[0]!, l[2]!, l[1]!, ...l.slice(3)])).toMatchObject({ ok: false, problem: { line: 2 } });
  });
});
