/**
 * Boots lab nodes and keeps them up until Ctrl-C (for exploring by hand):
 *   npm run build && node dist/test/lab/dev-boot.js lab-node-1 lab-node-2:2.1
 * (`name:version` picks the containerd: 1.6, 1.7 or 2.1).
 */
import { Lab, type ContainerdVersion } from './lab.js';

const names = process.argv.slice(2);
const specs = (names.length ? names : ['lab-node-1']).map((n) => {
  const [name, version] = n.split(':');
  return { name: name!, containerd: (version ?? '1.6') as ContainerdVersion };
});
const lab = await Lab.boot({ nodes: specs });
process.stdout.write(
  `lab ${lab.id} up\n  inventory: ${lab.inventoryPath}\n  kubeconfig: ${lab.kubeconfigPath}\n` +
    lab.nodes.map((n) => `  ${n.name} ${n.address} containerd ${n.containerd} systemd pid ${n.systemdPid}  (enter: nsenter -t ${n.systemdPid} -p -m -u -n -C)\n`).join(''),
);
const stop = async () => {
  await lab.teardown();
  process.stdout.write('lab torn down\n');
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
setInterval(() => undefined, 1 << 30);
