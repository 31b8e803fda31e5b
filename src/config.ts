/**
 * Configuration from the environment. Only the composition roots (main.ts
 * for the bot, cli.ts for the terminal) call {@link loadConfig}; everything
 * else receives what it needs. Every variable read here is listed in
 * .env.example.
 */
import { z } from 'zod';
import type { AlertRouting } from './alerts/alertmanager.js';
import { ConfigError } from './errors.js';
import { DEFAULT_RAILS, type RailsConfig } from './rails/gates.js';

const intFrom = (def: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const boolFrom = (def: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      if (/^(1|true|yes|on)$/i.test(v)) return true;
      if (/^(0|false|no|off)$/i.test(v)) return false;
      ctx.addIssue({ code: 'custom', message: 'must be true or false' });
      return z.NEVER;
    });

const listFrom = z
  .string()
  .optional()
  .transform((v) => (v ? v.split(/[\s,]+/).filter(Boolean) : []));

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v && v.trim() ? v.trim() : undefined));

const envObject = z.object({
  NODEDIAG_INVENTORY: optionalString,
  NODEDIAG_KUBECONFIG: optionalString,
  NODEDIAG_CLUSTERS: optionalString,
  NODEDIAG_CLUSTER_NAME: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a DNS label').optional(),
  NODEDIAG_MAX_OUTPUT_BYTES: intFrom(256 * 1024, 4096, 16 * 1024 * 1024),
  NODEDIAG_FLEET_CONCURRENCY: intFrom(16, 1, 256),
  NODEDIAG_MAX_CONCURRENT_DIAGNOSES: intFrom(32, 1, 1024),
  NODEDIAG_KUBE_TIMEOUT_MS: intFrom(5000, 500, 120_000),
  NODEDIAG_STATE_DIR: optionalString,
  NODEDIAG_AUDIT_LOG: optionalString,
  NODEDIAG_LOG_LEVEL: z.enum(['info', 'warn', 'error']).optional().default('info'),
  // Slack (Bolt's standard names).
  SLACK_BOT_TOKEN: optionalString,
  SLACK_SIGNING_SECRET: optionalString,
  SLACK_APP_TOKEN: optionalString,
  SLACK_API_URL: optionalString,
  PORT: intFrom(3000, 1, 65535),
  // Who may do what.
  NODEDIAG_REQUESTERS: listFrom,
  NODEDIAG_APPROVERS: listFrom,
  NODEDIAG_APPROVER_GROUP: optionalString,
  NODEDIAG_CHANNELS: listFrom,
  NODEDIAG_ALLOW_SELF_APPROVAL: boolFrom(false),
  NODEDIAG_APPROVAL_TTL_MINUTES: intFrom(15, 1, 24 * 60),
  NODEDIAG_LOCK_BACKEND: z.enum(['file', 'lease']).optional(),
  NODEDIAG_LEASE_NAMESPACE: optionalString,
  NODEDIAG_STORE: z.enum(['file', 'kube']).default('file'),
  NODEDIAG_LEASE_SECONDS: intFrom(15, 3, 3600),
  // Fleet safety rails.
  NODEDIAG_MAX_CONCURRENT_FIXES: intFrom(1, 1, 64),
  NODEDIAG_STORM_UNHEALTHY_PERCENT: intFrom(30, 1, 100),
  NODEDIAG_STORM_MIN_NODES: intFrom(2, 1, 10_000),
  NODEDIAG_STORM_INCIDENTS: intFrom(10, 1, 10_000),
  NODEDIAG_FIX_RETRY_BUDGET: intFrom(2, 1, 100),
  // Alertmanager in.
  NODEDIAG_ALERT_TOKEN: optionalString,
  NODEDIAG_ALERT_BASIC_AUTH: optionalString,
  NODEDIAG_ALERT_CHANNEL: optionalString,
  NODEDIAG_ALERT_CHANNEL_LABEL: optionalString,
  NODEDIAG_ALERT_RECEIVER_CHANNELS: listFrom,
  NODEDIAG_ALERT_NODE_LABELS: listFrom,
  NODEDIAG_ALERT_MAX_BYTES: intFrom(1024 * 1024, 1024, 64 * 1024 * 1024),
  // Kubernetes as an alert source.
  NODEDIAG_WATCH_NODES: boolFrom(false),
  NODEDIAG_NOT_READY_SECONDS: intFrom(120, 10, 86_400),
});

const envSchema = envObject.transform((e, ctx) => {
  if (e.NODEDIAG_ALERT_BASIC_AUTH !== undefined && !/^[^:]+:.+$/.test(e.NODEDIAG_ALERT_BASIC_AUTH)) {
    ctx.addIssue({ code: 'custom', path: ['NODEDIAG_ALERT_BASIC_AUTH'], message: 'must be user:password' });
  }
  if (e.NODEDIAG_ALERT_CHANNEL !== undefined && !/^[CG][A-Z0-9]{2,}$/.test(e.NODEDIAG_ALERT_CHANNEL)) {
    ctx.addIssue({ code: 'custom', path: ['NODEDIAG_ALERT_CHANNEL'], message: 'must be a Slack channel id (C…)' });
  }
  return { ...e, receiverChannels: receiverChannels(e.NODEDIAG_ALERT_RECEIVER_CHANNELS, ctx) };
});

/** Every environment variable nodediag reads (all documented in .env.example). */
export const ENV_KEYS = Object.keys(envObject.shape);

/** Labels that name the node in an alert, tried in order. */
export const DEFAULT_NODE_LABELS = ['node', 'kubernetes_node', 'nodename', 'node_name', 'hostname', 'instance'];

/** The validated configuration. */
export interface Config {
  inventoryPath?: string;
  kubeconfigPath?: string;
  /** A YAML file listing several clusters (the bot); else the one cluster of inventoryPath/kubeconfigPath. */
  clustersPath?: string;
  /** The name of that one cluster, shown on cards (default "default", not shown). */
  clusterName?: string;
  maxOutputBytes: number;
  fleetConcurrency: number;
  maxConcurrentDiagnoses: number;
  kubeTimeoutMs: number;
  stateDir: string;
  auditLogPath: string;
  logLevel: 'info' | 'warn' | 'error';
  slack: {
    botToken?: string;
    signingSecret?: string;
    appToken?: string;
    apiUrl?: string;
    port: number;
  };
  access: {
    requesters: string[];
    approvers: string[];
    approverGroup?: string;
    channels: string[];
    allowSelfApproval: boolean;
    approvalTtlMs: number;
  };
  lockBackend: 'file' | 'lease';
  /** The bot's own namespace: its Leases and, with the kube store, its NodeIncidents. */
  leaseNamespace: string;
  /** Where incidents and the rails live: files in the state directory, or NodeIncident resources and a NodediagRails object (manifests/kubernetes/crd.yaml). */
  store: 'file' | 'kube';
  /** How long a fix's Lease lasts without renewal: how soon another process sees that the one running a fix died. */
  leaseSeconds: number;
  rails: RailsConfig;
  alerts: {
    /** Bearer token Alertmanager sends (http_config.authorization.credentials). */
    token?: string;
    /** `user:password` Alertmanager sends (http_config.basic_auth). */
    basicAuth?: string;
    routing: AlertRouting;
    maxBytes: number;
  };
  watch: { nodes: boolean; notReadyMs: number };
}

/** `receiver=C123` pairs. */
function receiverChannels(pairs: string[], ctx: z.RefinementCtx): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const m = /^([^=]+)=([CG][A-Z0-9]{2,})$/.exec(p);
    if (!m) {
      ctx.addIssue({ code: 'custom', path: ['NODEDIAG_ALERT_RECEIVER_CHANNELS'], message: `"${p}" is not receiver=CHANNEL_ID` });
      continue;
    }
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** Reads and validates the configuration; errors name the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`, 'see .env.example for every variable');
  }
  const e = parsed.data;
  const stateDir = e.NODEDIAG_STATE_DIR ?? './nodediag-state';
  return {
    inventoryPath: e.NODEDIAG_INVENTORY,
    kubeconfigPath: e.NODEDIAG_KUBECONFIG,
    clustersPath: e.NODEDIAG_CLUSTERS,
    clusterName: e.NODEDIAG_CLUSTER_NAME,
    maxOutputBytes: e.NODEDIAG_MAX_OUTPUT_BYTES,
    fleetConcurrency: e.NODEDIAG_FLEET_CONCURRENCY,
    maxConcurrentDiagnoses: e.NODEDIAG_MAX_CONCURRENT_DIAGNOSES,
    kubeTimeoutMs: e.NODEDIAG_KUBE_TIMEOUT_MS,
    stateDir,
    auditLogPath: e.NODEDIAG_AUDIT_LOG ?? `${stateDir}/audit.jsonl`,
    logLevel: e.NODEDIAG_LOG_LEVEL,
    slack: {
      botToken: e.SLACK_BOT_TOKEN,
      signingSecret: e.SLACK_SIGNING_SECRET,
      appToken: e.SLACK_APP_TOKEN,
      apiUrl: e.SLACK_API_URL,
      port: e.PORT,
    },
    access: {
      requesters: e.NODEDIAG_REQUESTERS,
      approvers: e.NODEDIAG_APPROVERS,
      approverGroup: e.NODEDIAG_APPROVER_GROUP,
      channels: e.NODEDIAG_CHANNELS,
      allowSelfApproval: e.NODEDIAG_ALLOW_SELF_APPROVAL,
      approvalTtlMs: e.NODEDIAG_APPROVAL_TTL_MINUTES * 60_000,
    },
    lockBackend: e.NODEDIAG_LOCK_BACKEND ?? (env.KUBERNETES_SERVICE_HOST ? 'lease' : 'file'),
    leaseNamespace: e.NODEDIAG_LEASE_NAMESPACE ?? 'nodediag',
    store: e.NODEDIAG_STORE,
    leaseSeconds: e.NODEDIAG_LEASE_SECONDS,
    rails: {
      ...DEFAULT_RAILS,
      maxConcurrentFixes: e.NODEDIAG_MAX_CONCURRENT_FIXES,
      stormUnhealthyShare: e.NODEDIAG_STORM_UNHEALTHY_PERCENT / 100,
      stormMinNodes: e.NODEDIAG_STORM_MIN_NODES,
      stormIncidents: e.NODEDIAG_STORM_INCIDENTS,
      retryBudget: e.NODEDIAG_FIX_RETRY_BUDGET,
    },
    alerts: {
      token: e.NODEDIAG_ALERT_TOKEN,
      basicAuth: e.NODEDIAG_ALERT_BASIC_AUTH,
      routing: {
        nodeLabels: e.NODEDIAG_ALERT_NODE_LABELS.length ? e.NODEDIAG_ALERT_NODE_LABELS : DEFAULT_NODE_LABELS,
        ...(e.NODEDIAG_ALERT_CHANNEL ? { defaultChannel: e.NODEDIAG_ALERT_CHANNEL } : {}),
        ...(e.NODEDIAG_ALERT_CHANNEL_LABEL ? { channelLabel: e.NODEDIAG_ALERT_CHANNEL_LABEL } : {}),
        channelByReceiver: e.receiverChannels,
      },
      maxBytes: e.NODEDIAG_ALERT_MAX_BYTES,
    },
    watch: { nodes: e.NODEDIAG_WATCH_NODES, notReadyMs: e.NODEDIAG_NOT_READY_SECONDS * 1000 },
  };
}
