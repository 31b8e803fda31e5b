/**
 * The Bolt app: Socket Mode when an app-level token is set (no public URL
 * needed), HTTP mode otherwise (Slack's requests at /slack/events, signature
 * checked by Bolt), with /healthz, /readyz and the bot's own routes
 * (/metrics, /alerts/alertmanager) in both.
 */
import bolt from '@slack/bolt';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { slackClientOptions } from '../adapters/slack-web.js';
import type { ListenerDeps } from './listeners.js';
import { registerListeners } from './listeners.js';

const { App, HTTPReceiver, SocketModeReceiver, LogLevel } = bolt;

/** How to connect to Slack. */
export interface SlackAppOptions {
  botToken: string;
  signingSecret?: string;
  appToken?: string;
  apiUrl?: string;
  port: number;
  /** Whether the bot can take work (for /readyz). */
  ready: () => boolean;
  /** More routes on the same HTTP server (/metrics, /alerts/alertmanager). */
  routes?: HttpRoute[];
}

/** An HTTP route served next to Slack's (in Socket Mode too). */
export interface HttpRoute {
  path: string;
  method: string[];
  handler: (req: IncomingMessage, res: ServerResponse) => void;
}

/** A running Slack app. */
export interface SlackApp {
  app: InstanceType<typeof App>;
  mode: 'socket' | 'http';
  start(): Promise<void>;
  stop(): Promise<void>;
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function createSlackApp(opts: SlackAppOptions, deps: ListenerDeps): SlackApp {
  const customRoutes = [
    { path: '/healthz', method: ['GET'], handler: (_req: IncomingMessage, res: ServerResponse) => json(res, 200, { ok: true }) },
    { path: '/readyz', method: ['GET'], handler: (_req: IncomingMessage, res: ServerResponse) => (opts.ready() ? json(res, 200, { ready: true }) : json(res, 503, { ready: false })) },
    ...(opts.routes ?? []),
  ];
  const clientOptions = slackClientOptions({ apiUrl: opts.apiUrl });
  const logger = {
    debug: () => {},
    info: (...m: unknown[]) => deps.logger.info(deps.redact(m.map(String).join(' '))),
    warn: (...m: unknown[]) => deps.logger.warn(deps.redact(m.map(String).join(' '))),
    error: (...m: unknown[]) => deps.logger.error(deps.redact(m.map(String).join(' '))),
    setLevel: () => {},
    getLevel: () => LogLevel.INFO,
    setName: () => {},
  };
  const mode = opts.appToken ? 'socket' : 'http';
  const receiver = opts.appToken
    ? new SocketModeReceiver({ appToken: opts.appToken, customRoutes, installerOptions: { port: opts.port, clientOptions }, logger })
    : new HTTPReceiver({ signingSecret: opts.signingSecret ?? '', endpoints: '/slack/events', customRoutes, processBeforeResponse: false, logger });
  const app = new App({ token: opts.botToken, receiver, clientOptions, logger });
  registerListeners(app, deps);
  app.error(async (err) => {
    deps.logger.error('slack listener failed', { error: deps.redact(err.message) });
  });
  return {
    app,
    mode,
    start: async () => {
      await app.start(opts.port);
    },
    stop: async () => {
      // Bolt's stop does not wait for Socket Mode's close handshake; without this the
      // client's 30-second handshake timer outlives the bot and delays its exit.
      if (receiver instanceof SocketModeReceiver) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([receiver.client.disconnect(), new Promise<void>((r) => (timer = setTimeout(r, 3000)))]);
        clearTimeout(timer);
      }
      await app.stop();
    },
  };
}
