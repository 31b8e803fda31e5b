/**
 * A simulated fleet: simulated nodes behind real SSH servers on loopback,
 * the Kubernetes API stand-in wired to their state (a node is Ready when its
 * simulated runtime and kubelet are; a recreated pod is healthy when the
 * runtime is), plus the inventory and kubeconfig the product reads. Used by
 * the demo, the tests and the benchmark.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Catalogs } from '../catalog/load.js';
import { KubeApiStandin, makeDaemonSetPod, makeEvent, makeNode, type KObject } from './kube-standin.js';
import { selfSignedCert } from './self-signed.js';
import { SimNode, type SimFault } from './sim-node.js';
import { generateSimKeys, startSimSshServer, type SimKeys, type SimSshServer } from './sim-ssh-server.js';

/** One simulated node to start. */
export interface SimNodeSpec {
  name: string;
  faults?: SimFault[];
  labels?: Record<string, string>;
  /** Add the seed-000 NVIDIA toolkit DaemonSet pod (socket hostPath without a type). */
  toolkitPod?: boolean;
}

/** A running simulated fleet. */
export interface SimFleet {
  nodes: Map<string, SimNode>;
  servers: Map<string, SimSshServer>;
  kube: KubeApiStandin;
  keys: SimKeys;
  inventoryPath: string;
  kubeconfigPath: string;
  stop(): Promise<void>;
}

/** The seed's BackOff event of the NVIDIA toolkit pod (681 restarts). */
export function toolkitBackOffEvent(pod: KObject): KObject {
  return makeEvent({
    namespace: 'gpu-operator',
    objNamespace: 'gpu-operator',
    kind: 'Pod',
    name: pod.metadata.name,
    type: 'Warning',
    reason: 'BackOff',
    message: `Back-off restarting failed container nvidia-container-toolkit-ctr in pod ${pod.metadata.name}_gpu-operator(${pod.metadata.uid})`,
    count: 681,
  });
}

/** Puts the node's NVIDIA toolkit pod into CrashLoopBackOff (681 restarts) with the seed's BackOff event. */
export function crashLoopToolkit(kube: KubeApiStandin, node: string): void {
  const pod = kube.podsOn(node).find((p) => p.metadata.labels?.app === 'nvidia-container-toolkit-daemonset');
  if (!pod) return;
  pod.status.containerStatuses[0] = {
    ...pod.status.containerStatuses[0],
    ready: false,
    restartCount: 681,
    state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 5m0s restarting failed container=nvidia-container-toolkit-ctr pod=${pod.metadata.name}_gpu-operator` } },
    lastState: { terminated: { exitCode: 1, reason: 'Error' } },
  };
  kube.addEvent(toolkitBackOffEvent(pod));
}

/** Starts simulated nodes and the API stand-in; writes inventory and kubeconfig into `keys.dir`. */
export async function startSimFleet(specs: SimNodeSpec[], catalogs: Catalogs, opts: { timeScale?: number; tls?: boolean } = {}): Promise<SimFleet> {
  const keys = generateSimKeys();
  const kube = new KubeApiStandin({ token: `sim-${Math.random().toString(36).slice(2)}-token`, tls: opts.tls === false ? null : selfSignedCert(['127.0.0.1']) });
  await kube.start();
  const nodes = new Map<string, SimNode>();
  const servers = new Map<string, SimSshServer>();
  kube.podHealthFor = (name) => (nodes.get(name)?.runtimeHealthy ? 'running' : 'crashloop');

  for (const spec of specs) {
    const node = new SimNode(spec.name, catalogs);
    nodes.set(spec.name, node);
    kube.addNode(makeNode(spec.name, '127.0.0.1', { 'kubernetes.io/os': 'linux', ...(spec.labels ?? {}) }, true, node.state.machineId));
    node.onChange = (n) => kube.setNodeReady(spec.name, n.ready, n.readyMessage);
    if (spec.toolkitPod) {
      const pod = makeDaemonSetPod({
        namespace: 'gpu-operator',
        daemonSet: 'nvidia-container-toolkit-daemonset',
        node: spec.name,
        container: 'nvidia-container-toolkit-ctr',
        image: 'nvcr.io/nvidia/k8s/container-toolkit:v1.17.0-ubuntu20.04',
        health: 'running',
        hostPaths: [{ name: 'containerd-socket', path: '/run/containerd/containerd.sock' }],
        name: 'nvidia-container-toolkit-daemonset-84xtt',
      });
      kube.addPod(pod);
    }
    for (const f of spec.faults ?? []) node.inject(f);
    if (spec.toolkitPod && !node.runtimeHealthy) crashLoopToolkit(kube, spec.name);
    node.onChange(node);
    servers.set(spec.name, await startSimSshServer(node, keys, { timeScale: opts.timeScale }));
  }

  const inventoryPath = join(keys.dir, 'inventory.yaml');
  const lines = ['defaults:', '  user: root', `  privateKeyPath: ${keys.clientKeyPath}`, '  connectTimeoutMs: 5000', 'nodes:'];
  for (const spec of specs) {
    lines.push(`  - name: ${spec.name}`, '    host: 127.0.0.1', `    port: ${servers.get(spec.name)!.port}`, `    hostKey: "${keys.hostKeyFingerprint}"`);
  }
  writeFileSync(inventoryPath, `${lines.join('\n')}\n`);
  const kubeconfigPath = join(keys.dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kube.kubeconfig(), { mode: 0o600 });
  // kubelet posts the Node's status periodically (nodeStatusUpdateFrequency), not only when it changes.
  const statusPosts = setInterval(() => {
    for (const n of nodes.values()) n.onChange(n);
  }, 1000);
  statusPosts.unref();

  return {
    nodes,
    servers,
    kube,
    keys,
    inventoryPath,
    kubeconfigPath,
    async stop() {
      clearInterval(statusPosts);
      await Promise.all([...servers.values()].map((s) => s.close()));
      await kube.stop();
    },
  };
}
