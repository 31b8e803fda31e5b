/**
 * `nodediag diag <node…> | -l <selector> [--json]`.
 */
import type { Config } from '../config.js';
import { diagnoseFleet, fleetExitStatus, nodesForSelector } from '../diagnose/fleet.js';
import { formatFleet, formatReport, type Style } from '../diagnose/format-text.js';
import { exitStatusOf, reportJson } from '../diagnose/report-json.js';
import { diagnoseNode } from '../diagnose/run-diagnosis.js';
import { UsageError } from '../errors.js';
import { intFlag, parseArgs } from './args.js';
import { buildContext } from './context.js';
import type { Io } from './io.js';

export const DIAG_HELP = `Usage: nodediag diag <node> [<node>…] [options]
       nodediag diag -l <label-selector> [options]

Checks a node over SSH and the Kubernetes API and names what is wrong, with evidence.

Options:
  -l, --selector SEL   diagnose every node matching a Kubernetes label selector
  --inventory FILE     inventory YAML (default: $NODEDIAG_INVENTORY)
  --kubeconfig FILE    kubeconfig (default: $NODEDIAG_KUBECONFIG, $KUBECONFIG, ~/.kube/config, in-cluster)
  --cluster NAME       a cluster of the clusters file ($NODEDIAG_CLUSTERS): its inventory, kubeconfig and context
  --concurrency N      nodes diagnosed at once in fleet mode (default: $NODEDIAG_FLEET_CONCURRENCY or 16)
  --json               print JSON instead of the report
Exit status: 0 healthy, 1 findings, 2 usage or configuration error, 3 node unreachable or refused.`;

export async function diagCommand(argv: string[], config: Config, io: Io, style: Style): Promise<number> {
  const args = parseArgs(
    argv,
    {
      selector: { value: true, short: 'l' },
      inventory: { value: true },
      kubeconfig: { value: true },
      cluster: { value: true },
      concurrency: { value: true },
      json: { value: false },
      help: { value: false, short: 'h' },
    },
    'diag',
  );
  if (args.flags.help) {
    io.out(DIAG_HELP);
    return 0;
  }
  const selector = args.flags.selector as string | undefined;
  if (!selector && args.positional.length === 0) throw new UsageError('diag: name a node (or -l <label-selector>)', 'nodediag diag <node>');
  if (selector && args.positional.length > 0) throw new UsageError('diag: give node names or -l <selector>, not both');
  const concurrency = intFlag(args.flags.concurrency, 'concurrency', 1, 256) ?? config.fleetConcurrency;
  const json = args.flags.json === true;
  const ctx = await buildContext(config, { inventory: args.flags.inventory as string | undefined, kubeconfig: args.flags.kubeconfig as string | undefined, cluster: args.flags.cluster as string | undefined }, io.err);

  if (!selector && args.positional.length === 1) {
    const node = args.positional[0]!;
    io.progress(`diagnosing ${node}…`);
    const report = await diagnoseNode(node, ctx);
    io.progress('');
    io.out(json ? JSON.stringify(reportJson(report), null, 2) : formatReport(report, style));
    return exitStatusOf(report);
  }

  const names = selector ? await nodesForSelector(selector, ctx) : args.positional;
  if (names.length === 0) {
    io.err(`no node matches ${selector}`);
    return 0;
  }
  const entries = await diagnoseFleet(names, ctx, concurrency, (_e, done, total) => io.progress(`diagnosed ${done}/${total} node(s)…`));
  io.progress('');
  if (json) {
    io.out(JSON.stringify({ nodes: entries.map((e) => ('error' in e ? e : reportJson(e))) }, null, 2));
  } else {
    io.out(formatFleet(entries, style));
  }
  return fleetExitStatus(entries);
}
