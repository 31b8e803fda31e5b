/**
 * Runbook execution against simulated nodes whose state really changes (the
 * real SSH and Kubernetes clients on the wire), including the failure paths.
 * The real-node lab runs the same runbooks against real containerd.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLeaseLock } from '../../src/adapters/kube.js';
import { fixCommand } from '../../src/cli/fix-command.js';
import { loadConfig } from '../../src/config.js';
import { plain } from '../../src/diagnose/format-text.js';
import { AuditError, LockHeldError } from '../../src/errors.js';
import { FileAuditLog, lastStepsStarted, verifyAuditLog } from '../../src/incidents/audit-log.js';
import { createRedactor } from '../../src/redact.js';
import { loadCatalogs } from '../../src/catalog/load.js';
import { diagnoseNode } from '../../src/diagnose/run-diagnosis.js';
import { prepareFix, runFix, type PreparedFix } from '../../src/runbooks/fix-service.js';
import { formatPlan, planInputs, planRunbook } from '../../src/runbooks/plan.js';
import { makeDaemonSetPod } from '../../src/sim/kube-standin.js';
import { SIM_FAULTS, type SimFault } from '../../src/sim/sim-node.js';
import { simWorld, type SimWorld } from '../helpers/sim-deps.js';

async function prepared(w: SimWorld, node: string, finding: string): Promise<PreparedFix> {
  const p = await prepareFix(node, finding, w.deps);
  if ('notNeeded' in p) throw new Error(`${finding} does not hold on ${node}`);
  return p;
}

function stepScripts(w: SimWorld, node: string): string[] {
  return w.fleet.servers.get(node)!.commands.filter((c) => !c.includes('probe() {'));
}

/** The executor's own read-only looks at the node: its identity, the workload snapshot, its clock. */
const READ_ONLY = /machine-id=|ps -eo pid=|date \+%s%3N/;

/** Commands that could change the node: every step script, none of the executor's read-only looks. */
function changingScripts(w: SimWorld, node: string): string[] {
  return stepScripts(w, node).filter((c) => !READ_ONLY.test(c));
}

/** Each runbook, by the simulated fault of the same name (one name per scenario: derived from the catalog, not typed again). */
const RUNBOOK_IDS = loadCatalogs().runbooks.map((r) => r.id);

function bootedWorkloads(w: SimWorld, node: string): string[] {
  return w.fleet.nodes.get(node)!.state.workloads.filter((x) => !x.orphan).map((x) => `${x.pid}@${x.start}`);
}

describe('every runbook, against a simulated GPU node whose state changes (with running containers)', () => {
  let w: SimWorld;
  beforeAll(async () => {
    w = await simWorld(RUNBOOK_IDS.map((id) => ({ name: `node-${id}`, faults: [id as SimFault], toolkitPod: id === 'containerd-socket-is-directory' })));
  });
  afterAll(() => w.fleet.stop());

  it('has a simulated fault named after every runbook', () => {
    expect(RUNBOOK_IDS.filter((id) => !(SIM_FAULTS as readonly string[]).includes(id))).toEqual([]);
  });

  it.each(RUNBOOK_IDS)('%s: fixes its finding and leaves the running containers running', async (id) => {
    const node = `node-${id}`;
    const before = bootedWorkloads(w, node);
    const p = await prepared(w, node, id);
    expect(p.plan.runbook).toBe(id);
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect({ result: outcome.result, summary: outcome.summary }).toEqual({ result: 'fixed', summary: expect.stringMatching(/steps done/) });
    expect(outcome.after!.findings.map((f) => f.id)).not.toContain(id);
    expect(outcome.after!.findings.filter((f) => f.role === 'root-cause')).toEqual([]);
    expect(bootedWorkloads(w, node)).toEqual(before);
    expect(verifyAuditLog(w.auditPath).ok).toBe(true);
  });
});

describe('production GPU node faults', () => {
  let w: SimWorld;
  afterEach(() => w.fleet.stop());

  it('a restart storm is containerd-down (reset-failed, start), never left-over shims to kill', async () => {
    w = await simWorld([{ name: 'gpu-node-1', faults: ['containerd-down--restart-storm'] }]);
    const report = await diagnoseNode('gpu-node-1', w.deps);
    expect(report.findings.filter((f) => f.role === 'root-cause').map((f) => f.id)).toEqual(['containerd-down']);
    const journal = report.observations.find((o) => o.check === 'containerd-journal')!;
    expect(journal.lines.some((l) => /Found left-over process \d+ \(containerd-shim\) in control group while starting unit\. Ignoring\./.test(l))).toBe(true);
    const before = bootedWorkloads(w, 'gpu-node-1');
    const p = await prepared(w, 'gpu-node-1', 'containerd-down');
    expect(p.plan.steps.map((s) => s.action?.kind === 'ssh' ? s.action.script : '')).not.toContainEqual(expect.stringMatching(/kill/));
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('fixed');
    expect(bootedWorkloads(w, 'gpu-node-1')).toEqual(before);
  });

  it('kills only the orphaned shim that holds a GPU, naming what it runs; every other container survives', async () => {
    w = await simWorld([{ name: 'gpu-node-2', faults: ['containerd-leftover-shims'] }]);
    const report = await diagnoseNode('gpu-node-2', w.deps);
    expect(report.findings.map((f) => f.id)).toEqual(['containerd-leftover-shims', 'orphan-holds-gpu']);
    const p = await prepared(w, 'gpu-node-2', 'containerd-leftover-shims');
    const kills = p.plan.steps.filter((s) => s.id === 'kill-orphan-shim');
    expect(kills.map((s) => s.title)).toEqual(['Kill orphaned shim 797@4411']);
    expect(kills[0]!.shows).toMatch(/procs=812:python3 finetune\.py/);
    expect(formatPlan(p.plan)).toMatch(/acts on: .*bundle=deleted task=unknown gpu=yes/);
    const keep = bootedWorkloads(w, 'gpu-node-2');
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('fixed');
    expect(bootedWorkloads(w, 'gpu-node-2')).toEqual(keep);
    expect(w.fleet.nodes.get('gpu-node-2')!.state.workloads.some((x) => x.orphan)).toBe(false);
  });

  it('a broken config on a GPU node is repaired from the last config that loaded; the approval shows it and keeps nvidia', async () => {
    w = await simWorld([{ name: 'gpu-node-3', faults: ['containerd-config-invalid'] }]);
    const p = await prepared(w, 'gpu-node-3', 'containerd-config-invalid');
    expect(p.preview).toMatch(/^source=last-good /m);
    expect(p.preview).toMatch(/^default-runtime=nvidia$/m);
    expect(p.preview).toMatch(/password = "\[(MASKED|REDACTED)\]"/);
    expect(p.plan.params.candidateSha![0]).toMatch(/^[0-9a-f]{64}$/);
    expect(p.plan.steps.find((s) => s.id === 'install-repaired-config')!.undo!.note).toMatch(/put back/);
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('fixed');
    expect(w.fleet.nodes.get('gpu-node-3')!.state.config.defaultRuntime).toBe('nvidia');
  });

  it('refuses to offer a config repair when no candidate loads and keeps what the old file had', async () => {
    w = await simWorld([{ name: 'gpu-node-4', faults: ['containerd-config-invalid'] }]);
    w.fleet.nodes.get('gpu-node-4')!.state.lastGood = false;
    await expect(prepareFix('gpu-node-4', 'containerd-config-invalid', w.deps)).rejects.toThrow(/no candidate config loads and keeps what the old one had/);
  });

  it('stops a fix whose step ends a running container, and says which (the workload guard)', async () => {
    w = await simWorld([{ name: 'gpu-node-5', faults: ['containerd-down'] }]);
    const node = w.fleet.nodes.get('gpu-node-5')!;
    const p = await prepared(w, 'gpu-node-5', 'containerd-down');
    const publish = node.onChange;
    node.onChange = (n) => {
      // As if the start had killed a container (what the seed's pkill does to all of them).
      if (n.state.containerd.state === 'running' && n.state.workloads.length === 2) n.state.workloads.pop();
      publish(n);
    };
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('failed');
    expect(outcome.summary).toMatch(/a running container ended during this step: k8s\.io\/8e21d0b6c9aa \(shim 1377\) ended/);
    expect(readFileSync(w.auditPath, 'utf8')).toMatch(/"type":"workloads-recorded"/);
  });
});

describe('cgroup driver change on a drained node', () => {
  let w: SimWorld;
  afterEach(() => w.fleet.stop());

  function appPod(node: string, name: string, extra: Record<string, unknown> = {}) {
    const pod = makeDaemonSetPod({ namespace: 'ml', daemonSet: 'x', node, container: 'app', image: 'registry.lab.example/app:1', health: 'running', name });
    pod.metadata.labels = { app: 'trainer' };
    pod.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'trainer-7d9', uid: 'rs-1', controller: true }];
    Object.assign(pod.spec, extra);
    return pod;
  }

  it('cordons, evicts through the Eviction API (not DaemonSet pods), changes both drivers, uncordons', async () => {
    w = await simWorld([{ name: 'gpu-node-1', faults: ['cgroup-driver-mismatch'], toolkitPod: true }]);
    w.fleet.kube.addPod(appPod('gpu-node-1', 'trainer-7d9-abcde'));
    const p = await prepared(w, 'gpu-node-1', 'cgroup-driver-mismatch');
    expect(p.plan.steps.map((s) => s.id).slice(0, 3)).toEqual(['check-kubelet-config-in-use', 'cordon', 'drain']);
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('fixed');
    expect(outcome.steps.find((s) => s.id === 'drain')!.output).toBe('evicted ml/trainer-7d9-abcde');
    expect(w.fleet.kube.requests.some((r) => r.method === 'POST' && r.path.endsWith('/pods/trainer-7d9-abcde/eviction'))).toBe(true);
    expect(w.fleet.kube.podsOn('gpu-node-1').map((x) => x.metadata.labels.app)).toEqual(['nvidia-container-toolkit-daemonset']);
    expect(w.fleet.kube.nodes.get('gpu-node-1')!.spec.unschedulable).toBe(false);
  });

  it('stops, changing nothing on the node, when a PodDisruptionBudget keeps blocking an eviction; the node stays cordoned', async () => {
    w = await simWorld([{ name: 'gpu-node-2', faults: ['cgroup-driver-mismatch'] }]);
    w.fleet.kube.addPod(appPod('gpu-node-2', 'trainer-7d9-fghij'));
    w.fleet.kube.budgets.push({ namespace: 'ml', name: 'trainer-pdb', app: 'trainer', disruptionsAllowed: 0 });
    const p = await prepared(w, 'gpu-node-2', 'cgroup-driver-mismatch');
    const outcome = await runFix(p, { ...w.deps, runBounds: { drainTimeoutMs: 1500 } }, { actor: 'test' });
    expect(outcome.result).toBe('failed');
    expect(outcome.summary).toMatch(/stopped at step 3\/10 "Drain the node.*": a PodDisruptionBudget still blocks the eviction of ml\/trainer-7d9-fghij/);
    expect(w.fleet.nodes.get('gpu-node-2')!.state.config.systemdCgroup).toBe(false);
    expect(w.fleet.kube.podsOn('gpu-node-2')).toHaveLength(1);
    expect(w.fleet.kube.nodes.get('gpu-node-2')!.spec.unschedulable).toBe(true);
  });

  it('refuses the whole plan up front when a pod on the node has no controller or keeps data in emptyDir', async () => {
    w = await simWorld([{ name: 'gpu-node-3', faults: ['cgroup-driver-mismatch'] }]);
    const bare = appPod('gpu-node-3', 'notebook', { volumes: [{ name: 'scratch', emptyDir: {} }] });
    bare.metadata.ownerReferences = [];
    w.fleet.kube.addPod(bare);
    const p = await prepared(w, 'gpu-node-3', 'cgroup-driver-mismatch');
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('aborted');
    expect(outcome.summary).toMatch(/refused before changing anything: step 3 .*ml\/notebook has no controller.*ml\/notebook keeps data in emptyDir scratch/);
    expect(w.fleet.kube.nodes.get('gpu-node-3')!.spec.unschedulable ?? false).toBe(false);
  });
});

describe('verdicts from fresh evidence', () => {
  let w: SimWorld;
  afterEach(() => w.fleet.stop());

  it('PLEG: the kubelet lines from before the fix do not count; the verdict waits for kubelet\'s next status', async () => {
    w = await simWorld([{ name: 'gpu-node-1', faults: ['pleg-unhealthy'] }]);
    const p = await prepared(w, 'gpu-node-1', 'pleg-unhealthy');
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('fixed');
    const journal = outcome.after!.observations.find((o) => o.check === 'kubelet-journal')!;
    // The PLEG line is still in kubelet's journal, but before the window of fresh evidence.
    expect(w.fleet.nodes.get('gpu-node-1')!.state.journal.kubelet.some(([, l]) => /PLEG is not healthy/.test(l))).toBe(true);
    expect(journal.raw).not.toMatch(/PLEG is not healthy/);
    expect(journal.lines.some((l) => /PLEG is not healthy/.test(l))).toBe(false);
  });

  it('says the fix could not be verified when kubelet posts no status after it', async () => {
    w = await simWorld([{ name: 'gpu-node-2', faults: ['pleg-unhealthy'] }]);
    const p = await prepared(w, 'gpu-node-2', 'pleg-unhealthy');
    const node = w.fleet.nodes.get('gpu-node-2')!;
    const publish = node.onChange;
    const exec = node.exec.bind(node);
    let frozen = false;
    // Once the run has ended (it reads the node's clock; the diagnosis's time-sync probe does too, as node-epoch-ms), kubelet stops posting: the Node keeps what it said.
    node.exec = (cmd: string) => {
      if (cmd.includes('date +%s%3N') && !cmd.includes('node-epoch-ms')) frozen = true;
      return exec(cmd);
    };
    node.onChange = (n) => {
      if (!frozen) publish(n);
    };
    const outcome = await runFix(p, { ...w.deps, runBounds: { nodeStatusWaitMs: 1500 } }, { actor: 'test' });
    expect(outcome.result).toBe('failed');
    expect(outcome.summary).toMatch(/whether pleg-unhealthy is gone could not be checked: k8s-node skipped \(kubelet has not posted the Node's status since the fix/);
  });
});

describe('failure paths', () => {
  let w: SimWorld;
  beforeEach(async () => {
    w = await simWorld([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'], toolkitPod: true }]);
  });
  afterEach(() => w.fleet.stop());

  it('stops with "not-needed" when the finding no longer holds at the re-check, running nothing', async () => {
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const node = w.fleet.nodes.get('gpu-node-1')!;
    node.state.socket = 'socket';
    node.state.containerd.state = 'running';
    const before = changingScripts(w, 'gpu-node-1').length;
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('not-needed');
    expect(outcome.steps).toEqual([]);
    expect(changingScripts(w, 'gpu-node-1').length).toBe(before);
  });

  it('runs nothing when the node changed since the approval: the plan made now is not the approved one', async () => {
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    // The crash-looping pod the approver saw was replaced by a new incarnation: the plan would delete another pod.
    const kube = w.fleet.kube;
    const old = kube.podsOn('gpu-node-1')[0]!;
    kube.pods.delete(`${old.metadata.namespace}/${old.metadata.name}`);
    kube.addPod({ ...old, metadata: { ...old.metadata, uid: '00000000-0000-4000-8000-000000000001' } });
    const before = stepScripts(w, 'gpu-node-1');
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('aborted');
    expect(outcome.summary).toMatch(/the node changed since the approval: the plan for it now \([0-9a-f]{12}\) is not the approved one/);
    expect(outcome.replanned!.hash).not.toBe(p.plan.hash);
    expect(outcome.steps.every((s) => s.status === 'not-run')).toBe(true);
    // Only read-only checks reached the node: the re-diagnosis, no step.
    expect(changingScripts(w, 'gpu-node-1').filter((c) => !before.includes(c))).toEqual([]);
    expect(readFileSync(w.auditPath, 'utf8')).toMatch(/"type":"plan-changed"/);
  });

  it('refuses loudly, running nothing, when the machine reached is not the Node named (another machine-id)', async () => {
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    // The inventory's address now leads to another machine (a reused IP, a swapped entry).
    w.fleet.nodes.get('gpu-node-1')!.state.machineId = '0123456789abcdef0123456789abcdef';
    const before = stepScripts(w, 'gpu-node-1').length;
    await expect(runFix(p, w.deps, { actor: 'test' })).rejects.toThrow(/REFUSED: the machine reached as gpu-node-1 is not the Kubernetes Node gpu-node-1 \(its \/etc\/machine-id is 0123456789abcdef0123456789abcdef/);
    expect(stepScripts(w, 'gpu-node-1').slice(before).filter((c) => !/machine-id/.test(c))).toEqual([]);
    expect(readFileSync(w.auditPath, 'utf8')).toMatch(/"type":"identity-mismatch"/);
  });

  it('refuses before changing anything when the running containers cannot be listed (the workload guard would guard nothing)', async () => {
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const node = w.fleet.nodes.get('gpu-node-1')!;
    const exec = node.exec.bind(node);
    // The guard's own listing fails (as a login shell that cannot read the script, or a node without ps, would make it); the diagnosis's batch still runs.
    node.exec = (cmd: string) => (cmd.includes('echo "shims=$#"') && !cmd.includes('probe() {') ? { stdout: '', stderr: "Unmatched '''.\n", exitCode: 1, delayMs: 0 } : exec(cmd));
    const before = changingScripts(w, 'gpu-node-1').length;
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('aborted');
    expect(outcome.summary).toMatch(/refused before changing anything: the containers on gpu-node-1 could not be listed \(Unmatched '''\.\)/);
    expect(changingScripts(w, 'gpu-node-1').slice(before)).toEqual([]);
    expect(node.state.containerd.state).not.toBe('running');
    expect(readFileSync(w.auditPath, 'utf8')).toMatch(/"type":"workloads-unlisted"/);
  });

  it('does not call a run fixed when the containers cannot be listed after it: whether they survived is not known', async () => {
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const node = w.fleet.nodes.get('gpu-node-1')!;
    const exec = node.exec.bind(node);
    let listings = 0;
    // The guard lists the containers before the run; after it, its listing fails (the node's ps gone, a login shell changed).
    node.exec = (cmd: string) => (cmd.includes('echo "shims=$#"') && !cmd.includes('probe() {') && ++listings > 1 ? { stdout: '', stderr: 'ps: command not found\n', exitCode: 127, delayMs: 0 } : exec(cmd));
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(listings).toBe(2);
    expect(node.state.containerd.state).toBe('running');
    expect(outcome.result).toBe('failed');
    expect(outcome.summary).toMatch(/WORKLOADS: the containers on gpu-node-1 could not be listed after the run \(ps: command not found\): whether they still run is not known/);
    expect(readFileSync(w.auditPath, 'utf8')).toMatch(/"type":"workloads-unlisted".*"after":true/);
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

  it('from the terminal too, with NODEDIAG_LOCK_BACKEND=lease: a node the bot is fixing (its Lease held) is refused, nothing runs', async () => {
    const bot = await createLeaseLock({ kubeconfigPath: w.fleet.kubeconfigPath, namespace: 'nodediag', identity: 'bot@nodediag-0/1' });
    const held = await bot.acquire('gpu-node-1', 'U111 (incident inc-0123456789abcdef)', 60_000);
    const before = changingScripts(w, 'gpu-node-1').length;
    const config = loadConfig({
      NODEDIAG_INVENTORY: w.fleet.inventoryPath,
      NODEDIAG_KUBECONFIG: w.fleet.kubeconfigPath,
      NODEDIAG_LOCK_BACKEND: 'lease',
      NODEDIAG_LEASE_NAMESPACE: 'nodediag',
      NODEDIAG_STATE_DIR: join(w.dir, 'cli-state'),
      NODEDIAG_AUDIT_LOG: join(w.dir, 'cli-state', 'audit.jsonl'),
    });
    const io = { out: () => undefined, err: () => undefined, progress: () => undefined, confirm: async () => false, interactive: false };
    try {
      await expect(fixCommand(['gpu-node-1', 'containerd-socket-is-directory', '--yes'], config, io, plain)).rejects.toThrow(/held by U111 \(incident inc-0123456789abcdef\)/);
      expect(changingScripts(w, 'gpu-node-1')).toHaveLength(before);
    } finally {
      await held.release();
    }
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
    expect(outcome.summary).toMatch(/stopped at step 2\/2 "Start containerd and check the runtime answers": exited 1/);
    expect(outcome.summary).toMatch(/done before it: 1\. Kill the hung containerd main process/);
    expect(outcome.followUps.map((f) => f.id)).toEqual(['containerd-socket-is-directory']);
  });

  it('fails a step whose verification does not pass, without running the rest, and says what uses the space', async () => {
    const node = w.fleet.nodes.get('gpu-node-1')!;
    node.inject('disk-pressure');
    node.state.disk.unusedImages = false;
    const p = await prepared(w, 'gpu-node-1', 'disk-pressure');
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('failed');
    const prune = outcome.steps.find((s) => s.id === 'prune-images')!;
    expect(prune.status).toBe('failed');
    expect(prune.reason).toMatch(/verification failed: check failed .*still \d+% on \/.*what uses the space/s);
  });

  it('refuses the whole plan before changing anything when the socket-path directory holds files', async () => {
    const node = w.fleet.nodes.get('gpu-node-1')!;
    node.state.socketDirEntries = 2;
    const p = await prepared(w, 'gpu-node-1', 'containerd-socket-is-directory');
    const before = stepScripts(w, 'gpu-node-1').length;
    const outcome = await runFix(p, w.deps, { actor: 'test' });
    expect(outcome.result).toBe('aborted');
    expect(outcome.summary).toMatch(/^refused before changing anything: step 1 .*holds files/);
    expect(outcome.summary).toMatch(/nothing was changed on gpu-node-1/);
    expect(outcome.steps.every((s) => s.status === 'not-run')).toBe(true);
    // containerd was never stopped.
    expect(stepScripts(w, 'gpu-node-1').slice(before).some((c) => /systemctl stop containerd/.test(c))).toBe(false);
    expect(node.state.socket).toBe('directory');
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
    expect(outcome.summary).toMatch(/stopped at step [234]\/6/);
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
    w = await simWorld([{ name: 'gpu-node-2', faults: ['containerd-leftover-shims'] }]);
  });
  afterAll(() => w.fleet.stop());

  it('checks and kills each orphan in one command, by PID and start time', async () => {
    const p = await prepared(w, 'gpu-node-2', 'containerd-leftover-shims');
    const kill = p.plan.steps.find((s) => s.id === 'kill-orphan-shim')!;
    expect(kill.action).toMatchObject({ kind: 'ssh' });
    const script = (kill.action as { script: string }).script;
    expect(script).toContain("'797@4411'");
    expect(script).toMatch(/\$\{20\}.*= "\$want".*kill -KILL "\$p"/s);
    expect(kill.requires!.preflight).toBe(true);
  });

  it('refuses a shim value that is not pid@start before anything reaches a shell', async () => {
    const p = await prepared(w, 'gpu-node-2', 'containerd-leftover-shims');
    const evil = { ...p.finding, params: { shim: ['797@4411', '1@1; reboot'] } };
    expect(() => planInputs(w.catalogs, evil, { node: 'gpu-node-2', sudo: false, layout: p.plan.layout, stamp: '20261122T000000Z' })).toThrow(/refused shim value "1@1; reboot"/);
  });

  it('is deterministic: the same inputs make the same plan and hash', async () => {
    const p = await prepared(w, 'gpu-node-2', 'containerd-leftover-shims');
    expect(planRunbook(w.catalogs, p.plan).hash).toBe(p.plan.hash);
    expect(planRunbook(w.catalogs, { ...p.plan, params: { shim: ['798@4411'] } }).hash).not.toBe(p.plan.hash);
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
