/**
 * All probes of a diagnosis run in ONE remote command: a script that starts
 * each probe in the background under its own `timeout -k`, caps its output
 * with awk, and tags every line `<probe-id>|`. One SSH session instead of
 * seventeen (sshd's per-session setup costs more than the probes), no temp
 * files on the node (a full disk is when a diagnosis matters most). Pure:
 * builds the script and parses its output.
 */
import { shellQuote } from '../shell.js';

/** One probe as the batch runs it. */
export interface BatchItem {
  id: string;
  /** The rendered probe script. */
  script: string;
  timeoutMs: number;
  maxOutputBytes: number;
}

/** What one probe produced inside the batch. */
export interface BatchResult {
  text: string;
  /** Exit status, or null when the batch ended before the probe reported. */
  exitCode: number | null;
  truncated: boolean;
  /** Duration measured on the node. */
  durationMs: number | null;
}

/** Longest line kept, so each tagged line stays one atomic pipe write. */
export const MAX_LINE_CHARS = 3800;

const PROBE_FN = [
  // probe ID TIMEOUT_S CAP SCRIPT: runs SCRIPT bounded, prints tagged lines, then ID|@@rc=N ms=M.
  // Times come from /proc/uptime through the read builtin: no fork per probe.
  'probe() {',
  '  read u _ < /proc/uptime; s=$(( ${u%.*}000 + 1${u#*.}0 - 1000 ))',
  `  rc=$( { { timeout -k 2 "$2" sh -c "$4" 2>&1; echo $? >&5; } | awk -v id="$1" -v cap="$3" '{ n += length($0) + 1; if (n > cap) { print id "|@@truncated"; fflush(); exit } print id "|" substr($0, 1, ${MAX_LINE_CHARS}); fflush() }' >&3; } 5>&1 )`,
  '  read u _ < /proc/uptime; e=$(( ${u%.*}000 + 1${u#*.}0 - 1000 ))',
  `  printf '%s|@@rc=%s ms=%s\\n' "$1" "\${rc:-141}" "$((e - s))"`,
  '}',
  'exec 3>&1',
].join('\n');

/** The batch script for these probes. */
export function buildBatchScript(items: BatchItem[]): string {
  const calls = items.map(
    (it) => `probe ${shellQuote(it.id)} ${Math.max(1, Math.ceil(it.timeoutMs / 1000))} ${it.maxOutputBytes} ${shellQuote(it.script)} &`,
  );
  return [PROBE_FN, ...calls, 'wait'].join('\n');
}

/** Splits the batch output back into per-probe results. */
export function parseBatchOutput(output: string, ids: string[]): Map<string, BatchResult> {
  const lines = new Map<string, string[]>(ids.map((id) => [id, []]));
  const results = new Map<string, BatchResult>();
  const truncated = new Set<string>();
  for (const raw of output.split('\n')) {
    const bar = raw.indexOf('|');
    if (bar <= 0) continue;
    const id = raw.slice(0, bar);
    const bucket = lines.get(id);
    if (!bucket) continue;
    const rest = raw.slice(bar + 1);
    if (rest === '@@truncated') {
      truncated.add(id);
      continue;
    }
    const rc = /^@@rc=(\d+) ms=(-?\d+)$/.exec(rest);
    if (rc) {
      results.set(id, { text: '', exitCode: Number(rc[1]), truncated: false, durationMs: Number(rc[2]) >= 0 ? Number(rc[2]) : null });
      continue;
    }
    bucket.push(rest);
  }
  const out = new Map<string, BatchResult>();
  for (const id of ids) {
    const r = results.get(id) ?? { text: '', exitCode: null, truncated: false, durationMs: null };
    out.set(id, { ...r, text: lines.get(id)!.join('\n'), truncated: truncated.has(id) });
  }
  return out;
}
