/**
 * Alerts are written to disk before Alertmanager hears "200": one fsynced
 * file per webhook, handled in arrival order and removed once handled. A
 * bot killed in between finds them again on start; handling one twice only
 * repeats alerts the incident already knows, which are silent.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NodediagError } from '../errors.js';
import { writeFileAtomicAsync } from '../incidents/store.js';
import type { Logger } from '../ports.js';
import { webhookSchema, type Webhook } from './alertmanager.js';

/** One webhook as stored. */
export interface InboxEntry {
  seq: number;
  /** When the bot received it (epoch ms): the start of the alert → card time. */
  receivedAt: number;
  webhook: Webhook;
}

const FILE = /^(\d{12})\.json$/;

export class AlertInbox {
  private seq = 0;
  private readonly queue: InboxEntry[] = [];
  private wake: (() => void) | null = null;
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    try {
      mkdirSync(join(dir, 'bad'), { recursive: true });
    } catch (err) {
      throw new NodediagError('STORE_ERROR', `cannot create the alert inbox ${dir}: ${(err as NodeJS.ErrnoException).code}`, 'set NODEDIAG_STATE_DIR to a writable directory');
    }
    for (const f of readdirSync(dir).sort()) {
      const m = FILE.exec(f);
      if (!m) continue;
      this.seq = Math.max(this.seq, Number(m[1]));
      try {
        const e = JSON.parse(readFileSync(join(dir, f), 'utf8')) as InboxEntry;
        this.queue.push({ ...e, webhook: webhookSchema.parse(e.webhook) });
      } catch {
        renameSync(join(dir, f), join(dir, 'bad', f));
        log.error('alert inbox: an unreadable entry was set aside', { file: f });
      }
    }
  }

  /** Webhooks received and not yet handled. */
  get pending(): number {
    return this.queue.length;
  }

  private file(seq: number): string {
    return join(this.dir, `${String(seq).padStart(12, '0')}.json`);
  }

  /** Stores a webhook durably; resolves once it is on disk (then Alertmanager may be told 200). */
  async accept(webhook: Webhook, receivedAt: number): Promise<void> {
    const entry: InboxEntry = { seq: ++this.seq, receivedAt, webhook };
    await writeFileAtomicAsync(this.file(entry.seq), JSON.stringify(entry));
    this.queue.push(entry);
    this.wake?.();
  }

  /** Hands every entry, in order, to `handle`; an entry is removed once handled (or set aside if it throws twice). */
  start(handle: (e: InboxEntry) => Promise<void>): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const next = this.queue[0];
        if (!next) {
          await new Promise<void>((r) => (this.wake = r));
          this.wake = null;
          continue;
        }
        let ok = false;
        for (let attempt = 0; attempt < 2 && !ok; attempt++) {
          try {
            await handle(next);
            ok = true;
          } catch (err) {
            this.log.error('alert inbox: handling failed', { seq: next.seq, attempt, error: (err as Error).message });
          }
        }
        this.queue.shift();
        if (ok) rmSync(this.file(next.seq), { force: true });
        else if (existsSync(this.file(next.seq))) renameSync(this.file(next.seq), join(this.dir, 'bad', `${String(next.seq).padStart(12, '0')}.json`));
      }
    })();
  }

  /** Stops after the entry in hand. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }
}
