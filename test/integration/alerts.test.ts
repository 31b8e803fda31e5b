/**
 * Alerts in: the real Alertmanager pointed at the real bot (Bolt's HTTP
 * server, the Web API client against the Slack emulator) and a simulated
 * fleet. One card per broken node, marked as opened by the alert; repeats
 * and grouped alerts join it; resolved alerts note it and start nothing;
 * nothing runs without an approval.
 */
import { jest } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import type { EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { startAlertmanager, type RealAlertmanager } from '../helpers/alertmanager.js';
import { CHANNEL, slackWorld, until, type SlackWorld } from '../helpers/slack-world.js';

jest.setTimeout(90_000);

const TOKEN = 'am-webhook-token-4f1d2c8a9b7e6d5c';

/** Root messages (cards) about a node. */
function cardsFor(w: SlackWorld, node: string): EmulatedMessage[] {
  return [...w.slack.messages.values()].filter((m) => !m.threadTs && m.text.startsWith(`${node}:`));
}

function cardText(m: EmulatedMessage): string {
  return JSON.stringify(m.blocks);
}

/** Fix steps started on a node, from the audit log (every step is logged before it runs). */
function stepsStarted(w: SlackWorld, node: string): string[] {
  return readFileSync(join(w.stateDir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; node: string })
    .filter((e) => e.type === 'step-started' && e.node === node)
    .map((e) => JSON.stringify(e));
}

function incidents(w: SlackWorld): Array<{ id: string; node: string; state: string; alerts?: Record<string, { status: string }> }> {
  const dir = join(w.stateDir, 'incidents');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

describe('the real Alertmanager feeds the bot', () => {
  let w: SlackWorld;
  let am: RealAlertmanager;
  beforeAll(async () => {
    // Seven nodes, two broken: under the storm gate's 30%.
    w = await slackWorld(
      [
        { name: 'gpu-node-1', faults: ['containerd-socket-is-directory'], toolkitPod: true },
        { name: 'gpu-node-2', faults: ['containerd-config-invalid'] },
        { name: 'gpu-node-3' },
        { name: 'gpu-node-4' },
        { name: 'gpu-node-5' },
        { name: 'gpu-node-6' },
        { name: 'gpu-node-7' },
      ],
      { NODEDIAG_ALERT_TOKEN: TOKEN, NODEDIAG_ALERT_CHANNEL: CHANNEL },
    );
    am = await startAlertmanager(`${w.base}/alerts/alertmanager`, ['authorization:', `  credentials: '${TOKEN}'`]);
  });
  afterAll(async () => {
    await am?.stop();
    await w?.stop();
  });

  it('one diagnosed card per broken node, opened by the alert, nothing run; a grouped second alert joins it with one note', async () => {
    await am.post([
      {
        labels: { alertname: 'KubePodCrashLooping', node: 'gpu-node-1', namespace: 'gpu-operator', pod: 'nvidia-container-toolkit-daemonset-84xtt', severity: 'critical' },
        annotations: { summary: 'Pod gpu-operator/nvidia-container-toolkit-daemonset-84xtt is crash looping' },
        generatorURL: 'http://prometheus.example/graph?g0.expr=kube_pod_container_status_waiting_reason',
      },
      // The node exporter's view of the other node: instance with a port.
      { labels: { alertname: 'NodeContainerRuntimeDown', instance: 'gpu-node-2:9100', severity: 'critical' }, annotations: { summary: 'containerd is not running' } },
    ]);
    const c1 = await until(() => cardsFor(w, 'gpu-node-1').find((m) => cardText(m).includes(ACTIONS.approve)), 20_000, 'the diagnosed card for gpu-node-1');
    const c2 = await until(() => cardsFor(w, 'gpu-node-2').find((m) => cardText(m).includes(ACTIONS.approve)), 20_000, 'the diagnosed card for gpu-node-2');
    expect(c1.text).toMatch(/containerd-socket-is-directory \(root cause\)/);
    expect(cardText(c1)).toMatch(/Opened by alert \*KubePodCrashLooping\* \(critical\): Pod gpu-operator\/nvidia-container-toolkit-daemonset-84xtt is crash looping/);
    expect(cardText(c1)).toContain('http://prometheus.example/graph');
    expect(cardText(c2)).toMatch(/Opened by alert \*NodeContainerRuntimeDown\*/);
    expect(c2.text).toMatch(/containerd-config-invalid \(root cause\)/);

    // A second alert for gpu-node-1, grouped by node: a note in its thread, no second card.
    await am.post([{ labels: { alertname: 'KubeNodeNotReady', node: 'gpu-node-1', severity: 'warning' }, annotations: { summary: 'gpu-node-1 has been unready for more than 15 minutes' } }]);
    await until(() => w.slack.thread(c1.ts).find((m) => /Also firing for gpu-node-1: \*KubeNodeNotReady\*/.test(m.text)), 20_000, 'the note for the second alert');
    // Alertmanager re-sends the whole group on each change: the first alert again, silently.
    await new Promise((r) => setTimeout(r, 2500));
    expect(cardsFor(w, 'gpu-node-1')).toHaveLength(1);
    expect(w.slack.thread(c1.ts).filter((m) => /Also firing/.test(m.text))).toHaveLength(1);
    // A third one joins the same note (edited, not a new message).
    await am.post([{ labels: { alertname: 'KubeletDown', node: 'gpu-node-1', severity: 'critical' }, annotations: { summary: 'kubelet has disappeared' } }]);
    await until(() => w.slack.thread(c1.ts).find((m) => /Also firing for gpu-node-1: \*KubeletDown\*/.test(m.text) && /KubeNodeNotReady/.test(m.text)), 20_000, 'the note updated');
    expect(w.slack.thread(c1.ts).filter((m) => /Also firing/.test(m.text))).toHaveLength(1);
    expect(cardsFor(w, 'gpu-node-1')).toHaveLength(1);

    // Nothing ran: no step on either node, both still broken.
    expect(stepsStarted(w, 'gpu-node-1')).toEqual([]);
    expect(stepsStarted(w, 'gpu-node-2')).toEqual([]);
    expect(w.fleet.nodes.get('gpu-node-1')!.runtimeHealthy).toBe(false);
  });

  it('a resolved alert notes the thread and marks the card; it starts nothing', async () => {
    const before = incidents(w).length;
    const past = new Date(Date.now() - 1000).toISOString();
    await am.post([{ labels: { alertname: 'NodeContainerRuntimeDown', instance: 'gpu-node-2:9100', severity: 'critical' }, annotations: { summary: 'containerd is not running' }, endsAt: past }]);
    const card = cardsFor(w, 'gpu-node-2')[0]!;
    await until(() => w.slack.thread(card.ts).find((m) => /resolved: \*NodeContainerRuntimeDown\*/.test(m.text)), 20_000, 'the resolved note');
    await until(() => /resolved\* at/.test(cardText(w.slack.messages.get(card.ts)!)), 10_000, 'the card marked resolved');
    expect(incidents(w)).toHaveLength(before);
    expect(stepsStarted(w, 'gpu-node-2')).toEqual([]);
    // The fix is still offered (the alert resolving proves nothing about the node).
    expect(cardText(w.slack.messages.get(card.ts)!)).toContain(ACTIONS.approve);
  });

  it('an alert for a node the bot does not know gets one card that says so, however often it repeats', async () => {
    const alert = { labels: { alertname: 'KubeNodeNotReady', node: 'cpu-node-99', severity: 'warning' }, annotations: { summary: 'cpu-node-99 is NotReady' } };
    await am.post([alert]);
    const card = await until(() => cardsFor(w, 'cpu-node-99').find((m) => /not diagnosed|not in/.test(cardText(m))), 20_000, 'the unknown-node card');
    expect(cardText(card)).toMatch(/cpu-node-99.*not in nodediag's inventory|not in the inventory/);
    await am.post([{ ...alert, labels: { ...alert.labels, alertname: 'KubeletDown' } }]);
    await new Promise((r) => setTimeout(r, 3000));
    expect(cardsFor(w, 'cpu-node-99')).toHaveLength(1);
  });

  it('/metrics scrapes: diagnoses, findings, alerts, alert → card time, incidents open, outbox, storm and pause', async () => {
    const res = await fetch(`${w.base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^nodediag_diagnoses_total\{result="findings"\} [1-9]/m);
    expect(text).toMatch(/^nodediag_findings_total\{finding="containerd-socket-is-directory"\} [1-9]/m);
    expect(text).toMatch(/^nodediag_alerts_received_total\{status="firing"\} [1-9]/m);
    expect(text).toMatch(/^nodediag_alerts_received_total\{status="resolved"\} [1-9]/m);
    expect(text).toMatch(/^nodediag_alert_to_card_seconds_count [1-9]/m);
    expect(text).toMatch(/^nodediag_incidents_open\{state="awaiting-approval"\} [1-9]/m);
    expect(text).toMatch(/^nodediag_outbox_depth \d+/m);
    expect(text).toMatch(/^nodediag_storm_gate_engaged 0$/m);
    expect(text).toMatch(/^nodediag_fixes_paused 0$/m);
  });
});

describe('the webhook refuses what it should', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld([{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }], { NODEDIAG_ALERT_BASIC_AUTH: 'alertmanager:s3cret-pass', NODEDIAG_ALERT_CHANNEL: CHANNEL, NODEDIAG_ALERT_MAX_BYTES: '4096' });
  });
  afterAll(() => w?.stop());

  const payload = (node: string) => ({
    version: '4',
    groupKey: '{}:{node="' + node + '"}',
    status: 'firing',
    receiver: 'nodediag',
    groupLabels: { node },
    commonLabels: { alertname: 'X', node },
    commonAnnotations: {},
    externalURL: 'http://am',
    alerts: [{ status: 'firing', labels: { alertname: 'X', node }, annotations: {}, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: 'a1b2c3d4e5f60718' }],
  });
  const post = (body: string, auth?: string) => fetch(`${w.base}/alerts/alertmanager`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body });
  const basic = `Basic ${Buffer.from('alertmanager:s3cret-pass').toString('base64')}`;

  it('401 without credentials, with wrong ones, or with a bearer token when basic auth is configured', async () => {
    const body = JSON.stringify(payload('gpu-node-1'));
    expect((await post(body)).status).toBe(401);
    expect((await post(body, `Basic ${Buffer.from('alertmanager:wrong').toString('base64')}`)).status).toBe(401);
    expect((await post(body, 'Bearer s3cret-pass')).status).toBe(401);
  });

  it('400 for malformed JSON, a payload that is not Alertmanager\'s, and one over the size limit; nothing is posted', async () => {
    const r1 = await post('{"version": "4", ', basic);
    const r2 = await post(JSON.stringify({ ...payload('gpu-node-1'), version: '3' }), basic);
    const r3 = await post(JSON.stringify({ ...payload('gpu-node-1'), alerts: [] }), basic);
    const big = payload('gpu-node-1');
    big.commonAnnotations = { description: 'x'.repeat(10_000) } as never;
    const r4 = await post(JSON.stringify(big), basic);
    expect([r1.status, r2.status, r3.status, r4.status]).toEqual([400, 400, 400, 400]);
    expect(await r4.json()).toMatchObject({ error: expect.stringMatching(/larger than 4096 bytes/) });
    await new Promise((r) => setTimeout(r, 500));
    expect(w.slack.calls.filter((c) => c.method === 'chat.postMessage')).toEqual([]);
  });

  it('200 with the right basic auth, and the card follows', async () => {
    const r = await post(JSON.stringify(payload('gpu-node-1')), basic);
    expect(r.status).toBe(200);
    await until(() => cardsFor(w, 'gpu-node-1').find((m) => cardText(m).includes(ACTIONS.approve)), 20_000, 'the card');
  });
});

describe('Kubernetes as a source: the node watch (opt-in)', () => {
  let w: SlackWorld;
  beforeAll(async () => {
    w = await slackWorld(
      // Seven nodes: two NotReady stay under the storm gate.
      [{ name: 'gpu-node-1', faults: ['containerd-socket-is-directory'] }, ...[2, 3, 4, 5, 6, 7].map((i) => ({ name: `gpu-node-${i}` }))],
      { NODEDIAG_WATCH_NODES: 'true', NODEDIAG_NOT_READY_SECONDS: '10', NODEDIAG_ALERT_CHANNEL: CHANNEL },
    );
  });
  afterAll(() => w?.stop());

  it('a node NotReady past the threshold opens one incident; Ready again notes it; the watch survives the API server ending it', async () => {
    const started = Date.now();
    const card = await until(() => cardsFor(w, 'gpu-node-1').find((m) => cardText(m).includes(ACTIONS.approve)), 30_000, 'the watch card');
    expect(Date.now() - started).toBeGreaterThanOrEqual(9000);
    expect(cardText(card)).toMatch(/Opened by alert \*NodeNotReady\*: gpu-node-1 is not Ready for more than 1\d s/);
    expect([2, 3, 4, 5, 6, 7].flatMap((i) => cardsFor(w, `gpu-node-${i}`))).toEqual([]);

    // The API server ends watches now and then; the bot watches again.
    w.fleet.kube.endNodeWatches();
    w.fleet.nodes.get('gpu-node-3')!.inject('containerd-down');
    await until(() => cardsFor(w, 'gpu-node-3').find((m) => cardText(m).includes('NodeNotReady')), 30_000, 'a card after the watch was re-opened');

    // The fix makes gpu-node-1 Ready: its thread hears it, and nothing else starts.
    const { APPROVE_VIEW } = await import('../../src/slack/blocks/thread-messages.js');
    const id = JSON.stringify(card.blocks).match(/inc-[0-9a-f]{16}/)![0];
    await w.click(ACTIONS.approve, id, 'U0APPROVER');
    await until(() => w.slack.views.length > 0, 5000, 'the modal');
    await w.submit(APPROVE_VIEW, id, 'U0APPROVER');
    await until(() => w.slack.thread(card.ts).find((m) => m.text.startsWith('Incident summary')), 30_000, 'the fix summary');
    await until(() => w.slack.thread(card.ts).find((m) => /resolved: \*NodeNotReady\*/.test(m.text)), 30_000, 'the Ready-again note');
    expect(cardsFor(w, 'gpu-node-1')).toHaveLength(1);
  });
});
