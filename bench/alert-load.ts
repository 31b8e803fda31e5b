/**
 * An Alertmanager in its own process: on "go" read from stdin it posts
 * <count> firing alerts spread over the nodes named, at <perSecond>, and
 * prints each webhook's answer time (ms) and status as one JSON line.
 *   node dist/bench/alert-load.js <url> <token> <count> <perSecond> <node>…
 */
import { createInterface } from 'node:readline';

const [url, token, count, perSecond, ...nodes] = process.argv.slice(2) as [string, string, string, string, ...string[]];
const ALERTS = ['KubeNodeNotReady', 'KubePodCrashLooping', 'NodeFilesystemSpaceFillingUp', 'KubeletDown'];

function webhook(node: string, alertname: string): string {
  const labels = { alertname, node, severity: 'critical' };
  return JSON.stringify({
    version: '4',
    groupKey: `{}:{alertname="${alertname}", node="${node}"}`,
    status: 'firing',
    receiver: 'nodediag',
    groupLabels: labels,
    commonLabels: labels,
    commonAnnotations: { summary: `${alertname} on ${node}` },
    externalURL: 'http://alertmanager.example:9093',
    alerts: [{ status: 'firing', labels, annotations: { summary: `${alertname} on ${node}` }, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: '' }],
  });
}

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
    sent.push(post(webhook(nodes[i % nodes.length]!, ALERTS[Math.floor(i / nodes.length) % ALERTS.length]!)));
    await new Promise((r) => setTimeout(r, 1000 / Number(perSecond)));
  }
  process.stdout.write(`${JSON.stringify(await Promise.all(sent))}\n`);
}
