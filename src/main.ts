/**
 * The composition root of the bot (`nodediag serve`): reads the
 * configuration once, builds every collaborator, recovers what a previous
 * run left (interrupted fixes, undelivered Slack posts), and starts the
 * Slack app, the outbox and the expiry sweeper.
 */
import { join } from 'node:path';
import { hostname } from 'node:os';
import { createKubeClient, createLeaseLock } from './adapters/kube.js';
import { createSlackChat } from './adapters/slack-web.js';
import { createSshConnector } from './adapters/ssh.js';
import { loadCatalogs } from './catalog/load.js';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import { FileAuditLog } from './incidents/audit-log.js';
import { IncidentService } from './incidents/incident-service.js';
import { Outbox, type OutboxOptions } from './incidents/outbox.js';
import { FileIncidentStore } from './incidents/store.js';
import { loadInventory } from './inventory/inventory.js';
import { createLogger } from './logger.js';
import { systemClock, type ChatPort, type Clock, type Logger } from './ports.js';
import { createRedactor } from './redact.js';
import type { FixDeps } from './runbooks/fix-service.js';
import { FileNodeLock, type NodeLock } from './runbooks/lock.js';
import { createSlackApp, type SlackApp } from './slack/app.js';
import { AccessPolicy } from './slack/authz.js';

/** A running bot. */
export interface Server {
  slack: SlackApp;
  service: IncidentService;
  outbox: Outbox;
  logger: Logger;
  stop(): Promise<void>;
}

/** Overrides for tests (a lock or chat adapter of their own). */
export interface ServerOverrides {
  chat?: ChatPort;
  lock?: NodeLock;
  logger?: Logger;
  outbox?: OutboxOptions;
  sweepIntervalMs?: number;
  /** Approval window in ms (the configuration counts in minutes). */
  approvalTtlMs?: number;
  /** The bot's clock (the soak test runs it fast). */
  clock?: Clock;
}

export async function startServer(config: Config, over: ServerOverrides = {}): Promise<Server> {
  const s = config.slack;
  if (!s.botToken) throw new ConfigError('SLACK_BOT_TOKEN is not set', 'see .env.example');
  if (!s.appToken && !s.signingSecret) throw new ConfigError('SLACK_SIGNING_SECRET is needed in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)');
  if (!config.inventoryPath) throw new ConfigError('NODEDIAG_INVENTORY is not set', 'point it at the inventory YAML');
  const redact = createRedactor([s.botToken, s.signingSecret, s.appToken]);
  const clock = over.clock ?? systemClock;
  const logger = over.logger ?? createLogger(config.logLevel, redact);
  const inventory = loadInventory(config.inventoryPath);
  const kube = createKubeClient({ kubeconfigPath: config.kubeconfigPath, requestTimeoutMs: config.kubeTimeoutMs });
  const chat = over.chat ?? createSlackChat(s.botToken, { apiUrl: s.apiUrl });
  const lock =
    over.lock ??
    (config.lockBackend === 'lease'
      ? await createLeaseLock({ kubeconfigPath: config.kubeconfigPath, requestTimeoutMs: config.kubeTimeoutMs, namespace: config.leaseNamespace, identity: `${hostname()}/${process.pid}` })
      : new FileNodeLock(join(config.stateDir, 'locks')));
  const fix: FixDeps = {
    catalogs: loadCatalogs(),
    inventory,
    ssh: createSshConnector({
      onHostKeyRefused: (node, v) => logger[v.reason === 'unknown' ? 'warn' : 'error'](v.reason === 'unknown' ? 'host key not pinned; refused' : 'POSSIBLE ATTACK: host key mismatch; refused', { node, presented: v.presented }),
    }),
    kube: kube.client,
    kubeUnavailableReason: kube.client ? '' : kube.reason,
    kubeWriter: kube.client,
    clock: clock,
    redact,
    maxOutputBytes: config.maxOutputBytes,
    audit: new FileAuditLog(config.auditLogPath, redact),
    lock,
  };
  const store = new FileIncidentStore(join(config.stateDir, 'incidents'));
  const outbox = new Outbox(join(config.stateDir, 'outbox'), chat, clock, logger, {
    postIntervalMs: 1000,
    // The outbox starts only once the service below exists.
    onUndeliverable: (op, code) => void service.undeliverable(op, code).catch((err) => logger.error('undeliverable message not handled', { error: redact(String(err)) })),
    ...over.outbox,
  });
  const access = new AccessPolicy(config.access, (g) => chat.groupMembers(g), clock, logger);
  const service = new IncidentService({
    fix,
    store,
    outbox,
    chat,
    access,
    clock: clock,
    logger,
    approvalTtlMs: over.approvalTtlMs ?? config.access.approvalTtlMs,
    maxConcurrentDiagnoses: config.maxConcurrentDiagnoses,
    fleetConcurrency: config.fleetConcurrency,
    auditPath: config.auditLogPath,
  });
  const recovered = await service.recover();
  if (recovered) logger.warn('recovered incidents left by a previous run', { count: recovered });
  outbox.start();
  let ready = false;
  const slack = createSlackApp(
    { botToken: s.botToken, signingSecret: s.signingSecret, appToken: s.appToken, apiUrl: s.apiUrl, port: s.port, ready: () => ready },
    { service, access, chat, inventory, discoverable: Boolean(inventory.defaults.knownHostsPath && kube.client), logger, redact },
  );
  await slack.start();
  ready = true;
  const sweeper = setInterval(() => void service.expireDue().catch((err) => logger.error('expiry sweep failed', { error: redact(String(err)) })), over.sweepIntervalMs ?? 10_000);
  sweeper.unref();
  logger.info('nodediag is serving', { mode: slack.mode, port: s.port, nodes: inventory.nodes.length });
  return {
    slack,
    service,
    outbox,
    logger,
    async stop() {
      ready = false;
      clearInterval(sweeper);
      await slack.stop();
      await service.idle();
      await outbox.drain(10_000);
      await outbox.stop();
    },
  };
}
