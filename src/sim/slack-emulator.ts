/**
 * A STAND-IN for Slack's Web API (Slack cannot be reached here): an HTTP
 * server on loopback that answers the methods nodediag calls with Slack's
 * response shapes, records every call, refuses Block Kit that breaks Slack's
 * limits (`invalid_blocks`, as Slack does), and injects 429 (Retry-After) or
 * 5xx answers on demand. The real @slack/web-api client is pointed at it with
 * `slackApiUrl`. With an app-level token it also opens Socket Mode
 * connections ({@link SocketModeStandIn}). Also builds Slack's signed
 * requests for the bot's HTTP receiver, and the same payloads for Socket Mode.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { limitProblems } from '../slack/blocks/limits.js';
import { SocketModeStandIn } from './slack-socket-mode.js';

/** One recorded Web API call. */
export interface SlackCall {
  method: string;
  args: Record<string, any>;
  at: number;
  /** What the emulator answered. */
  status: number;
  error?: string;
}

/** A message as it stands now (after updates). */
export interface EmulatedMessage {
  channel: string;
  ts: string;
  threadTs?: string;
  text: string;
  blocks: unknown[];
  updates: number;
  /** Message metadata as posted (`event_type`, `event_payload`). */
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
}

/** A canned answer for the next call(s) of a method. */
export type Fault = { status: 429; retryAfterSeconds: number } | { status: 500 } | { error: string };

export class SlackEmulator {
  readonly calls: SlackCall[] = [];
  readonly messages = new Map<string, EmulatedMessage>();
  readonly ephemerals: Array<{ channel: string; user: string; text: string }> = [];
  readonly views: Array<Record<string, any>> = [];
  groups = new Map<string, string[] | 'plan_upgrade_required'>();
  /** Channels the bot cannot post in, with the error Slack gives (`not_in_channel`, `channel_not_found`, `is_archived`). */
  readonly unreachable = new Map<string, string>();
  /** Messages sent to slash commands' response_urls. */
  readonly responses: Array<{ path: string; body: Record<string, any> }> = [];
  /** Keep call arguments, message blocks and views; a soak turns it off so its own records do not count as the bot's memory. */
  recordBodies = true;
  /**
   * Slack's posting limit, when set: chat.postMessage per channel, a token
   * bucket (a burst, then `perSecond`); over it, 429 with Retry-After, as
   * Slack answers ("about one message per second per channel, short bursts
   * allowed").
   */
  postRate: { perSecond: number; burst: number } | null = null;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly faults = new Map<string, Fault[]>();
  /** Methods that answer 503 for as long as they are listed (Slack down for them). */
  readonly outage = new Set<string>();
  private server: Server | null = null;
  private seq = 0;

  /** Socket Mode's WebSocket side (answers only the app-level token given). */
  readonly socketMode = new SocketModeStandIn();

  constructor(
    private readonly token: string,
    private readonly appToken?: string,
  ) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.socketMode.attach(this.server);
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/api/`;
  }

  async stop(): Promise<void> {
    await this.socketMode.stop();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Makes the next `count` calls of a method fail this way. */
  fail(method: string, fault: Fault, count = 1): void {
    this.faults.set(method, [...(this.faults.get(method) ?? []), ...Array.from({ length: count }, () => fault)]);
  }

  /** Messages of a thread (root first), as they stand. */
  thread(rootTs: string): EmulatedMessage[] {
    return [...this.messages.values()].filter((m) => m.ts === rootTs || m.threadTs === rootTs).sort((a, b) => Number(a.ts) - Number(b.ts));
  }

  private async body(req: IncomingMessage): Promise<Record<string, any>> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    if (String(req.headers['content-type']).includes('application/json')) return raw ? JSON.parse(raw) : {};
    const args: Record<string, any> = {};
    for (const [k, v] of new URLSearchParams(raw)) {
      args[k] = ['blocks', 'view', 'attachments', 'metadata'].includes(k) ? JSON.parse(v) : v;
    }
    return args;
  }

  private send(res: ServerResponse, call: SlackCall, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
    call.status = status;
    if (!this.recordBodies) call.args = {};
    if (body.ok === false) call.error = String(body.error);
    this.calls.push(call);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  private takeToken(channel: string): boolean {
    const { perSecond, burst } = this.postRate!;
    const now = Date.now();
    const b = this.buckets.get(channel) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    this.buckets.set(channel, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** A message ts as Slack makes them: the time in seconds, and a unique part. */
  private nextTs(): string {
    return `${Math.floor(Date.now() / 1000)}.${String(++this.seq).padStart(6, '0')}`;
  }

  /** A response_url for a slash command, served by this emulator. */
  responseUrl(): string {
    return `${this.url.replace(/\/api\/$/, '')}/commands/T0001/${++this.seq}/resp`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.url ?? '').startsWith('/commands/')) {
      this.responses.push({ path: req.url!, body: await this.body(req) });
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end('ok');
    }
    const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0]!;
    const args = await this.body(req);
    const call: SlackCall = { method, args, at: Date.now(), status: 0 };
    const auth = req.headers.authorization ?? (args.token ? `Bearer ${args.token}` : '');
    if (method === 'apps.connections.open') {
      // Only an app-level token may open a Socket Mode connection, as at Slack.
      if (!this.appToken || auth !== `Bearer ${this.appToken}`) return this.send(res, call, 200, { ok: false, error: 'invalid_auth' });
      const { port } = this.server!.address() as AddressInfo;
      return this.send(res, call, 200, { ok: true, url: `ws://127.0.0.1:${port}${this.socketMode.path}?ticket=${++this.seq}` });
    }
    if (auth !== `Bearer ${this.token}`) return this.send(res, call, 200, { ok: false, error: 'invalid_auth' });
    if (this.outage.has(method)) return this.send(res, call, 503, { ok: false, error: 'service_unavailable' });
    const fault = this.faults.get(method)?.shift();
    if (fault) {
      if ('error' in fault) return this.send(res, call, 200, { ok: false, error: fault.error });
      if (fault.status === 429) return this.send(res, call, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(fault.retryAfterSeconds) });
      return this.send(res, call, 500, { ok: false, error: 'internal_error' });
    }
    if (method === 'chat.postMessage' && this.postRate && !this.takeToken(String(args.channel))) {
      return this.send(res, call, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': '1' });
    }
    const away = method.startsWith('chat.') ? this.unreachable.get(args.channel) : undefined;
    if (away) return this.send(res, call, 200, { ok: false, error: away });
    const blocks = (args.blocks as unknown[] | undefined) ?? undefined;
    if (blocks && limitProblems({ text: args.text, blocks }).length) return this.send(res, call, 200, { ok: false, error: 'invalid_blocks' });
    switch (method) {
      case 'auth.test':
        return this.send(res, call, 200, { ok: true, url: 'https://emulated.slack.com/', team: 'ops', user: 'nodediag', team_id: 'T0001', user_id: 'UBOT0001', bot_id: 'BBOT0001' });
      case 'chat.postMessage': {
        const ts = this.nextTs();
        this.messages.set(ts, { channel: args.channel, ts, threadTs: args.thread_ts, text: args.text ?? '', blocks: this.recordBodies ? (blocks ?? []) : [], updates: 0, ...(args.metadata ? { metadata: args.metadata } : {}) });
        return this.send(res, call, 200, { ok: true, channel: args.channel, ts, message: { text: args.text, ts } });
      }
      case 'chat.update': {
        const m = this.messages.get(args.ts);
        if (!m || m.channel !== args.channel) return this.send(res, call, 200, { ok: false, error: 'message_not_found' });
        Object.assign(m, { text: args.text ?? m.text, blocks: this.recordBodies ? (blocks ?? m.blocks) : [], updates: m.updates + 1 });
        return this.send(res, call, 200, { ok: true, channel: args.channel, ts: args.ts });
      }
      case 'chat.postEphemeral':
        this.ephemerals.push({ channel: args.channel, user: args.user, text: args.text ?? '' });
        return this.send(res, call, 200, { ok: true, message_ts: this.nextTs() });
      case 'views.open': {
        const view = args.view as Record<string, any>;
        if (!args.trigger_id) return this.send(res, call, 200, { ok: false, error: 'invalid_trigger_id' });
        if (limitProblems({ blocks: view.blocks }, 'modal').length || String(view.title?.text ?? '').length > 24) return this.send(res, call, 200, { ok: false, error: 'invalid_arguments' });
        if (this.recordBodies) this.views.push(view);
        return this.send(res, call, 200, { ok: true, view: { id: `V${this.seq++}`, ...view } });
      }
      case 'usergroups.users.list': {
        const g = this.groups.get(args.usergroup);
        if (g === 'plan_upgrade_required') return this.send(res, call, 200, { ok: false, error: 'plan_upgrade_required' });
        if (!g) return this.send(res, call, 200, { ok: false, error: 'no_such_subteam' });
        return this.send(res, call, 200, { ok: true, users: g });
      }
      case 'conversations.replies':
      case 'conversations.history': {
        const replies = method === 'conversations.replies';
        if (replies && !this.messages.has(args.ts)) return this.send(res, call, 200, { ok: false, error: 'thread_not_found' });
        // Slack: replies oldest first (the parent first), history newest first; `oldest` exclusive; a cursor pages.
        const all = [...this.messages.values()]
          .filter((m) => m.channel === args.channel && (replies ? m.ts === args.ts || m.threadTs === args.ts : !m.threadTs || m.threadTs === m.ts) && Number(m.ts) > Number(args.oldest ?? 0))
          .sort((a, b) => (replies ? 1 : -1) * (Number(a.ts) - Number(b.ts)));
        const from = Number(args.cursor ?? 0);
        const limit = Math.min(Number(args.limit ?? 100), 1000);
        const page = all.slice(from, from + limit).map((m) => ({ type: 'message', ts: m.ts, text: m.text, ...(m.threadTs ? { thread_ts: m.threadTs } : {}), ...(m.metadata && String(args.include_all_metadata) === 'true' ? { metadata: m.metadata } : {}) }));
        const more = from + limit < all.length;
        return this.send(res, call, 200, { ok: true, messages: page, has_more: more, response_metadata: { next_cursor: more ? String(from + limit) : '' } });
      }
      default:
        return this.send(res, call, 200, { ok: false, error: 'unknown_method' });
    }
  }
}

/** Slack's request signature for a body (v0 scheme). */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

/** Sends a request to the bot the way Slack does: form-encoded, signed, timestamped. */
export async function sendSigned(url: string, secret: string, body: string, opts: { timestamp?: number; signature?: string; retryNum?: number } = {}): Promise<{ status: number; body: string; ms: number }> {
  const ts = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const started = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': opts.signature ?? slackSignature(secret, ts, body),
      ...(opts.retryNum ? { 'x-slack-retry-num': String(opts.retryNum), 'x-slack-retry-reason': 'http_timeout' } : {}),
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text, ms: performance.now() - started };
}

/** A `/diag` slash command's fields as Slack sends them (form fields over HTTP, the envelope payload over Socket Mode). */
export function slashCommandPayload(text: string, user: string, channel: string, responseUrl = 'https://hooks.slack.com/commands/T0001/1/abc'): Record<string, string> {
  return {
    token: 'deprecated-verification-token',
    team_id: 'T0001',
    team_domain: 'ops',
    channel_id: channel,
    channel_name: 'incident-gpu',
    user_id: user,
    user_name: user.toLowerCase(),
    command: '/diag',
    text,
    api_app_id: 'A0001',
    is_enterprise_install: 'false',
    response_url: responseUrl,
    trigger_id: `${Date.now()}.1.abc`,
  };
}

/** A `/diag` slash-command body as Slack sends it over HTTP. */
export function slashCommandBody(text: string, user: string, channel: string, responseUrl?: string): string {
  return new URLSearchParams(slashCommandPayload(text, user, channel, responseUrl)).toString();
}

/** A button click (block_actions) payload as Slack sends it. */
export function blockActionPayload(actionId: string, value: string, user: string, channel: string, messageTs = '1795400000.000001'): Record<string, unknown> {
  return {
    type: 'block_actions',
    user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: 'T0001' },
    api_app_id: 'A0001',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: messageTs, channel_id: channel, is_ephemeral: false },
    trigger_id: `${Date.now()}.1.trigger`,
    team: { id: 'T0001', domain: 'ops' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channel, name: 'incident-gpu' },
    message: { type: 'message', ts: messageTs, text: '' },
    state: { values: {} },
    response_url: 'https://hooks.slack.com/actions/T0001/1/abc',
    actions: [{ action_id: actionId, block_id: 'incident_actions', text: { type: 'plain_text', text: actionId, emoji: true }, value, type: 'button', action_ts: String(Date.now() / 1000) }],
  };
}

/** A button click (block_actions) body as Slack sends it over HTTP. */
export function blockActionBody(actionId: string, value: string, user: string, channel: string, messageTs = '1795400000.000001'): string {
  return new URLSearchParams({ payload: JSON.stringify(blockActionPayload(actionId, value, user, channel, messageTs)) }).toString();
}

/** A modal submission (view_submission) payload as Slack sends it. */
export function viewSubmissionPayload(callbackId: string, privateMetadata: string, user: string): Record<string, unknown> {
  return {
    type: 'view_submission',
    team: { id: 'T0001', domain: 'ops' },
    user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: 'T0001' },
    api_app_id: 'A0001',
    token: 'deprecated-verification-token',
    trigger_id: `${Date.now()}.1.trigger`,
    view: { id: 'V1', team_id: 'T0001', type: 'modal', callback_id: callbackId, private_metadata: privateMetadata, state: { values: {} }, hash: 'h', title: { type: 'plain_text', text: 'Approve the fix' }, blocks: [] },
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
}

/** A modal submission (view_submission) body as Slack sends it over HTTP. */
export function viewSubmissionBody(callbackId: string, privateMetadata: string, user: string): string {
  return new URLSearchParams({ payload: JSON.stringify(viewSubmissionPayload(callbackId, privateMetadata, user)) }).toString();
}
