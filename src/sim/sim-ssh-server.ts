/**
 * An SSH server (ssh2's Server, the real SSH protocol) in front of simulated
 * nodes: public-key auth with one authorised key, its own host key, and each
 * exec answered by a {@link SimNode}. Faults for reliability tests: hang,
 * reset mid-command, accept-then-silence.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { fingerprintSha256 } from '../adapters/host-keys.js';
import { wrapRemoteCommand } from '../shell.js';
import { stdinScriptTimeout } from './script-match.js';
import type { SimAnswer, SimNode } from './sim-node.js';

const { Server, utils } = ssh2;

/** Keys for a simulated fleet: one host key (pinned by fingerprint) and the bot's client key. */
export interface SimKeys {
  hostKeyPem: string;
  hostKeyFingerprint: string;
  clientKeyPath: string;
  clientPublicKey: string;
  dir: string;
}

/**
 * An ed25519 key pair that ssh2 can read back. ssh2's generator strips
 * leading zero bytes from the public key, so about 1 pair in 256 is
 * unreadable (mscdex/ssh2#1390, #1513); such a pair is drawn again.
 */
function ed25519Pair(): { private: string; public: string; parsedPublic: ssh2.ParsedKey } {
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519');
    const parsedPublic = utils.parseKey(pair.public);
    if (!(parsedPublic instanceof Error) && !(utils.parseKey(pair.private) instanceof Error)) return { ...pair, parsedPublic };
  }
}

/** Generates the keys, writing the client's private key where the inventory can point at it. */
export function generateSimKeys(dir = mkdtempSync(join(tmpdir(), 'nodediag-sim-'))): SimKeys {
  const host = ed25519Pair();
  const client = ed25519Pair();
  const clientKeyPath = join(dir, 'bot_ed25519');
  writeFileSync(clientKeyPath, client.private, { mode: 0o600 });
  return {
    hostKeyPem: host.private,
    hostKeyFingerprint: fingerprintSha256(Buffer.from(host.parsedPublic.getPublicSSH())),
    clientKeyPath,
    clientPublicKey: client.public,
    dir,
  };
}

/** Faults a simulated SSH server can inject. */
export interface SimSshFaults {
  /** Accept exec requests but never answer them. */
  hangExec?: boolean;
  /** Drop the TCP connection after this many ms into a command. */
  resetAfterMs?: number;
  /** Refuse every key. */
  refuseAuth?: boolean;
}

/** A running simulated SSH server for one node. */
export interface SimSshServer {
  port: number;
  faults: SimSshFaults;
  /** Commands received (for assertions: "nothing ran twice"). */
  commands: string[];
  /** Whether to keep `commands` (a soak turns it off: the record would be most of its heap). */
  recordCommands: boolean;
  close(): Promise<void>;
}

/** Starts an SSH server on loopback answering with the given node. */
export async function startSimSshServer(
  node: SimNode,
  keys: SimKeys,
  opts: { user?: string; timeScale?: number; host?: string } = {},
): Promise<SimSshServer> {
  const allowed = utils.parseKey(keys.clientPublicKey);
  if (allowed instanceof Error) throw allowed;
  const user = opts.user ?? 'root';
  const scale = opts.timeScale ?? 1;
  const state: SimSshServer = { port: 0, faults: {}, commands: [], recordCommands: true, close: async () => undefined };
  const sockets = new Set<import('node:net').Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = new Server({ hostKeys: [keys.hostKeyPem] }, (client) => {
    const answer = (stream: ssh2.ServerChannel, command: string) => {
      if (state.recordCommands) state.commands.push(command);
      if (state.faults.hangExec) return;
      if (state.faults.resetAfterMs !== undefined) {
        setTimeout(() => (client as unknown as { _sock?: { destroy(): void } })._sock?.destroy(), state.faults.resetAfterMs);
        return;
      }
      let reply: SimAnswer;
      try {
        reply = node.exec(command);
      } catch (err) {
        reply = { stdout: '', stderr: `sim: ${(err as Error).message}\n`, exitCode: 1, delayMs: 0 };
      }
      // A hung command's timer must not outlive its client or the server.
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (reply.stdout) stream.write(reply.stdout);
        if (reply.stderr) stream.stderr.write(reply.stderr);
        stream.exit(reply.exitCode);
        stream.end();
      }, Math.round(reply.delayMs * scale));
      timers.add(timer);
      stream.once('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
    };
    client
      .on('authentication', (ctx) => {
        if (state.faults.refuseAuth || ctx.username !== user || ctx.method !== 'publickey') return ctx.reject(['publickey']);
        if (ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowed.getPublicSSH())) return ctx.reject(['publickey']);
        if (ctx.signature && allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
        ctx.accept();
      })
      .on('ready', () => {
        client.on('session', (acceptSession) => {
          const session = acceptSession();
          session.on('exec', (accept, _reject, info) => {
            const stream = accept();
            // A script sent on standard input is answered once it is all in, as if it had come with the command.
            const stdinTimeout = stdinScriptTimeout(info.command);
            if (stdinTimeout === null) answer(stream, info.command);
            else {
              const parts: Buffer[] = [];
              stream.on('data', (d: Buffer) => parts.push(d));
              stream.once('end', () => answer(stream, wrapRemoteCommand(Buffer.concat(parts).toString('utf8'), { timeoutMs: stdinTimeout * 1000 })));
            }
          });
        });
      })
      .on('error', () => undefined);
  });
  server.on('connection', () => undefined);
  const raw = (server as unknown as { _srv: import('node:net').Server })._srv;
  raw.on('connection', (sock) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', () => resolve()));
  state.port = (server.address() as AddressInfo).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return state;
}
