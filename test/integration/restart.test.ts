/**
 * The bot killed (SIGKILL) in the middle of a fix and restarted on the same
 * state: the fix is marked interrupted in its thread and the audit log, the
 * node's lock is released, nothing re-runs without a new approval, and
 * pending work resumes. The bot runs as a real child process (dist/, built by
 * `pretest`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyAuditLog } from '../../src/incidents/audit-log.js';
import { loadCatalogs } from '../../src/catalog/load.js';
import { startSimFleet, type SimFleet } from '../../src/sim/sim-fleet.js';
import { blockActionBody, sendSigned, slashCommandBody, SlackEmulator, viewSubmissionBody } from '../../src/sim/slack-emulator.js';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { REPO_ROOT } from '../lab/lab.js';
import { incidentIdOf, until } from '../helpers/slack-world.js';
import { freePort } from '../helpers/sshd.js';

const TOKEN = 'xoxb-1111111111-2222222222222-RestartRestartRestartRe';
const SECRET = 'restart-signing-secret-0123456789';

describe('restart in the middle of a fix', () => {
  let fleet: SimFleet;
  let slack: SlackEmulator;
  let bot: ChildProcess | null = null;
  let stderr = '';
  const stateDir = mkdtempSync(join(tmpdir(), 'nodediag-restart-'));

  beforeAll(async () => {
    fleet = await startSimFleet([{ name: 'gpu-node-9', faults: ['containerd-socket-is-directory'], toolkitPod: true }, { name: 'gpu-node-10', faults: ['containerd-down'] }], loadCatalogs(), { timeScale: 0.02 });
    slack = new SlackEmulator(TOKEN);
    await slack.start();
  });
  afterAll(async () => {
    if (bot && bot.exitCode === null) {
      bot.kill('SIGKILL');
      await new Promise((r) => bot!.once('exit', r));
    }
    await slack.stop();
    await fleet.stop();
  });

  async function startBot(port: number): Promise<void> {
    bot = spawn(join(REPO_ROOT, 'dist', 'src', 'cli.js'), ['serve'], {
      env: {
        ...process.env,
        PATH: `${join(REPO_ROOT, 'node_modules', '.bin')}:${process.env.PATH}`,
        SLACK_BOT_TOKEN: TOKEN,
        SLACK_SIGNING_SECRET: SECRET,
        SLACK_API_URL: slack.url,
        PORT: String(port),
        NODEDIAG_INVENTORY: fleet.inventoryPath,
        NODEDIAG_KUBECONFIG: fleet.kubeconfigPath,
        NODEDIAG_STATE_DIR: stateDir,
        NODEDIAG_APPROVERS: 'U0APPROVER',
        NODEDIAG_LOCK_BACKEND: 'file',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    bot.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error('the bot did not become ready');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('marks the fix interrupted, releases the lock, re-runs nothing, keeps pending approvals clickable, and offers a re-diagnosis', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/slack/events`;
    await startBot(port);
    const node = fleet.nodes.get('gpu-node-9')!;
    const exec = node.exec.bind(node);
    // The first step hangs, as a stuck systemctl would; the bot is killed meanwhile.
    node.exec = (cmd: string) => (cmd.includes('systemctl stop containerd') ? { ...exec(cmd), delayMs: 1e9 } : exec(cmd));

    await sendSigned(url, SECRET, slashCommandBody('gpu-node-9', 'U0REQUESTER', 'C0INCIDENT'));
    const root = await until(() => [...slack.messages.values()].find((m) => !m.threadTs && JSON.stringify(m.blocks).includes(ACTIONS.approve)), 15_000, 'the card');
    const id = incidentIdOf(root)!;
    await sendSigned(url, SECRET, blockActionBody(ACTIONS.approve, id, 'U0APPROVER', 'C0INCIDENT'));
    await until(() => slack.views[0], 5000, 'the modal');
    await sendSigned(url, SECRET, viewSubmissionBody(APPROVE_VIEW, id, 'U0APPROVER'));
    const audit = join(stateDir, 'audit.jsonl');
    await until(() => existsSync(audit) && /"type":"step-started"/.test(readFileSync(audit, 'utf8')), 15_000, 'the first step to start');
    // The node's lock and the cluster's one fix slot.
    expect(readdirSync(join(stateDir, 'locks')).sort()).toEqual(['gpu-node-9.lock', 'nodediag-fix-slot-0.lock']);

    // A second incident waits for approval across the restart.
    await sendSigned(url, SECRET, slashCommandBody('gpu-node-10', 'U0REQUESTER', 'C0INCIDENT'));
    const pending = await until(() => [...slack.messages.values()].find((m) => !m.threadTs && m.ts !== root.ts && JSON.stringify(m.blocks).includes(ACTIONS.approve)), 15_000, 'the second card');
    const pendingId = incidentIdOf(pending)!;

    bot!.kill('SIGKILL');
    await new Promise((r) => bot!.once('exit', r));
    node.exec = exec;
    const stepsBefore = fleet.servers.get('gpu-node-9')!.commands.filter((c) => !c.includes('probe() {')).length;

    await startBot(port);
    await until(() => slack.thread(root.ts).some((m) => /restarted while the fix ran \(step 2\/6/.test(m.text)), 20_000, 'the interrupted note').catch((err: Error) => {
      throw new Error(`${err.message}\nthread: ${JSON.stringify(slack.thread(root.ts).map((m) => m.text.slice(0, 80)))}\nbot stderr:\n${stderr.slice(-3000)}`);
    });
    await until(() => /Interrupted/.test(slack.messages.get(root.ts)!.text), 10_000, 'the card to say interrupted');
    expect(readdirSync(join(stateDir, 'locks'))).toEqual([]);
    const entries = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; data?: { step?: number } });
    expect(entries.at(-1)).toMatchObject({ type: 'interrupted', data: { step: 2 } });
    expect(verifyAuditLog(audit).ok).toBe(true);
    expect(fleet.servers.get('gpu-node-9')!.commands.filter((c) => !c.includes('probe() {')).length).toBe(stepsBefore);

    await sendSigned(url, SECRET, blockActionBody(ACTIONS.approve, id, 'U0APPROVER', 'C0INCIDENT'));
    await until(() => slack.ephemerals.find((e) => /interrupted by a restart/.test(e.text)), 5000, 'the refusal to re-approve');
    expect(slack.views).toHaveLength(1);
    // The pending approval is still clickable after the restart.
    await sendSigned(url, SECRET, blockActionBody(ACTIONS.approve, pendingId, 'U0APPROVER', 'C0INCIDENT'));
    await until(() => slack.views[1], 5000, 'the second modal');
    expect(JSON.stringify(slack.views[1])).toContain(pendingId);
    await sendSigned(url, SECRET, blockActionBody(ACTIONS.rediagnose, id, 'U0REQUESTER', 'C0INCIDENT'));
    await until(() => slack.thread(root.ts).some((m) => m.ts !== root.ts && JSON.stringify(m.blocks).includes(ACTIONS.approve)), 15_000, 'a fresh diagnosis with its own buttons');
  });
});
