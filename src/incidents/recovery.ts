/**
 * When something outside a flow failed: a process died while it carried a
 * fix (this one before a restart, or another replica), or Slack refused an
 * incident's own message for good.
 */
import { errorMessage } from '../errors.js';
import type { ChatMessage } from '../ports.js';
import { lastStepsStarted } from './audit-log.js';
import type { FixClaims } from './fix-claims.js';
import type { FlowContext } from './flow-context.js';
import type { OutboxOp } from './outbox.js';
import { isRefusal } from './transitions.js';

export class Recovery {
  constructor(
    private readonly c: FlowContext,
    private readonly claims: FixClaims,
  ) {}

  /**
   * A fix whose process stopped (this one before a restart, or another
   * replica whose incident lock lapsed) is marked interrupted in its thread
   * and the audit log, its node lock is released, and nothing is re-run
   * without a new approval; a diagnosis left open is closed.
   */
  async recover(): Promise<number> {
    const { d, record } = this.c;
    const stuck = await this.claims.orphaned(await d.store.list(['approved', 'running', 'diagnosing']));
    const inFlight = lastStepsStarted(d.auditPath, new Set(stuck.filter((i) => i.state === 'running').map((i) => i.id)));
    for (const inc of stuck) {
      const wasFixing = inc.state !== 'diagnosing';
      const logged = inFlight.get(inc.id);
      const done = await record.apply(inc.id, { type: 'interrupt', ...(logged ? { lastStep: logged } : {}) });
      if (isRefusal(done)) continue;
      if (wasFixing) {
        const at = done.state === 'interrupted' ? done.progress : undefined;
        const waitingFor = inc.state === 'approved' ? inc.waitingFor : undefined;
        record.audit(done, 'interrupted', 'nodediag', { step: at?.step ?? 0, title: at?.title ?? '' });
        await this.claims.release(inc);
        await record.thread(done, {
          text: waitingFor?.length
            ? `:warning: ${d.sharedStore ? 'the nodediag process holding this approved fix stopped' : 'nodediag restarted'} while it waited for the fix on ${waitingFor.join(', ')}; nothing ran. Nothing will run without a new approval: re-diagnose.`
            : `:warning: ${d.sharedStore ? 'the nodediag process running this fix stopped (its lease on the node lapsed)' : 'nodediag restarted while the fix ran'} (step ${at?.step ?? 0}/${at?.total ?? '?'}: ${at?.title ?? 'starting'}). ` +
              `The node's lock is released; nothing will re-run without a new approval. Re-diagnose to see the node now.`,
        });
        await record.summary(done);
      }
      await record.publish(done);
    }
    return stuck.length;
  }

  /**
   * Slack refused an incident's own message (the bot is not in the channel,
   * or the channel is gone): the incident is closed, and the requester is
   * told through the slash command's response_url how to fix it.
   */
  async undeliverable(op: OutboxOp, code: string): Promise<void> {
    const { d, record } = this.c;
    if (op.op !== 'post') return;
    if (op.key.startsWith('fleet-')) {
      if (op.responseUrl) await this.tellRequester(op.responseUrl, d.views.undeliverable('the fleet summary', '/diag -l', code));
      return;
    }
    if (!op.key.endsWith(':msg')) return;
    const done = await record.apply(op.key.slice(0, -':msg'.length), { type: 'undeliverable', code });
    if (isRefusal(done)) return;
    record.audit(done, 'message-undeliverable', 'nodediag', { code });
    if (op.responseUrl) await this.tellRequester(op.responseUrl, d.views.undeliverable(`the incident for ${done.node}`, `/diag ${done.node}`, code));
  }

  private async tellRequester(responseUrl: string, message: ChatMessage): Promise<void> {
    try {
      await this.c.d.chat.respond(responseUrl, message);
    } catch (err) {
      this.c.d.logger.warn('could not tell the requester that the channel is unreachable', { error: errorMessage(err) });
    }
  }
}
