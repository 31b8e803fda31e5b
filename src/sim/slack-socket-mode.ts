/**
 * A STAND-IN for Slack's Socket Mode gateway: the WebSocket that
 * `apps.connections.open` hands out. It greets with `hello` as Slack does,
 * delivers envelopes (slash commands, interactions) and resolves with the
 * app's acknowledgement, and can ask the app to reconnect (`disconnect`,
 * `refresh_requested`), which Slack does routinely. With several connections
 * open (replicas of the app), each envelope goes to one of them, at random
 * unless the test names which, as Slack hands it to one connection. The real
 * @slack/socket-mode client inside Bolt talks to it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

/** The app's answer to an envelope. */
export interface SocketAck {
  envelope_id: string;
  payload?: Record<string, any>;
}

/** Kinds of envelope Slack sends over Socket Mode that nodediag handles. */
export type EnvelopeType = 'slash_commands' | 'interactive';

export class SocketModeStandIn {
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly waiting = new Map<string, (ack: SocketAck) => void>();
  /** The connections open now, oldest first. */
  private readonly sockets: WebSocket[] = [];
  /** Connections told to reconnect: Slack sends them nothing more. */
  private readonly draining = new WeakSet<WebSocket>();
  private connectedWaiters: Array<() => void> = [];
  /** WebSocket connections opened so far (a reconnect makes it grow). */
  connections = 0;

  constructor(readonly path = '/socket-mode/link') {}

  /** Serves the WebSocket on an HTTP server's upgrade requests for {@link path}. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, sock: Duplex, head: Buffer) => {
      if (!(req.url ?? '').startsWith(this.path)) return void sock.destroy();
      this.wss.handleUpgrade(req, sock, head, (ws) => this.accept(ws));
    });
  }

  private accept(ws: WebSocket): void {
    this.connections += 1;
    this.sockets.push(ws);
    ws.on('message', (data) => {
      let ack: SocketAck;
      try {
        ack = JSON.parse(String(data)) as SocketAck;
      } catch {
        return;
      }
      this.waiting.get(ack.envelope_id)?.(ack);
      this.waiting.delete(ack.envelope_id);
    });
    ws.on('close', () => {
      const i = this.sockets.indexOf(ws);
      if (i >= 0) this.sockets.splice(i, 1);
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: this.sockets.length, debug_info: { host: 'emulated', approximate_connection_time: 3600 }, connection_info: { app_id: 'A0001' } }));
    for (const w of this.connectedWaiters.splice(0)) w();
  }

  /** Connections open now that envelopes may go to, oldest first. */
  private get live(): WebSocket[] {
    return this.sockets.filter((ws) => !this.draining.has(ws));
  }

  /** Connections open now (not told to reconnect). */
  get open(): number {
    return this.live.length;
  }

  /** Resolves once an app is connected (after at least `count` connections in all, and `open` of them open now). */
  connected(count = 1, timeoutMs = 10_000, open = 1): Promise<void> {
    const ready = () => this.live.length >= open && this.connections >= count;
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no Socket Mode connection in time')), timeoutMs);
      const check = () => {
        if (ready()) {
          clearTimeout(t);
          resolve();
        } else this.connectedWaiters.push(check);
      };
      this.connectedWaiters.push(check);
    });
  }

  /** Delivers an envelope to one connection (`via`: its index among the open ones; else one at random) and resolves with the app's acknowledgement. */
  deliver(type: EnvelopeType, payload: Record<string, unknown>, opts: { retryAttempt?: number; timeoutMs?: number; via?: number } = {}): Promise<SocketAck> {
    const live = this.live;
    const ws = live[opts.via ?? Math.floor(Math.random() * live.length)];
    if (!ws) return Promise.reject(new Error(live.length ? `no open connection number ${opts.via}` : 'no app connected over Socket Mode'));
    const envelope_id = randomUUID();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(envelope_id);
        reject(new Error(`no acknowledgement for ${type} in time`));
      }, opts.timeoutMs ?? 3000);
      this.waiting.set(envelope_id, (ack) => {
        clearTimeout(t);
        resolve(ack);
      });
      ws.send(
        JSON.stringify({
          envelope_id,
          type,
          payload,
          accepts_response_payload: true,
          retry_attempt: opts.retryAttempt ?? 0,
          retry_reason: opts.retryAttempt ? 'timeout' : '',
        }),
      );
    });
  }

  /** Asks the app on the newest connection to reconnect, as Slack does every few hours. */
  requestRefresh(): void {
    const ws = this.live.at(-1);
    if (!ws) return;
    this.draining.add(ws);
    ws.send(JSON.stringify({ type: 'disconnect', reason: 'refresh_requested', debug_info: { host: 'emulated' } }));
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}
