/**
 * The real Alertmanager (Debian's prometheus-alertmanager) on loopback,
 * pointed at the bot's webhook. Alerts go in through its API v2, as
 * Prometheus sends them; it groups, repeats and resolves them itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './sshd.js';

export const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';

export interface RealAlertmanager {
  url: string;
  /** Sends alerts as Prometheus does (POST /api/v2/alerts). */
  post(alerts: Array<{ labels: Record<string, string>; annotations?: Record<string, string>; startsAt?: string; endsAt?: string; generatorURL?: string }>): Promise<void>;
  /** Its log (errors delivering to the webhook show here). */
  log(): string;
  stop(): Promise<void>;
}

/** Starts Alertmanager with one webhook receiver; `http` is its http_config block (YAML lines). */
export async function startAlertmanager(webhookUrl: string, http: string[], opts: { groupBy?: string[] } = {}): Promise<RealAlertmanager> {
  if (!existsSync(ALERTMANAGER)) throw new Error(`${ALERTMANAGER} is missing: apt-get install prometheus-alertmanager (.ci/run does)`);
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-am-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    [
      'route:',
      '  receiver: nodediag',
      `  group_by: [${(opts.groupBy ?? ['node']).map((l) => `'${l}'`).join(', ')}]`,
      '  group_wait: 1s',
      '  group_interval: 1s',
      '  repeat_interval: 1h',
      'receivers:',
      '  - name: nodediag',
      '    webhook_configs:',
      `      - url: '${webhookUrl}'`,
      '        send_resolved: true',
      '        http_config:',
      ...http.map((l) => `          ${l}`),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(
    ALERTMANAGER,
    [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=debug'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (d) => (log += String(d)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`alertmanager did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async post(alerts) {
      const res = await fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
      if (!res.ok) throw new Error(`alertmanager refused the alerts: ${res.status} ${await res.text()}`);
    },
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
