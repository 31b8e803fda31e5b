/**
 * The Slack listeners. Thin: ack first (Slack's 3-second limit), parse the
 * payload with zod, call one service method, answer a refusal ephemerally.
 */
import type { App } from '@slack/bolt';
import { z } from 'zod';
import type { IncidentService } from '../incidents/incident-service.js';
import { inventoryNames, type Inventory } from '../inventory/inventory.js';
import { suggestNames } from '../inventory/node-name.js';
import { errorMessage } from '../errors.js';
import type { ChatPort, Logger } from '../ports.js';
import type { Redactor } from '../redact.js';
import type { AccessPolicy, Refusal } from './authz.js';
import { ACTIONS } from './blocks/incident-message.js';
import { esc } from './blocks/limits.js';
import { helpMessage, refusalMessage } from './blocks/replies.js';
import { APPROVE_VIEW } from './blocks/thread-messages.js';
import { parseDiagText } from './command-parse.js';

const slashSchema = z.object({ text: z.string().default(''), user_id: z.string().min(1), channel_id: z.string().min(1), response_url: z.string().max(500).optional() });
const actionSchema = z.object({
  user: z.object({ id: z.string().min(1) }),
  channel: z.object({ id: z.string().min(1) }).optional(),
  container: z.object({ channel_id: z.string().optional() }).optional(),
  trigger_id: z.string().optional(),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().max(100).optional() })).min(1),
});
const viewSchema = z.object({ user: z.object({ id: z.string().min(1) }), view: z.object({ private_metadata: z.string().max(100) }) });

/** What the listeners need. */
export interface ListenerDeps {
  service: IncidentService;
  access: AccessPolicy;
  chat: ChatPort;
  inventory: Inventory;
  /** Nodes reachable without an inventory entry (known_hosts in defaults + Kubernetes). */
  discoverable: boolean;
  /** The bot looks after several clusters: which one a node is in is decided by the service, not this inventory. */
  severalClusters?: boolean;
  logger: Logger;
  redact: Redactor;
}

/** Slack gives a view submission 3 s; past this the modal is answered and the approval finishes behind it. */
const VIEW_ACK_BUDGET_MS = 2000;

/** A modal that only tells something. */
function notice(title: string, text?: string, refusal?: Refusal): Record<string, unknown> {
  const blocks = refusal ? refusalMessage(refusal.reason, refusal.hint).blocks : [{ type: 'section', text: { type: 'mrkdwn', text: text ?? '' } }];
  return { type: 'modal', title: { type: 'plain_text', text: title }, close: { type: 'plain_text', text: 'Close' }, blocks };
}

export function registerListeners(app: App, d: ListenerDeps): void {
  const tell = async (channel: string, user: string, r: Refusal) => {
    try {
      await d.chat.postEphemeral(channel, user, refusalMessage(r.reason, r.hint));
    } catch (err) {
      d.logger.warn('could not send an ephemeral reply', { error: d.redact((err as Error).message) });
    }
  };

  app.command('/diag', async ({ command, ack }) => {
    const parsed = slashSchema.safeParse(command);
    if (!parsed.success) {
      await ack({ response_type: 'ephemeral', text: 'nodediag could not read that command.' });
      return;
    }
    const { text, user_id: user, channel_id: channel, response_url: responseUrl } = parsed.data;
    const req = parseDiagText(text);
    if (req.kind === 'help') {
      await ack({ response_type: 'ephemeral', ...helpMessage() });
      return;
    }
    if (req.kind === 'invalid') {
      await ack({ response_type: 'ephemeral', ...refusalMessage(req.reason, req.hint) });
      return;
    }
    const refusal = d.access.requestRefusal(user, channel);
    if (refusal) {
      await ack({ response_type: 'ephemeral', ...refusalMessage(refusal.reason, refusal.hint) });
      return;
    }
    if (req.kind === 'node' && !d.severalClusters && !d.discoverable && !d.inventory.nodes.some((n) => n.name === req.node)) {
      const close = suggestNames(req.node, inventoryNames(d.inventory));
      await ack({
        response_type: 'ephemeral',
        ...refusalMessage(`Node "${req.node}" is not in nodediag's inventory.`, close.length ? `Did you mean ${close.map((c) => `"${c}"`).join(', ')}?` : 'Add it to the inventory file.'),
      });
      return;
    }
    await ack();
    await d.service.track(async () => {
      // Let the other requests of a burst be acknowledged before this one's work starts.
      await new Promise((r) => setImmediate(r));
      const from = { channel, user, ...(responseUrl ? { responseUrl } : {}) };
      const result =
        req.kind === 'node'
          ? await d.service.diagnose({ node: req.node, ...(req.cluster ? { cluster: req.cluster } : {}), ...from })
          : req.kind === 'fleet'
            ? await d.service.fleet({ selector: req.selector, ...(req.cluster ? { cluster: req.cluster } : {}), ...from })
            : req.kind === 'pause'
              ? await d.service.pause(user, channel, req.durationMs, req.reason)
              : await d.service.resume(user, channel);
      if (result && 'reason' in result) await tell(channel, user, result);
    });
  });

  const onAction = (action: string, handle: (id: string, user: string, channel: string, triggerId: string) => Promise<Refusal | null>) => {
    app.action(action, async ({ ack, body }) => {
      await ack();
      await d.service.track(async () => {
        await new Promise((r) => setImmediate(r));
        const parsed = actionSchema.safeParse(body);
        if (!parsed.success) return;
        const p = parsed.data;
        const channel = p.channel?.id ?? p.container?.channel_id ?? '';
        const refusal = await handle(p.actions[0]!.value ?? '', p.user.id, channel, p.trigger_id ?? '');
        if (refusal) await tell(channel, p.user.id, refusal);
      });
    });
  };
  onAction(ACTIONS.approve, (id, user, channel, trigger) => d.service.requestApproval(id, user, channel, trigger));
  onAction(ACTIONS.dryRun, (id, user, channel) => d.service.dryRun(id, user, channel));
  onAction(ACTIONS.reject, (id, user, channel) => d.service.reject(id, user, channel));
  onAction(ACTIONS.rediagnose, (id, user, channel) => d.service.rediagnose(id, user, channel));

  app.view(APPROVE_VIEW, async ({ ack, body }) => {
    const parsed = viewSchema.safeParse(body);
    if (!parsed.success) {
      await ack({ response_action: 'errors', errors: {} } as never);
      return;
    }
    const id = parsed.data.view.private_metadata;
    const user = parsed.data.user.id;
    const work = d.service.track(() => d.service.confirmApproval(id, user));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), VIEW_ACK_BUDGET_MS)));
    // A failure (the state unwritable, the API refusing) still answers the modal: Slack would show only "trouble connecting".
    const first = await Promise.race([work, late])
      .catch((err: unknown) => {
        d.logger.error('approval failed', { incident: id, error: d.redact(String(err)) });
        return { failed: d.redact(errorMessage(err)) };
      })
      .finally(() => clearTimeout(timer));
    if (first && typeof first === 'object' && 'failed' in first) {
      await ack({ response_action: 'update', view: notice('Approval not confirmed', `nodediag could not finish recording the approval: ${esc(first.failed.slice(0, 300))}\nThe thread says whether the fix runs; if nothing happens there, approve again.`) } as never);
      return;
    }
    if (first === 'late') {
      // Slack gives a view submission 3 s: the modal is answered now, the approval finishes behind it.
      await ack({ response_action: 'update', view: notice('Approval received', 'nodediag is still recording your approval (the Kubernetes API answers slowly). The thread says when the fix starts; if it cannot be approved, you are told why.') } as never);
      const refusal = await work.catch((err) => {
        d.logger.error('approval failed after its modal was answered', { incident: id, error: d.redact(String(err)) });
        return { reason: 'The approval could not be recorded; try again.' } satisfies Refusal;
      });
      const inc = refusal ? await d.service.get(id).catch(() => null) : null;
      if (refusal && inc) await tell(inc.channel, user, refusal);
      return;
    }
    if (first) {
      await ack({ response_action: 'update', view: notice('Not approved', undefined, first) } as never);
      return;
    }
    await ack();
  });
}
