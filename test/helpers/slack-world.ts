/**
 * The real bot (startServer: Bolt's HTTP receiver, the real Web API client)
 * against the Slack emulator and a simulated fleet.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalogs } from '../../src/catalog/load.js';
import { loadConfig } from '../../src/config.js';
import { startServer, type Server, type ServerOverrides } from '../../src/main.js';
import { silentLogger } from '../../src/ports.js';
import { ACTIONS } from '../../src/slack/blocks/incident-message.js';
import { APPROVE_VIEW } from '../../src/slack/blocks/thread-messages.js';
import { startSimFleet, type SimFleet, type SimNodeSpec } from '../../src/sim/sim-fleet.js';
import { blockActionBody, sendSigned, slashCommandBody, SlackEmulator, viewSubmissionBody, type EmulatedMessage } from '../../src/sim/slack-emulator.js';
import { freePort } from './sshd.js';
import { NODEDIAG_CRDS } from './kube-api.js';

/** The NodeIncident CRD as deployed. */

export const BOT_TOKEN = 'xoxb-1111111111-2222222222222-TestTokenForTheEmulator';
export const APP_TOKEN = 'xapp-1-A0001-3333333333333-TestAppLevelTokenForSocketMode';
export const SIGNING_SECRET = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6';
export const CHANNEL = 'C0INCIDENT';

/** Where the simulated nodes are described (an in-process fleet, or one in another process). */
export interface FleetFiles {
  inventoryPath: string;
  kubeconfigPath: string;
}

/** Another bot on the same Slack workspace and fleet. */
export interface Replica {
  server: Server;
  slash(text: string, user: string, channel?: string): ReturnType<typeof sendSigned>;
  click(action: string, value: string, user: string, channel?: string): ReturnType<typeof sendSigned>;
  submit(callbackId: string, metadata: string, user: string): ReturnType<typeof sendSigned>;
}

export interface SlackWorld {
  slack: SlackEmulator;
  fleet: SimFleet;
  server: Server;
  url: string;
  stateDir: string;
  slash(text: string, user: string, channel?: string): ReturnType<typeof sendSigned>;
  click(action: string, value: string, user: string, channel?: string): ReturnType<typeof sendSigned>;
  submit(callbackId: string, metadata: string, user: string): ReturnType<typeof sendSigned>;
  /** Polls until `predicate` holds (the bot works in the background). */
  until<T>(predicate: () => T | undefined | false | null, timeoutMs?: number, what?: string): Promise<T>;
  /** The bot's own HTTP base (http://127.0.0.1:PORT). */
  base: string;
  /** The bot's configuration, as environment variables (to start a real `nodediag serve` beside it). */
  env: Record<string, string>;
  /** A second bot process's twin (own port and state directory) on the same Slack, fleet and configuration. */
  replica(env?: Record<string, string>): Promise<Replica>;
  /** Stops the bot and starts a new one on the same state, port and configuration (`server` is the new one). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Approves a fix as `user` would: Approve, then the confirmation's submit — through `via`, another replica, when given. */
export async function approve(w: SlackWorld, id: string, user: string, via: Pick<Replica, 'click' | 'submit'> = w): Promise<void> {
  const views = w.slack.views.length;
  await via.click(ACTIONS.approve, id, user);
  await until(() => w.slack.views.length > views, 10_000, `the confirmation for ${user}`);
  await via.submit(APPROVE_VIEW, id, user);
}

/** Polls until `predicate` holds (the bot works in the background); on a timeout the error carries what `explain` says of the world then. */
export async function until<T>(
  predicate: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  timeoutMs = 15_000,
  what = 'a condition',
  explain?: () => string | Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) {
      const seen = explain ? await Promise.resolve().then(explain).catch((err: unknown) => `(could not say: ${String(err)})`) : '';
      throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)${seen ? `\n${seen}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A real `nodediag serve` (dist/src/cli.js) in a process of its own, so that it can be SIGKILLed, on the world's configuration; its Slack request URL once it is ready. */
export async function serveProcess(w: Pick<SlackWorld, 'env'>): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(process.cwd(), 'dist', 'src', 'cli.js'), 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...w.env, PORT: String(port), NODEDIAG_STATE_DIR: mkdtempSync(join(tmpdir(), 'nodediag-serve-')), NODEDIAG_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await until(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok, 20_000, 'the nodediag serve process ready');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { child, url: `http://127.0.0.1:${port}/slack/events` };
}

/** The incident id an incident card's buttons carry. */
export function incidentIdOf(m: EmulatedMessage): string | undefined {
  const actions = (m.blocks as Array<{ type: string; elements?: Array<{ value?: string }> }>).find((b) => b.type === 'actions');
  return actions?.elements?.[0]?.value;
}

export async function slackWorld(
  specs: SimNodeSpec[],
  env: Record<string, string> = {},
  over: ServerOverrides = {},
  stateDir = mkdtempSync(join(tmpdir(), 'nodediag-bot-')),
  fleetIn?: FleetFiles,
): Promise<SlackWorld> {
  const fleet = (fleetIn as SimFleet | undefined) ?? (await startSimFleet(specs, loadCatalogs(), { timeScale: 0.02 }));
  const slack = new SlackEmulator(BOT_TOKEN, APP_TOKEN);
  await slack.start();
  const port = await freePort();
  const configEnv = {
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slack.url,
    PORT: String(port),
    NODEDIAG_INVENTORY: fleet.inventoryPath,
    NODEDIAG_KUBECONFIG: fleet.kubeconfigPath,
    NODEDIAG_STATE_DIR: stateDir,
    NODEDIAG_APPROVERS: 'U0APPROVER,U0APPROVER2,U0APPROVER3',
    NODEDIAG_REQUESTERS: '',
    ...env,
  };
  const config = loadConfig(configEnv);
  if (config.store === 'kube' && !fleetIn) for (const crd of NODEDIAG_CRDS) fleet.kube.registerCrd(crd);
  const start = () => startServer(config, { logger: silentLogger, outbox: { postIntervalMs: 5, baseBackoffMs: 20, maxBackoffMs: 400 }, sweepIntervalMs: 200, ...over });
  const server = await start();
  const url = `http://127.0.0.1:${port}/slack/events`;
  const world: SlackWorld = {
    slack,
    fleet,
    server,
    url,
    base: `http://127.0.0.1:${port}`,
    stateDir,
    env: configEnv,
    slash: (text, user, channel = CHANNEL) => sendSigned(url, SIGNING_SECRET, slashCommandBody(text, user, channel, slack.responseUrl())),
    click: (action, value, user, channel = CHANNEL) => sendSigned(url, SIGNING_SECRET, blockActionBody(action, value, user, channel)),
    submit: (callbackId, metadata, user) => sendSigned(url, SIGNING_SECRET, viewSubmissionBody(callbackId, metadata, user)),
    until,
    async replica(extraEnv = {}) {
      const rport = await freePort();
      const rconfig = loadConfig({ ...configEnv, PORT: String(rport), NODEDIAG_STATE_DIR: mkdtempSync(join(tmpdir(), 'nodediag-replica-')), ...extraEnv });
      const rserver = await startServer(rconfig, { logger: silentLogger, outbox: { postIntervalMs: 5, baseBackoffMs: 20, maxBackoffMs: 400 }, sweepIntervalMs: 200, ...over });
      const rurl = `http://127.0.0.1:${rport}/slack/events`;
      return {
        server: rserver,
        slash: (text, user, channel = CHANNEL) => sendSigned(rurl, SIGNING_SECRET, slashCommandBody(text, user, channel, slack.responseUrl())),
        click: (action, value, user, channel = CHANNEL) => sendSigned(rurl, SIGNING_SECRET, blockActionBody(action, value, user, channel)),
        submit: (callbackId, metadata, user) => sendSigned(rurl, SIGNING_SECRET, viewSubmissionBody(callbackId, metadata, user)),
      };
    },
    async restart() {
      await world.server.stop();
      world.server = await start();
    },
    async stop() {
      await world.server.stop();
      await slack.stop();
      if (!fleetIn) await fleet.stop();
    },
  };
  return world;
}
