/**
 * `npm run bench`: speed and memory, measured side by side in one run.
 *
 * 1. SSH against a real lab node (real systemd, containerd, sshd; needs root):
 *    (a) the floor, `ssh node true`; (b) the seed's manual playbook, one `ssh`
 *    per command, in sequence; (c) `nodediag diag`. Targets: (c) ≤ 1.5 ×
 *    (floor + slowest probe), and (b) ≥ 5 × (c). Then containerd hung:
 *    `diag` must answer within its probe timeout + 1 s.
 * 2. A fleet of 100 simulated nodes (another process) diagnosed with
 *    concurrency 16: < 10 s, peak RSS < 200 MB.
 * 3. The Slack HTTP receiver: 50 concurrent `/diag` requests, ack p99 < 100 ms;
 *    an Alertmanager storm (200 alerts, 50 nodes, 20/s): each webhook answered < 1 s.
 * 4. The real bot against a broken lab node, Slack's pacing on: `/diag` →
 *    root cause in the channel ≤ 1.5 s; Alertmanager webhook → diagnosed
 *    card ≤ 5 s.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadCatalogs } from '../src/catalog/load.js';
import type { SshProbe } from '../src/catalog/schema.js';
import { renderScript } from '../src/catalog/template.js';
import { buildBatchScript } from '../src/probes/batch.js';
import { defaultLayout } from '../src/probes/layout.js';
import { shellQuote, wrapRemoteCommand } from '../src/shell.js';
import { REPO_ROOT, Lab, type LabNode } from '../test/lab/lab.js';

const CLI = join(REPO_ROOT, 'dist', 'src', 'cli.js');
const results: Array<{ name: string; value: string; target: string; ok: boolean }> = [];

function record(name: string, value: string, target: string, ok: boolean): void {
  results.push({ name, value, target, ok });
  process.stdout.write(`  ${ok ? '✔' : '✖'} ${name}: ${value}  (target: ${target})\n`);
}

function time(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ ms: number; code: number; stdout: string }> {
  const started = performance.now();
  return new Promise((resolve) =>
    execFile(cmd, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout) =>
      resolve({ ms: performance.now() - started, code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout) }),
    ),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** The commands an engineer runs by hand from the seeds' playbooks (000 §1–6, 002 §1–12). */
const MANUAL_PLAYBOOK = [
  'journalctl -xeu containerd --no-pager | tail -n 50',
  'systemctl status containerd --no-pager',
  'ls -ld /run/containerd/containerd.sock',
  'ctr version',
  'containerd config dump | grep SystemdCgroup',
  'systemctl status kubelet --no-pager',
  'journalctl -u kubelet -n 200 --no-pager',
  'grep cgroupDriver /var/lib/kubelet/config.yaml',
  'df -h; df -hi',
  'swapon --show',
  'sysctl net.bridge.bridge-nf-call-iptables',
  'ls /etc/cni/net.d',
  'timedatectl status',
  "journalctl -k --no-pager | grep -i denied | tail -n 20",
  'ps -ef | grep containerd-shim | grep -v grep',
];

async function sshBench(): Promise<void> {
  process.stdout.write('\n1. SSH, against a real lab node (real systemd + containerd + OpenSSH sshd)\n');
  if (process.getuid?.() !== 0) {
    process.stdout.write('  – skipped: the lab needs root (run `sudo npm run bench`)\n');
    return;
  }
  const lab = await Lab.boot({ nodes: ['bench-node-1'] });
  try {
    const node: LabNode = lab.nodes[0]!;
    const ssh = ['-q', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-i', lab.botKeyPath, `root@${node.address}`];
    // SSH only, like (a) and (b): no Kubernetes credentials in the environment.
    const { KUBECONFIG: _ignored, ...rest } = process.env;
    const env = { ...rest, NODEDIAG_INVENTORY: lab.inventoryPath, NODEDIAG_KUBECONFIG: '' };
    const runs = 7;
    const floor: number[] = [];
    for (let i = 0; i < runs; i++) floor.push((await time('ssh', [...ssh, 'true'])).ms);
    const catalogs = loadCatalogs();
    let slowest = 0;
    let slowestId = '';
    for (const p of catalogs.probes.filter((x): x is SshProbe => x.transport === 'ssh')) {
      const cmd = wrapRemoteCommand(renderScript(p.script, { sudo: false, ...defaultLayout().params, since: '0' }), { timeoutMs: p.timeoutMs });
      const alone: number[] = [];
      for (let i = 0; i < 3; i++) alone.push((await time('ssh', [...ssh, cmd])).ms);
      const t = median(alone);
      const extra = t - median(floor);
      if (extra > slowest) {
        slowest = extra;
        slowestId = p.id;
      }
    }
    // What the probes cost the node's CPUs when they run side by side, as diag runs them (bash's `times`: the batch's user + sys).
    const batch = buildBatchScript(
      catalogs.probes
        .filter((x): x is SshProbe => x.transport === 'ssh')
        .map((p) => ({ id: p.id, script: renderScript(p.script, { sudo: false, ...defaultLayout().params, since: '0' }), timeoutMs: p.timeoutMs, maxOutputBytes: p.maxOutputBytes ?? 65_536 })),
    );
    const cpu: number[] = [];
    for (let i = 0; i < 3; i++) {
      const out = (await time('ssh', [...ssh, `bash -c ${shellQuote('sh -c "$1" >/dev/null 2>&1; times')} _ ${shellQuote(batch)}`])).stdout.trim().split('\n');
      const secs = (out.at(-1) ?? '').split(/\s+/).map((t) => { const m = /^(\d+)m([\d.]+)s$/.exec(t); return m ? Number(m[1]) * 60 + Number(m[2]) : NaN; });
      cpu.push(1000 * ((secs[0] ?? NaN) + (secs[1] ?? NaN)));
    }
    const cpus = (await import('node:os')).availableParallelism();
    const manual: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      for (const c of MANUAL_PLAYBOOK) await time('ssh', [...ssh, c]);
      manual.push(performance.now() - started);
    }
    const diag: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await time(CLI, ['diag', node.name, '--json'], env);
      if (r.code !== 0) throw new Error(`diag of the healthy bench node exited ${r.code}`);
      diag.push(r.ms);
    }
    // Processes and threads this machine starts during one diag (the node's, sshd's, the CLI's; the kernel's count): what a diag costs in process starts.
    const forks = () => Number(/^processes (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))![1]);
    const f0 = forks();
    await time(CLI, ['diag', node.name, '--json'], env);
    const forksPerDiag = forks() - f0;
    const f = median(floor);
    const c = median(diag);
    const b = median(manual);
    process.stdout.write(
      `  (a) floor, ssh node true:                 ${f.toFixed(0)} ms\n` +
        `      slowest probe alone (${slowestId}): +${slowest.toFixed(0)} ms over the floor\n` +
        `  (b) manual playbook, ${MANUAL_PLAYBOOK.length} ssh commands:   ${b.toFixed(0)} ms\n` +
        `  (c) nodediag diag (${catalogs.probes.length} checks, CLI start included): ${c.toFixed(0)} ms\n` +
        `      processes and threads started on this machine during one diag (the node's, sshd's and the CLI's): ${forksPerDiag}\n`,
    );
    process.stdout.write(
      `      the probes side by side use ${median(cpu).toFixed(0)} ms of CPU on the node; over this machine's ${cpus} CPUs (shared by the node, sshd and the CLI) they alone need ≥ ${(median(cpu) / cpus).toFixed(0)} ms,\n` +
        `      against a target of ${(1.5 * (f + slowest)).toFixed(0)} ms for the whole diag: the target assumes CPUs enough for every probe at once\n`,
    );
    record('(c) / (floor + slowest probe)', `${(c / (f + slowest)).toFixed(2)}×`, '≤ 1.5×', c <= 1.5 * (f + slowest));
    record('(b) / (c): faster than the manual playbook', `${(b / c).toFixed(1)}×`, '≥ 5×', b >= 5 * c);

    // The same API two ways: the lab's plain kubeconfig (a token: the CLI reads the API itself over
    // node:https), and through an exec credential plugin, as managed clusters' kubeconfigs are (client-node, in its thread).
    const plugin = join(mkdtempSync(join(tmpdir(), 'nodediag-bench-kube-')), 'get-token');
    const token = /^\s+token: (\S+)$/m.exec(readFileSync(lab.kubeconfigPath, 'utf8'))?.[1];
    if (!token) throw new Error(`no token in ${lab.kubeconfigPath}`);
    writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${token}"}}'\n`, { mode: 0o755 });
    const viaExec = `${plugin}.kubeconfig`;
    writeFileSync(viaExec, readFileSync(lab.kubeconfigPath, 'utf8').replace(/^(\s+)token: \S+$/m, `$1exec:\n$1  apiVersion: client.authentication.k8s.io/v1\n$1  command: ${plugin}\n$1  interactiveMode: Never`));
    const withKube = { ...env, NODEDIAG_KUBECONFIG: lab.kubeconfigPath };
    const withExec = { ...env, NODEDIAG_KUBECONFIG: viaExec };
    const k: number[] = [];
    const kExec: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (const [e, into] of [[withKube, k], [withExec, kExec]] as const) {
        const r = await time(CLI, ['diag', node.name, '--json'], e);
        const kubeChecks = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string }> }).checks.filter((x) => x.id.startsWith('k8s-'));
        if (r.code !== 0 || kubeChecks.length !== 3 || kubeChecks.some((x) => x.status !== 'ok')) throw new Error(`diag with the Kubernetes checks did not run them all: ${JSON.stringify(kubeChecks)}`);
        into.push(r.ms);
      }
    }
    process.stdout.write(`  (d) nodediag diag with the Kubernetes checks too (a plain kubeconfig: the CLI reads the API over node:https): ${median(k).toFixed(0)} ms\n`);
    process.stdout.write(`      the same through an exec credential plugin (client-node, bundled by the build, loads in a worker): ${median(kExec).toFixed(0)} ms (${(median(kExec) / (f + slowest)).toFixed(2)}×)\n`);
    record('(d) / (floor + slowest probe)', `${(median(k) / (f + slowest)).toFixed(2)}×`, '≤ 1.5×', median(k) <= 1.5 * (f + slowest));

    const pid = await node.containerdPid();
    await node.must(`kill -STOP ${pid}`);
    try {
      const hung = await time(CLI, ['diag', node.name, '--json'], env);
      const report = JSON.parse(hung.stdout) as { findings: Array<{ id: string }> };
      const probeTimeout = catalogs.probeById.get('runtime-ping')!;
      const limit = ('timeoutMs' in probeTimeout ? probeTimeout.timeoutMs : 6000) + 1000;
      record(`diag with containerd hung (${report.findings[0]?.id ?? 'no finding'})`, `${hung.ms.toFixed(0)} ms`, `≤ probe timeout + 1 s = ${limit} ms`, hung.ms <= limit && report.findings[0]?.id === 'containerd-hung');
    } finally {
      await node.sh(`kill -CONT ${pid}`);
    }
  } finally {
    await lab.teardown();
  }
}

async function fleetBench(): Promise<void> {
  process.stdout.write('\n2. Fleet: 100 simulated nodes (SSH servers in another process), concurrency 16\n');
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'bench', 'sim-fleet-child.js'), '100', '0.1'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  const info = JSON.parse(line) as { inventoryPath: string; kubeconfigPath: string; nodes: string[] };
  try {
    const env = { ...process.env, NODEDIAG_INVENTORY: info.inventoryPath, NODEDIAG_KUBECONFIG: info.kubeconfigPath };
    const started = performance.now();
    // Run the CLI as it is installed (its shebang sets the V8 flags it ships with).
    const proc = spawn(CLI, ['diag', '-l', 'pool=gpu', '--concurrency', '16', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let peakKb = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        /* exited */
      }
    }, 20);
    let out = '';
    proc.stdout!.on('data', (d) => (out += String(d)));
    await new Promise((r) => proc.on('exit', r));
    clearInterval(poll);
    const ms = performance.now() - started;
    const nodes = (JSON.parse(out) as { nodes: Array<{ findings?: unknown[]; reachable?: boolean }> }).nodes;
    const reached = nodes.filter((n) => n.reachable).length;
    process.stdout.write(`  ${nodes.length} nodes diagnosed (${reached} reached, ${nodes.filter((n) => n.findings?.length).length} with findings)\n`);
    record('fleet of 100, wall time', `${(ms / 1000).toFixed(2)} s`, '< 10 s', ms < 10_000 && reached === 100);
    record('fleet of 100, peak RSS of the diagnosing process', `${(peakKb / 1024).toFixed(0)} MB`, '< 200 MB', peakKb > 0 && peakKb < 200 * 1024);
  } finally {
    child.stdin!.end();
    await new Promise((r) => child.on('exit', r));
  }
}

/** A bench helper process (dist/bench/<script>), its stdout piped. */
function benchChild(script: string, args: string[]): ChildProcess {
  return spawn(process.execPath, [join(REPO_ROOT, 'dist', 'bench', script), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
}

function firstLine(c: ChildProcess): Promise<string> {
  return new Promise<string>((resolve) => createInterface({ input: c.stdout! }).once('line', resolve));
}

const BENCH_SLACK_TOKEN = 'xoxb-0000000000-0000000000000-benchBenchBenchBenchBench';
const BENCH_SIGNING_SECRET = 'bench-signing-secret-0123456789abcdef';

/**
 * The real bot (HTTP receiver, production settings: the outbox paces posts at
 * Slack's rate, about one per second per channel) in front of a simulated
 * fleet and the Slack emulator, each in its own process.
 */
async function startBenchBot(nodes: number, env: Record<string, string> = {}) {
  const { loadConfig } = await import('../src/config.js');
  const { startServer } = await import('../src/main.js');
  const { silentLogger } = await import('../src/ports.js');
  const { freePort } = await import('../src/sim/free-port.js');
  const fleet = benchChild('sim-fleet-child.js', [String(nodes), '0.1']);
  const emulator = benchChild('slack-emulator-child.js', [BENCH_SLACK_TOKEN]);
  const files = JSON.parse(await firstLine(fleet)) as { inventoryPath: string; kubeconfigPath: string; nodes: string[] };
  const { url: apiUrl } = JSON.parse(await firstLine(emulator)) as { url: string };
  const port = await freePort();
  const server = await startServer(
    loadConfig({
      SLACK_BOT_TOKEN: BENCH_SLACK_TOKEN,
      SLACK_SIGNING_SECRET: BENCH_SIGNING_SECRET,
      SLACK_API_URL: apiUrl,
      PORT: String(port),
      NODEDIAG_INVENTORY: files.inventoryPath,
      NODEDIAG_KUBECONFIG: files.kubeconfigPath,
      NODEDIAG_STATE_DIR: mkdtempSync(join(tmpdir(), 'nodediag-bench-')),
      NODEDIAG_APPROVERS: 'U0APPROVER',
      ...env,
    }),
    { logger: silentLogger },
  );
  return {
    server,
    port,
    nodes: files.nodes,
    stop: async () => {
      await server.stop().catch(() => undefined);
      fleet.stdin!.end();
      emulator.stdin!.end();
    },
  };
}

async function slackBench(): Promise<void> {
  process.stdout.write('\n3. Slack HTTP receiver: 50 concurrent /diag requests (signed, from another process), a warm-up and 3 rounds\n');
  const bot = await startBenchBot(1);
  try {
    const acks: number[] = [];
    let busy = 0;
    const load = benchChild('slash-load.js', [`http://127.0.0.1:${bot.port}/slack/events`, BENCH_SIGNING_SECRET, 'sim-node-001', '50']);
    const replies = createInterface({ input: load.stdout! })[Symbol.asyncIterator]();
    await replies.next();
    // Round 0 warms up a freshly started bot (JIT); it is shown but not counted.
    for (let round = 0; round <= 3; round++) {
      load.stdin!.write('go\n');
      const rs = JSON.parse((await replies.next()).value as string) as Array<{ status: number; ms: number }>;
      for (const r of rs) if (r.status !== 200) throw new Error(`ack status ${r.status}`);
      if (round > 0) acks.push(...rs.map((r) => r.ms));
      process.stdout.write(`    ${round === 0 ? 'warm-up (not counted)' : `round ${round}`}: p50 ${pct(rs.map((r) => r.ms), 50).toFixed(0)} ms, max ${Math.max(...rs.map((r) => r.ms)).toFixed(0)} ms\n`);
      await bot.server.service.idle();
      busy = bot.server.outbox.pending;
    }
    load.stdin!.end();
    process.stdout.write(`  p50 ${pct(acks, 50).toFixed(1)} ms, p99 ${pct(acks, 99).toFixed(1)} ms, max ${Math.max(...acks).toFixed(1)} ms over ${acks.length} requests (${busy} Slack posts still queued, paced at Slack's rate)\n`);
    record('slash-command ack p99 (50 concurrent)', `${pct(acks, 99).toFixed(1)} ms`, '< 100 ms', pct(acks, 99) < 100);
  } finally {
    await bot.stop();
  }
}

async function alertStormBench(): Promise<void> {
  process.stdout.write('\n3b. Alertmanager webhook storm: 200 alerts for 50 simulated nodes at 20 per second (from another process), Slack\'s pacing on\n');
  const alertToken = 'bench-alert-token-0123456789';
  const bot = await startBenchBot(50, { NODEDIAG_ALERT_TOKEN: alertToken, NODEDIAG_ALERT_CHANNEL: 'C0INCIDENT' });
  try {
    const load = benchChild('alert-load.js', [`http://127.0.0.1:${bot.port}/alerts/alertmanager`, alertToken, '200', '20', ...bot.nodes]);
    const replies = createInterface({ input: load.stdout! })[Symbol.asyncIterator]();
    await replies.next();
    load.stdin!.write('go\n');
    const rs = JSON.parse((await replies.next()).value as string) as Array<{ status: number; ms: number }>;
    load.stdin!.end();
    const refused = rs.filter((r) => r.status !== 200).length;
    const ms = rs.map((r) => r.ms);
    process.stdout.write(`  p50 ${pct(ms, 50).toFixed(0)} ms, p99 ${pct(ms, 99).toFixed(0)} ms, max ${Math.max(...ms).toFixed(0)} ms over ${rs.length} webhooks (${refused} not answered 200)\n`);
    record('alert webhook answered, storm of 200 (p99)', `${pct(ms, 99).toFixed(0)} ms`, '< 1000 ms, every one answered 200', pct(ms, 99) < 1000 && refused === 0);
    record('alert webhook answered, storm of 200 (slowest)', `${Math.max(...ms).toFixed(0)} ms`, '< 1000 ms', Math.max(...ms) < 1000);
    await bot.server.service.idle();
  } finally {
    await bot.stop();
  }
}

async function alertBench(): Promise<void> {
  process.stdout.write('\n4. The bot on a broken lab node (containerd socket path is a directory), Slack\'s pacing on: /diag → root cause, alert → card (3 runs each)\n');
  if (process.getuid?.() !== 0) {
    process.stdout.write('  – skipped: the lab needs root (run `sudo npm run bench`)\n');
    return;
  }
  const { loadConfig } = await import('../src/config.js');
  const { startServer } = await import('../src/main.js');
  const { silentLogger } = await import('../src/ports.js');
  const { SlackEmulator, sendSigned, slashCommandBody } = await import('../src/sim/slack-emulator.js');
  const { LAB_FAULTS } = await import('../test/lab/faults.js');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { freePort } = await import('../src/sim/free-port.js');
  const token = BENCH_SLACK_TOKEN;
  const secret = BENCH_SIGNING_SECRET;
  const alertToken = 'bench-alert-token-0123456789';
  const channel = 'C0INCIDENT';
  const lab = await Lab.boot({ nodes: ['bench-alert-1'] });
  const node = lab.nodes[0]!;
  const fault = LAB_FAULTS.find((f) => f.id === 'containerd-socket-is-directory')!;
  const slack = new SlackEmulator(token);
  await slack.start();
  const port = await freePort();
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    await fault.inject(node, lab);
    server = await startServer(
      loadConfig({
        SLACK_BOT_TOKEN: token,
        SLACK_SIGNING_SECRET: secret,
        SLACK_API_URL: slack.url,
        PORT: String(port),
        NODEDIAG_INVENTORY: lab.inventoryPath,
        NODEDIAG_KUBECONFIG: lab.kubeconfigPath,
        NODEDIAG_STATE_DIR: mkdtempSync(join(tmpdir(), 'nodediag-bench-alerts-')),
        NODEDIAG_APPROVERS: 'U0APPROVER',
        NODEDIAG_ALERT_TOKEN: alertToken,
        NODEDIAG_ALERT_CHANNEL: channel,
      }),
      // Production settings: the outbox paces posts at Slack's rate.
      { logger: silentLogger },
    );
    const rootCauseCard = (from: number) => [...slack.messages.values()].slice(from).find((m) => !m.threadTs && m.text.startsWith(`${node.name}:`) && m.text.includes('(root cause)'));
    const waitFor = async (from: number, limitMs: number) => {
      const started = performance.now();
      while (!rootCauseCard(from)) {
        if (performance.now() - started > limitMs) throw new Error('no diagnosed card in time');
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const diag: number[] = [];
    for (let i = 0; i < 3; i++) {
      const from = slack.messages.size;
      const started = performance.now();
      await sendSigned(`http://127.0.0.1:${port}/slack/events`, secret, slashCommandBody(node.name, 'U0REQUESTER', channel));
      await waitFor(from, 30_000);
      diag.push(performance.now() - started);
      // Let the channel's pacing settle, as between two real incidents.
      await server.service.idle();
      await server.outbox.drain(10_000);
      await new Promise((r) => setTimeout(r, 1500));
    }
    const alerts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const alertname = `BenchAlert${i}`;
      const body = (status: 'firing' | 'resolved') =>
        JSON.stringify({
          version: '4',
          groupKey: `{}:{node="${node.name}"}`,
          status,
          receiver: 'nodediag',
          groupLabels: { node: node.name },
          commonLabels: { alertname, node: node.name },
          commonAnnotations: {},
          externalURL: 'http://alertmanager.example:9093',
          alerts: [{ status, labels: { alertname, node: node.name }, annotations: { summary: 'containerd down' }, startsAt: new Date().toISOString(), endsAt: status === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: '' }],
        });
      const post = (status: 'firing' | 'resolved') =>
        fetch(`http://127.0.0.1:${port}/alerts/alertmanager`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${alertToken}` }, body: body(status) });
      const from = slack.messages.size;
      const started = performance.now();
      const r = await post('firing');
      if (r.status !== 200) throw new Error(`the webhook answered ${r.status}`);
      await waitFor(from, 30_000);
      alerts.push(performance.now() - started);
      // Resolved: the next alert opens a new incident.
      await post('resolved');
      while (server.alerts.openEpisodes()[node.name]) await new Promise((res) => setTimeout(res, 20));
      await server.service.idle();
      await server.outbox.drain(10_000);
      await new Promise((res) => setTimeout(res, 1500));
    }
    process.stdout.write(`  /diag → root cause: ${diag.map((x) => x.toFixed(0)).join(', ')} ms; alert → card: ${alerts.map((x) => x.toFixed(0)).join(', ')} ms\n`);
    record('/diag → root cause in the channel (median)', `${(median(diag) / 1000).toFixed(2)} s`, '≤ 1.5 s', median(diag) <= 1500);
    record('alert received → diagnosed card posted (median)', `${(median(alerts) / 1000).toFixed(2)} s`, '≤ 5 s', median(alerts) <= 5000);
  } finally {
    await server?.stop().catch(() => undefined);
    await slack.stop();
    await fault.restore(node, lab).catch(() => undefined);
    await lab.teardown();
  }
}

process.stdout.write(`nodediag benchmark — ${new Date().toISOString()}, Node ${process.version}, ${(await import('node:os')).cpus().length} CPUs\n`);
const only = process.argv.slice(2);
if (only.length === 0 || only.includes('ssh')) await sshBench();
if (only.length === 0 || only.includes('fleet')) await fleetBench();
if (only.length === 0 || only.includes('slack')) await slackBench();
if (only.length === 0 || only.includes('alert-storm')) await alertStormBench();
if (only.length === 0 || only.includes('alerts')) await alertBench();
const failed = results.filter((r) => !r.ok);
process.stdout.write(`\n${results.length - failed.length}/${results.length} targets met${failed.length ? `; missed: ${failed.map((f) => f.name).join('; ')}` : ''}\n`);
process.exitCode = failed.length ? 1 : 0;
