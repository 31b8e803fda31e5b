/**
 * `POST /alerts/alertmanager`: authenticates the way Alertmanager's
 * `http_config` can (bearer token or basic auth; else 401), refuses
 * malformed or oversized bodies (400, nothing posted), stores the webhook
 * durably and only then answers 200.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MetricsSink } from '../metrics.js';
import type { Logger } from '../ports.js';
import { webhookSchema, type Webhook } from './alertmanager.js';

/** What the route needs. */
export interface IntakeOptions {
  token?: string;
  basicAuth?: string;
  maxBytes: number;
  accept(webhook: Webhook, receivedAt: number): Promise<void>;
  now(): number;
  metrics: MetricsSink;
  logger: Logger;
}

/** Constant-time comparison of two secrets (hashed first: equal lengths). */
function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** Whether the request carries the configured credentials. */
export function authorized(header: string | undefined, opts: Pick<IntakeOptions, 'token' | 'basicAuth'>): boolean {
  if (!header) return false;
  const bearer = /^Bearer\s+(.+)$/i.exec(header);
  if (bearer && opts.token) return same(bearer[1]!.trim(), opts.token);
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (basic && opts.basicAuth) return same(Buffer.from(basic[1]!, 'base64').toString('utf8'), opts.basicAuth);
  return false;
}

function reply(res: ServerResponse, code: number, body: Record<string, unknown>, extra: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(code, { 'content-type': 'application/json', ...extra });
  res.end(JSON.stringify(body));
}

/** Reads the body up to `max` bytes; null when it is larger. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) {
      req.resume();
      resolve(null);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The route handler. */
export function alertIntake(opts: IntakeOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      const receivedAt = opts.now();
      if (!opts.token && !opts.basicAuth) {
        opts.metrics.alertPayloadRefused('auth');
        reply(res, 401, { error: 'alert intake is not configured: set NODEDIAG_ALERT_TOKEN or NODEDIAG_ALERT_BASIC_AUTH' }, { 'www-authenticate': 'Bearer' });
        req.resume();
        return;
      }
      if (!authorized(req.headers.authorization, opts)) {
        opts.metrics.alertPayloadRefused('auth');
        reply(res, 401, { error: 'unauthorized' }, { 'www-authenticate': opts.token ? 'Bearer' : 'Basic realm="nodediag"' });
        req.resume();
        return;
      }
      const body = await readBody(req, opts.maxBytes);
      if (body === null) {
        opts.metrics.alertPayloadRefused('too-large');
        reply(res, 400, { error: `payload larger than ${opts.maxBytes} bytes (NODEDIAG_ALERT_MAX_BYTES); lower max_alerts in the webhook config` });
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        opts.metrics.alertPayloadRefused('malformed');
        reply(res, 400, { error: 'the body is not JSON' });
        return;
      }
      const webhook = webhookSchema.safeParse(parsed);
      if (!webhook.success) {
        opts.metrics.alertPayloadRefused('malformed');
        const first = webhook.error.issues[0]!;
        reply(res, 400, { error: `not an Alertmanager webhook (version 4): ${first.path.join('.') || 'body'}: ${first.message}` });
        return;
      }
      try {
        await opts.accept(webhook.data, receivedAt);
      } catch (err) {
        opts.logger.error('alert intake: cannot store the webhook', { error: (err as Error).message });
        // 5xx: Alertmanager retries.
        reply(res, 503, { error: 'cannot store the alert now; retry' });
        return;
      }
      for (const status of ['firing', 'resolved'] as const) {
        const n = webhook.data.alerts.filter((a) => a.status === status).length;
        if (n) opts.metrics.alertsReceived(status, n);
      }
      reply(res, 200, { accepted: webhook.data.alerts.length });
    })().catch((err) => {
      opts.logger.error('alert intake failed', { error: (err as Error).message });
      reply(res, 500, { error: 'internal error' });
    });
  };
}
