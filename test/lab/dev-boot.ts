/**
 * Boots lab nodes and keeps them up until Ctrl-C (for exploring by hand):
 *   npm run build && node dist/test/lab/dev-boot.js lab-node-1 lab-node-2
 */
import { Lab } from './lab.js';

const names = process.argv.slice(2);
const lab = await Lab.boot({ nodes: names.length ? names : ['lab-node-1'] });
process.stdout.write(
  `lab ${lab.id} up\n  inventory: ${lab.inventoryPath}\n  kubeconfig: ${lab.kubeconfigPath}\n` +
    lab.nodes.map((n) => `  ${n.name} ${n.address} systemd pid ${n.systemdPid}  (enter: nsenter -t ${n.systemdPid} -p -m -u -n -C)\n`).join(''),
);
const stop = async () => {
  await lab.teardown();
  process.stdout.write('lab torn down\n');
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
setInterval(() => undefined, 1 << 30);
