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
import { startServer } from '../main.js';
import { silentLogger } from '../ports.js';
import { freePort } from '../sim/free-port.js';
import { renderSlackMessage } from '../sim/render-slack.js';
import { crashLoopToolkit, startSimFleet, type SimFleet } from '../sim/sim-fleet.js';
import { blockActionBody, sendSigned, slashCommandBody, SlackEmulator, viewSubmissionBody } from '../sim/slack-emulator.js';
import { ACTIONS } from '../slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../slack/blocks/thread-messages.js';
import { auditCommand } from './admin-commands.js';
import { diagCommand } from './diag-command.js';
import { fixCommand } from './fix-command.js';
import type { Io } from './io.js';

export const DEMO_HELP = `Usage: nodediag demo [--keep] [--no-slack]

Runs the whole flow on a simulated broken GPU node (seed incident 000): diagnose,
dry run, fix, re-diagnose, verify the audit log; then the same incident in Slack
(the real bot against an emulated Slack). Everything runs on loopback.
  --keep       keep the demo's state directory (inventory, keys, audit log)
  --no-slack   skip the Slack part`;

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
  const fleet = await startSimFleet([{ name: node, faults: ['containerd-socket-is-directory'], toolkitPod: true, labels: { pool: 'gpu' } }], loadCatalogs());
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

    if (!argv.includes('--no-slack')) await slackStory(fleet, node, join(fleet.keys.dir, 'bot'), io, style);

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

/** The same incident told in Slack: the real bot, an emulated Slack workspace, two engineers. */
async function slackStory(fleet: SimFleet, node: string, stateDir: string, io: Io, style: Style): Promise<void> {
  io.out(`\n${style.bold('The same incident in Slack')} ${style.dim('(the real bot: Bolt receiver, Web API client; Slack itself is emulated on loopback)')}`);
  fleet.nodes.get(node)!.inject('containerd-socket-is-directory');
  crashLoopToolkit(fleet.kube, node);
  const token = 'xoxb-0000000000-0000000000000-demoDemoDemoDemoDemoDemo';
  const secret = 'demo-signing-secret-0123456789abcdef';
  const slack = new SlackEmulator(token);
  await slack.start();
  const port = await freePort();
  const server = await startServer(
    loadConfig({
      SLACK_BOT_TOKEN: token,
      SLACK_SIGNING_SECRET: secret,
      SLACK_API_URL: slack.url,
      PORT: String(port),
      NODEDIAG_INVENTORY: fleet.inventoryPath,
      NODEDIAG_KUBECONFIG: fleet.kubeconfigPath,
      NODEDIAG_STATE_DIR: stateDir,
      NODEDIAG_APPROVERS: 'U0BOB',
    }),
    { logger: silentLogger, outbox: { postIntervalMs: 10 } },
  );
  const url = `http://127.0.0.1:${port}/slack/events`;
  const wait = async <T>(fn: () => T | undefined, ms = 20_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error('the Slack demo timed out');
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  try {
    io.out(style.dim(`@alice types /diag ${node} in #incident-gpu; @bob, an approver, reviews and approves.`));
    await sendSigned(url, secret, slashCommandBody(node, 'U0ALICE', 'C0INCIDENT'));
    const root = await wait(() => [...slack.messages.values()].find((m) => !m.threadTs && JSON.stringify(m.blocks).includes(ACTIONS.approve)));
    const id = (root.blocks as Array<{ type: string; elements?: Array<{ value: string }> }>).find((b) => b.type === 'actions')!.elements![0]!.value;
    io.out(`\n${style.bold('#incident-gpu')}\n${renderSlackMessage(root)}`);
    await sendSigned(url, secret, blockActionBody(ACTIONS.approve, id, 'U0ALICE', 'C0INCIDENT'));
    await wait(() => slack.ephemerals.find((e) => e.user === 'U0ALICE'));
    io.out(style.dim(`\n(only @alice sees: ${slack.ephemerals.find((e) => e.user === 'U0ALICE')!.text})`));
    await sendSigned(url, secret, blockActionBody(ACTIONS.approve, id, 'U0BOB', 'C0INCIDENT'));
    await wait(() => slack.views[0]);
    io.out(style.dim(`(@bob sees the confirmation listing every exact step, and clicks "Run the fix")`));
    await sendSigned(url, secret, viewSubmissionBody(APPROVE_VIEW, id, 'U0BOB'));
    await wait(() => slack.thread(root.ts).find((m) => m.text.startsWith('Incident summary')));
    await server.outbox.drain(10_000);
    io.out(`\n${style.bold('#incident-gpu, the incident message now')}\n${renderSlackMessage(slack.messages.get(root.ts)!)}`);
    io.out(`\n${style.bold('… and its thread')}`);
    for (const m of slack.thread(root.ts).filter((x) => x.ts !== root.ts)) io.out(`${renderSlackMessage(m, '  ┃ ')}\n  ┃`);
  } finally {
    await server.stop();
    await slack.stop();
  }
}
