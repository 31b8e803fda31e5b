/**
 * `nodediag demo`: the whole flow on a simulated GPU node reproducing the
 * seed-000 incident (the containerd socket path turned into a directory, the
 * NVIDIA toolkit pod crash-looping 681 times), through the real code path: a
 * real SSH client against an SSH server in this process, the real
 * Kubernetes client against the API stand-in. No account, no network.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadCatalogs } from '../catalog/load.js';
import { loadConfig } from '../config.js';
import type { Style } from '../diagnose/format-text.js';
import { EXIT } from '../errors.js';
import { startSimFleet } from '../sim/sim-fleet.js';
import { auditCommand } from './admin-commands.js';
import { diagCommand } from './diag-command.js';
import { fixCommand } from './fix-command.js';
import type { Io } from './io.js';

export const DEMO_HELP = `Usage: nodediag demo [--keep]

Runs the whole flow on a simulated broken GPU node (seed incident 000): diagnose,
dry run, fix, re-diagnose, verify the audit log. Everything runs on loopback.
  --keep   keep the demo's state directory (inventory, keys, audit log)`;

export async function demoCommand(argv: string[], io: Io, style: Style): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(DEMO_HELP);
    return EXIT.ok;
  }
  const keep = argv.includes('--keep');
  const node = 'gpu-node-7';
  const finding = 'containerd-socket-is-directory';
  io.out(style.bold('nodediag demo — a simulated GPU node with the seed-000 incident'));
  io.out(
    style.dim(
      'The node\'s /run/containerd/containerd.sock has become a directory (a hostPath mount without `type: Socket` created it\n' +
        'while containerd restarted); containerd exits on every start and the NVIDIA toolkit pod is in CrashLoopBackOff (681\n' +
        'restarts). An SSH server and a Kubernetes API stand-in on loopback play the node and the cluster; everything else is\n' +
        'the real nodediag code path.\n',
    ),
  );
  const fleet = await startSimFleet([{ name: node, faults: ['socket-is-directory'], toolkitPod: true, labels: { pool: 'gpu' } }], loadCatalogs());
  const config = loadConfig({
    ...process.env,
    NODEDIAG_INVENTORY: fleet.inventoryPath,
    NODEDIAG_KUBECONFIG: fleet.kubeconfigPath,
    NODEDIAG_STATE_DIR: join(fleet.keys.dir, 'state'),
    NODEDIAG_AUDIT_LOG: join(fleet.keys.dir, 'state', 'audit.jsonl'),
  });
  const step = (cmd: string) => io.out(`\n${style.bold(`$ ${cmd}`)}`);
  try {
    step(`nodediag diag ${node}`);
    const diag = await diagCommand([node], config, io, style);
    if (diag !== EXIT.findings) throw new Error(`the demo node should have findings (diag exited ${diag})`);

    step(`nodediag fix ${node} ${finding} --dry-run`);
    await fixCommand([node, finding, '--dry-run'], config, io, style);

    step(`nodediag fix ${node} ${finding} --yes`);
    io.out(style.dim('(in Slack a second engineer clicks Approve; on the terminal, --yes is the approval)'));
    const fixed = await fixCommand([node, finding, '--yes'], config, io, style);

    step(`nodediag diag ${node}`);
    await diagCommand([node], config, io, style);

    step('nodediag audit verify');
    await auditCommand(['verify'], config, io);

    io.out(
      `\n${style.bold(fixed === EXIT.ok ? 'Demo complete: the node is fixed.' : 'Demo finished, but the fix did not succeed (see above).')} ` +
        'What is left is advice: set `type: Socket` on the toolkit DaemonSet\'s hostPath so this cannot happen again.' +
        (keep ? `\nState kept in ${fleet.keys.dir}` : ''),
    );
    return fixed;
  } finally {
    await fleet.stop();
    if (!keep) rmSync(fleet.keys.dir, { recursive: true, force: true });
  }
}
