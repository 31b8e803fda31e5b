/**
 * `nodediag fix <node> <finding-id> [--dry-run] [--yes] [--json] [--cordon]`.
 */
import { userInfo } from 'node:os';
import type { Config } from '../config.js';
import { formatReport, type Style } from '../diagnose/format-text.js';
import { reportJson } from '../diagnose/report-json.js';
import { EXIT, UsageError } from '../errors.js';
import { FileAuditLog } from '../incidents/audit-log.js';
import { fixJson, formatOutcome, formatStepLine } from '../runbooks/format-run.js';
import { prepareFix, runFix } from '../runbooks/fix-service.js';
import { formatPlan } from '../runbooks/plan.js';
import { parseArgs } from './args.js';
import { buildContext } from './context.js';
import { createFixLock, fixDeps, lockSettings } from '../clusters/cluster-access.js';
import type { Io } from './io.js';

export const FIX_HELP = `Usage: nodediag fix <node> <finding-id> [options]

Runs the finding's runbook on the node: re-checks the finding, takes the node's
lock, runs each step with its check, stops at the first failure, re-diagnoses.

Options:
  --dry-run            show the exact commands and checks, change nothing
  --yes                do not ask for confirmation (needed without a terminal)
  --cordon             cordon the node before and uncordon it after
  --json               print the outcome as JSON
  --inventory FILE, --kubeconfig FILE, --cluster NAME   as for diag
Exit status: 0 fixed or not needed, 1 failed or aborted, 2 usage error or nothing to run,
3 node unreachable, 4 lock held or audit log not writable.`;

export async function fixCommand(argv: string[], config: Config, io: Io, style: Style): Promise<number> {
  const args = parseArgs(
    argv,
    {
      'dry-run': { value: false },
      yes: { value: false, short: 'y' },
      cordon: { value: false },
      json: { value: false },
      inventory: { value: true },
      kubeconfig: { value: true },
      cluster: { value: true },
      help: { value: false, short: 'h' },
    },
    'fix',
  );
  if (args.flags.help) {
    io.out(FIX_HELP);
    return EXIT.ok;
  }
  if (args.positional.length !== 2) throw new UsageError('fix: give a node and a finding id', 'nodediag fix <node> <finding-id> [--dry-run]');
  const [node, findingId] = args.positional as [string, string];
  const json = args.flags.json === true;
  const ctx = await buildContext(config, { inventory: args.flags.inventory as string | undefined, kubeconfig: args.flags.kubeconfig as string | undefined, cluster: args.flags.cluster as string | undefined }, io.err);
  // The bot's lock (a Lease with NODEDIAG_LOCK_BACKEND=lease): the terminal and the bot never fix one node at once.
  const deps = fixDeps(ctx, ctx.inventory, { client: ctx.kubeWriter, reason: ctx.kubeUnavailableReason }, await createFixLock(lockSettings(config, 'cli'), ctx.kubeAccess), new FileAuditLog(config.auditLogPath, ctx.redact));

  io.progress(`diagnosing ${node}…`);
  const prepared = await prepareFix(node, findingId, deps, { cordon: args.flags.cordon === true });
  io.progress('');
  if ('notNeeded' in prepared) {
    if (json) io.out(JSON.stringify({ node, runbook: null, result: 'not-needed', steps: [], after: reportJson(prepared.notNeeded) }, null, 2));
    else io.out(`${findingId} does not hold on ${node} now: nothing to fix.\n\n${formatReport(prepared.notNeeded, style)}`);
    return EXIT.ok;
  }
  const planText = `${formatPlan(prepared.plan)}${prepared.preview ? `\n\n  ${prepared.plan.preview!.title}:\n${prepared.preview.split('\n').map((l) => `    │ ${l}`).join('\n')}` : ''}`;
  if (args.flags['dry-run']) {
    if (json) io.out(JSON.stringify({ node, runbook: prepared.plan.runbook, result: 'dry-run', plan: prepared.plan, preview: prepared.preview ?? null }, null, 2));
    else io.out(`DRY RUN — nothing is changed on ${node}.\n\n${planText}`);
    return EXIT.ok;
  }
  if (!json) io.out(planText);
  if (args.flags.yes !== true) {
    if (!io.interactive) throw new UsageError('fix: not on a terminal; pass --yes to run without confirmation (or --dry-run to look first)');
    if (!(await io.confirm(`Run these ${prepared.plan.steps.length} steps on ${node}?`))) {
      io.err('not run.');
      return EXIT.findings;
    }
  }
  const outcome = await runFix(prepared, deps, {
    actor: `cli:${userInfo().username}`,
    onEvent: (e) => {
      if (json) return;
      if (e.type === 'rechecked') io.out(e.holds ? `\nre-checked: ${findingId} still holds; running.` : `\nre-checked: ${findingId} no longer holds.`);
      if (e.type === 'step-started') io.progress(`[${e.step.index}/${prepared.plan.steps.length}] ${e.step.title}…`);
      if (e.type === 'step-finished') {
        io.progress('');
        io.out(formatStepLine(e.record, e.total));
      }
    },
  });
  io.out(json ? JSON.stringify(fixJson(outcome), null, 2) : `\n${formatOutcome(outcome, config.auditLogPath)}`);
  return outcome.result === 'fixed' || outcome.result === 'not-needed' ? EXIT.ok : EXIT.findings;
}
