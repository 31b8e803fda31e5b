/**
 * One fix per node at a time. The lock names its holder so that a refused
 * second attempt can say who holds it. Two implementations: a lock file (one
 * bot or the CLI) and a Kubernetes Lease (several replicas; lease-lock.ts).
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockHeldError, NodediagError } from '../errors.js';

/** A held lock. */
export interface LockHandle {
  release(): Promise<void>;
}

/** Who holds a node's lock. */
export interface LockInfo {
  holder: string;
  since: string;
  expiresAt: string;
}

/** Per-node mutual exclusion for fixes. */
export interface NodeLock {
  /** Takes the node's lock or throws {@link LockHeldError} naming the holder. */
  acquire(node: string, holder: string, ttlMs: number): Promise<LockHandle>;
  /** Who holds it now, if anyone. */
  holder(node: string): Promise<LockInfo | null>;
  /** Breaks a lock whose holder died (the restart path; never for a live holder). */
  forceRelease(node: string): Promise<void>;
}

interface LockFile extends LockInfo {
  pid: number;
  host: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock file per node under a directory (O_EXCL create; stale when expired or its process is gone). */
export class FileNodeLock implements NodeLock {
  constructor(
    private readonly dir: string,
    private readonly now: () => number = () => Date.now(),
  ) {}

  private path(node: string): string {
    return join(this.dir, `${node}.lock`);
  }

  private read(node: string): LockFile | null {
    try {
      return JSON.parse(readFileSync(this.path(node), 'utf8')) as LockFile;
    } catch {
      return null;
    }
  }

  private stale(l: LockFile): boolean {
    return Date.parse(l.expiresAt) < this.now() || (l.host === hostname() && !alive(l.pid));
  }

  async acquire(node: string, holder: string, ttlMs: number): Promise<LockHandle> {
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new NodediagError('STORE_ERROR', `cannot create the lock directory ${this.dir}: ${(err as NodeJS.ErrnoException).code}`);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const info: LockFile = {
        holder,
        since: new Date(this.now()).toISOString(),
        expiresAt: new Date(this.now() + ttlMs).toISOString(),
        pid: process.pid,
        host: hostname(),
      };
      try {
        const fd = openSync(this.path(node), 'wx', 0o600);
        writeSync(fd, JSON.stringify(info));
        closeSync(fd);
        return { release: async () => rmSync(this.path(node), { force: true }) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new NodediagError('STORE_ERROR', `cannot write the lock for ${node}: ${(err as NodeJS.ErrnoException).code}`);
        }
        const current = this.read(node);
        if (current && !this.stale(current)) throw new LockHeldError(node, current.holder, current.since);
        rmSync(this.path(node), { force: true });
      }
    }
    const current = this.read(node);
    throw new LockHeldError(node, current?.holder ?? 'unknown', current?.since ?? 'unknown');
  }

  async holder(node: string): Promise<LockInfo | null> {
    const l = this.read(node);
    return l && !this.stale(l) ? { holder: l.holder, since: l.since, expiresAt: l.expiresAt } : null;
  }

  async forceRelease(node: string): Promise<void> {
    rmSync(this.path(node), { force: true });
  }
}
