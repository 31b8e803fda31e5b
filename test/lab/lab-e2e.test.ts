/**
 * End to end on real nodes (real systemd, containerd, sshd; kubelet and the
 * API server are stand-ins): each fault is produced for real, `diag` must
 * name it from the real evidence, `fix` must return the node to healthy, and
 * an independent check (not the product's) must agree.
 *
 * Needs root and the packages .ci/run installs. Without them this suite
 * FAILS (it does not skip): a green CI must mean the lab ran.
 */
import { jest } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKubeClient } from '../../src/adapters/kube.js';
import { createSshConnector } from '../../src/adapters/ssh.js';
import { loadCatalogs } from '../../src/catalog/load.js';
import { diagnoseNode, type DiagnoseDeps } from '../../src/diagnose/run-diagnosis.js';
import { FileAuditLog, verifyAuditLog } from '../../src/incidents/audit-log.js';
import { loadInventory } from '../../src/inventory/inventory.js';
import { systemClock } from '../../src/ports.js';
import { createRedactor } from '../../src/redact.js';
import type { RunOutcome } from '../../src/runbooks/execute.js';
import { prepareFix, runFix, type FixDeps } from '../../src/runbooks/fix-service.js';
import { FileNodeLock } from '../../src/runbooks/lock.js';
import { sudoersFile } from '../../src/runbooks/sudoers.js';
import { LAB_FAULTS, resetContainerd, type LabFault } from './faults.js';
import { Lab, labLeftovers, requireLabEnvironment, type LabNode } from './lab.js';

jest.setTimeout(240_000);

let lab: Lab;
let deps: FixDeps;
const catalogs = loadCatalogs();

function makeDeps(inventoryPath: string): FixDeps {
  const k = createKubeClient({ kubeconfigPath: lab.kubeconfigPath });
  const base: DiagnoseDeps = {
    catalogs,
    inventory: loadInventory(inventoryPath),
    ssh: createSshConnector(),
    kube: k.client,
    kubeUnavailableReason: k.reason,
    clock: systemClock,
    redact: createRedactor(),
    maxOutputBytes: 256 * 1024,
  };
  return { ...base, kubeWriter: k.client, audit: new FileAuditLog(join(lab.dir, 'audit.jsonl'), base.redact), lock: new FileNodeLock(join(lab.dir, 'locks')) };
}

async function ids(node: LabNode, d = deps): Promise<string[]> {
  return (await diagnoseNode(node.name, d)).findings.map((f) => f.id);
}

/** Waits until the node has no finding but the allowed ones (the seed's toolkit pod keeps its advisory hostPath finding). */
async function waitHealthy(node: LabNode, allowed: string[] = [], timeoutMs = 60_000, d = deps): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await ids(node, d);
    if (last.every((id) => allowed.includes(id))) return;
    await new Promise((r) => setTimeout(r, 1500));
  }
  throw new Error(`${node.name} did not become healthy: ${last.join(', ')}`);
}

/** Fails with the whole story of a run unless it fixed the node. */
function expectFixed(outcome: RunOutcome): void {
  if (outcome.result === 'fixed') return;
  const steps = outcome.steps.map((x) => `  ${x.index}. ${x.title}: ${x.status}${x.reason ? ` (${x.reason})` : ''}${x.output ? `\n     ${x.output.slice(0, 400).split('\n').join('\n     ')}` : ''}`);
  throw new Error(`expected "fixed", got "${outcome.result}"\n${outcome.summary}\n${steps.join('\n')}\nafter: ${outcome.after?.findings.map((f) => f.id).join(', ')}`);
}

/** Checks the node by hand, not through nodediag. */
async function independentlyHealthy(node: LabNode): Promise<void> {
  await node.must('ctr --connect-timeout 3s --timeout 4s version >/dev/null');
  expect((await node.must('stat -c %F /run/containerd/containerd.sock')).trim()).toBe('socket');
  expect((await node.must('systemctl is-active containerd kubelet')).trim().split('\n')).toEqual(['active', 'active']);
}

beforeAll(async () => {
  requireLabEnvironment();
  lab = await Lab.boot({ nodes: ['lab-node-1', 'lab-node-2', 'lab-node-3'] });
  lab.kube.podHealthFor = () => 'creating';
  for (const n of lab.nodes) lab.resetPods(n.name, 'kube-proxy');
  deps = makeDeps(lab.inventoryPath);
  await Promise.all(lab.nodes.map((n) => waitHealthy(n)));
});

afterAll(async () => {
  if (!lab) return;
  const id = lab.id;
  await lab.teardown();
  expect(labLeftovers(id)).toEqual([]);
});

describe('real-node lab', () => {
  const local = LAB_FAULTS.filter((f) => !f.global);
  const global = LAB_FAULTS.filter((f) => f.global);
  const cases: Array<[LabFault, number]> = [...local, ...global].map((f, i) => [f, i % 3]);

  it.each(cases.map(([f, i]) => [f.id, f, i] as const))('%s: diag names it from real evidence and fix returns the node to healthy', async (_id, fault, i) => {
    const node = lab.nodes[i]!;
    const toolkit = fault.id === 'socket-is-directory';
    const allowed = toolkit ? ['runtime-socket-hostpath-unsafe'] : [];
    lab.resetPods(node.name, toolkit ? 'toolkit' : 'kube-proxy');
    await waitHealthy(node, allowed);
    try {
      await fault.inject(node, lab);
      await new Promise((r) => setTimeout(r, 3000));
      const report = await diagnoseNode(node.name, deps);
      const found = report.findings.map((f) => f.id);
      expect(found).toEqual(expect.arrayContaining(fault.expect));
      expect(report.findings.find((f) => f.role === 'root-cause')!.id).toBe(fault.expect[0]);
      if (!fault.fixable) {
        expect(report.findings.find((f) => f.id === fault.expect[0])!.runbook).toBeNull();
        await fault.restore(node, lab);
        await waitHealthy(node, allowed);
        return;
      }
      const prepared = await prepareFix(node.name, fault.expect[0]!, deps);
      if ('notNeeded' in prepared) throw new Error('the fault vanished before the fix');
      const outcome = await runFix(prepared, deps, { actor: 'lab-e2e' });
      expectFixed(outcome);
      await independentlyHealthy(node);
      await waitHealthy(node, allowed);
    } catch (err) {
      await fault.restore(node, lab).catch(() => undefined);
      throw err;
    }
  });

  it('seed 000 end to end: toolkit pod crash-looping → diag → fix → containerd serving → pod deleted and recreated → node Ready', async () => {
    const node = lab.nodes[0]!;
    lab.resetPods(node.name, 'toolkit');
    await waitHealthy(node, ['runtime-socket-hostpath-unsafe']);
    const fault = LAB_FAULTS.find((f) => f.id === 'socket-is-directory')!;
    await fault.inject(node, lab);
    const crashloop = async () => lab.kube.podsOn(node.name).some((p) => p.status.containerStatuses[0].state.waiting?.reason === 'CrashLoopBackOff');
    for (let i = 0; i < 20 && !(await crashloop()); i++) await new Promise((r) => setTimeout(r, 500));
    const before = lab.kube.podsOn(node.name)[0]!;
    expect(before.status.containerStatuses[0].state.waiting.reason).toBe('CrashLoopBackOff');

    const report = await diagnoseNode(node.name, deps);
    expect(report.findings.map((f) => [f.id, f.role])).toEqual(
      expect.arrayContaining([
        ['containerd-socket-is-directory', 'root-cause'],
        ['pod-crashloop', 'symptom'],
        ['runtime-socket-hostpath-unsafe', 'contributing'],
      ]),
    );
    const prepared = await prepareFix(node.name, 'containerd-socket-is-directory', deps);
    if ('notNeeded' in prepared) throw new Error('not needed?');
    const outcome = await runFix(prepared, deps, { actor: 'lab-e2e' });
    expectFixed(outcome);
    await independentlyHealthy(node);
    const after = lab.kube.podsOn(node.name);
    expect(after).toHaveLength(1);
    expect(after[0]!.metadata.uid).not.toBe(before.metadata.uid);
    expect(after[0]!.status.containerStatuses[0].state.running).toBeDefined();
    expect(lab.kube.nodes.get(node.name)!.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    expect(verifyAuditLog(join(lab.dir, 'audit.jsonl')).ok).toBe(true);
  });

  it('the seed-000 §8 fix kills exactly the left-over shim, nothing else', async () => {
    const node = lab.nodes[1]!;
    lab.resetPods(node.name, 'kube-proxy');
    await waitHealthy(node);
    const fault = LAB_FAULTS.find((f) => f.id === 'leftover-shims')!;
    await node.must('ctr -n k8s.io run -d --rootfs ' + `${node.dir}/rootfs` + ' bystander /bin/sleep 1000000');
    const bystanderSleep = (await node.must(`ctr -n k8s.io tasks ls | awk '$1 == "bystander" { print $2 }'`)).trim();
    // The bystander's shim is moved out of containerd's cgroup first, so it is not "left over".
    const bystanderShim = (await node.must(`ps -o ppid= -p ${bystanderSleep}`)).trim();
    await node.must(`for d in /sys/fs/cgroup/*/; do mkdir -p "$d/bystander.scope" && echo ${bystanderShim} > "$d/bystander.scope/cgroup.procs" 2>/dev/null; done; ! grep -q containerd.service /proc/${bystanderShim}/cgroup`);
    try {
      await fault.inject(node, lab);
      const report = await diagnoseNode(node.name, deps);
      const shims = report.findings.find((f) => f.id === 'containerd-leftover-shims')!;
      expect(shims.params.pid).not.toContain(bystanderShim);
      const prepared = await prepareFix(node.name, 'containerd-leftover-shims', deps);
      if ('notNeeded' in prepared) throw new Error('not needed?');
      const outcome = await runFix(prepared, deps, { actor: 'lab-e2e' });
      expectFixed(outcome);
      await node.must(`kill -0 ${bystanderSleep}`);
      await node.must(`kill -0 ${bystanderShim}`);
    } finally {
      await node.sh(`kill -9 ${bystanderShim} ${bystanderSleep}; ctr -n k8s.io tasks rm -f bystander; ctr -n k8s.io containers rm bystander`);
      await resetContainerd(node).catch(() => undefined);
    }
  });

  it('refuses to remove a socket-path directory that holds files, and changes nothing', async () => {
    const node = lab.nodes[2]!;
    lab.resetPods(node.name, 'kube-proxy');
    await waitHealthy(node);
    await node.sh('systemctl stop containerd; rm -f /run/containerd/containerd.sock; mkdir /run/containerd/containerd.sock; echo keep > /run/containerd/containerd.sock/something; systemctl start containerd');
    try {
      const prepared = await prepareFix(node.name, 'containerd-socket-is-directory', deps);
      if ('notNeeded' in prepared) throw new Error('not needed?');
      const outcome = await runFix(prepared, deps, { actor: 'lab-e2e' });
      expect(outcome.result).toBe('aborted');
      expect(outcome.summary).toMatch(/refused: the socket path is a directory that holds files/);
      expect((await node.must('cat /run/containerd/containerd.sock/something')).trim()).toBe('keep');
    } finally {
      await node.sh('systemctl stop containerd; rm -rf /run/containerd/containerd.sock');
      await resetContainerd(node);
    }
  });

  it('works as a non-root user with `sudo: true` and exactly the generated sudoers lines', async () => {
    const node = lab.nodes[2]!;
    lab.resetPods(node.name, 'kube-proxy');
    await waitHealthy(node);
    await node.must(
      `id nodediag >/dev/null 2>&1 || useradd -m -d /var/lib/nodediag-user -s /bin/sh nodediag; mkdir -p /var/lib/nodediag-user/.ssh; cp /root/.ssh/authorized_keys /var/lib/nodediag-user/.ssh/; chown -R nodediag /var/lib/nodediag-user; chmod 700 /var/lib/nodediag-user/.ssh`,
    );
    writeFileSync(join(node.dir, 'etc-upper', 'sudoers.d-nodediag'), sudoersFile(catalogs, 'nodediag'));
    await node.must(`mkdir -p /etc/sudoers.d && cp ${join(node.dir, 'etc-upper', 'sudoers.d-nodediag')} /etc/sudoers.d/nodediag && chmod 0440 /etc/sudoers.d/nodediag && visudo -cf /etc/sudoers.d/nodediag`);
    const inv = join(lab.dir, 'inventory-sudo.yaml');
    writeFileSync(
      inv,
      `defaults:\n  user: nodediag\n  sudo: true\n  privateKeyPath: ${lab.botKeyPath}\nnodes:\n  - name: ${node.name}\n    host: ${node.address}\n    hostKey: "${node.hostKeyFingerprint}"\n`,
    );
    const sudoDeps = makeDeps(inv);
    const healthy = await diagnoseNode(node.name, sudoDeps);
    expect(healthy.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(healthy.findings).toEqual([]);
    const fault = LAB_FAULTS.find((f) => f.id === 'cgroup-driver-mismatch')!;
    await fault.inject(node, lab);
    try {
      const prepared = await prepareFix(node.name, 'cgroup-driver-mismatch', sudoDeps);
      if ('notNeeded' in prepared) throw new Error('not needed?');
      const outcome = await runFix(prepared, sudoDeps, { actor: 'lab-e2e-sudo' });
      expect(outcome.steps.filter((s) => /sudo/.test(s.reason ?? '') || /password is required/.test(s.output))).toEqual([]);
      expectFixed(outcome);
      await independentlyHealthy(node);
    } finally {
      await fault.restore(node, lab).catch(() => undefined);
    }
  });
});
