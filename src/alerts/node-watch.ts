/**
 * Kubernetes as an alert source (opt-in): a watch on Nodes. A node whose
 * Ready condition stays False or Unknown longer than the threshold opens an
 * incident like a firing alert would; when it is Ready again, the incident
 * hears it like a resolved alert. The watch is re-opened when the API
 * server ends it.
 */
import type { Clock, KubeNode, KubeNodeWatcher, Logger, WatchHandle } from '../ports.js';

/** What the watch reports. */
export interface NodeReadinessSink {
  notReady(node: string, since: number, message: string): Promise<void>;
  readyAgain(node: string): Promise<void>;
}

/** Ready status and message, from the Node's conditions. */
export function readiness(node: Pick<KubeNode, 'conditions'>): { ready: boolean; message: string } {
  const c = node.conditions.find((x) => x.type === 'Ready');
  if (!c) return { ready: false, message: 'no Ready condition' };
  return { ready: c.status === 'True', message: `Ready=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}` };
}

export class NodeWatch {
  private readonly since = new Map<string, { at: number; message: string }>();
  private readonly reported = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private handle: WatchHandle | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: KubeNodeWatcher,
    private readonly sink: NodeReadinessSink,
    private readonly thresholdMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Nodes seen NotReady and not yet past the threshold, or past it (for tests and metrics). */
  get watching(): { pending: string[]; reported: string[] } {
    return { pending: [...this.since.keys()].filter((n) => !this.reported.has(n)), reported: [...this.reported] };
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.open();
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    try {
      this.handle = await this.source.watchNodes(
        (n, type) => this.seen(n, type),
        (err) => {
          if (this.stopped) return;
          if (err) this.log.warn('node watch ended; re-opening', { error: err.message });
          this.reopen(err ? 5000 : 500);
        },
      );
    } catch (err) {
      this.log.warn('node watch could not start; retrying', { error: (err as Error).message });
      this.reopen(10_000);
    }
  }

  private reopen(afterMs: number): void {
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.open();
    }, afterMs);
    this.retry.unref();
  }

  private seen(node: KubeNode, type: 'ADDED' | 'MODIFIED' | 'DELETED'): void {
    const { ready, message } = type === 'DELETED' ? { ready: true, message: 'deleted' } : readiness(node);
    const name = node.name;
    if (ready) {
      this.since.delete(name);
      clearTimeout(this.timers.get(name));
      this.timers.delete(name);
      if (this.reported.delete(name) && type !== 'DELETED') void this.sink.readyAgain(name).catch((err) => this.log.error('node watch: could not note recovery', { node: name, error: (err as Error).message }));
      return;
    }
    const cur = this.since.get(name);
    if (cur) {
      cur.message = message;
      return;
    }
    const at = this.clock.now();
    this.since.set(name, { at, message });
    const timer = setTimeout(() => void this.due(name), this.thresholdMs);
    timer.unref();
    this.timers.set(name, timer);
  }

  private async due(name: string): Promise<void> {
    this.timers.delete(name);
    const cur = this.since.get(name);
    if (!cur || this.reported.has(name) || this.stopped) return;
    this.reported.add(name);
    try {
      await this.sink.notReady(name, cur.at, cur.message);
    } catch (err) {
      this.log.error('node watch: could not open an incident', { node: name, error: (err as Error).message });
    }
  }

  stop(): void {
    this.stopped = true;
    this.handle?.stop();
    if (this.retry) clearTimeout(this.retry);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
