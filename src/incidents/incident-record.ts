/**
 * How an incident changes and how each change is told: a compare-and-set on
 * the store (a change another process made first is re-read and decided
 * again), the card and the thread through the outbox, the cluster's audit log.
 */
import { errorMessage } from '../errors.js';
import type { Pause } from '../rails/gates.js';
import type { FixDeps } from '../runbooks/fix-service.js';
import { INCIDENT_ID, type Incident } from './incident.js';
import type { IncidentServiceDeps } from './flow-context.js';
import { isRefusal, transition, type IncidentEvent, type Refusal } from './transitions.js';
import { ConflictError } from './store.js';

/** A message for the thread: text, optionally with blocks. */
type ThreadMessage = { text: string; blocks?: unknown[] };

export class IncidentRecord {
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly d: Pick<IncidentServiceDeps, 'store' | 'outbox' | 'views' | 'clock' | 'logger' | 'auditPath'>,
    private readonly accessOf: (cluster: string | undefined) => FixDeps,
    private readonly pauseNow: () => Pause | null,
  ) {}

  /** Now, as the incidents write it. */
  now(): string {
    return new Date(this.d.clock.now()).toISOString();
  }

  /** The stored incident (read-only). */
  get(id: string): Promise<Incident | null> {
    return this.d.store.get(id);
  }

  /** The incident a button names, refused when the id is not ours or the click came from another channel (`null`: any channel). */
  async load(id: string, channel: string | null): Promise<Incident | Refusal> {
    if (!INCIDENT_ID.test(id)) return { reason: 'That button does not belong to a nodediag incident.' };
    const inc = await this.d.store.get(id);
    if (!inc) return { reason: 'This incident is unknown to nodediag.', hint: 'Run /diag again.' };
    if (channel !== null && inc.channel !== channel) return { reason: "Act on an incident in the incident's own channel." };
    return inc;
  }

  /**
   * Changes an incident with compare-and-set; `change` returns the new
   * incident, or a refusal. Serialised per incident in this process; a change
   * made by another process surfaces as a conflict and is re-evaluated.
   */
  async mutate(id: string, change: (inc: Incident) => Incident | Refusal): Promise<Incident | Refusal> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const run = prev.then(async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const cur = await this.d.store.get(id);
        if (!cur) return { reason: 'This incident is unknown.', hint: 'Run /diag again.' } satisfies Refusal;
        const next = change(structuredClone(cur));
        if ('reason' in next) return next;
        next.version = cur.version + 1;
        try {
          await this.d.store.put(next);
          return next;
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
      }
      return { reason: 'This incident is changing too fast; try again.' } satisfies Refusal;
    });
    const tail = run.catch(() => undefined);
    this.chains.set(id, tail);
    // Forget the chain once it is idle, or every incident ever seen would stay in memory.
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return run;
  }

  /** Applies one event of the state machine with compare-and-set. */
  apply(id: string, event: IncidentEvent | ((cur: Incident) => IncidentEvent)): Promise<Incident | Refusal> {
    return this.mutate(id, (cur) => transition(cur, typeof event === 'function' ? event(cur) : event, this.d.clock.now()));
  }

  /** Shows the incident's card as it is now. */
  publish(inc: Incident): Promise<void> {
    return this.d.outbox.enqueue({ op: 'update', key: inc.messageKey, channel: inc.channel, message: this.d.views.card(inc, this.pauseNow()) });
  }

  /** Posts in the incident's thread; returns the message's outbox key (to edit it later). */
  async thread(inc: Incident, message: ThreadMessage, key = `${inc.id}:${Math.random().toString(36).slice(2, 10)}`): Promise<string> {
    await this.d.outbox.enqueue({ op: 'post', key, channel: inc.channel, threadKey: inc.threadKey, message });
    return key;
  }

  /** The incident's closing summary in its thread (once: its key is the incident's). */
  async summary(inc: Incident): Promise<void> {
    await this.thread(inc, this.d.views.summary(inc, this.d.auditPath), `${inc.id}:summary`);
  }

  /** An entry in the incident's cluster's audit log; a failed write is logged, not thrown (the flow has already happened). */
  audit(inc: Incident, type: string, actor: string, data?: Record<string, unknown>): void {
    try {
      this.accessOf(inc.cluster).audit.append({ type, node: inc.node, actor, incident: inc.id, ...(data ? { data } : {}) });
    } catch (err) {
      this.d.logger.error('audit log write failed', { error: errorMessage(err) });
    }
  }

  /**
   * A note in an incident's thread from outside (alerts joining or
   * resolving), with an optional change to the incident. With `slot`, the
   * note is one message kept up to date (posted once, then edited), so a
   * burst of alerts is one note, not one per alert.
   */
  async note(id: string, text: string, alerts?: { alerts: NonNullable<Incident['alerts']>; what: string }, slot?: string): Promise<Incident | null> {
    let first = true;
    const done = await this.mutate(id, (cur) => {
      first = !slot || !(cur.notes ?? []).includes(slot);
      if (!alerts && !slot) return cur;
      return transition(cur, { type: 'alerts', alerts: alerts?.alerts ?? cur.alerts ?? {}, what: alerts?.what ?? 'note', ...(slot ? { note: slot } : {}) }, this.d.clock.now());
    });
    if (isRefusal(done)) return null;
    if (alerts) await this.publish(done);
    if (!slot) await this.thread(done, { text });
    else if (first) await this.thread(done, { text }, `${id}:note:${slot}`);
    else await this.d.outbox.enqueue({ op: 'update', key: `${id}:note:${slot}`, channel: done.channel, message: { text } });
    return done;
  }
}
