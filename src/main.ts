/**
 * The composition root of the bot (`nodediag serve`): reads the
 * configuration once, builds every collaborator, recovers what a previous
 * run left (interrupted fixes, undelivered Slack posts), and starts the
 * Slack app, the outbox and the expiry sweeper.
 */
import { join } from 'node:path';
import { createKubeIncidentStore } from './adapters/kube-incident-store.js';
import { createKubeRails } from './adapters/kube-rails.js';
import { createKubeOutboxStorage } from './adapters/kube-outbox.js';
import { createLeaderLease, soleLeader, type Leadership } from './adapters/leader-lease.js';
import { createSlackChat } from './adapters/slack-web.js';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import { FileAuditLog } from './incidents/audit-log.js';
import { IncidentService, railsKey } from './incidents/incident-service.js';
import { Outbox, type OutboxOptions } from './incidents/outbox.js';
import { incidentMessageDirectory } from './incidents/message-directory.js';
import { FileIncidentStore } from './incidents/store.js';
import { DEFAULT_CLUSTER, loadClusterSpecs, type ClusterSpec } from './clusters/clusters.js';
import { clusterIndex, lockSettings, openClusters, sharedDeps } from './clusters/cluster-access.js';
import { createLogger } from './logger.js';
import { systemClock, type ChatPort, type Clock, type Logger } from './ports.js';
import { createRedactor } from './redact.js';
import type { NodeLock } from './runbooks/lock.js';
import { createSlackApp, type SlackApp } from './slack/app.js';
import { AccessPolicy } from './slack/authz.js';
import { slackViews } from './slack/views.js';
import { AlertInbox } from './alerts/alert-inbox.js';
import { AlertService } from './alerts/alert-service.js';
import { alertIntake } from './alerts/intake.js';
import { NodeWatch } from './alerts/node-watch.js';
import { PrometheusMetrics } from './metrics.js';
import { RailsLedger, type RailsMemory } from './rails/ledger.js';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A running bot. */
export interface Server {
  slack: SlackApp;
  service: IncidentService;
  outbox: Outbox;
  alerts: AlertService;
  inbox: AlertInbox;
  metrics: PrometheusMetrics;
  /** One node watch per cluster with Kubernetes access (NODEDIAG_WATCH_NODES). */
  nodeWatches: NodeWatch[];
  /** Whether this process runs the periodic work (expiry, recovery) among those sharing the API. */
  leader: Leadership;
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
  if (!config.inventoryPath && !config.clustersPath) throw new ConfigError('NODEDIAG_INVENTORY is not set', 'point it at the inventory YAML (or NODEDIAG_CLUSTERS at a clusters file)');
  const specs: ClusterSpec[] = config.clustersPath
    ? loadClusterSpecs(config.clustersPath)
    : [{ name: config.clusterName ?? DEFAULT_CLUSTER, inventoryPath: config.inventoryPath!, ...(config.kubeconfigPath ? { kubeconfigPath: config.kubeconfigPath } : {}), channels: [] }];
  const redact = createRedactor([s.botToken, s.signingSecret, s.appToken, config.alerts.token, config.alerts.basicAuth, config.alerts.basicAuth?.split(':').slice(1).join(':')]);
  const clock = over.clock ?? systemClock;
  const logger = over.logger ?? createLogger(config.logLevel, redact);
  const chat = over.chat ?? createSlackChat(s.botToken, { apiUrl: s.apiUrl });
  const clusters = await openClusters(
    specs,
    {
      ...sharedDeps({
        redact,
        clock,
        maxOutputBytes: config.maxOutputBytes,
        onHostKeyRefused: (node, v) => logger[v.reason === 'unknown' ? 'warn' : 'error'](v.reason === 'unknown' ? 'host key not pinned; refused' : 'POSSIBLE ATTACK: host key mismatch; refused', { node, presented: v.presented }),
      }),
      audit: new FileAuditLog(config.auditLogPath, redact),
    },
    lockSettings(config, 'bot', over.lock),
  );
  // The first cluster is the default: the single-cluster paths use it.
  const home = clusters[0]!;
  const { inventory, fix } = home;
  const store =
    config.store === 'kube'
      ? await createKubeIncidentStore({ kubeconfigPath: config.kubeconfigPath, requestTimeoutMs: config.kubeTimeoutMs, namespace: config.leaseNamespace })
      : new FileIncidentStore(join(config.stateDir, 'incidents'));
  const scopes = new Map(clusters.map((c) => [c.name, new Set(c.inventory.nodes.map((n) => railsKey(c.name, n.name))) as ReadonlySet<string>]));
  // Replicas that share incidents share the rails too: a pause on one stops fixes on all, and a node's fix runs count once.
  const ledger: RailsMemory =
    config.store === 'kube'
      ? await createKubeRails({ kubeconfigPath: config.kubeconfigPath, requestTimeoutMs: config.kubeTimeoutMs, namespace: config.leaseNamespace, retryWindowMs: config.rails.retryWindowMs, stormWindowMs: config.rails.stormWindowMs, now: () => clock.now() })
      : new RailsLedger(join(config.stateDir, 'rails'), Math.max(config.rails.retryWindowMs, config.rails.stormWindowMs), () => clock.now());
  let outboxRef: Outbox | null = null;
  let serviceRef: IncidentService | null = null;
  const metrics = new PrometheusMetrics({
    incidentsByState: async () => {
      const open = await store.list(['diagnosing', 'awaiting-approval', 'approved', 'running']);
      const counts: Record<string, number> = { diagnosing: 0, 'awaiting-approval': 0, approved: 0, running: 0 };
      for (const i of open) counts[i.state] = (counts[i.state] ?? 0) + 1;
      return counts;
    },
    outboxDepth: () => outboxRef?.pending ?? 0,
    stormEngaged: () => Boolean(serviceRef?.stormNow()),
    paused: () => Boolean(serviceRef?.pauseNow()),
    fixesQueued: () => serviceRef?.fixesQueued ?? 0,
  });
  // Several processes on one API: one of them (the Lease holder) runs the periodic work and delivers the shared outbox.
  const leadership: Leadership =
    config.store === 'kube'
      ? await createLeaderLease({ kubeconfigPath: config.kubeconfigPath, requestTimeoutMs: config.kubeTimeoutMs, namespace: config.leaseNamespace, renewSeconds: config.leaseSeconds })
      : soleLeader();
  const outbox = new Outbox(join(config.stateDir, 'outbox'), chat, clock, logger, {
    postIntervalMs: 1000,
    onRetry: () => metrics.outboxRetry(),
    ...(config.store === 'kube'
      ? {
          directory: incidentMessageDirectory(store),
          storage: await createKubeOutboxStorage({ kubeconfigPath: config.kubeconfigPath, requestTimeoutMs: config.kubeTimeoutMs, namespace: config.leaseNamespace, now: () => clock.now() }),
          shared: { identity: leadership.identity, delivers: () => leadership.leading },
        }
      : {}),
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
    views: slackViews,
    sharedStore: config.store === 'kube',
    rails: { config: config.rails, ledger, scope: (cluster) => scopes.get(cluster) ?? new Set() },
    ...(clusters.length > 1 || home.name !== DEFAULT_CLUSTER ? { clusters: { index: clusterIndex(clusters, specs), fix: new Map(clusters.map((c) => [c.name, c.fix])) } } : {}),
    metrics,
  });
  outboxRef = outbox;
  serviceRef = service;
  const alertsDir = join(config.stateDir, 'alerts');
  const inbox = new AlertInbox(join(alertsDir, 'inbox'), logger);
  const alerts = new AlertService({ incidents: service, inventory, routing: config.alerts.routing, stateDir: alertsDir, audit: fix.audit, logger, severalClusters: clusters.length > 1 });
  if (config.alerts.routing.defaultChannel && config.access.channels.length && !config.access.channels.includes(config.alerts.routing.defaultChannel)) {
    logger.warn('NODEDIAG_ALERT_CHANNEL is not in NODEDIAG_CHANNELS: alert cards there cannot be approved');
  }
  const recovered = await service.recover();
  if (recovered) logger.warn('recovered incidents left by a previous run', { count: recovered });
  await leadership.lead().catch((err) => logger.error('leader election failed; another round follows', { error: redact(String(err)) }));
  await outbox.start();
  if (inbox.pending) logger.warn('alerts received before a restart are handled now', { webhooks: inbox.pending });
  inbox.start((e) => alerts.handle(e));
  const routes = [
    {
      path: '/metrics',
      method: ['GET'],
      handler: (_req: IncomingMessage, res: ServerResponse) =>
        void metrics.scrape().then(
          (m) => {
            res.writeHead(200, { 'content-type': m.contentType });
            res.end(m.body);
          },
          () => {
            res.writeHead(500);
            res.end();
          },
        ),
    },
    {
      path: '/alerts/alertmanager',
      method: ['POST'],
      handler: alertIntake({ token: config.alerts.token, basicAuth: config.alerts.basicAuth, maxBytes: config.alerts.maxBytes, accept: (w, at) => inbox.accept(w, at), now: () => clock.now(), metrics, logger }),
    },
  ];
  let ready = false;
  const slack = createSlackApp(
    { botToken: s.botToken, signingSecret: s.signingSecret, appToken: s.appToken, apiUrl: s.apiUrl, port: s.port, ready: () => ready, routes },
    { service, access, chat, inventory, discoverable: Boolean(inventory.defaults.knownHostsPath && home.kube), severalClusters: clusters.length > 1, logger, redact },
  );
  await slack.start();
  ready = true;
  const nodeWatches: NodeWatch[] = [];
  if (config.watch.nodes) {
    const watchable = clusters.filter((c) => c.kube);
    if (watchable.length === 0) throw new ConfigError('NODEDIAG_WATCH_NODES needs Kubernetes access', home.kubeUnavailableReason);
    if (!config.alerts.routing.defaultChannel) throw new ConfigError('NODEDIAG_WATCH_NODES needs NODEDIAG_ALERT_CHANNEL (where its incidents go)');
    for (const c of clusters.filter((x) => !x.kube)) logger.warn('cluster not watched: no Kubernetes access', { cluster: c.name, reason: c.kubeUnavailableReason });
    for (const c of watchable) {
      const watch = new NodeWatch(
        c.kube!,
        {
          notReady: (node, since, message) => alerts.fromNodeWatch(c.name, node, 'firing', since, message, clock.now()),
          readyAgain: (node) => alerts.fromNodeWatch(c.name, node, 'resolved', clock.now(), 'Ready', clock.now()),
        },
        config.watch.notReadyMs,
        clock,
        logger,
      );
      await watch.start();
      nodeWatches.push(watch);
    }
  }
  let sweeping = false;
  // Shared: every third of the Lease (as its renewals), so a dead replica's fix is marked interrupted soon after its Lease lapses.
  const sweepMs = over.sweepIntervalMs ?? (config.store === 'kube' ? Math.min(10_000, (config.leaseSeconds * 1000) / 3) : 10_000);
  const sweeper = setInterval(() => {
    // What other replicas recorded (a pause, unhealthy nodes) reaches this one's cards and metrics too.
    if (config.store === 'kube') void ledger.refresh().catch((err) => logger.error('rails refresh failed', { error: redact(String(err)) }));
    if (sweeping) return;
    sweeping = true;
    void (async () => {
      const leads = await leadership.lead().catch((err) => {
        logger.error('leader election failed; no sweep this round', { error: redact(String(err)) });
        return false;
      });
      if (!leads) return;
      await service.expireDue().catch((err) => logger.error('expiry sweep failed', { error: redact(String(err)) }));
      // With a shared store, a fix whose process died (its Lease lapsed) is found by the leader's next sweep.
      if (config.store === 'kube') await service.recover().catch((err) => logger.error('recovery sweep failed', { error: redact(String(err)) }));
    })().finally(() => (sweeping = false));
  }, sweepMs);
  sweeper.unref();
  logger.info('nodediag is serving', { mode: slack.mode, port: s.port, nodes: inventory.nodes.length });
  return {
    slack,
    service,
    outbox,
    alerts,
    inbox,
    metrics,
    nodeWatches,
    leader: leadership,
    logger,
    async stop() {
      ready = false;
      clearInterval(sweeper);
      await leadership.stop().catch((err) => logger.error('leader lease release failed (it lapses)', { error: redact(String(err)) }));
      for (const watch of nodeWatches) watch.stop();
      await slack.stop();
      await inbox.stop();
      await service.idle();
      await outbox.drain(10_000);
      await outbox.stop();
    },
  };
}
