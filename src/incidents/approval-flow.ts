/**
 * The incident card's buttons: Dry run shows the exact steps, Approve opens
 * the confirmation and its submission records the approval (a second person,
 * allowed, not expired, once; two approvers in a storm) and starts the fix,
 * Reject closes the incident, Re-diagnose opens a fresh one in the thread;
 * an approval window that passes closes the offer.
 */
import { DEFAULT_CLUSTER } from '../clusters/clusters.js';
import { errorMessage, LockHeldError } from '../errors.js';
import type { LockHandle } from '../runbooks/lock.js';
import { expandPlan, shortHash } from '../runbooks/plan.js';
import { offerOf, TERMINAL_STATES, type Incident } from './incident.js';
import type { DiagnosisFlow } from './diagnosis-flow.js';
import type { FixClaims } from './fix-claims.js';
import type { FixFlow } from './fix-flow.js';
import type { FlowContext } from './flow-context.js';
import { isExpired, isRefusal, STATE_REFUSAL, type Refusal } from './transitions.js';

export class ApprovalFlow {
  constructor(
    private readonly c: FlowContext,
    private readonly diagnosis: DiagnosisFlow,
    private readonly fixes: FixFlow,
    private readonly claims: FixClaims,
  ) {}

  private expired(inc: Incident): boolean {
    return isExpired(inc, this.c.d.clock.now());
  }

  /** Marks an awaiting incident expired (and re-diagnoses when asked by a click). */
  private async expire(inc: Incident, by?: string): Promise<void> {
    const { d, record } = this.c;
    const exp = await record.apply(inc.id, { type: 'expire' });
    if (isRefusal(exp)) return;
    await record.publish(exp);
    await record.thread(exp, d.views.decision(exp, 'expired'));
    record.audit(exp, 'approval-expired', 'nodediag');
    if (by) await this.rediagnose(exp.id, by, exp.channel);
  }

  /** Closes approval requests whose window has passed (run every few seconds). */
  async expireDue(): Promise<number> {
    const due = (await this.c.d.store.list(['awaiting-approval'])).filter((i) => this.expired(i));
    for (const inc of due) await this.expire(inc);
    return due.length;
  }

  /** The Dry run button: the exact steps in the thread, nothing run. */
  async dryRun(id: string, user: string, channel: string): Promise<Refusal | null> {
    const { d, record } = this.c;
    const inc = await record.load(id, channel);
    if ('reason' in inc) return inc;
    const refusal = d.access.requestRefusal(user, channel);
    if (refusal && (await d.access.approveRefusal(user, channel, ''))) return refusal;
    const offer = offerOf(inc);
    if (!offer) return { reason: 'This incident has no fix to preview.' };
    let plan;
    try {
      plan = expandPlan(d.fix.catalogs, offer.plan);
    } catch (err) {
      return { reason: errorMessage(err) };
    }
    await record.thread(inc, d.views.dryRun(inc, plan, user));
    record.audit(inc, 'dry-run-shown', user);
    return null;
  }

  /** The incident a click names; one whose approval window has passed is closed (and diagnosed again for `user`), refused with `whenExpired`. */
  private async loadUnexpired(id: string, channel: string | null, user: string, whenExpired: string): Promise<Incident | Refusal> {
    const inc = await this.c.record.load(id, channel);
    if ('reason' in inc || !this.expired(inc)) return inc;
    await this.expire(inc, user);
    return { reason: whenExpired };
  }

  /** Why this user may not approve this incident's fix now, or null. */
  private async approveRefusal(inc: Incident, user: string, channel: string): Promise<Refusal | null> {
    await this.c.rails.refresh();
    return (await this.c.d.access.approveRefusal(user, channel, inc.requester)) ?? this.c.rails.pauseRefusal() ?? this.c.rails.budgetRefusal(inc);
  }

  /** The Approve button: checks, then opens the confirmation with the exact steps. */
  async requestApproval(id: string, user: string, channel: string, triggerId: string): Promise<Refusal | null> {
    const { d } = this.c;
    const inc = await this.loadUnexpired(id, channel, user, 'This approval request expired; nodediag is diagnosing the node again in the thread.');
    if ('reason' in inc) return inc;
    if (inc.state !== 'awaiting-approval') return { reason: STATE_REFUSAL[inc.state] ?? 'Nothing to approve.' };
    const refusal = await this.approveRefusal(inc, user, channel);
    if (refusal) return refusal;
    if (inc.approvals?.includes(user)) return { reason: 'You have approved this fix already; it needs another approver (storm gate).' };
    try {
      await d.chat.openView(triggerId, d.views.approvalDialog(inc, expandPlan(d.fix.catalogs, inc.plan!)));
    } catch (err) {
      return { reason: `Slack did not open the confirmation (${errorMessage(err)}); click Approve again.` };
    }
    return null;
  }

  /** The confirmation was submitted: record the approval; once enough approvers agreed (two in a storm), run. */
  async confirmApproval(id: string, user: string): Promise<Refusal | null> {
    const { d, record } = this.c;
    const loaded = await this.loadUnexpired(id, null, user, 'This approval request expired while the confirmation was open; nodediag is diagnosing again.');
    if ('reason' in loaded) return loaded;
    const refusal = await this.approveRefusal(loaded, user, loaded.channel);
    if (refusal) return refusal;
    // Taken before the approval is recorded and held to the verdict: while it is held, every replica knows a live process carries this fix.
    let carried: LockHandle | null;
    try {
      carried = await this.claims.carry(loaded);
    } catch (err) {
      if (err instanceof LockHeldError) return { reason: 'Another approval of this fix is being recorded right now.', hint: 'Look at the card in a moment; approve again if it still asks.' };
      return { reason: `nodediag cannot record the approval: ${d.fix.redact(errorMessage(err))}`, hint: 'Nothing runs; approve again in a moment.' };
    }
    const drop = () => carried?.release().catch((err) => d.logger.error('incident lock release failed (it lapses with its lease)', { error: errorMessage(err) }));
    let approved;
    try {
      // The gate is read again now: a storm that began after the card was posted holds this fix too.
      const storm = this.c.rails.stormNow(loaded.cluster ?? DEFAULT_CLUSTER);
      approved = await record.apply(id, (cur) => {
        const plan = offerOf(cur)?.plan;
        return { type: 'approve', user, runbook: plan?.runbook ?? '', planHash: plan ? shortHash(plan.hash) : '', storm };
      });
    } catch (err) {
      await drop();
      throw err;
    }
    if ('reason' in approved || approved.state !== 'approved') await drop();
    if ('reason' in approved) return approved;
    if (approved.state === 'awaiting-approval') {
      record.audit(approved, 'storm-override-approval', user, { of: approved.approvalsNeeded, so_far: approved.approvals });
      await record.publish(approved);
      await record.thread(approved, { text: `:raised_hand: <@${user}> approved as 1 of ${approved.approvalsNeeded} (storm gate: ${approved.storm?.why ?? 'two approvers'}). A second approver must approve before anything runs.` });
      return null;
    }
    if (approved.state !== 'approved') return null;
    const running = approved;
    try {
      record.audit(running, 'approved', user, { runbook: running.plan.runbook, plan: shortHash(running.plan.hash), approvers: running.approvals });
      await record.publish(running);
      await record.thread(running, d.views.decision(running, 'approved', user));
    } finally {
      // Recorded as approved, it runs (and in the end releases the incident lock) even when the card could not be updated.
      this.c.work.spawn(() => this.fixes.run(running, user, carried));
    }
    return null;
  }

  /** The Reject button: the incident closes with its summary. */
  async reject(id: string, user: string, channel: string): Promise<Refusal | null> {
    const { d, record } = this.c;
    const inc = await record.load(id, channel);
    if ('reason' in inc) return inc;
    const refusal = await d.access.rejectRefusal(user, channel, inc.requester);
    if (refusal) return refusal;
    const rejected = await record.apply(id, { type: 'reject', user });
    if ('reason' in rejected) return rejected;
    record.audit(rejected, 'rejected', user);
    await record.publish(rejected);
    await record.thread(rejected, d.views.decision(rejected, 'rejected', user));
    await record.summary(rejected);
    return null;
  }

  /** A fresh diagnosis posted in the same thread. */
  async rediagnose(id: string, user: string, channel: string): Promise<Refusal | null> {
    const { d, record } = this.c;
    const inc = await record.load(id, channel);
    if ('reason' in inc) return inc;
    const refusal = d.access.requestRefusal(user, channel);
    if (refusal) return refusal;
    if (!TERMINAL_STATES.has(inc.state)) return { reason: 'This incident is still open; act on it first.' };
    const next = await this.diagnosis.diagnose({ node: inc.node, cluster: inc.cluster ?? DEFAULT_CLUSTER, channel, user, threadKey: inc.threadKey });
    return 'reason' in next ? next : null;
  }
}
