/**
 * A load generator in its own process: on each line "go" read from stdin it
 * fires N concurrent signed `/diag` requests at the bot, like Slack would, and
 * prints their latencies (ms) as one JSON line. Stays warm between rounds.
 *   node dist/bench/slash-load.js <url> <signing-secret> <node> <count>
 */
import { createInterface } from 'node:readline';
import { sendSigned, slashCommandBody } from '../src/sim/slack-emulator.js';

const [url, secret, node, count] = process.argv.slice(2) as [string, string, string, string];
// Warm up the HTTP client once (a request the bot refuses at once: not a valid node name).
await sendSigned(url, secret, slashCommandBody('warm-up;', 'U0WARMUP', 'C0INCIDENT'));
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'go') continue;
  const bodies = Array.from({ length: Number(count) }, (_, i) => slashCommandBody(node, `U0USER${String(i).padStart(3, '0')}`, 'C0INCIDENT'));
  const results = await Promise.all(bodies.map((b) => sendSigned(url, secret, b)));
  process.stdout.write(`${JSON.stringify(results.map((r) => ({ status: r.status, ms: r.ms })))}\n`);
}
