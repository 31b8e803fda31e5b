/**
 * Captures test fixtures from the real-node lab: boots one production-like
 * node per containerd version (bookworm 1.6, trixie 1.7, unstable 2.1),
 * produces each fault for real, runs the product's real diagnosis (real SSH,
 * real client-node against the API stand-in) and writes the raw probe
 * outputs with the findings they produced to
 * test/fixtures/lab/containerd-<version>/<fault id>.json. Refuses to write a
 * fixture whose findings do not include what the fault must produce.
 *
 *   npm run build && node dist/test/lab/capture-fixtures.js [--noise-only | --only <fault id>]
 *
 * Besides the faults it captures healthy production noise, each of which must
 * give no finding: a node after a run of faults (their errors are history),
 * kubelet and containerd both on cgroupfs, swap with kubelet's
 * failSwapOn: false. `--noise-only` captures just those, on one 1.6 node.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKubeClient } from '../../src/adapters/kube.js';
import { sharedDeps } from '../../src/clusters/cluster-access.js';

import { diagnoseNode, type DiagnoseDeps } from '../../src/diagnose/run-diagnosis.js';
import { loadInventory } from '../../src/inventory/inventory.js';

import { createRedactor } from '../../src/redact.js';
import { toolkitBackOffEvent } from '../../src/sim/sim-fleet.js';
import { FIXTURE_DIR, toRaw, type Fixture } from '../fixtures/fixture.js';
import { injectExpiredKubeletCert, LAB_FAULTS, type LabFault } from './faults.js';
import { Lab, type ContainerdVersion, type LabLayout, type LabNode } from './lab.js';

const VERSIONS: ContainerdVersion[] = ['1.6', '1.7', '2.1'];
const PACKAGE: Record<ContainerdVersion, string> = {
  '1.6': 'containerd 1.6.20 (Debian bookworm)',
  '1.7': 'containerd 1.7.24 (Debian trixie)',
  '2.1': 'containerd 2.1.9 (Debian unstable), config version 3',
};

function source(v: ContainerdVersion): string {
  return (
    `captured from the nodediag lab: real systemd 252, ${PACKAGE[v]} and OpenSSH 9.2 on Debian 12, probed over real SSH by the product; ` +
    'a production-like GPU node (containers running, nvidia runtime as default, private registry with credentials); ' +
    'the kubelet and the Kubernetes API server are stand-ins (test/lab/kubelet-standin.mjs, src/sim/kube-standin.ts)'
  );
}

/** Other layouts, captured healthy and with a runtime fault (nodediag must name them and offer no containerd runbook). */
const LAYOUTS: LabLayout[] = ['k3s', 'cri-o', 'volatile-journal'];

const noiseOnly = process.argv.includes('--noise-only');
/** `--only <fault id>`: captures just that fault, on each containerd version. */
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const onlyFault = only === undefined ? undefined : LAB_FAULTS.find((f) => f.id === only && !f.global);
if (only !== undefined && !onlyFault) throw new Error(`--only: no lab fault ${only} (one of: ${LAB_FAULTS.filter((f) => !f.global).map((f) => f.id).join(', ')})`);
const lab = await Lab.boot({
  nodes: noiseOnly
    ? [{ name: 'capture-16', containerd: '1.6' }]
    : onlyFault
      ? VERSIONS.map((v) => ({ name: `capture-${v.replace('.', '')}`, containerd: v }))
      : [
        ...VERSIONS.map((v) => ({ name: `capture-${v.replace('.', '')}`, containerd: v })),
        ...LAYOUTS.map((layout) => ({ name: `capture-${layout}`, containerd: '1.6' as const, layout })),
      ],
});
const deps: DiagnoseDeps = {
  ...sharedDeps({ redact: createRedactor(), maxOutputBytes: 256 * 1024 }),
  inventory: loadInventory(lab.inventoryPath),
  ...(() => {
    const k = createKubeClient({ kubeconfigPath: lab.kubeconfigPath });
    return { kube: k.client, kubeUnavailableReason: k.reason };
  })(),
};

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

function folderOf(node: LabNode): string {
  return node.layout === 'containerd' ? `containerd-${node.containerd}` : `layout-${node.layout}`;
}

async function capture(scenario: string, node: LabNode, mustInclude: string[]): Promise<void> {
  const sentAtMs = Date.now();
  const report = await diagnoseNode(node.name, deps);
  const receivedAtMs = Date.now();
  const ids = report.findings.map((f) => f.id);
  const missing = mustInclude.filter((id) => !ids.includes(id));
  if (missing.length) throw new Error(`${node.containerd} ${scenario}: expected ${missing.join(', ')} but the diagnosis said [${ids.join(', ')}]`);
  const raw = JSON.stringify(report);
  if (raw.includes(lab.registryPassword) || raw.includes(lab.registryBasic)) throw new Error(`${scenario}: a registry credential reached the diagnosis`);
  const layoutNote = node.layout === 'containerd' ? '' : `; layout ${node.layout} (${node.layout === 'volatile-journal' ? 'journald Storage=volatile' : `a ${node.layout === 'k3s' ? 'k3s' : 'CRI-O'} STAND-IN unit, see test/lab/lab.ts`})`;
  const fixture: Fixture = { source: `${source(node.containerd)}${layoutNote}`, scenario, expect: ids, context: { sentAtMs, receivedAtMs }, observations: toRaw(report.observations) };
  const dir = join(FIXTURE_DIR, 'lab', folderOf(node));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${scenario}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
  process.stdout.write(`captured ${folderOf(node)}/${scenario}: [${ids.join(', ')}] in ${report.durationMs} ms\n`);
}

async function captureFault(fault: LabFault, node: LabNode): Promise<void> {
  const toolkit = fault.id === 'containerd-socket-is-directory';
  lab.resetPods(node.name, toolkit ? 'toolkit' : 'kube-proxy');
  await settle(2500);
  await fault.inject(node, lab);
  if (toolkit) {
    const pod = lab.kube.podsOn(node.name).find((p) => p.metadata.namespace === 'gpu-operator')!;
    lab.kube.addEvent(toolkitBackOffEvent(pod));
  }
  await settle(4500);
  await capture(fault.id, node, fault.expect);
  await fault.restore(node, lab);
  await settle(3000);
}

/** Healthy production noise: each of these must give no finding. */
async function captureNoise(node: LabNode): Promise<void> {
  // Errors that were real before the last restart and are fixed now: the journal still holds them.
  await capture('healthy--after-faults', node, []);
  // cgroupfs, used consistently by kubelet and containerd.
  await node.must("cp -p /etc/containerd/config.toml /root/noise-good.toml && sed -i 's/SystemdCgroup = true/SystemdCgroup = false/' /etc/containerd/config.toml && sed -i 's/^cgroupDriver: systemd/cgroupDriver: cgroupfs/' /var/lib/kubelet/config.yaml && systemctl restart containerd kubelet");
  await node.waitRuntime();
  await settle(5000);
  await capture('healthy--cgroupfs', node, []);
  await node.must("cp -p /root/noise-good.toml /etc/containerd/config.toml && sed -i 's/^cgroupDriver: cgroupfs/cgroupDriver: systemd/' /var/lib/kubelet/config.yaml && systemctl restart containerd kubelet");
  await node.waitRuntime();
}

/** Swap with kubelet configured for it (failSwapOn: false): healthy. Kernel-wide: run alone. */
async function captureSwapAllowed(node: LabNode): Promise<void> {
  const f = join(lab.dir, 'swapfile-allowed');
  await node.must("sed -i 's/^failSwapOn: true/failSwapOn: false/' /var/lib/kubelet/config.yaml");
  await new Promise<void>((resolve, reject) =>
    execFile('/bin/sh', ['-c', `dd if=/dev/zero of=${f} bs=1M count=16 status=none && chmod 600 ${f} && mkswap ${f} >/dev/null && swapon ${f}`], (err) => (err ? reject(err) : resolve())),
  );
  try {
    await node.must('systemctl restart kubelet');
    await settle(6000);
    await capture('healthy--swap-allowed', node, []);
  } finally {
    await new Promise<void>((resolve) => execFile('/bin/sh', ['-c', `swapoff ${f}; rm -f ${f}`], () => resolve()));
    await node.must("sed -i 's/^failSwapOn: false/failSwapOn: true/' /var/lib/kubelet/config.yaml && systemctl restart kubelet");
  }
}

try {
  for (const n of lab.nodes) lab.resetPods(n.name, 'kube-proxy');
  await settle(5000);
  if (noiseOnly) {
    const node = lab.nodes[0]!;
    await diagnoseNode(node.name, deps);
    for (const fault of LAB_FAULTS.filter((f) => !f.global && f.id.startsWith('containerd-'))) {
      await fault.inject(node, lab);
      await settle(2000);
      await fault.restore(node, lab);
    }
    await settle(4000);
    await captureNoise(node);
    await captureSwapAllowed(node);
  } else if (onlyFault) {
    await Promise.all(
      lab.nodes.map(async (node) => {
        await diagnoseNode(node.name, deps);
        await captureFault(onlyFault, node);
      }),
    );
  } else await captureAll();
} finally {
  await lab.teardown();
}

async function captureAll(): Promise<void> {
  await Promise.all(
    lab.nodes.filter((n) => n.layout === 'containerd').map(async (node) => {
      // Twice healthy: the first diagnosis keeps the config's last-known-good copy, the second sees it kept.
      await diagnoseNode(node.name, deps);
      await capture('healthy', node, []);
      for (const fault of LAB_FAULTS.filter((f) => !f.global)) await captureFault(fault, node);
      await injectExpiredKubeletCert(node);
      await capture('cert-expired', node, ['cert-expired']);
      await node.must('rm -f /var/lib/kubelet/pki/kubelet-client-current.pem');
      if (node.containerd === '1.6') await captureNoise(node);
    }),
  );
  for (const node of lab.nodes.filter((n) => n.layout !== 'containerd')) {
    await diagnoseNode(node.name, deps);
    await capture('healthy', node, []);
    if (node.layout === 'k3s') {
      // The embedded containerd hung: named, with advice for k3s, and no runbook for a standalone containerd.
      const pid = (await node.must('systemctl show -p MainPID --value k3s')).trim();
      await node.must(`kill -STOP ${pid}`);
      await settle(3000);
      await capture('containerd-hung', node, ['containerd-hung']);
      await node.must(`kill -CONT ${pid}`);
    }
  }
  // Swap is kernel-wide: one node, alone.
  await captureFault(LAB_FAULTS.find((f) => f.global)!, lab.nodes[0]!);
  await captureSwapAllowed(lab.nodes[0]!);
}
