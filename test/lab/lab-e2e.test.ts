/**
 * End to end on real, production-like nodes (real systemd, real containerd
 * 1.6, 1.7 and 2.1, real sshd; kubelet and the API server are stand-ins).
 * Every node runs real containers (one holding a "GPU" device), has the
 * NVIDIA runtime as containerd's default and a private registry with
 * credentials. Each fault is produced for real; `diag` must name it from the
 * real evidence; `fix` must return the node to healthy by an independent
 * check, AND leave the same containers RUNNING under containerd with the
 * same PIDs, AND keep the config as it was, AND no credential of the node
 * may appear in any output.
 *
 * Needs root and the packages .ci/run installs. Without them this suite
 * FAILS (it does not skip): a green CI must mean the lab ran.
 */
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKubeClient } from '../../src/adapters/kube.js';
import { fixDeps, sharedDeps } from '../../src/clusters/cluster-access.js';

import { loadCatalogs } from '../../src/catalog/load.js';
import { diagnoseNode } from '../../src/diagnose/run-diagnosis.js';
import { FileAuditLog, verifyAuditLog } from '../../src/incidents/audit-log.js';
import { loadInventory } from '../../src/inventory/inventory.js';

import { createRedactor } from '../../src/redact.js';
import type { RunOutcome } from '../../src/runbooks/execute.js';
import { prepareFix, runFix, type FixDeps } from '../../src/runbooks/fix-service.js';
import { FileNodeLock } from '../../src/runbooks/lock.js';
import { sudoersFile } from '../../src/runbooks/sudoers.js';
import { findingOf, LAB_FAULTS, resetContainerd, type LabFault } from './faults.js';
import { Lab, LAB_WORKLOADS, labLeftovers, REPO_ROOT, requireLabEnvironment, type ContainerdVersion, type LabNode } from './lab.js';

jest.setTimeout(300_000);

/**
 * Two nodes each of bookworm's 1.6 and unstable's 2.1 (config version 3). Trixie's 1.7 is covered
 * by fixtures captured from real 1.7 nodes (capture-fixtures.ts): its messages and config are 1.6's.
 */
const NODES: Array<{ name: string; containerd: ContainerdVersion }> = [
  { name: 'lab-16a', containerd: '1.6' },
  { name: 'lab-16b', containerd: '1.6' },
  { name: 'lab-21a', containerd: '2.1' },
  { name: 'lab-21b', containerd: '2.1' },
];

let lab: Lab;
let deps: FixDeps;
const catalogs = loadCatalogs();

function makeDeps(inventoryPath: string): FixDeps {
  const redact = createRedactor();
  const k = createKubeClient({ kubeconfigPath: lab.kubeconfigPath });
  return fixDeps(sharedDeps({ redact, maxOutputBytes: 256 * 1024, catalogs }), loadInventory(inventoryPath), k, new FileNodeLock(join(lab.dir, 'locks')), new FileAuditLog(join(lab.dir, 'audit.jsonl'), redact));
}

async function ids(node: LabNode, d = deps): Promise<string[]> {
  return (await diagnoseNode(node.name, d)).findings.map((f) => f.id);
}

/** Waits until the node has no finding but the allowed ones (the seed's toolkit pod keeps its advisory hostPath finding). */
async function waitHealthy(node: LabNode, allowed: string[] = [], timeoutMs = 90_000, d = deps): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Cheap signs first (a diagnosis forks a few hundred processes on the node): the Node Ready, the runtime answering.
  while (Date.now() < deadline) {
    const ready = lab.kube.nodes.get(node.name)?.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    if (ready?.status === 'True' && (await node.sh('ctr --connect-timeout 2s --timeout 3s version >/dev/null 2>&1')).code === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await ids(node, d);
    if (last.every((id) => allowed.includes(id))) return;
    await new Promise((r) => setTimeout(r, 4000));
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

/** The node's workloads as containerd lists them (by hand). */
async function workloads(node: LabNode): Promise<Record<string, string>> {
  const tasks = await node.tasks();
  return Object.fromEntries(LAB_WORKLOADS.map((id) => [id, tasks.has(id) ? `${tasks.get(id)!.pid} ${tasks.get(id)!.status}` : 'missing']));
}

/** A config, blank lines aside: what it configures. */
function configured(text: string): string {
  return text.split('\n').filter((l) => l.trim()).join('\n');
}

/** Fails if a credential the node holds appears in any of the texts. */
function expectNoSecret(where: string, ...texts: string[]): void {
  for (const secret of [lab.registryPassword, lab.registryBasic]) {
    for (const t of texts) if (t.includes(secret)) throw new Error(`a registry credential of the node appeared in ${where}`);
  }
}

/**
 * One fix at a time per node; a few nodes at a time (2 CPUs: each diagnosis
 * forks a few hundred processes, and a starved node answers slowly).
 */
const queues = new Map<string, Promise<unknown>>();
const PARALLEL_NODES = Number(process.env.NODEDIAG_LAB_PARALLEL ?? 3);
let running = 0;
const waiting: Array<() => void> = [];
async function slot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= PARALLEL_NODES) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await work();
  } finally {
    running--;
    waiting.shift()?.();
  }
}
/** Each case's own bound, counted from when it gets its node (jest's timeout also counts the queue). */
const CASE_MS = 300_000;
function bounded<T>(node: LabNode, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`a case on ${node.name} ran over ${CASE_MS / 1000} s`)), CASE_MS)));
  return Promise.race([work(), limit]).finally(() => clearTimeout(timer));
}
function onNode<T>(node: LabNode, work: () => Promise<T>): Promise<T> {
  const prev = queues.get(node.name) ?? Promise.resolve();
  const next = prev.then(() => slot(() => bounded(node, work)), () => slot(() => bounded(node, work)));
  queues.set(node.name, next.catch(() => undefined));
  return next;
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'cli.js'), ...args], { timeout: 240_000, env: { ...process.env, NODEDIAG_STATE_DIR: join(lab.dir, 'cli-state') } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    ),
  );
}

beforeAll(async () => {
  requireLabEnvironment(NODES.map((n) => n.containerd));
  lab = await Lab.boot({ nodes: NODES });
  lab.kube.podHealthFor = () => 'creating';
  for (const n of lab.nodes) lab.resetPods(n.name, 'kube-proxy');
  deps = makeDeps(lab.inventoryPath);
  await Promise.all(lab.nodes.map((n) => waitHealthy(n)));
}, 300_000);

afterAll(async () => {
  if (!lab) return;
  const id = lab.id;
  await lab.teardown();
  expect(labLeftovers(id)).toEqual([]);
});

/** Nodes whose last case left them healthy by nodediag's own diagnosis (the next case need not wait). */
const healthyAfterLastCase = new Set<string>();

/**
 * Which faults run on which containerd: every local fault on 1.6; on 2.1 (config version 3) and
 * 1.7 the faults whose evidence or fix depends on containerd's version (its messages, its config,
 * its tools). The rest (network sysctls, PLEG, CNI) do not touch containerd's version.
 */
const VERSION_DEPENDENT = /^(containerd-|cgroup-driver-mismatch|disk-pressure)/;
function cases(): Array<[string, LabFault, string]> {
  const out: Array<[string, LabFault, string]> = [];
  const turn = new Map<ContainerdVersion, number>();
  for (const fault of LAB_FAULTS.filter((f) => !f.global)) {
    const versions = fault.versions ?? (VERSION_DEPENDENT.test(fault.id) ? (['1.6', '2.1'] as const) : (['1.6'] as const));
    for (const v of versions) {
      const nodes = NODES.filter((n) => n.containerd === v);
      const i = turn.get(v) ?? 0;
      turn.set(v, i + 1);
      out.push([`${fault.id} on containerd ${v}`, fault, nodes[i % nodes.length]!.name]);
    }
  }
  return out;
}

describe('real-node lab: every fault on production-like nodes', () => {
  it.concurrent.each(cases())('%s: diag names it from real evidence; fix heals the node, keeps its containers and its config, leaks no credential', (_title, fault, nodeName) =>
    onNode(lab.node(nodeName), async () => {
      const node = lab.node(nodeName);
      const toolkit = fault.id === 'containerd-socket-is-directory';
      const allowed = toolkit ? ['runtime-socket-hostpath-unsafe'] : [];
      lab.resetPods(node.name, toolkit ? 'toolkit' : 'kube-proxy');
      // The node's previous case ended with it healthy (checked); the pods changed only in the API.
      if (toolkit || !healthyAfterLastCase.has(node.name)) await waitHealthy(node, allowed);
      healthyAfterLastCase.delete(node.name);
      const before = await workloads(node);
      const configBefore = await node.config();
      expect(Object.values(before).every((w) => /RUNNING$/.test(w))).toBe(true);
      try {
        await fault.inject(node, lab);
        await new Promise((r) => setTimeout(r, 3000));
        const report = await diagnoseNode(node.name, deps);
        const found = report.findings.map((f) => f.id);
        expect(found).toEqual(expect.arrayContaining(fault.expect));
        expect(report.findings.find((f) => f.role === 'root-cause')!.id).toBe(fault.expect[0]);
        expect(report.layout).toMatchObject({ flavour: 'containerd' });
        if (!fault.fixable) {
          expect(report.findings.find((f) => f.id === fault.expect[0])!.runbook).toBeNull();
          expectNoSecret(`the ${fault.id} diagnosis`, JSON.stringify(report));
          await fault.restore(node, lab);
          await waitHealthy(node, allowed);
          // Advice only: nothing nodediag did touched the containers or the config.
          expect(await workloads(node)).toEqual(before);
          expect(configured(await node.config())).toBe(configured(configBefore));
          return;
        }
        const prepared = await prepareFix(node.name, findingOf(fault), deps);
        if ('notNeeded' in prepared) throw new Error('the fault vanished before the fix');
        const outcome = await runFix(prepared, deps, { actor: 'lab-e2e' });
        expectFixed(outcome);
        await independentlyHealthy(node);
        // The containers that ran before run now, under containerd, with the same PIDs.
        expect(await workloads(node)).toEqual(before);
        for (const gone of fault.ends ?? []) expect((await node.tasks()).has(gone)).toBe(false);
        expect(configured(await node.config())).toBe(configured(configBefore));
        expectNoSecret(`the ${fault.id} diagnosis, plan, preview or outcome`, JSON.stringify(report), JSON.stringify(prepared), JSON.stringify(outcome), readFileSync(join(lab.dir, 'audit.jsonl'), 'utf8'));
        await waitHealthy(node, allowed);
        if (!toolkit) healthyAfterLastCase.add(node.name);
      } catch (err) {
        await fault.restore(node, lab).catch(() => undefined);
        throw err;
      }
    }),
    // Queued behind the other cases on its node: the bound that matters is CASE_MS, from when it starts.
    1_500_000,
  );

  it('swap (kernel-wide, so alone): diag names it and the fix turns it off for good', async () => {
    const fault = LAB_FAULTS.find((f) => f.global)!;
    await Promise.all([...queues.values()]);
    const node = lab.node('lab-16a');
    await waitHealthy(node);
    try {
      await fault.inject(node, lab);
      const prepared = await prepareFix(node.name, findingOf(fault), deps);
      if ('notNeeded' in prepared) throw new Error('not needed?');
      expectFixed(await runFix(prepared, deps, { actor: 'lab-e2e' }));
      await waitHealthy(node);
    } catch (err) {
      await fault.restore(node, lab).catch(() => undefined);
      throw err;
    }
  });
});

describe('real-node lab: what must never happen', () => {
  it('seed 000 end to end: toolkit pod crash-looping → diag → fix → containerd serving → the named pod deleted and recreated → node Ready', () =>
    onNode(lab.node('lab-21a'), async () => {
      const node = lab.node('lab-21a');
      lab.resetPods(node.name, 'toolkit');
      await waitHealthy(node, ['runtime-socket-hostpath-unsafe']);
      const fault = LAB_FAULTS.find((f) => f.id === 'containerd-socket-is-directory')!;
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
      expect(prepared.plan.params.pods).toEqual([`gpu-operator/${before.metadata.name}@${before.metadata.uid}`]);
      const outcome = await runFix(prepared, deps, { actor: 'lab-e2e' });
      expectFixed(outcome);
      await independentlyHealthy(node);
      const after = lab.kube.podsOn(node.name);
      expect(after).toHaveLength(1);
      expect(after[0]!.metadata.uid).not.toBe(before.metadata.uid);
      expect(after[0]!.status.containerStatuses[0].state.running).toBeDefined();
      expect(lab.kube.nodes.get(node.name)!.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
      expect(verifyAuditLog(join(lab.dir, 'audit.jsonl')).ok).toBe(true);
    }));

  it('a socket-path directory that holds a file: the whole plan is refused before containerd is even stopped', () =>
    onNode(lab.node('lab-16b'), async () => {
      const node = lab.node('lab-16b');
      lab.resetPods(node.name, 'kube-proxy');
      await waitHealthy(node);
      await node.sh('systemctl stop containerd; rm -f /run/containerd/containerd.sock; mkdir /run/containerd/containerd.sock; echo keep > /run/containerd/containerd.sock/something; systemctl start containerd');
      // Let the pods settle first (kubelet backs them off once the runtime is gone): the plan names them.
      for (let i = 0; i < 40 && !lab.kube.podsOn(node.name).every((p) => p.status.containerStatuses[0].state.waiting?.reason === 'CrashLoopBackOff'); i++) await new Promise((r) => setTimeout(r, 500));
      try {
        const prepared = await prepareFix(node.name, 'containerd-socket-is-directory', deps);
        if ('notNeeded' in prepared) throw new Error('not needed?');
        const since = (await node.must('date +%s')).trim();
        const outcome = await runFix(prepared, deps, { actor: 'lab-e2e' });
        expect(outcome.result).toBe('aborted');
        expect(outcome.summary).toMatch(/^refused before changing anything: .*holds files/);
        expect(outcome.steps.every((s) => s.status === 'not-run')).toBe(true);
        expect((await node.must('cat /run/containerd/containerd.sock/something')).trim()).toBe('keep');
        // Nothing stopped containerd: no "Stopping" in its journal since the run began.
        expect(await node.must(`journalctl -u containerd --since @${since} --no-pager -o cat | grep -c 'Stopping containerd' || true`)).toMatch(/^0\s*$/);
      } finally {
        await node.sh('systemctl stop containerd; rm -rf /run/containerd/containerd.sock');
        await resetContainerd(node);
      }
    }));

  it.each(['lab-16a', 'lab-21a'])('%s: a broken drop-in that config.toml imports: named, and the repair refuses (naming the file) instead of cutting config.toml at the drop-in\'s rows', (name) =>
    onNode(lab.node(name), async () => {
      const node = lab.node(name);
      lab.resetPods(node.name, 'kube-proxy');
      await waitHealthy(node);
      // A drop-in for a plugin nothing else configures (1.x replaces a plugin's whole table with an import's, so a
      // drop-in for the CRI plugin would have to carry all of it).
      const dropIn = `version = ${node.containerd === '2.1' ? 3 : 2}\n[plugins."io.containerd.internal.v1.opt"]\n  path = "/opt/containerd"\n`;
      // config.toml imports conf.d (as nvidia-ctk sets it up), the drop-in loads, a diagnosis keeps that config as the last good.
      await node.must(
        `cp -p /etc/containerd/config.toml /root/config.toml.before-imports && sed -i 's#^imports = .*#imports = ["/etc/containerd/conf.d/*.toml"]#' /etc/containerd/config.toml && mkdir -p /etc/containerd/conf.d && printf '%s' '${dropIn}' > /etc/containerd/conf.d/99-nvidia.toml && systemctl restart containerd`,
      );
      const before = await workloads(node);
      try {
        await node.waitRuntime();
        // Healthy by a diagnosis (which keeps this config as the last good), once kubelet has seen the runtime back.
        await waitHealthy(node);
        const configBefore = await node.must('sha256sum /etc/containerd/config.toml');
        // The drop-in's table header loses its closing bracket; containerd no longer starts.
        await node.must(`sed -i 's/"]$/"/' /etc/containerd/conf.d/99-nvidia.toml && ! systemctl restart containerd`);
        const report = await diagnoseNode(node.name, deps);
        const invalid = report.findings.find((f) => f.id === 'containerd-config-invalid')!;
        expect(invalid.evidence.join('\n')).toMatch(/conf\.d\/99-nvidia\.toml/);
        const refusal = await prepareFix(node.name, 'containerd-config-invalid', deps).then(() => 'planned', (err: Error) => err.message);
        expect(refusal).toMatch(/containerd fails on \/etc\/containerd\/conf\.d\/99-nvidia\.toml, a file config\.toml imports/);
        expectNoSecret('the drop-in diagnosis and refusal', JSON.stringify(report), refusal);
        expect(await node.must('sha256sum /etc/containerd/config.toml')).toBe(configBefore);
      } finally {
        await node.sh('mv -f /root/config.toml.before-imports /etc/containerd/config.toml; rm -rf /etc/containerd/conf.d; systemctl reset-failed containerd; systemctl restart containerd');
        await node.waitRuntime();
        // A diagnosis keeps the config as it was again.
        await ids(node);
      }
      await waitHealthy(node);
      // The containers ran through it all (containerd down, then back), under containerd, with the same PIDs.
      expect(await workloads(node)).toEqual(before);
    }),
  );

  it('a config with the CRI plugin off is named, and never kept as the config a repair goes back to', () =>
    onNode(lab.node('lab-16b'), async () => {
      const node = lab.node('lab-16b');
      lab.resetPods(node.name, 'kube-proxy');
      await waitHealthy(node);
      const keptBefore = await node.must('sha256sum /var/lib/nodediag/containerd-config.last-good.toml');
      const before = await workloads(node);
      const fault = LAB_FAULTS.find((f) => f.id === 'containerd-cri-disabled')!;
      await fault.inject(node, lab);
      try {
        const report = await diagnoseNode(node.name, deps);
        expect(report.findings.find((f) => f.role === 'root-cause')!.id).toBe('containerd-cri-disabled');
        // Without the CRI plugin containerd has no default runtime: no cgroup driver to compare, so no mismatch to "fix".
        expect(report.findings.map((f) => f.id)).not.toContain('cgroup-driver-mismatch');
        expect(await node.must('sha256sum /var/lib/nodediag/containerd-config.last-good.toml')).toBe(keptBefore);
        expectNoSecret('the CRI-off diagnosis', JSON.stringify(report));
        expect(await node.must(`grep -c '^disabled_plugins = \\[\\]$' /var/lib/nodediag/containerd-config.last-good.toml`)).toBe('1\n');
      } finally {
        await fault.restore(node, lab);
      }
      await waitHealthy(node);
      expect(await workloads(node)).toEqual(before);
    }));

  it('through the real CLI on a GPU node with a broken config: text, --json, dry run and fix print no credential, and the config keeps nvidia as default', () =>
    onNode(lab.node('lab-21b'), async () => {
      const node = lab.node('lab-21b');
      lab.resetPods(node.name, 'kube-proxy');
      await waitHealthy(node);
      const fault = LAB_FAULTS.find((f) => f.id === 'containerd-config-invalid')!;
      const configBefore = await node.config();
      await fault.inject(node, lab);
      try {
        const common = ['--inventory', lab.inventoryPath, '--kubeconfig', lab.kubeconfigPath];
        const text = await cli(['diag', node.name, ...common]);
        const json = await cli(['diag', node.name, '--json', ...common]);
        const dry = await cli(['fix', node.name, 'containerd-config-invalid', '--dry-run', ...common]);
        expect(text.code).toBe(1);
        expect(JSON.parse(json.stdout).findings[0].id).toBe('containerd-config-invalid');
        expect(dry.stdout).toMatch(/default-runtime=nvidia/);
        const fix = await cli(['fix', node.name, 'containerd-config-invalid', '--yes', '--json', ...common]);
        expect(JSON.parse(fix.stdout).result).toBe('fixed');
        for (const r of [text, json, dry, fix]) expectNoSecret('the CLI output', r.stdout, r.stderr);
        expectNoSecret('the CLI audit log', readFileSync(join(lab.dir, 'cli-state', 'audit.jsonl'), 'utf8'));
        expect(await node.config()).toMatch(/default_runtime_name = ['"]nvidia['"]/);
        expect(configured(await node.config())).toBe(configured(configBefore));
      } catch (err) {
        await fault.restore(node, lab).catch(() => undefined);
        throw err;
      }
    }));

  it('works as a non-root user with `sudo: true` and exactly the generated sudoers lines', () =>
    onNode(lab.node('lab-16b'), async () => {
      const node = lab.node('lab-16b');
      lab.resetPods(node.name, 'kube-proxy');
      await waitHealthy(node);
      await node.must(
        `id nodediag >/dev/null 2>&1 || useradd -m -d /var/lib/nodediag-user -s /bin/sh nodediag; usermod -p '*' nodediag; mkdir -p /var/lib/nodediag-user/.ssh; cp /root/.ssh/authorized_keys /var/lib/nodediag-user/.ssh/; chown -R nodediag /var/lib/nodediag-user; chmod 700 /var/lib/nodediag-user/.ssh`,
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
      const before = await workloads(node);
      for (const id of ['cgroup-driver-mismatch', 'containerd-config-invalid']) {
        const fault = LAB_FAULTS.find((f) => f.id === id)!;
        await fault.inject(node, lab);
        try {
          const prepared = await prepareFix(node.name, id, sudoDeps);
          if ('notNeeded' in prepared) throw new Error('not needed?');
          const outcome = await runFix(prepared, sudoDeps, { actor: 'lab-e2e-sudo' });
          expect(outcome.steps.filter((s) => /sudo/.test(s.reason ?? '') || /password is required/.test(s.output))).toEqual([]);
          expectFixed(outcome);
          await independentlyHealthy(node);
          expect(await workloads(node)).toEqual(before);
        } catch (err) {
          await fault.restore(node, lab).catch(() => undefined);
          throw err;
        }
      }
    }));

  it('diagnoses and fixes as that user with tcsh as its login shell (every script reaches sh on standard input: no quoting for the login shell to read)', () =>
    onNode(lab.node('lab-16b'), async () => {
      const node = lab.node('lab-16b');
      await waitHealthy(node);
      await node.must('test -x /usr/bin/tcsh || { echo "tcsh is not installed: apt-get install tcsh, as .ci/run does" >&2; exit 1; }; id nodediag && usermod -s /usr/bin/tcsh nodediag');
      try {
        const deps = makeDeps(join(lab.dir, 'inventory-sudo.yaml'));
        const healthy = await diagnoseNode(node.name, deps);
        expect(healthy.checks.filter((c) => c.status !== 'ok')).toEqual([]);
        expect(healthy.findings).toEqual([]);
        const before = await workloads(node);
        const configBefore = configured(await node.config());
        const fault = LAB_FAULTS.find((f) => f.id === 'containerd-socket-is-directory')!;
        await fault.inject(node, lab);
        try {
          const broken = await diagnoseNode(node.name, deps);
          expect(broken.checks.filter((c) => c.status !== 'ok')).toEqual([]);
          expect(broken.findings.filter((f) => f.role === 'root-cause').map((f) => f.id)).toEqual(['containerd-socket-is-directory']);
          const prepared = await prepareFix(node.name, 'containerd-socket-is-directory', deps);
          if ('notNeeded' in prepared) throw new Error('not needed?');
          const outcome = await runFix(prepared, deps, { actor: 'lab-e2e-tcsh' });
          expectFixed(outcome);
          await independentlyHealthy(node);
          expect(await workloads(node)).toEqual(before);
          expect(configured(await node.config())).toBe(configBefore);
          expectNoSecret('the tcsh user\'s diagnosis or fix', JSON.stringify(healthy), JSON.stringify(broken), JSON.stringify(outcome));
        } catch (err) {
          await fault.restore(node, lab).catch(() => undefined);
          throw err;
        }
      } finally {
        await node.must('usermod -s /bin/sh nodediag');
      }
    }));
});
