/**
 * A STAND-IN for Slack's Socket Mode gateway: the WebSocket that
 * `apps.connections.open` hands out. It greets with `hello` as Slack does,
 * delivers envelopes (slash commands, interactions) and resolves with the
 * app's acknowledgement, and can ask the app to reconnect (`disconnect`,
 * `refresh_requested`), which Slack does routinely. The real
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
  private socket: WebSocket | null = null;
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
    this.socket = ws;
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
      if (this.socket === ws) this.socket = null;
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'emulated', approximate_connection_time: 3600 }, connection_info: { app_id: 'A0001' } }));
    for (const w of this.connectedWaiters.splice(0)) w();
  }

  /** Resolves once an app is connected (after at least `count` connections in all). */
  connected(count = 1, timeoutMs = 10_000): Promise<void> {
    if (this.socket && this.connections >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no Socket Mode connection in time')), timeoutMs);
      const check = () => {
        if (this.socket && this.connections >= count) {
          clearTimeout(t);
          resolve();
        } else this.connectedWaiters.push(check);
      };
      this.connectedWaiters.push(check);
    });
  }

  /** Delivers an envelope and resolves with the app's acknowledgement. */
  deliver(type: EnvelopeType, payload: Record<string, unknown>, opts: { retryAttempt?: number; timeoutMs?: number } = {}): Promise<SocketAck> {
    const ws = this.socket;
    if (!ws) return Promise.reject(new Error('no app connected over Socket Mode'));
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

  /** Asks the app to reconnect, as Slack does every few hours. */
  requestRefresh(): void {
    this.socket?.send(JSON.stringify({ type: 'disconnect', reason: 'refresh_requested', debug_info: { host: 'emulated' } }));
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}
