/**
 * The outbox: every Slack post and update is written to disk first and
 * delivered later, in order per channel, throttled (Slack allows about one
 * message per second per channel), retried on rate limits (Retry-After),
 * 5xx and network errors. A Slack outage delays the thread; it never loses an
 * entry and never blocks a running fix. Updates of the same message coalesce:
 * only the latest state is sent.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NodediagError } from '../errors.js';
import { ChatError, type ChatMessage, type ChatPort, type Clock, type Logger } from '../ports.js';
import { writeFileAtomicAsync } from './store.js';

/** A chat operation to deliver. Messages are named by keys; Slack's `ts` is learnt on delivery. */
export type OutboxOp =
  | { op: 'post'; key: string; channel: string; threadKey?: string; message: ChatMessage; /** The requester's way in if the channel refuses the bot. */ responseUrl?: string }
  | { op: 'update'; key: string; channel: string; message: ChatMessage }
  | { op: 'ephemeral'; channel: string; user: string; threadKey?: string; message: ChatMessage };

/** A queued operation as kept. */
export interface OutboxItem {
  /** The item's name where it is kept. */
  id: string;
  /** Delivery order (per channel). */
  seq: number;
  op: OutboxOp;
  attempts: number;
  notBefore: number;
  /** The process that handed this post to Slack last: another one cannot know whether Slack got it… */
  sentBy?: string;
  /** …and when. */
  sentAt?: number;
}

/** Where the outbox keeps its items: a folder of one process, or the Kubernetes API shared by replicas. */
export interface OutboxStorage {
  /** The name and order of a new item, after every item this process named before. */
  next(): { id: string; seq: number };
  /** Every item not yet delivered nor dead-lettered. */
  list(): Promise<OutboxItem[]>;
  /** Keeps a new item durably; resolves once it is kept. */
  add(item: OutboxItem): Promise<void>;
  /** Keeps an item's changed attempts, backoff or sender. */
  save(item: OutboxItem): Promise<void>;
  /** Forgets a delivered item, or keeps it aside as a dead letter. */
  remove(item: OutboxItem, dead: boolean): Promise<void>;
  /**
   * Where several processes share the items: calls `onChange` whenever any
   * of them may have added one, until stopped or ended (`onEnd`).
   * The delivering process then reads at once instead of at its next re-list.
   */
  watch?(onChange: () => void, onEnd: (err?: Error) => void): Promise<{ stop(): void }>;
}

/** Several processes, one outbox: only the one that leads delivers, and it delivers every process's items. */
export interface SharedDelivery {
  /** This process, as recorded on a post it hands to Slack. */
  identity: string;
  /** Whether this process delivers now (it holds the lead). */
  delivers(): boolean;
}

/** Tunables. */
export interface OutboxOptions {
  /** Minimum gap between two posts to one channel. */
  postIntervalMs?: number;
  /** Minimum gap between two updates to one channel. */
  updateIntervalMs?: number;
  /** First backoff after a transient error; it doubles per attempt. */
  baseBackoffMs?: number;
  /** Longest backoff after transient errors. */
  maxBackoffMs?: number;
  tickMs?: number;
  /** Told when Slack refuses a message for good because of where it goes (bot not in the channel, channel gone). */
  onUndeliverable?: (op: OutboxOp, code: string) => void;
  /** Told each time a delivery is to be tried again (metrics). */
  onRetry?: () => void;
  /** Shares message keys with other replicas (a message one posted, another updates or threads under). */
  directory?: MessageDirectory;
  /** Where items are kept; a folder of this process by default. */
  storage?: OutboxStorage;
  /** With a storage shared by replicas: who delivers… */
  shared?: SharedDelivery;
  /** …and how often it reads the items other replicas queued. */
  refreshMs?: number;
}

/** Where replicas find the Slack `ts` of a message another replica posted. */
export interface MessageDirectory {
  /** The `ts` recorded for a key, if any replica recorded it. */
  lookup(key: string): Promise<string | undefined>;
  /** Records a key's `ts` once posted (only keys others may need; the directory decides). */
  record(key: string, ts: string): Promise<void>;
}

/** Message keys remembered (enough for every open incident's messages; older ones are never updated). */
const MAX_KEYS = 20_000;

/** Refusals that say the bot cannot post where the message goes. */
const NOT_THERE = new Set(['channel_not_found', 'not_in_channel', 'is_archived']);

/** Problems that will not go away by retrying: kept aside (dead letters), never retried forever. */
const PERMANENT_DROP = new Set([...NOT_THERE, 'message_not_found', 'cant_update_message', 'user_not_in_channel', 'invalid_auth', 'account_inactive', 'token_revoked']);

/** Items in a folder, one file each, named by their order; dead letters in `dead/`. */
export class FileOutboxStorage implements OutboxStorage {
  private seq = 0;

  constructor(private readonly dir: string) {
    try {
      mkdirSync(join(dir, 'dead'), { recursive: true });
    } catch (err) {
      throw new NodediagError('STORE_ERROR', `cannot create the outbox ${dir}: ${(err as NodeJS.ErrnoException).code}`);
    }
    for (const f of readdirSync(dir)) {
      const m = ITEM_FILE.exec(f);
      if (m) this.seq = Math.max(this.seq, Number(m[1]));
    }
  }

  private file(id: string, dead = false): string {
    return dead ? join(this.dir, 'dead', `${id}.json`) : join(this.dir, `${id}.json`);
  }

  next(): { id: string; seq: number } {
    const seq = ++this.seq;
    return { id: String(seq).padStart(12, '0'), seq };
  }

  async list(): Promise<OutboxItem[]> {
    return readdirSync(this.dir)
      .filter((f) => ITEM_FILE.test(f))
      .map((f) => {
        const item = JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as OutboxItem;
        // Items queued before items had names.
        item.id ??= f.slice(0, -'.json'.length);
        return item;
      });
  }

  async add(item: OutboxItem): Promise<void> {
    try {
      await writeFileAtomicAsync(this.file(item.id), JSON.stringify(item));
    } catch (err) {
      throw new NodediagError('STORE_ERROR', `cannot queue a Slack message: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }

  save(item: OutboxItem): Promise<void> {
    return writeFileAtomicAsync(this.file(item.id), JSON.stringify(item));
  }

  async remove(item: OutboxItem, dead: boolean): Promise<void> {
    if (dead) renameSync(this.file(item.id), this.file(item.id, true));
    else rmSync(this.file(item.id), { force: true });
  }
}

const ITEM_FILE = /^(\d{12})\.json$/;

/** How long a delivered item may still be listed (a listing read before its removal) before its removal is sent again. */
const RECENTLY_GONE_MS = 60_000;

export class Outbox {
  private readonly items = new Map<string, OutboxItem>();
  private keys: Record<string, string> = {};
  private readonly busy = new Set<string>();
  private readonly nextAt = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  /** The storage's change feed, while open (shared storage that has one). */
  private feed: { stop(): void } | null = null;
  private feedFailures = 0;
  private waiters: Array<() => void> = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly storage: OutboxStorage;
  /** Items delivered or dead-lettered here, until the storage no longer lists them. */
  private readonly gone = new Map<string, { at: number; dead: boolean }>();
  /** Items the storage listed: one missing from a later listing was delivered by another process. */
  private readonly listed = new Set<string>();
  private refreshAt = 0;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly dir: string,
    private readonly chat: ChatPort,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: OutboxOptions = {},
  ) {
    this.storage = opts.storage ?? new FileOutboxStorage(dir);
    mkdirSync(dir, { recursive: true });
    this.loadKeys();
  }

  /** Queues an operation; resolves once it is kept. Throws only when the storage refuses it. */
  enqueue(op: OutboxOp): Promise<void> {
    const item: OutboxItem = { ...this.storage.next(), op, attempts: 0, notBefore: 0 };
    // Writes land one after another, so delivery (by order) never overtakes a slower write.
    const written = this.writing.then(async () => {
      await this.storage.add(item);
      // Shared: every process's items reach the leader through the storage, so they go out in one order.
      if (this.opts.shared) this.refreshAt = 0;
      else this.items.set(item.id, item);
    });
    this.writing = written.catch(() => undefined);
    return written;
  }

  /** Slack's ts for a message key, once delivered. */
  tsOf(key: string): string | undefined {
    return this.keys[key];
  }

  /** Operations not yet delivered (by this process). */
  get pending(): number {
    return this.items.size;
  }

  /** Reads what is kept (after a restart) and starts delivering. */
  async start(): Promise<void> {
    if (this.timer) return;
    if (!this.opts.shared) await this.refresh();
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 25);
    this.timer.unref();
    void this.follow();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.feed?.stop();
    this.feed = null;
  }

  /** Resolves when everything queued so far is delivered (or dead-lettered), or left to the process that delivers. */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    if (this.opts.shared) {
      if (!this.opts.shared.delivers()) return true;
      // What this process queued reaches its own deliveries through the storage: read it once more first.
      await this.writing;
      await this.refreshing;
      await this.refresh();
    }
    if (this.items.size === 0) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /**
   * Follows the shared storage's changes while running: the delivering
   * process reads at its next tick when another queues something, instead of
   * at its next re-list (which stays, should the feed miss anything).
   * Reopened a second after it ends; after it cannot be opened (no watch
   * permission, the API away), in 5 s, then twice as long each time up to 5 min.
   */
  private async follow(): Promise<void> {
    const watch = this.storage.watch?.bind(this.storage);
    if (!this.opts.shared || !watch || !this.timer || this.feed) return;
    const again = (ms: number) => setTimeout(() => void this.follow(), ms).unref();
    try {
      this.feed = await watch(
        () => {
          if (this.opts.shared?.delivers()) this.refreshAt = 0;
        },
        () => {
          this.feed = null;
          if (this.timer) again(1000);
        },
      );
      this.feedFailures = 0;
      // Stopped while it opened.
      if (!this.timer) this.feed.stop();
    } catch (err) {
      this.log.warn('outbox: cannot follow the queued messages; re-listing them meanwhile', { error: (err as Error).message });
      if (this.timer) again(Math.min(300_000, 5000 * 2 ** this.feedFailures++));
    }
  }

  /** Reads the kept items (one reading at a time): new ones join, those another process delivered leave. */
  private refresh(): Promise<void> {
    this.refreshing ??= this.read().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async read(): Promise<void> {
    try {
      const kept = await this.storage.list();
      const now = this.clock.now();
      const ids = new Set(kept.map((i) => i.id));
      for (const [id, g] of this.gone) if (!ids.has(id) && now - g.at > RECENTLY_GONE_MS) this.gone.delete(id);
      for (const item of kept) {
        const g = this.gone.get(item.id);
        if (g) {
          // Delivered, but its removal did not land: never deliver it again, remove it again.
          if (now - g.at > RECENTLY_GONE_MS) void this.storage.remove(item, g.dead).catch(() => undefined);
          continue;
        }
        this.listed.add(item.id);
        if (!this.items.has(item.id)) this.items.set(item.id, item);
      }
      for (const [id, item] of this.items) if (!ids.has(id) && this.listed.has(id) && !this.busy.has(item.op.channel)) this.drop(item);
    } catch (err) {
      this.log.warn('outbox: cannot read the queued messages; trying again', { error: (err as Error).message });
    }
  }

  /** No longer this process's to deliver (delivered elsewhere, or handed over with the lead). */
  private drop(item: OutboxItem): void {
    this.items.delete(item.id);
    this.listed.delete(item.id);
    if (this.items.size === 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const fn of w) fn();
    }
  }

  /** Delivered (or dead-lettered) here. */
  private remove(item: OutboxItem, dead = false): void {
    this.drop(item);
    this.gone.set(item.id, { at: this.clock.now(), dead });
    void this.storage.remove(item, dead).catch((err) => {
      // Delivered: a stale item would only be sent again as a duplicate update (or found already posted).
      this.log.warn('outbox: cannot forget a delivered message', { error: (err as Error).message });
    });
  }

  private keysSaving: Promise<void> = Promise.resolve();
  private keyLines = 0;

  /** Reads the key log (last line wins), keeping the newest {@link MAX_KEYS}. */
  private loadKeys(): void {
    const path = join(this.dir, 'keys.jsonl');
    if (!existsSync(path)) return;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const [k, ts] = JSON.parse(line) as [string, string];
        delete this.keys[k];
        this.keys[k] = ts;
        this.keyLines += 1;
      } catch {
        /* a torn last line after a crash: the message it named was not yet confirmed removed */
      }
    }
    this.boundKeys();
  }

  /** Forgets the oldest keys beyond the bound, except those a queued operation still needs. */
  private boundKeys(): void {
    const names = Object.keys(this.keys);
    if (names.length <= MAX_KEYS) return;
    const needed = new Set([...this.items.values()].flatMap((i) => ('key' in i.op ? [i.op.key] : []).concat('threadKey' in i.op && i.op.threadKey ? [i.op.threadKey] : [])));
    for (const k of names.slice(0, names.length - MAX_KEYS)) if (!needed.has(k)) delete this.keys[k];
  }

  /**
   * Records a key's ts durably: one appended line, fsync'ed; the log is
   * rewritten (compacted) when it grows well past the number of live keys.
   */
  private saveKeys(key: string): Promise<void> {
    this.keysSaving = this.keysSaving
      .then(async () => {
        const path = join(this.dir, 'keys.jsonl');
        this.boundKeys();
        if (this.keyLines > 2 * MAX_KEYS) {
          await writeFileAtomicAsync(path, Object.entries(this.keys).map((e) => `${JSON.stringify(e)}\n`).join(''));
          this.keyLines = Object.keys(this.keys).length;
        } else {
          await appendFile(path, `${JSON.stringify([key, this.keys[key]])}\n`, { flush: true });
          this.keyLines += 1;
        }
      })
      .catch((err) => this.log.error('outbox: cannot save message keys', { error: (err as Error).message }));
    return this.keysSaving;
  }

  private superseded(item: OutboxItem): boolean {
    if (item.op.op !== 'update') return false;
    const key = item.op.key;
    for (const other of this.items.values()) if (other.seq > item.seq && other.op.op === 'update' && other.op.key === key) return true;
    return false;
  }

  private async tick(): Promise<void> {
    const now = this.clock.now();
    const shared = this.opts.shared;
    if (shared) {
      if (!shared.delivers()) {
        // Another process delivers: it reads everything queued from the storage.
        if (this.busy.size === 0) for (const item of [...this.items.values()]) this.drop(item);
        return;
      }
      if (now >= this.refreshAt) {
        this.refreshAt = now + (this.opts.refreshMs ?? 1000);
        void this.refresh();
      }
    }
    const heads = new Map<string, OutboxItem>();
    for (const item of [...this.items.values()].sort((a, b) => a.seq - b.seq || (a.id < b.id ? -1 : 1))) {
      if (!heads.has(item.op.channel)) heads.set(item.op.channel, item);
    }
    for (const [channel, item] of heads) {
      if (this.busy.has(channel) || now < (this.nextAt.get(channel) ?? 0) || now < item.notBefore) continue;
      if (this.superseded(item)) {
        this.remove(item);
        continue;
      }
      this.busy.add(channel);
      void this.deliver(item).finally(() => this.busy.delete(channel));
    }
  }

  /** A key's ts: learnt here, or recorded by another replica; null while this outbox still has to post it. */
  private async resolve(key: string): Promise<string | undefined | null> {
    const ts = this.keys[key];
    if (ts) return ts;
    // The message is still queued here (earlier in this channel's order): wait for it.
    if ([...this.items.values()].some((i) => i.op.op === 'post' && i.op.key === key)) return null;
    const shared = await this.opts.directory?.lookup(key).catch((err) => {
      this.log.warn('outbox: cannot look up a message key', { key, error: (err as Error).message });
      return undefined;
    });
    if (shared) this.keys[key] = shared;
    return shared;
  }

  private async threadTs(item: OutboxItem, threadKey: string | undefined): Promise<string | undefined | null> {
    if (!threadKey) return undefined;
    const ts = await this.resolve(threadKey);
    return ts === undefined && this.waitForOthers(item) ? null : ts;
  }

  /**
   * Whether to ask again later for a message another replica may still be
   * posting (an update of it, a reply under it), rather than going on without it.
   */
  private waitForOthers(item: OutboxItem): boolean {
    if (!this.opts.directory || item.attempts >= 8) return false;
    item.attempts += 1;
    item.notBefore = this.clock.now() + Math.min(this.opts.maxBackoffMs ?? 60_000, (this.opts.baseBackoffMs ?? 500) * 2 ** item.attempts);
    return true;
  }

  /**
   * Posts, unless the process that sent this post before died not knowing
   * whether Slack got it and Slack has it: then its ts is taken from there.
   */
  private async post(item: OutboxItem, op: Extract<OutboxOp, { op: 'post' }>, thread: string | undefined): Promise<string> {
    const shared = this.opts.shared;
    if (!shared) return (await this.chat.post(op.channel, op.message, thread)).ts;
    if (item.sentBy && item.sentBy !== shared.identity && this.chat.findPosted) {
      const found = await this.chat.findPosted(op.channel, op.key, thread, item.sentAt ?? 0).catch((err) => {
        this.log.warn('outbox: cannot tell whether a message was posted before; posting it', { key: op.key, error: (err as Error).message });
        return undefined;
      });
      if (found) return found;
    }
    item.sentBy = shared.identity;
    item.sentAt = this.clock.now();
    await this.storage.save(item);
    return (await this.chat.post(op.channel, op.message, thread, op.key)).ts;
  }

  private async deliver(item: OutboxItem): Promise<void> {
    const op = item.op;
    const gap = op.op === 'update' ? (this.opts.updateIntervalMs ?? 300) : (this.opts.postIntervalMs ?? 1000);
    try {
      if (op.op === 'post') {
        const thread = await this.threadTs(item, op.threadKey);
        if (thread === null) return;
        const ts = await this.post(item, op, thread);
        this.keys[op.key] = ts;
        // The item is removed only once its ts is on disk, so a later update always finds it.
        await this.saveKeys(op.key);
        await this.opts.directory?.record(op.key, ts).catch((err) => this.log.error('outbox: cannot share a message key; other replicas cannot update it', { key: op.key, error: (err as Error).message }));
      } else if (op.op === 'update') {
        const ts = await this.resolve(op.key);
        if (ts === null) return;
        if (!ts && this.waitForOthers(item)) return;
        if (!ts) {
          this.log.warn('outbox: update of a message that was never posted; dropped', { key: op.key });
          this.remove(item, true);
          return;
        }
        await this.chat.update(op.channel, ts, op.message);
      } else {
        const thread = await this.threadTs(item, op.threadKey);
        if (thread === null) return;
        await this.chat.postEphemeral(op.channel, op.user, op.message, thread);
      }
      this.nextAt.set(op.channel, this.clock.now() + gap);
      this.remove(item);
    } catch (err) {
      this.failed(item, err);
    }
  }

  private failed(item: OutboxItem, err: unknown): void {
    const e = err instanceof ChatError ? err : new ChatError('transient', (err as Error)?.message ?? 'error');
    item.attempts += 1;
    this.opts.onRetry?.();
    if (e.kind === 'rate-limited') {
      item.notBefore = this.clock.now() + (e.retryAfterMs ?? 1000);
    } else if (e.kind === 'permanent' && (e.code === 'invalid_blocks' || e.code === 'msg_too_long' || e.code === 'invalid_blocks_format') && 'message' in item.op && item.op.message.blocks) {
      // Never lose the entry: send its plain text instead.
      item.op = { ...item.op, message: { text: item.op.message.text.slice(0, 3900) } } as OutboxOp;
    } else if (e.kind === 'permanent' && (PERMANENT_DROP.has(e.code) || item.attempts > 5)) {
      this.log.error('outbox: Slack refused a message; kept in outbox/dead', { code: e.code, channel: item.op.channel });
      this.remove(item, true);
      if (NOT_THERE.has(e.code)) this.opts.onUndeliverable?.(item.op, e.code);
      return;
    } else {
      item.notBefore = this.clock.now() + Math.min(this.opts.maxBackoffMs ?? 60_000, (this.opts.baseBackoffMs ?? 500) * 2 ** Math.min(item.attempts, 10));
    }
    void this.storage.save(item).catch(() => {
      /* kept in memory; the storage still holds the previous attempt count */
    });
  }
}
