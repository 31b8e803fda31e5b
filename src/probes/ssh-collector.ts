/**
 * Runs the SSH probes over one open connection and turns each into an
 * observation. A probe that fails or times out is reported as such; the
 * others still count.
 */
import { StringDecoder } from 'node:string_decoder';
import type { SshProbe } from '../catalog/schema.js';
import { renderScript, templateParams } from '../catalog/template.js';
import type { Observation } from '../diagnose/observation.js';
import { errorMessage } from '../errors.js';
import type { Clock, ExecResult, RemoteShell } from '../ports.js';
import type { Redactor } from '../redact.js';
import { TIMEOUT_EXIT_CODES, wrapStdinScriptCommand } from '../shell.js';
import { BatchProgress, buildBatchScript, parseBatchOutput, type BatchItem, type BatchResult } from './batch.js';
import { defaultLayout, LAYOUT_PARAM_NAMES, layoutLines, resolveLayout, type LayoutOverrides, type NodeLayout } from './layout.js';
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
    maxOutputBytes: capOf(probe, ctx),
  };
}

/** The SSH probes' observations and the layout the main probes were rendered with. */
export interface SshProbeResult {
  observations: Observation[];
  /** What the layout probes found (defaults when they could not run). */
  layout: NodeLayout;
}

const LAYOUT_PARAMS = new Set<string>(LAYOUT_PARAM_NAMES);

/** A main probe whose script names a path or unit the layout probe finds. */
function needsLayout(probe: SshProbe): boolean {
  return probe.stage !== 'layout' && templateParams(probe.script).some((name) => LAYOUT_PARAMS.has(name));
}

/**
 * Runs the SSH probes in two remote commands on one connection: the
 * `layout` probes with every probe that needs no path from them, and the
 * probes rendered with the paths the first layout probe found. Both sessions
 * open at once (a session's setup on the node costs about as much as a
 * probe); the second reads its script from standard input, sent as soon as
 * the layout probe has reported (not when the first command ends). Each
 * probe runs under its own deadline and output cap (see batch.ts).
 */
export async function runSshProbes(shell: RemoteShell, probes: SshProbe[], ctx: SshProbeContext): Promise<SshProbeResult> {
  const finder = probes.find((p) => p.stage === 'layout');
  const layoutOf = (o: Observation | undefined) => (o?.status === 'ok' ? resolveLayout(o.lines, ctx.overrides) : defaultLayout(ctx.overrides));
  let found: (o: Observation | undefined) => void = () => undefined;
  const layout = new Promise<Observation | undefined>((resolve) => (found = resolve)).then(layoutOf);
  const first = runBatch(shell, probes.filter((p) => !needsLayout(p)), ctx, null, finder && { id: finder.id, then: found });
  // A shell that does not stream its output: the layout is known when the first command ends.
  void first.then((obs) => found(obs.find((o) => o.check === finder?.id)));
  const rest = probes.filter(needsLayout);
  const [firstObs, restObs] = await Promise.all([first, rest.length ? runBatch(shell, rest, ctx, { layout, waitMs: finder?.timeoutMs ?? 0 }) : []]);
  const resolved = await layout;
  const finderObs = firstObs.find((o) => o.check === finder?.id);
  if (finderObs?.status === 'ok') finderObs.lines = [...finderObs.lines, ...layoutLines(resolved)];
  // Reported as before: the layout probes first, then the others in catalog order.
  const order = new Map([...probes.filter((p) => p.stage === 'layout'), ...probes.filter((p) => p.stage !== 'layout')].map((p, i) => [p.id, i]));
  return { observations: [...firstObs, ...restObs].sort((a, b) => order.get(a.check)! - order.get(b.check)!), layout: resolved };
}

/** A probe whose observation is wanted as soon as it has finished, before the rest of its batch. */
interface EarlyWatch {
  id: string;
  then: (o: Observation) => void;
}

/** A layout still being found (the batch's session opens now; its script follows), with the longest that can take. */
interface PendingLayout {
  layout: Promise<NodeLayout>;
  waitMs: number;
}

function capOf(probe: SshProbe, ctx: SshProbeContext): number {
  return probe.maxOutputBytes ?? ctx.maxOutputBytes;
}

/** One remote command for these probes, its script read from standard input: rendered without the layout, or (`pending`) with it once it is known. */
async function runBatch(shell: RemoteShell, probes: SshProbe[], ctx: SshProbeContext, pending: PendingLayout | null, early?: EarlyWatch): Promise<Observation[]> {
  const script = (l: NodeLayout | null) => buildBatchScript(probes.map((p) => renderProbe(p, ctx, l)));
  const longest = Math.max(...probes.map((p) => p.timeoutMs));
  const batchTimeoutMs = longest + 3000 + (pending?.waitMs ?? 0);
  const command = wrapStdinScriptCommand({ timeoutMs: batchTimeoutMs });
  const cap = probes.reduce((n, p) => n + Math.ceil(capOf(p, ctx) * 1.25) + 4096, 0);
  let sentAtMs = ctx.clock.now();
  const input = (pending?.layout ?? Promise.resolve(null)).then((l) => {
    sentAtMs = ctx.clock.now();
    return script(l);
  });
  // When each probe's result arrived (a short probe's clock reading is not blurred by the batch's slowest).
  const arrivedAt = new Map<string, number>();
  const progress = new BatchProgress(probes.map((p) => p.id));
  const decoder = new StringDecoder('utf8');
  let soFar = '';
  const onStdout = (chunk: Buffer) => {
    const text = decoder.write(chunk);
    if (early && !arrivedAt.has(early.id)) soFar += text;
    for (const id of progress.push(text)) {
      arrivedAt.set(id, ctx.clock.now());
      if (id === early?.id) {
        const probe = probes.find((p) => p.id === id)!;
        early.then(observe(probe, parseBatchOutput(soFar, [id]).get(id)!, sentAtMs, arrivedAt.get(id)!, ctx));
        soFar = '';
      }
    }
  };
  let result: ExecResult;
  try {
    result = await shell.exec(command, { timeoutMs: batchTimeoutMs + CLIENT_DEADLINE_GRACE_MS, maxOutputBytes: cap, onStdout, input });
  } catch (err) {
    const reason = ctx.redact(errorMessage(err));
    return probes.map((p) => ({ check: p.id, status: 'failed' as const, lines: [], exitCode: null, durationMs: ctx.clock.now() - sentAtMs, truncated: false, reason }));
  }
  const receivedAtMs = ctx.clock.now();
  const parsed = parseBatchOutput(result.stdout, probes.map((p) => p.id));
  const batchProblem = result.exitCode === null || result.exitCode === 127 || result.exitCode === 126;
  return probes.map((probe) => {
    const r = parsed.get(probe.id)!;
    if (r.exitCode !== null) return observe(probe, r, sentAtMs, arrivedAt.get(probe.id) ?? receivedAtMs, ctx);
    const { status, reason } =
      result.timedOut || !batchProblem || result.truncated
        ? { status: 'timeout' as const, reason: `no result within ${batchTimeoutMs / 1000} s` }
        : { status: 'failed' as const, reason: `the probe batch did not run: ${(result.stderr.split('\n')[0] ?? '').slice(0, 160)}` };
    return observe(probe, r, sentAtMs, receivedAtMs, ctx, { status, reason });
  });
}

/** One probe's observation from its part of the batch output (`missing`: how it ended when it never reported). */
function observe(
  probe: SshProbe,
  r: BatchResult,
  sentAtMs: number,
  receivedAtMs: number,
  ctx: SshProbeContext,
  missing?: Pick<Observation, 'status' | 'reason'>,
): Observation {
  const { status, reason } = missing ?? statusOf({ exitCode: r.exitCode, text: r.text, timedOut: false }, probe.timeoutMs, probe.ranIf);
  const raw = ctx.redact(r.text);
  const lines = parseOutput(probe.parser, raw, { sentAtMs, receivedAtMs });
  const nodeNowSec = probe.parser === 'journal' ? journalNow(raw) : undefined;
  const truncatedReason = r.truncated ? `output cut at ${capOf(probe, ctx)} bytes` : undefined;
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
}

/** Observations for SSH probes that could not run (no connection). */
export function skippedSshProbes(probes: SshProbe[], reason: string): Observation[] {
  return probes.map((p) => ({ check: p.id, status: 'skipped' as const, lines: [], exitCode: null, durationMs: 0, truncated: false, reason }));
}
