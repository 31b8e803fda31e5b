/**
 * Runs a simulated fleet in its own process, so that the benchmark measures
 * the diagnosing process alone. Prints {inventoryPath, kubeconfigPath} and
 * stays up until its stdin closes.
 *   node dist/bench/sim-fleet-child.js <nodes> [timeScale]
 */
import { loadCatalogs } from '../src/catalog/load.js';
import { startSimFleet } from '../src/sim/sim-fleet.js';
import type { SimFault } from '../src/sim/sim-node.js';

const count = Number(process.argv[2] ?? 100);
const timeScale = Number(process.argv[3] ?? 0.1);
const faults: SimFault[] = ['containerd-socket-is-directory', 'disk-pressure', 'swap-enabled', 'cni-not-ready'];
const fleet = await startSimFleet(
  Array.from({ length: count }, (_, i) => ({ name: `sim-node-${String(i + 1).padStart(3, '0')}`, labels: { pool: 'gpu' }, faults: i % 5 === 0 ? [faults[(i / 5) % faults.length]!] : [] })),
  loadCatalogs(),
  { timeScale },
);
process.stdout.write(`${JSON.stringify({ inventoryPath: fleet.inventoryPath, kubeconfigPath: fleet.kubeconfigPath, nodes: [...fleet.nodes.keys()] })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void fleet.stop().then(() => process.exit(0)));
