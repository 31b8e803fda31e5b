/**
 * An Alertmanager in its own process: on "go" read from stdin it posts
 * <count> firing alerts spread over the nodes named, at <perSecond>, and
 * prints each webhook's answer time (ms) and status as one JSON line.
 *   node dist/bench/alert-load.js <url> <token> <count> <perSecond> <node>…
 */
import { createInterface } from 'node:readline';
import { firingAlertWebhook } from '../src/sim/alertmanager-webhook.js';

const [url, token, count, perSecond, ...nodes] = process.argv.slice(2) as [string, string, string, string, ...string[]];
const ALERTS = ['KubeNodeNotReady', 'KubePodCrashLooping', 'NodeFilesystemSpaceFillingUp', 'KubeletDown'];


async function post(body: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
  await r.arrayBuffer();
  return { status: r.status, ms: performance.now() - started };
}

process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'go') continue;
  const sent: Array<Promise<{ status: number; ms: number }>> = [];
  for (let i = 0; i < Number(count); i++) {
    sent.push(post(firingAlertWebhook(nodes[i % nodes.length]!, ALERTS[Math.floor(i / nodes.length) % ALERTS.length]!)));
    await new Promise((r) => setTimeout(r, 1000 / Number(perSecond)));
  }
  process.stdout.write(`${JSON.stringify(await Promise.all(sent))}\n`);
}
