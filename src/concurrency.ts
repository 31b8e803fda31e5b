/** Concurrency caps. */

/** A counting semaphore: at most `limit` holders at once, FIFO. */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`semaphore limit must be a positive integer, got ${limit}`);
  }

  /** Holders right now. */
  get inUse(): number {
    return this.active;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes a slot if one is free, without waiting. */
  tryAcquire(): boolean {
    if (this.active >= this.limit) return false;
    this.active += 1;
    return true;
  }

  async acquire(): Promise<void> {
    if (this.tryAcquire()) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active -= 1;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/** Maps over items with at most `limit` in flight; results keep input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const sem = new Semaphore(Math.max(1, limit));
  return Promise.all(items.map((item, i) => sem.run(() => fn(item, i))));
}

/** Work started after a reply was sent (an acknowledged click, a diagnosis behind its card), kept so that shutdown and tests can wait for it. */
export class BackgroundWork {
  private readonly running = new Set<Promise<unknown>>();

  /** @param onError what to do with a failure of work started with {@link spawn} (nobody awaits it). */
  constructor(private readonly onError: (err: unknown) => void) {}

  /** Starts work nobody awaits; a failure goes to `onError`. */
  spawn(work: () => Promise<unknown>): void {
    void this.track(work).catch(this.onError);
  }

  /** Runs work that {@link idle} must wait for; the caller gets its result. */
  track<T>(work: () => Promise<T>): Promise<T> {
    const p = work();
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.finally(() => this.running.delete(settled));
    return p;
  }

  /** Resolves when the work started so far, and any it started in turn, has finished. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }
}
