/**
 * What the rails remember across restarts: recent fleet events (incidents
 * opened, nodes found unhealthy or healthy, fix runs) in an append-only
 * JSON-lines file, compacted to the longest window on start and now and
 * then; and the pause, in its own file. A forgotten fix run would give a
 * node more tries than its budget, so every append is fsynced before the
 * decision it supports is acted on.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NodediagError } from '../errors.js';
import { writeFileAtomic } from '../incidents/store.js';
import type { LedgerEvent, Pause } from './gates.js';

const KINDS = new Set<LedgerEvent['kind']>(['incident-opened', 'unhealthy', 'healthy', 'fix-run']);

/**
 * The rails' durable memory, as the incident service uses it: in a file for
 * one bot process ({@link RailsLedger}), in the Kubernetes API when replicas
 * share it (adapters/kube-rails.ts). Reads come from what was last loaded;
 * {@link RailsMemory.refresh} loads again before a decision.
 */
export interface RailsMemory {
  /** Loads what other processes wrote (nothing to do for a file only this process writes). */
  refresh(): Promise<void>;
  /** Events still inside the kept window. */
  recent(): readonly LedgerEvent[];
  /** Records an event durably: resolved once it is stored. */
  record(node: string, kind: LedgerEvent['kind']): Promise<void>;
  /** The stored pause (maybe expired). */
  storedPause(): Pause | null;
  setPause(p: Pause | null): Promise<void>;
}

/** The rails' durable memory in the state directory (one bot process). */
export class RailsLedger implements RailsMemory {
  private events: LedgerEvent[] = [];
  private appended = 0;
  private pause: Pause | null = null;
  private readonly file: string;
  private readonly pauseFile: string;

  constructor(
    dir: string,
    /** Events older than this are forgotten (the longest rail window). */
    private readonly keepMs: number,
    private readonly now: () => number,
  ) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new NodediagError('STORE_ERROR', `cannot create ${dir}: ${(err as NodeJS.ErrnoException).code}`, 'set NODEDIAG_STATE_DIR to a writable directory');
    }
    this.file = join(dir, 'ledger.jsonl');
    this.pauseFile = join(dir, 'pause.json');
    if (existsSync(this.file)) {
      for (const line of readFileSync(this.file, 'utf8').split('\n')) {
        try {
          const e = JSON.parse(line) as LedgerEvent;
          if (typeof e.at === 'number' && typeof e.node === 'string' && KINDS.has(e.kind)) this.events.push(e);
        } catch {
          /* a torn last line after a crash */
        }
      }
    }
    if (existsSync(this.pauseFile)) {
      try {
        this.pause = JSON.parse(readFileSync(this.pauseFile, 'utf8')) as Pause;
      } catch {
        this.pause = null;
      }
    }
    this.compact();
  }

  async refresh(): Promise<void> {}

  recent(): readonly LedgerEvent[] {
    return this.events;
  }

  async record(node: string, kind: LedgerEvent['kind']): Promise<void> {
    const e: LedgerEvent = { at: this.now(), node, kind };
    const fd = openSync(this.file, 'a', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(e)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.events.push(e);
    if (++this.appended >= 1000) this.compact();
  }

  private compact(): void {
    const cutoff = this.now() - this.keepMs;
    this.events = this.events.filter((e) => e.at >= cutoff);
    this.appended = 0;
    writeFileAtomic(this.file, this.events.map((e) => `${JSON.stringify(e)}\n`).join(''));
  }

  storedPause(): Pause | null {
    return this.pause;
  }

  async setPause(p: Pause | null): Promise<void> {
    if (p) writeFileAtomic(this.pauseFile, JSON.stringify(p));
    else rmSync(this.pauseFile, { force: true });
    this.pause = p;
  }
}
