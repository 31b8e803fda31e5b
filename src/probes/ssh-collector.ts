/**
 * Runs the SSH probes over one open connection and turns each into an
 * observation. A probe that fails or times out is reported as such; the
 * others still count.
 */
import type { SshProbe } from '../catalog/schema.js';
import { renderScript } from '../catalog/template.js';
import type { Observation } from '../diagnose/observation.js';
import { errorMessage } from '../errors.js';
import type { Clock, ExecResult, RemoteShell } from '../ports.js';
import type { Redactor } from '../redact.js';
import { TIMEOUT_EXIT_CODES, wrapRemoteCommand } from '../shell.js';
import { buildBatchScript, parseBatchOutput, type BatchItem } from './batch.js';
import { defaultLayout, layoutLines, resolveLayout, type LayoutOverrides, type NodeLayout } from './layout.js';
import { journalNow, parseOutput } from './parsers.js';

/** What the SSH probes need to know about the node and the run. */
export interface SshProbeContext {
  sudo: boolean;
  /** Paths the inventory pins instead of discovering them. */
  overrides: LayoutOverrides;
  /** Journal lines before this node-clock epoch second do not count (after a fix: only fresh evidence). */
  sinceEpochSec?: number;
  /** Output cap per probe unless the probe sets its own. */
  maxOutputBytes: number;
  clock: Clock;
  redact: Redactor;
}

/** Slack the client-side deadline allows beyond the remote `timeout`, for `-k` and the network. */
export const CLIENT_DEADLINE_GRACE_MS = 2500;

/** Classifies a finished probe into a check status and reason (`ranIf`: the line that proves it looked). */
export function statusOf(r: { exitCode: number | null; text: string; timedOut: boolean }, timeoutMs: number, ranIf?: string): Pick<Observation, 'status' | 'reason'> {
  if (r.timedOut || (r.exitCode !== null && TIMEOUT_EXIT_CODES.has(r.exitCode))) {
    return { status: 'timeout', reason: `no answer within ${timeoutMs / 1000} s` };
  }
  const firstLine = r.text.split('\n').find((l) => l.trim()) ?? '';
  const sudo = /^sudo: (.*)$/m.exec(r.text);
  if (sudo) return { status: 'failed', reason: `sudo refused: ${sudo[1]!.slice(0, 160)}` };
  if (r.exitCode === 127) return { status: 'failed', reason: `command not found: ${firstLine.slice(0, 160)}` };
  if (r.exitCode === 126) return { status: 'failed', reason: `not executable: ${firstLine.slice(0, 160)}` };
  if (ranIf && !new RegExp(ranIf, 'm').test(r.text)) {
    return { status: 'failed', reason: firstLine ? `it did not get to look: ${firstLine.slice(0, 160)}` : 'it printed nothing (exit status ' + String(r.exitCode) + ')' };
  }
  return { status: 'ok' };
}

function renderProbe(probe: SshProbe, ctx: SshProbeContext, layout: NodeLayout | null): BatchItem {
  return {
    id: probe.id,
    script: renderScript(probe.script, { sudo: ctx.sudo, ...(layout?.params ?? {}), since: String(ctx.sinceEpochSec ?? 0) }),
    timeoutMs: probe.timeoutMs,
    maxOutputBytes: probe.maxOutputBytes ?? ctx.maxOutputBytes,
  };
}

/** The SSH probes' observations and the layout the main probes were rendered with. */
export interface SshProbeResult {
  observations: Observation[];
  /** What the layout probes found (defaults when they could not run). */
  layout: NodeLayout;
}

/**
 * Runs the SSH probes: the `layout` probes first (one command), then every
 * `main` probe rendered with the paths they found, in one remote command
 * (see batch.ts), each under its own deadline and output cap.
 */
export async function runSshProbes(shell: RemoteShell, probes: SshProbe[], ctx: SshProbeContext): Promise<SshProbeResult> {
  const first = probes.filter((p) => p.stage === 'layout');
  const rest = probes.filter((p) => p.stage !== 'layout');
  const layoutObs = first.length ? await runBatch(shell, first, ctx, null) : [];
  // The first layout probe finds the paths; the others ride along on its short round trip (the clock).
  const finder = layoutObs[0];
  const layout = finder?.status === 'ok' ? resolveLayout(finder.lines, ctx.overrides) : defaultLayout(ctx.overrides);
  if (finder?.status === 'ok') finder.lines = [...finder.lines, ...layoutLines(layout)];
  const mainObs = await runBatch(shell, rest, ctx, layout);
  return { observations: [...layoutObs, ...mainObs], layout };
}

async function runBatch(shell: RemoteShell, probes: SshProbe[], ctx: SshProbeContext, layout: NodeLayout | null): Promise<Observation[]> {
  const items = probes.map((p) => renderProbe(p, ctx, layout));
  const longest = Math.max(...items.map((i) => i.timeoutMs));
  const batchTimeoutMs = longest + 3000;
  const command = wrapRemoteCommand(buildBatchScript(items), { timeoutMs: batchTimeoutMs });
  const cap = items.reduce((n, i) => n + Math.ceil(i.maxOutputBytes * 1.25) + 4096, 0);
  const sentAtMs = ctx.clock.now();
  let result: ExecResult;
  try {
    result = await shell.exec(command, { timeoutMs: batchTimeoutMs + CLIENT_DEADLINE_GRACE_MS, maxOutputBytes: cap });
  } catch (err) {
    const reason = ctx.redact(errorMessage(err));
    return probes.map((p) => ({ check: p.id, status: 'failed' as const, lines: [], exitCode: null, durationMs: ctx.clock.now() - sentAtMs, truncated: false, reason }));
  }
  const receivedAtMs = ctx.clock.now();
  const parsed = parseBatchOutput(result.stdout, items.map((i) => i.id));
  const batchProblem = result.exitCode === null || result.exitCode === 127 || result.exitCode === 126;
  return probes.map((probe) => {
    const r = parsed.get(probe.id)!;
    const missing = r.exitCode === null;
    const { status, reason } = missing
      ? result.timedOut || !batchProblem || result.truncated
        ? { status: 'timeout' as const, reason: `no result within ${batchTimeoutMs / 1000} s` }
        : { status: 'failed' as const, reason: `the probe batch did not run: ${(result.stderr.split('\n')[0] ?? '').slice(0, 160)}` }
      : statusOf({ exitCode: r.exitCode, text: r.text, timedOut: false }, probe.timeoutMs, probe.ranIf);
    const raw = ctx.redact(r.text);
    const lines = parseOutput(probe.parser, raw, { sentAtMs, receivedAtMs });
    const nodeNowSec = probe.parser === 'journal' ? journalNow(raw) : undefined;
    const truncatedReason = r.truncated ? `output cut at ${items.find((i) => i.id === probe.id)!.maxOutputBytes} bytes` : undefined;
    const why = reason ?? truncatedReason;
    return {
      check: probe.id,
      status,
      lines,
      raw,
      exitCode: r.exitCode,
      durationMs: r.durationMs ?? receivedAtMs - sentAtMs,
      truncated: r.truncated,
      ...(why ? { reason: ctx.redact(why) } : {}),
      ...(nodeNowSec !== undefined ? { nodeNowSec } : {}),
    };
  });
}

/** Observations for SSH probes that could not run (no connection). */
export function skippedSshProbes(probes: SshProbe[], reason: string): Observation[] {
  return probes.map((p) => ({ check: p.id, status: 'skipped' as const, lines: [], exitCode: null, durationMs: 0, truncated: false, reason }));
}
