/**
 * Prometheus metrics (prom-client), served at /metrics on the bot's HTTP
 * port. The services report through the small {@link MetricsSink}; gauges
 * that describe state (incidents open, outbox depth, storm, pause) are read
 * when Prometheus scrapes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the services report. */
export interface MetricsSink {
  diagnosis(result: 'findings' | 'healthy' | 'unreachable' | 'error', seconds: number, findings: string[]): void;
  fixRun(runbook: string, outcome: string, seconds: number): void;
  alertToCard(seconds: number): void;
  alertsReceived(status: 'firing' | 'resolved', count: number): void;
  alertPayloadRefused(reason: 'auth' | 'malformed' | 'too-large'): void;
  outboxRetry(): void;
}

/** A sink that records nothing (CLI, tests that do not look). */
export const NO_METRICS: MetricsSink = {
  diagnosis: () => {},
  fixRun: () => {},
  alertToCard: () => {},
  alertsReceived: () => {},
  alertPayloadRefused: () => {},
  outboxRetry: () => {},
};

/** State read at scrape time. */
export interface MetricsState {
  incidentsByState(): Promise<Record<string, number>>;
  outboxDepth(): number;
  stormEngaged(): boolean;
  paused(): boolean;
  fixesQueued(): number;
}

/** The registry and the sink that feeds it. */
export class PrometheusMetrics implements MetricsSink {
  readonly registry = new Registry();
  private readonly diagnoses: Counter;
  private readonly findings: Counter;
  private readonly fixRuns: Counter;
  private readonly diagnosisSeconds: Histogram;
  private readonly fixSeconds: Histogram;
  private readonly alertCardSeconds: Histogram;
  private readonly alerts: Counter;
  private readonly refused: Counter;
  private readonly retries: Counter;

  constructor(state: MetricsState) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'nodediag_process_' });
    this.diagnoses = new Counter({ name: 'nodediag_diagnoses_total', help: 'Diagnoses finished, by result.', labelNames: ['result'], registers });
    this.findings = new Counter({ name: 'nodediag_findings_total', help: 'Findings made, by finding id.', labelNames: ['finding'], registers });
    this.fixRuns = new Counter({ name: 'nodediag_fix_runs_total', help: 'Fix runs ended, by runbook and outcome.', labelNames: ['runbook', 'outcome'], registers });
    this.diagnosisSeconds = new Histogram({ name: 'nodediag_diagnosis_duration_seconds', help: 'Time to diagnose one node.', buckets: [0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30], registers });
    this.fixSeconds = new Histogram({ name: 'nodediag_fix_duration_seconds', help: 'Time from approval to the end of a fix run.', buckets: [5, 15, 30, 60, 120, 300, 600, 1800], registers });
    this.alertCardSeconds = new Histogram({ name: 'nodediag_alert_to_card_seconds', help: 'Time from an alert received to its diagnosed card handed to Slack.', buckets: [0.5, 1, 2, 3, 5, 10, 30, 60], registers });
    this.alerts = new Counter({ name: 'nodediag_alerts_received_total', help: 'Alerts received from Alertmanager, by status.', labelNames: ['status'], registers });
    this.refused = new Counter({ name: 'nodediag_alert_payloads_refused_total', help: 'Alertmanager requests refused, by reason.', labelNames: ['reason'], registers });
    this.retries = new Counter({ name: 'nodediag_outbox_retries_total', help: 'Slack deliveries retried (rate limits, 5xx, network).', registers });
    new Gauge({
      name: 'nodediag_incidents_open',
      help: 'Incidents not yet closed, by state.',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        for (const [s, n] of Object.entries(await state.incidentsByState())) this.set({ state: s }, n);
      },
    });
    new Gauge({ name: 'nodediag_outbox_depth', help: 'Slack posts and updates waiting in the outbox.', registers, collect() { this.set(state.outboxDepth()); } });
    new Gauge({ name: 'nodediag_storm_gate_engaged', help: '1 while the storm gate holds fixes back.', registers, collect() { this.set(state.stormEngaged() ? 1 : 0); } });
    new Gauge({ name: 'nodediag_fixes_paused', help: '1 while /diag pause is in force.', registers, collect() { this.set(state.paused() ? 1 : 0); } });
    new Gauge({ name: 'nodediag_fixes_queued', help: 'Approved fixes waiting for a cluster fix slot.', registers, collect() { this.set(state.fixesQueued()); } });
  }

  diagnosis(result: 'findings' | 'healthy' | 'unreachable' | 'error', seconds: number, findings: string[]): void {
    this.diagnoses.inc({ result });
    this.diagnosisSeconds.observe(seconds);
    for (const f of findings) this.findings.inc({ finding: f });
  }

  fixRun(runbook: string, outcome: string, seconds: number): void {
    this.fixRuns.inc({ runbook, outcome });
    this.fixSeconds.observe(seconds);
  }

  alertToCard(seconds: number): void {
    this.alertCardSeconds.observe(seconds);
  }

  alertsReceived(status: 'firing' | 'resolved', count: number): void {
    this.alerts.inc({ status }, count);
  }

  alertPayloadRefused(reason: 'auth' | 'malformed' | 'too-large'): void {
    this.refused.inc({ reason });
  }

  outboxRetry(): void {
    this.retries.inc();
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
