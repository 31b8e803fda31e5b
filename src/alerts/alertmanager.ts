/**
 * Alertmanager's webhook payload (version 4), validated, and how an alert
 * maps to a node and a channel. Pure.
 */
import { z } from 'zod';

const labelMap = z.record(z.string().max(200), z.string().max(4096));

/** One alert as Alertmanager sends it. */
export const alertSchema = z
  .object({
    status: z.enum(['firing', 'resolved']),
    labels: labelMap,
    annotations: labelMap.default({}),
    startsAt: z.string().max(64),
    endsAt: z.string().max(64).optional(),
    generatorURL: z.string().max(2048).optional(),
    fingerprint: z.string().max(64).optional(),
  })
  .passthrough();
export type Alert = z.infer<typeof alertSchema>;

/** The webhook body (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). */
export const webhookSchema = z
  .object({
    version: z.literal('4'),
    groupKey: z.string().max(4096),
    truncatedAlerts: z.number().int().min(0).optional(),
    status: z.enum(['firing', 'resolved']),
    receiver: z.string().max(200),
    groupLabels: labelMap.default({}),
    commonLabels: labelMap.default({}),
    commonAnnotations: labelMap.default({}),
    externalURL: z.string().max(2048).default(''),
    alerts: z.array(alertSchema).min(1).max(1000),
  })
  .passthrough();
export type Webhook = z.infer<typeof webhookSchema>;

/** How alerts map to nodes and channels (from the configuration). */
export interface AlertRouting {
  /** Labels that may name the node, in order (`instance` has its port stripped). */
  nodeLabels: string[];
  /** Where cards go when nothing more specific says. */
  defaultChannel?: string;
  /** A label whose value is the channel id (e.g. `slack_channel`). */
  channelLabel?: string;
  /** Receiver name → channel id. */
  channelByReceiver: Record<string, string>;
}

/** `host:port`, `[v6]:port` or a bare host → the host. */
function hostOfInstance(raw: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(raw);
  if (v6) return v6[1]!;
  // A bare IPv6 address has several colons and no port.
  return (raw.match(/:/g) ?? []).length > 1 ? raw : raw.replace(/:\d+$/, '');
}

/** The node an alert is about, or null (with the labels looked at). */
export function nodeOfAlert(alert: Pick<Alert, 'labels'>, routing: Pick<AlertRouting, 'nodeLabels'>): string | null {
  for (const label of routing.nodeLabels) {
    const raw = alert.labels[label]?.trim();
    if (!raw) continue;
    // instance="10.0.0.7:9100" or "gpu-node-7:9100": the host part.
    const value = label === 'instance' ? hostOfInstance(raw) : raw;
    if (value) return value.toLowerCase();
  }
  return null;
}

/** The channel a card for this alert goes to, or null when no rule says. */
export function channelOfAlert(alert: Pick<Alert, 'labels'>, receiver: string, routing: AlertRouting): string | null {
  const byLabel = routing.channelLabel ? alert.labels[routing.channelLabel]?.trim() : undefined;
  if (byLabel && /^[CG][A-Z0-9]{2,}$/.test(byLabel)) return byLabel;
  return routing.channelByReceiver[receiver] ?? routing.defaultChannel ?? null;
}

/** A stable identity for an alert (Alertmanager's fingerprint, else its sorted labels). */
export function alertKey(alert: Pick<Alert, 'labels' | 'fingerprint'>): string {
  if (alert.fingerprint && /^[0-9a-f]{8,64}$/.test(alert.fingerprint)) return alert.fingerprint;
  return Object.entries(alert.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** What a card says about the alert that opened it. */
export interface AlertSource {
  alertname: string;
  summary: string;
  link?: string;
  receiver: string;
  severity?: string;
  /** When it fired (startsAt). */
  firedAt: string;
}

/** The card's view of an alert. */
export function alertSource(alert: Alert, receiver: string): AlertSource {
  const link = alert.generatorURL && /^https?:\/\//.test(alert.generatorURL) ? alert.generatorURL : undefined;
  return {
    alertname: (alert.labels.alertname ?? 'alert').slice(0, 120),
    summary: (alert.annotations.summary ?? alert.annotations.description ?? alert.annotations.message ?? '').slice(0, 300),
    ...(link ? { link } : {}),
    receiver: receiver.slice(0, 120),
    ...(alert.labels.severity ? { severity: alert.labels.severity.slice(0, 40) } : {}),
    firedAt: alert.startsAt,
  };
}
