/**
 * The SSH adapter (ssh2): one connection per node per diagnosis, host keys
 * pinned, keepalive on, a cap on channels per connection (OpenSSH allows 10
 * sessions), a client-side deadline and an output cap on every command.
 */
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import {
  HostKeyMismatchError,
  HostKeyUnknownError,
  KeyFileError,
  NodediagError,
  SshAuthError,
  SshUnreachableError,
} from '../errors.js';
import { Semaphore } from '../concurrency.js';
import type { ExecOptions, ExecResult, RemoteShell, SshConnector, SshTarget } from '../ports.js';
import { knownHostsPin, pinnedKeyTypes, verifyHostKey, type HostKeyVerdict, type ResolvedPin } from './host-keys.js';

const { Client } = ssh2;

/** Tunables of the ssh2 connector. */
export interface SshConnectorOptions {
  /** Channels open at once on one connection (OpenSSH's MaxSessions is 10). */
  maxChannels?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Called when a host key is refused (mismatch is reported loudly: a possible attack). */
  onHostKeyRefused?: (node: string, verdict: Exclude<HostKeyVerdict, { ok: true }>) => void;
  /** Open connections to one node at once; more wait their turn (default 2). */
  maxConnectionsPerNode?: number;
  /** Open connections in total; more wait their turn (default 64). */
  maxConnections?: number;
}

function resolvePin(target: SshTarget): ResolvedPin {
  if (target.hostKey.kind === 'fingerprints') return { kind: 'fingerprints', fingerprints: target.hostKey.fingerprints };
  try {
    return knownHostsPin(target.hostKey.path, target.host, target.port);
  } catch (err) {
    throw new NodediagError('CONFIG_INVALID', `cannot read known_hosts file ${target.hostKey.path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function readKey(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KeyFileError(path, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code ?? 'unreadable'));
  }
}

class Ssh2Shell implements RemoteShell {
  private readonly channels: Semaphore;
  private readonly pending = new Set<(err: Error) => void>();
  private lost: Error | null = null;
  private released = false;

  constructor(
    private readonly client: InstanceType<typeof Client>,
    private readonly target: SshTarget,
    maxChannels: number,
    private readonly releaseSlot: () => void,
  ) {
    client.on('close', () => this.release());
    this.channels = new Semaphore(maxChannels);
    const onGone = (why: string) => {
      if (this.lost) return;
      this.lost = new SshUnreachableError(target.node, `${target.host}:${target.port}`, why, 'SSH_CONNECTION_LOST');
      for (const reject of this.pending) reject(this.lost);
      this.pending.clear();
    };
    client.on('close', () => onGone('connection closed'));
    client.on('error', (err: Error & { level?: string }) =>
      onGone(err.level === 'client-timeout' ? 'keepalive timeout (connection half-open)' : `connection error: ${err.message}`),
    );
  }

  exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    return this.channels.run(() => this.execNow(command, opts));
  }

  private execNow(command: string, opts: ExecOptions): Promise<ExecResult> {
    if (this.lost) return Promise.reject(this.lost);
    return new Promise<ExecResult>((resolve, reject) => {
      const started = Date.now();
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let bytes = 0;
      let truncated = false;
      let done = false;
      let channel: ssh2.ClientChannel | undefined;

      const finish = (exitCode: number | null, timedOut: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pending.delete(fail);
        resolve({
          exitCode,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          timedOut,
          truncated,
          durationMs: Date.now() - started,
        });
      };
      const fail = (e: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(e);
      };
      this.pending.add(fail);
      const timer = setTimeout(() => {
        channel?.close();
        finish(null, true);
      }, opts.timeoutMs);

      const take = (into: Buffer[], watch?: (chunk: Buffer) => void) => (chunk: Buffer) => {
        if (done || truncated) return;
        const room = opts.maxOutputBytes - bytes;
        if (chunk.length > room) {
          const kept = chunk.subarray(0, Math.max(0, room));
          into.push(kept);
          watch?.(kept);
          bytes = opts.maxOutputBytes;
          truncated = true;
          // Closing the channel makes the remote writer die of SIGPIPE; `timeout` bounds it otherwise.
          channel?.close();
          finish(null, false);
          return;
        }
        into.push(chunk);
        bytes += chunk.length;
        watch?.(chunk);
      };

      try {
        this.client.exec(command, (e, stream) => {
          if (e) {
            fail(new SshUnreachableError(this.target.node, `${this.target.host}:${this.target.port}`, `cannot open a channel: ${e.message}`, 'SSH_CONNECTION_LOST'));
            return;
          }
          channel = stream;
          opts.input?.then(
            (text) => !done && stream.end(text),
            () => !done && stream.end(),
          );
          stream.on('data', take(out, opts.onStdout));
          stream.stderr.on('data', take(err));
          stream.on('close', (code: number | null | undefined) => finish(typeof code === 'number' ? code : null, false));
        });
      } catch (e) {
        fail(e as Error);
      }
    });
  }

  close(): void {
    this.client.end();
    this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.releaseSlot();
  }
}

/** Creates the production SSH connector. */
export function createSshConnector(options: SshConnectorOptions = {}): SshConnector {
  const maxChannels = options.maxChannels ?? 8;
  const total = new Semaphore(options.maxConnections ?? 64);
  const perNode = new Map<string, Semaphore>();
  const nodeSlot = (node: string) => perNode.get(node) ?? perNode.set(node, new Semaphore(options.maxConnectionsPerNode ?? 2)).get(node)!;
  return {
    async connect(target: SshTarget): Promise<RemoteShell> {
      const pin = resolvePin(target);
      const privateKey = readKey(target.privateKeyPath);
      const node = nodeSlot(target.node);
      await node.acquire();
      await total.acquire();
      const release = () => {
        total.release();
        node.release();
        if (node.inUse === 0 && node.waiting === 0) perNode.delete(target.node);
      };
      try {
        return await open(target, pin, privateKey, release);
      } catch (err) {
        release();
        throw err;
      }
    },
  };

  function open(target: SshTarget, pin: ResolvedPin, privateKey: Buffer, release: () => void): Promise<RemoteShell> {
    const address = `${target.host}:${target.port}`;
    return new Promise<RemoteShell>((resolve, reject) => {
      const client = new Client();
      let verdict: HostKeyVerdict | undefined;
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        if (err) {
          client.end();
          reject(err);
        } else resolve(new Ssh2Shell(client, target, maxChannels, release));
      };
      let tcpUp = false;
      client.once('connect', () => (tcpUp = true));
      client.once('ready', () => settle(null));
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        if (settled) return;
        if (verdict && !verdict.ok) {
          settle(
            verdict.reason === 'unknown'
              ? new HostKeyUnknownError(target.node, verdict.presented)
              : new HostKeyMismatchError(target.node, verdict.presented, verdict.expected.length ? verdict.expected : ['(revoked key)']),
          );
        } else if (err.level === 'client-authentication') settle(new SshAuthError(target.node, target.user));
        else if (err.level === 'client-timeout') {
          // Which half timed out tells the on-call where to look: the network, or sshd itself.
          const why = tcpUp
            ? `connected, but no SSH handshake within ${target.connectTimeoutMs} ms (sshd hung or overloaded?)`
            : `no TCP connection within ${target.connectTimeoutMs} ms (host down, or a firewall dropping the traffic?)`;
          settle(new SshUnreachableError(target.node, address, why, 'SSH_TIMEOUT'));
        } else if (err.code === 'ECONNREFUSED') settle(new SshUnreachableError(target.node, address, 'connection refused'));
        else if (err.code === 'ECONNRESET') settle(new SshUnreachableError(target.node, address, 'connection reset by the server'));
        else settle(new SshUnreachableError(target.node, address, err.code ? `${err.code}` : err.message));
      });
      client.on('close', () => settle(new SshUnreachableError(target.node, address, 'connection closed during the handshake')));
      const serverHostKey = pinnedKeyTypes(pin);
      try {
        client.connect({
          host: target.host,
          port: target.port,
          username: target.user,
          privateKey,
          readyTimeout: target.connectTimeoutMs,
          keepaliveInterval: options.keepaliveIntervalMs ?? 5000,
          keepaliveCountMax: options.keepaliveCountMax ?? 3,
          ...(serverHostKey ? { algorithms: { serverHostKey: serverHostKey as ssh2.ServerHostKeyAlgorithm[] } } : {}),
          hostVerifier: (key: Buffer) => {
            verdict = verifyHostKey(pin, key);
            if (!verdict.ok) options.onHostKeyRefused?.(target.node, verdict);
            return verdict.ok;
          },
        });
        // The handshake is a chain of small packets: Nagle plus delayed ACKs would add ~40 ms per round trip.
        client.setNoDelay(true);
      } catch (err) {
        const msg = (err as Error).message;
        settle(/privateKey|private key|parse/i.test(msg) ? new KeyFileError(target.privateKeyPath, 'not a usable private key (unsupported type, or encrypted)') : (err as Error));
      }
    });
  }
}
