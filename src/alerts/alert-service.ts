/**
 * From alerts to incidents. A firing alert for a node with no open episode
 * opens one incident (diagnosed at once, a card in the channel, nothing run
 * without an approval); later alerts for that node, repeats and grouped ones
 * alike, join it: a thread note for each alert that is new or fires again,
 * silence for a repeat of one already firing. Resolved alerts add a thread
 * note, mark the card, and never start anything; once every alert of the
 * episode is resolved, the next firing one opens a new incident.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { writeFileAtomicAsync } from '../incidents/store.js';
import { ALERT_REQUESTER, type IncidentService } from '../incidents/incident-service.js';
import type { Incident } from '../incidents/incident.js';
import type { Inventory } from '../inventory/inventory.js';
import { validateNodeName } from '../inventory/node-name.js';
import type { AuditSink } from '../incidents/audit-log.js';
import type { Logger } from '../ports.js';
import { CLUSTER_NAME, clusterNodeKey, splitClusterNodeKey } from '../clusters/clusters.js';
import { alertKey, alertSource, channelOfAlert, nodeOfAlert, type Alert, type AlertRouting } from './alertmanager.js';
import type { InboxEntry } from './alert-inbox.js';

/** What the service needs. */
export interface AlertServiceDeps {
  incidents: Pick<IncidentService, 'diagnose' | 'note' | 'get'>;
  inventory: Inventory;
  routing: AlertRouting;
  /** Where the open episodes are kept (node → incident id). */
  stateDir: string;
  audit: AuditSink;
  logger: Logger;
  /**
   * The bot looks after several clusters: an alert's `cluster` label then says
   * which cluster its node is in (with one cluster the label is ignored: it is
   * often an external label), and the node watch names the cluster it watches.
   */
  severalClusters?: boolean;
}

/** An alert's `cluster` label (Prometheus' usual external label), when it is a cluster name. */
function clusterOf(alert: Alert): string | undefined {
  const c = alert.labels.cluster?.toLowerCase();
  return c && CLUSTER_NAME.test(c) ? c : undefined;
}


/** One alert, resolved to its node. */
interface Routed {
  alert: Alert;
  key: string;
}

export class AlertService {
  private episodes: Record<string, string> = {};
  private readonly file: string;
  private readonly unmapped = new Set<string>();

  constructor(private readonly d: AlertServiceDeps) {
    this.file = join(d.stateDir, 'episodes.json');
    if (existsSync(this.file)) {
      try {
        this.episodes = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string>;
      } catch {
        this.episodes = {};
      }
    }
  }

  /** Open episodes: node → incident id. */
  openEpisodes(): Readonly<Record<string, string>> {
    return this.episodes;
  }

  private async saveEpisodes(): Promise<void> {
    await writeFileAtomicAsync(this.file, JSON.stringify(this.episodes));
  }

  /** The node an alert names: an inventory node by name or address, else the label's value if it is a valid node name. */
  private nodeOf(alert: Alert): string | null {
    const raw = nodeOfAlert(alert, this.d.routing);
    if (!raw) return null;
    const byHost = this.d.inventory.nodes.find((n) => n.name === raw || n.host === raw);
    if (byHost) return byHost.name;
    // A FQDN label for a node the inventory knows by its short name.
    const short = raw.split('.')[0]!;
    if (this.d.inventory.nodes.some((n) => n.name === short)) return short;
    try {
      return validateNodeName(raw);
    } catch {
      return null;
    }
  }

  /** Handles one stored webhook. */
  async handle(entry: InboxEntry): Promise<void> {
    const { webhook, receivedAt } = entry;
    const byNode = new Map<string, Routed[]>();
    for (const alert of webhook.alerts) {
      const node = this.nodeOf(alert);
      if (!node) {
        const name = alert.labels.alertname ?? 'alert';
        if (!this.unmapped.has(name)) {
          this.unmapped.add(name);
          this.d.logger.warn('an alert names no node nodediag can use; ignored', { alertname: name, labels: this.d.routing.nodeLabels.join(',') });
          this.d.audit.append({ type: 'alert-unmapped', node: '*', actor: ALERT_REQUESTER, data: { alertname: name } });
        }
        continue;
      }
      const group = clusterNodeKey(this.d.severalClusters ? clusterOf(alert) : undefined, node);
      const list = byNode.get(group) ?? [];
      list.push({ alert, key: alertKey(alert) });
      byNode.set(group, list);
    }
    for (const [node, routed] of byNode) await this.forNode(node, routed, webhook.receiver, receivedAt);
  }

  /** The node watch's word, routed like an alert (receiver "kubernetes"). */
  async fromNodeWatch(cluster: string, node: string, status: 'firing' | 'resolved', since: number, message: string, now: number): Promise<void> {
    const named = this.d.severalClusters ? cluster : undefined;
    const alert: Alert = {
      status,
      labels: { alertname: 'NodeNotReady', node, source: 'nodediag-node-watch', ...(named ? { cluster: named } : {}) },
      annotations: { summary: `${node} is not Ready for more than ${Math.round((now - since) / 1000)} s (${message})`.slice(0, 300) },
      startsAt: new Date(since).toISOString(),
    };
    await this.forNode(clusterNodeKey(named, node), [{ alert, key: `node-watch:${node}` }], 'kubernetes', now);
  }

  private readonly chains = new Map<string, Promise<void>>();

  /** One node's alerts are handled one batch at a time (the inbox and the node watch both feed it). */
  private forNode(node: string, routed: Routed[], receiver: string, receivedAt: number): Promise<void> {
    const prev = this.chains.get(node) ?? Promise.resolve();
    const run = prev.then(() => this.forNodeNow(node, routed, receiver, receivedAt));
    const tail = run.catch(() => undefined);
    this.chains.set(node, tail);
    void tail.then(() => {
      if (this.chains.get(node) === tail) this.chains.delete(node);
    });
    return run;
  }

  private async forNodeNow(group: string, routed: Routed[], receiver: string, receivedAt: number): Promise<void> {
    const { cluster, node } = splitClusterNodeKey(group);
    const openId = this.episodes[group];
    const open = openId ? await this.d.incidents.get(openId) : null;
    if (open) {
      await this.join(group, open, routed);
      return;
    }
    const firing = routed.filter((r) => r.alert.status === 'firing');
    // Resolved alerts never start anything.
    if (!firing.length) return;
    const channel = channelOfAlert(firing[0]!.alert, receiver, this.d.routing);
    if (!channel) {
      this.d.logger.error('no channel for an alert; set NODEDIAG_ALERT_CHANNEL (or a receiver or label mapping)', { node, receiver });
      return;
    }
    const at = new Date(receivedAt).toISOString();
    const alerts: NonNullable<Incident['alerts']> = {};
    for (const r of firing) alerts[r.key] = { name: r.alert.labels.alertname ?? 'alert', status: 'firing', at };
    const opened = await this.d.incidents.diagnose({
      node,
      ...(cluster ? { cluster } : {}),
      channel,
      user: ALERT_REQUESTER,
      origin: alertSource(firing[0]!.alert, receiver),
      alerts,
      receivedAt,
      waitForSlot: true,
    });
    if ('reason' in opened) throw new Error(`cannot open an incident for ${node}: ${opened.reason}`);
    this.episodes[group] = opened.id;
    await this.saveEpisodes();
  }

  private async join(group: string, open: Incident, routed: Routed[]): Promise<void> {
    const { node } = splitClusterNodeKey(group);
    const known = open.alerts ?? {};
    const now = new Date().toISOString();
    const next = { ...known };
    const joined: string[] = [];
    const resolved: string[] = [];
    for (const { alert, key } of routed) {
      const name = alert.labels.alertname ?? 'alert';
      const was = known[key];
      if (alert.status === 'firing' && was?.status !== 'firing') {
        next[key] = { name, status: 'firing', at: now };
        joined.push(name);
      } else if (alert.status === 'resolved' && was?.status === 'firing') {
        next[key] = { name, status: 'resolved', at: now };
        resolved.push(name);
      }
    }
    if (!joined.length && !resolved.length) return;
    const allResolved = Object.values(next).every((a) => a.status === 'resolved');
    const change = { alerts: next, what: [...joined.map((n) => `alert ${n} joined`), ...resolved.map((n) => `alert ${n} resolved`)].join('; ') };
    try {
      if (joined.length) {
        // One note for every alert that joined, kept up to date: a burst of alerts is one message.
        const lines = Object.values(next).map((a) => `• *${a.name}* — ${a.status} since ${a.at.slice(11, 19)} UTC`);
        await this.d.incidents.note(open.id, `:bell: Also firing for ${node}: ${joined.map((n) => `*${n}*`).join(', ')} (joined this incident; no second card). Alerts on this incident:\n${lines.join('\n')}`, change, 'alerts');
      }
      if (resolved.length) {
        const text = [
          ...resolved.map((n) => `:white_check_mark: resolved: *${n}*`),
          ...(allResolved ? ['Every alert of this incident is resolved. Nothing was started by the resolution; re-diagnose to confirm the node is healthy.'] : []),
        ].join('\n');
        await this.d.incidents.note(open.id, text, joined.length ? undefined : change);
      }
    } catch (err) {
      throw new Error(`cannot add the alert note to ${open.id}: ${errorMessage(err)}`);
    }
    this.d.audit.append({ type: allResolved ? 'alerts-resolved' : 'alert-joined', node, actor: ALERT_REQUESTER, incident: open.id, data: { joined, resolved } });
    if (allResolved) {
      delete this.episodes[group];
      await this.saveEpisodes();
    }
  }
}
