/**
 * `/diag pause` and `/diag resume`: no fix starts (on any replica) until the
 * pause ends or an approver resumes; the channel and every open card say so.
 */
import { newIncidentId } from './incident.js';
import type { FlowContext } from './flow-context.js';
import type { Refusal } from './transitions.js';

/** Pauses fixes for `durationMs`. */
export async function pauseFixes(c: FlowContext, user: string, channel: string, durationMs: number, reason: string): Promise<Refusal | null> {
  const { d } = c;
  const refusal = d.access.requestRefusal(user, channel);
  if (refusal) return refusal;
  const until = new Date(d.clock.now() + durationMs).toISOString();
  await c.rails.setPause({ by: user, reason, at: c.record.now(), until, channel });
  d.fix.audit.append({ type: 'fixes-paused', node: '*', actor: user, data: { until, reason, channel } });
  await d.outbox.enqueue({ op: 'post', key: `pause-${newIncidentId()}`, channel, message: d.views.paused(user, until, reason) });
  await republishOpenCards(c);
  return null;
}

/** Ends the pause (an approver's call). */
export async function resumeFixes(c: FlowContext, user: string, channel: string): Promise<Refusal | null> {
  const { d } = c;
  const refusal = await d.access.approveRefusal(user, channel, '');
  if (refusal) return { reason: 'Only an approver can resume fixes.', hint: refusal.hint };
  await c.rails.refresh();
  const was = c.rails.pauseNow();
  if (!was) return { reason: 'Fixes are not paused.' };
  await c.rails.setPause(null);
  d.fix.audit.append({ type: 'fixes-resumed', node: '*', actor: user, data: { pausedBy: was.by, reason: was.reason } });
  await d.outbox.enqueue({ op: 'post', key: `resume-${newIncidentId()}`, channel, message: d.views.resumed(user, was.by, was.reason) });
  await republishOpenCards(c);
  return null;
}

/** Every card offering a fix shows the pause (or its end). */
async function republishOpenCards(c: FlowContext): Promise<void> {
  for (const open of await c.d.store.list(['awaiting-approval'])) await c.record.publish(open);
}
