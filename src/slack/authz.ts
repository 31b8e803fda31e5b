/**
 * Who may ask and who may approve: configured Slack user ids and/or a user
 * group, optionally restricted to channels. The requester cannot approve
 * their own fix unless the configuration allows it. Group members come from
 * `usergroups.users.list` (a Tier 2 method: cached); user groups exist only
 * on paid plans, and that is said plainly when it bites.
 */
import type { Refusal } from '../incidents/transitions.js';
import type { AccessRules } from '../incidents/views.js';
import type { Clock, Logger } from '../ports.js';

/** The access configuration. */
export interface AccessConfig {
  /** Users allowed to run /diag; empty: everyone (in the allowed channels). */
  requesters: string[];
  /** Users allowed to approve. */
  approvers: string[];
  /** A user group whose members may approve. */
  approverGroup?: string;
  /** Channels where nodediag acts; empty: any channel it is in. */
  channels: string[];
  allowSelfApproval: boolean;
}

export type { Refusal };

export class AccessPolicy implements AccessRules {
  private group: { members: Set<string>; at: number; error?: string } | null = null;

  constructor(
    private readonly cfg: AccessConfig,
    private readonly groupMembers: (group: string) => Promise<string[]>,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly groupTtlMs = 5 * 60_000,
  ) {}

  channelRefusal(channel: string): Refusal | null {
    if (this.cfg.channels.length === 0 || this.cfg.channels.includes(channel)) return null;
    return { reason: 'nodediag is not enabled in this channel.', hint: 'Use it in an incident channel it is configured for (NODEDIAG_CHANNELS).' };
  }

  requestRefusal(user: string, channel: string): Refusal | null {
    const c = this.channelRefusal(channel);
    if (c) return c;
    if (this.cfg.requesters.length && !this.cfg.requesters.includes(user) && !this.cfg.approvers.includes(user)) {
      return { reason: 'You are not allowed to run /diag.', hint: 'Ask an admin to add you to NODEDIAG_REQUESTERS.' };
    }
    return null;
  }

  private async groupSet(): Promise<{ members: Set<string>; error?: string }> {
    const g = this.cfg.approverGroup;
    if (!g) return { members: new Set() };
    if (this.group && this.clock.now() - this.group.at < this.groupTtlMs) return this.group;
    try {
      this.group = { members: new Set(await this.groupMembers(g)), at: this.clock.now() };
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).message;
      const error = code === 'plan_upgrade_required' ? 'user groups need a paid Slack plan (plan_upgrade_required)' : `the approver group could not be read (${code})`;
      this.log.warn('approver group unavailable', { group: g, error });
      // Remember the failure briefly (Tier 2 rate limits), keep the last good members if any.
      this.group = { members: this.group?.members ?? new Set(), at: this.clock.now() - this.groupTtlMs + 30_000, error };
    }
    return this.group;
  }

  /** Why this user may not approve this incident's fix, or null. */
  async approveRefusal(user: string, channel: string, requester: string): Promise<Refusal | null> {
    const c = this.channelRefusal(channel);
    if (c) return c;
    if (user === requester && !this.cfg.allowSelfApproval) {
      return { reason: 'You asked for this diagnosis, so a colleague must approve its fix.', hint: 'A second person approves every fix (NODEDIAG_ALLOW_SELF_APPROVAL changes that).' };
    }
    if (this.cfg.approvers.includes(user)) return null;
    const g = await this.groupSet();
    if (g.members.has(user)) return null;
    if (this.cfg.approvers.length === 0 && !this.cfg.approverGroup) {
      return { reason: 'No approvers are configured, so no fix can be approved.', hint: 'Set NODEDIAG_APPROVERS (user ids) or NODEDIAG_APPROVER_GROUP.' };
    }
    return { reason: 'You are not an approver for nodediag fixes.', hint: g.error ? `Approvers are configured users${g.error ? `; ${g.error}` : ''}.` : 'Ask someone in NODEDIAG_APPROVERS or the approver group.' };
  }

  /** Who may reject: an approver or the requester. */
  async rejectRefusal(user: string, channel: string, requester: string): Promise<Refusal | null> {
    if (user === requester) return this.channelRefusal(channel);
    const r = await this.approveRefusal(user, channel, '');
    return r ? { reason: 'Only an approver or the requester can reject this fix.' } : null;
  }
}
