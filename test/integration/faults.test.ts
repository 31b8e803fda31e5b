/**
 * Faults: a half-open SSH connection, a reset mid-command, the Kubernetes API
 * failing during a diagnosis, Slack down while a fix runs, a full disk under
 * the bot's state, a changed host key. Each must be survived and reported.
 */
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSshConnector } from '../../src/adapters/ssh.js';
import { diagnoseNode } from '../../src/diagnose/run-diagnosis.js';
import { loadInventory } from '../../src/inventory/inventory.js';
import type { Logger } from '../../src/ports.js';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { simWorld } from '../helpers/sim-deps.js';
import { incidentIdOf, slackWorld } from '../helpers/slack-world.js';
import { SECRET_CORPUS } from '../fixtures/secrets-corpus.js';
import { loadConfig } from '../../src/config.js';
import { plain } from '../../src/diagnose/format-text.js';

/** A TCP proxy that can stop forwarding without closing: a half-open connection. */
async function blackholeProxy(targetPort: number): Promise<{ port: number; blackhole(): void; close(): void }> {
  const pairs: Array<[Socket, Socket]> = [];
  let dead = false;
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    pairs.push([client, upstream]);
    client.on('data', (d) => dead || upstream.write(d));
    upstream.on('data', (d) => dead || client.write(d));
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    blackhole: () => (dead = true),
    close: () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      server.close();
    },
  };
}

function rootWorldText(w: Awaited<ReturnType<typeof slackWorld>>): string {
  return JSON.stringify(w.slack.calls.map((c) => c.args));
}

describe('SSH faults', () => {
  it('detects a half-open connection with keepalive and fails the command instead of hanging', async () => {
    const w = await simWorld([{ name: 'gpu-node-1' }]);
    const proxy = await blackholeProxy(w.fleet.servers.get('gpu-node-1')!.port);
    try {
      const inv = loadInventory(w.fleet.inventoryPath);
      const entry = inv.nodes[0]!;
      const connector = createSshConnector({ keepaliveIntervalMs: 200, keepaliveCountMax: 2 });
      const shell = await connector.connect({
        node: 'gpu-node-1',
        host: '127.0.0.1',
        port: proxy.port,
        user: 'root',
        privateKeyPath: w.fleet.keys.clientKeyPath,
        hostKey: { kind: 'fingerprints', fingerprints: [entry.hostKey as string] },
        connectTimeoutMs: 3000,
      });
      w.fleet.servers.get('gpu-node-1')!.faults.hangExec = true;
      proxy.blackhole();
      const started = Date.now();
      await expect(shell.exec('anything', { timeoutMs: 60_000, maxOutputBytes: 1000 })).rejects.toThrow(/keepalive|connection/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      proxy.close();
      await w.fleet.stop();
    }
  });

  it('reports every SSH check failed, with the reason, when the connection resets mid-batch; the Kubernetes checks still count', async () => {
    const w = await simWorld([{ name: 'gpu-node-2', faults: ['containerd-down'] }]);
    try {
      w.fleet.servers.get('gpu-node-2')!.faults.resetAfterMs = 10;
      const r = await diagnoseNode('gpu-node-2', w.deps);
      const ssh = r.checks.filter((c) => !c.id.startsWith('k8s-'));
      expect(ssh.every((c) => c.status === 'failed' && /connection|closed|reset/i.test(c.reason ?? ''))).toBe(true);
      expect(r.checks.filter((c) => c.id.startsWith('k8s-')).every((c) => c.status === 'ok')).toBe(true);
      expect(r.findings.map((f) => f.id)).toContain('node-not-ready');
    } finally {
      await w.fleet.stop();
    }
  });
});

describe('Kubernetes API faults during a diagnosis', () => {
  it.each([
    ['answers 500', { failWith: 500 }, /answered 500/],
    ['is slow beyond its deadline', { latencyMs: 4000 }, /no answer in time/],
  ])('still names the SSH finding when the API %s', async (_what, faults, why) => {
    const w = await simWorld([{ name: 'gpu-node-3', faults: ['containerd-socket-is-directory'] }]);
    try {
      w.fleet.kube.faults = faults;
      const r = await diagnoseNode('gpu-node-3', w.deps);
      expect(r.findings[0]!.id).toBe('containerd-socket-is-directory');
      for (const c of r.checks.filter((x) => x.id.startsWith('k8s-'))) expect(c).toMatchObject({ status: 'failed', reason: expect.stringMatching(why) });
    } finally {
      w.fleet.kube.faults = {};
      await w.fleet.stop();
    }
  });

  it('names the missing permission when the API answers 403', async () => {
    const w = await simWorld([{ name: 'gpu-node-4' }]);
    try {
      w.fleet.kube.denials = [{ verb: 'list', resource: 'events' }];
      const r = await diagnoseNode('gpu-node-4', w.deps);
      expect(r.checks.find((c) => c.id === 'k8s-events')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/needs permission "list" on events/) });
      expect(r.checks.find((c) => c.id === 'k8s-pods')!.status).toBe('ok');
    } finally {
      await w.fleet.stop();
    }
  });
});

describe('the bot under faults', () => {
  it('finishes a fix while Slack is down and delivers every thread entry, in order, once Slack is back', async () => {
    jest.setTimeout(90_000);
    const w = await slackWorld([{ name: 'gpu-node-5', faults: ['containerd-socket-is-directory'], toolkitPod: true }]);
    try {
      await w.slash('gpu-node-5', 'U0REQUESTER');
      const root = await w.until(() => [...w.slack.messages.values()].find((m) => !m.threadTs && JSON.stringify(m.blocks).includes(ACTIONS.approve)), 10_000, 'card');
      const id = JSON.parse(JSON.stringify(root.blocks)).find((b: { type: string }) => b.type === 'actions').elements[0].value;
      await w.click(ACTIONS.approve, id, 'U0APPROVER');
      await w.until(() => w.slack.views[0], 5000, 'modal');
      w.slack.fail('chat.postMessage', { status: 500 }, 12);
      w.slack.fail('chat.update', { status: 500 }, 12);
      await w.submit(APPROVE_VIEW, id, 'U0APPROVER');
      await w.until(() => w.fleet.nodes.get('gpu-node-5')!.runtimeHealthy, 15_000, 'the node to be fixed');
      await w.server.service.idle();
      // The fix is done; Slack is still catching up.
      expect(w.server.outbox.pending).toBeGreaterThan(0);
      expect(w.slack.thread(root.ts).some((m) => m.text.startsWith('Incident summary'))).toBe(false);
      const summary = await w.until(() => w.slack.thread(root.ts).find((m) => m.text.startsWith('Incident summary')), 40_000, 'the summary after the outage');
      const thread = w.slack.thread(root.ts).map((m) => m.text);
      const steps = thread.filter((t) => /^Step \d\/6/.test(t)).map((t) => Number(/^Step (\d)/.exec(t)![1]));
      expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
      expect(thread.indexOf(summary.text)).toBe(thread.length - 1);
      expect(await w.server.outbox.drain(10_000)).toBe(true);
      expect(w.slack.messages.get(root.ts)!.text).toMatch(/Fixed/);
    } finally {
      await w.stop();
    }
  });

  it('refuses a node whose host key changed, loudly, and says so in the channel', async () => {
    const errors: string[] = [];
    const logger: Logger = { info: () => {}, warn: (m) => errors.push(m), error: (m, f) => errors.push(`${m} ${JSON.stringify(f)}`) };
    const fleetWorld = await simWorld([{ name: 'gpu-node-6', faults: ['containerd-down'] }]);
    const inv = readFileSync(fleetWorld.fleet.inventoryPath, 'utf8').replace(/hostKey: "SHA256:[^"]+"/, 'hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"');
    const bad = join(fleetWorld.dir, 'inventory-changed-key.yaml');
    writeFileSync(bad, inv);
    const w = await slackWorld([], {}, { logger }, undefined, { inventoryPath: bad, kubeconfigPath: fleetWorld.fleet.kubeconfigPath });
    try {
      await w.slash('gpu-node-6', 'U0REQUESTER');
      const root = await w.until(() => [...w.slack.messages.values()].find((m) => !m.threadTs && /unreachable|gpu-node-6:/.test(m.text) && !/Diagnosing/.test(m.text)), 10_000, 'card');
      expect(JSON.stringify(root.blocks)).toMatch(/POSSIBLE ATTACK: gpu-node-6 presented host key ssh-ed25519 SHA256:/);
      expect(errors.some((e) => /POSSIBLE ATTACK: host key mismatch/.test(e))).toBe(true);
      expect(fleetWorld.fleet.servers.get('gpu-node-6')!.commands).toEqual([]);
    } finally {
      await w.stop();
      await fleetWorld.fleet.stop();
    }
  });

  it('never shows a credential from the node (the whole corpus) in Slack, the thread, the audit log, the incident store, the bot\'s logs, or the CLI\'s text and --json', async () => {
    const logged: string[] = [];
    const logger = { info: (m: string, f?: unknown) => logged.push(m, JSON.stringify(f ?? {})), warn: (m: string, f?: unknown) => logged.push(m, JSON.stringify(f ?? {})), error: (m: string, f?: unknown) => logged.push(m, JSON.stringify(f ?? {})) };
    const w = await slackWorld([{ name: 'gpu-node-7', faults: ['containerd-socket-is-directory'] }], {}, { logger });
    try {
      const node = w.fleet.nodes.get('gpu-node-7')!;
      // Every line of the corpus, echoed by containerd and kubelet into their journals (as misconfigured units do).
      const echoCorpus = () => {
        for (const c of SECRET_CORPUS) {
          for (const line of c.line.split('\n')) {
            node.state.journal.containerd.push([Date.now(), `containerd[903]: containerd: failed to get listener for main endpoint: is a directory; ${line}`]);
            node.state.journal.kubelet.push([Date.now(), `kubelet[467]: E1130 09:00:00.000000     467 kubelet.go:1] "Failed to pull image" err="${line}"`]);
          }
        }
      };
      echoCorpus();
      await w.slash('gpu-node-7', 'U0REQUESTER');
      const root = await w.until(() => [...w.slack.messages.values()].find((m) => !m.threadTs && JSON.stringify(m.blocks).includes(ACTIONS.approve)), 10_000, 'card');
      expect(JSON.stringify(root.blocks)).toMatch(/\[REDACTED\]/);
      const id = incidentIdOf(root)!;
      await w.click(ACTIONS.dryRun, id, 'U0APPROVER');
      await w.click(ACTIONS.approve, id, 'U0APPROVER');
      await w.until(() => w.slack.views[0], 5000, 'the modal');
      await w.submit(APPROVE_VIEW, id, 'U0APPROVER');
      await w.until(() => w.slack.thread(root.ts).find((m) => m.text.startsWith('Incident summary')), 30_000, 'the summary');
      // The terminal: the real CLI commands, text and --json, against the same node (the fix restarted the units: they echo it again).
      echoCorpus();
      const out: string[] = [];
      const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t), progress: () => {}, interactive: false, confirm: async () => false };
      const config = loadConfig({ NODEDIAG_INVENTORY: w.fleet.inventoryPath, NODEDIAG_KUBECONFIG: w.fleet.kubeconfigPath, NODEDIAG_STATE_DIR: join(w.stateDir, 'cli') });
      const { diagCommand } = await import('../../src/cli/diag-command.js');
      await diagCommand(['gpu-node-7'], config, io, plain);
      await diagCommand(['gpu-node-7', '--json'], config, io, plain);
      const everything = [
        rootWorldText(w),
        readFileSync(join(w.stateDir, 'audit.jsonl'), 'utf8'),
        ...readdirSync(join(w.stateDir, 'incidents')).map((f) => readFileSync(join(w.stateDir, 'incidents', f), 'utf8')),
        logged.join('\n'),
        out.join('\n'),
      ].join('\n');
      expect(out.join('\n')).toMatch(/\[REDACTED\]/);
      const leaked = SECRET_CORPUS.filter((c) => everything.includes(c.secret)).map((c) => c.what);
      expect(leaked).toEqual([]);
    } finally {
      await w.stop();
    }
  });
});

describe('a full disk under the bot\'s state', () => {
  it('answers "cannot record" instead of crashing, and works again once space is freed', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a small tmpfs: run as root (CI does, see .ci/run)');
    const dir = mkdtempSync(join(tmpdir(), 'nodediag-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
    // Two diagnosis slots: a refusal that kept its slot would leave none for the diagnosis after the disk is freed.
    const w = await slackWorld([{ name: 'gpu-node-8', faults: ['containerd-down'] }], { NODEDIAG_MAX_CONCURRENT_DIAGNOSES: '2' }, {}, dir);
    try {
      mkdirSync(join(dir, 'filler'));
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler', 'f')}`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
      } catch {
        /* dd stops at ENOSPC: that is the point */
      }
      const before = w.slack.ephemerals.length;
      const ack = await w.slash('gpu-node-8', 'U0REQUESTER');
      expect(ack.status).toBe(200);
      await w.until(() => w.slack.ephemerals.slice(before).find((e) => /cannot record the incident/.test(e.text)), 5000, 'the refusal');
      expect(w.fleet.servers.get('gpu-node-8')!.commands).toEqual([]);
      for (let i = 0; i < 3; i++) {
        const asked = w.slack.ephemerals.length;
        await w.slash('-l kubernetes.io/os=linux', 'U0REQUESTER');
        await w.until(() => w.slack.ephemerals.slice(asked).find((e) => /cannot post the fleet summary/.test(e.text)), 5000, 'the fleet refusal');
      }
      execFileSync('rm', ['-rf', join(dir, 'filler')]);
      await w.slash('gpu-node-8', 'U0REQUESTER');
      const card = await w.until(() => [...w.slack.messages.values()].find((m) => !m.threadTs && JSON.stringify(m.blocks).includes(ACTIONS.approve)), 10_000, 'a normal incident after freeing space');
      // The disk fills again while the approval is being confirmed: the modal says so (Slack would only show "trouble connecting"), nothing runs.
      const id = incidentIdOf(card)!;
      const views = w.slack.views.length;
      await w.click(ACTIONS.approve, id, 'U0APPROVER');
      await w.until(() => w.slack.views.length > views, 5000, 'the confirmation');
      mkdirSync(join(dir, 'filler'));
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler', 'f')}`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
      } catch {
        /* full again */
      }
      const answer = await w.submit(APPROVE_VIEW, id, 'U0APPROVER');
      expect(answer.status).toBe(200);
      expect(JSON.stringify(answer.body)).toMatch(/Approval not confirmed.*could not finish recording the approval.*approve again/);
      await w.server.service.idle();
      expect(w.fleet.servers.get('gpu-node-8')!.commands.some((c) => /systemctl (re)?start containerd/.test(c) && !c.includes('probe() {'))).toBe(false);
    } finally {
      await w.stop();
      execFileSync('umount', [dir]);
    }
  });
});
