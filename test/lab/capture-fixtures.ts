/**
 * Captures test fixtures from the real-node lab: boots lab nodes, produces
 * each fault for real, runs the product's real diagnosis (real SSH, real
 * client-node against the API stand-in) and writes the raw probe outputs with
 * the findings they produced to test/fixtures/lab/. Refuses to write a
 * fixture whose findings do not include what the fault must produce.
 *
 *   npm run build && node dist/test/lab/capture-fixtures.js
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKubeClient } from '../../src/adapters/kube.js';
import { createSshConnector } from '../../src/adapters/ssh.js';
import { loadCatalogs } from '../../src/catalog/load.js';
import { diagnoseNode, type DiagnoseDeps } from '../../src/diagnose/run-diagnosis.js';
import { loadInventory } from '../../src/inventory/inventory.js';
import { systemClock } from '../../src/ports.js';
import { createRedactor } from '../../src/redact.js';
import { makeEvent } from '../../src/sim/kube-standin.js';
import { FIXTURE_DIR, toRaw, type Fixture } from '../fixtures/fixture.js';
import { injectExpiredKubeletCert, LAB_FAULTS, type LabFault } from './faults.js';
import { Lab, type LabNode } from './lab.js';

const SOURCE =
  'captured from the nodediag lab: real systemd 252, containerd 1.6.20 and OpenSSH 9.2 on Debian 12, probed over real SSH by the product; ' +
  'the kubelet and the Kubernetes API server are stand-ins (test/lab/kubelet-standin.mjs, src/sim/kube-standin.ts)';

const out = join(FIXTURE_DIR, 'lab');
mkdirSync(out, { recursive: true });

const lab = await Lab.boot({ nodes: ['lab-node-1', 'lab-node-2', 'lab-node-3'] });
const deps: DiagnoseDeps = {
  catalogs: loadCatalogs(),
  inventory: loadInventory(lab.inventoryPath),
  ssh: createSshConnector(),
  ...(() => {
    const k = createKubeClient({ kubeconfigPath: lab.kubeconfigPath });
    return { kube: k.client, kubeUnavailableReason: k.reason };
  })(),
  clock: systemClock,
  redact: createRedactor(),
  maxOutputBytes: 256 * 1024,
};

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function capture(scenario: string, node: LabNode, mustInclude: string[]): Promise<void> {
  const sentAtMs = Date.now();
  const report = await diagnoseNode(node.name, deps);
  const receivedAtMs = Date.now();
  const ids = report.findings.map((f) => f.id);
  const missing = mustInclude.filter((id) => !ids.includes(id));
  if (missing.length) throw new Error(`${scenario}: expected ${missing.join(', ')} but the diagnosis said [${ids.join(', ')}]`);
  const fixture: Fixture = { source: SOURCE, scenario, expect: ids, context: { sentAtMs, receivedAtMs }, observations: toRaw(report.observations) };
  writeFileSync(join(out, `${scenario}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
  process.stdout.write(`captured ${scenario}: [${ids.join(', ')}] in ${report.durationMs} ms\n`);
}

try {
  const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
  for (const n of lab.nodes) lab.resetPods(n.name, 'kube-proxy');
  await settle(5000);
  await capture('healthy', n1, []);

  const order: Array<[LabFault, LabNode]> = LAB_FAULTS.map((f, i) => [f, [n1, n2, n3][i % 3]!]);
  for (const [fault, node] of order) {
    lab.resetPods(node.name, fault.id === 'socket-is-directory' ? 'toolkit' : 'kube-proxy');
    await settle(2500);
    await fault.inject(node, lab);
    if (fault.id === 'socket-is-directory') {
      const pod = lab.kube.podsOn(node.name).find((p) => p.metadata.namespace === 'gpu-operator')!;
      lab.kube.addEvent(
        makeEvent({
          namespace: 'gpu-operator',
          objNamespace: 'gpu-operator',
          kind: 'Pod',
          name: pod.metadata.name,
          type: 'Warning',
          reason: 'BackOff',
          message: `Back-off restarting failed container nvidia-container-toolkit-ctr in pod ${pod.metadata.name}_gpu-operator(${pod.metadata.uid})`,
          count: 681,
        }),
      );
    }
    await settle(4500);
    await capture(fault.id, node, fault.expect);
    await fault.restore(node, lab);
    await settle(3000);
  }

  lab.resetPods(n2.name, 'kube-proxy');
  await settle(2500);
  await injectExpiredKubeletCert(n2);
  await capture('cert-expired', n2, ['cert-expired']);
  await n2.must('rm -f /var/lib/kubelet/pki/kubelet-client-current.pem');
} finally {
  await lab.teardown();
}
