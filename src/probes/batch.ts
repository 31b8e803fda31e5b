/**
 * All probes of a diagnosis run in ONE remote command: a script that starts
 * each probe in the background, bounded by its own deadline (`timeout -k`,
 * one per distinct deadline), caps its output with awk, and tags every line
 * `<probe-id>|`. One SSH session instead of
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

// The batch's own lines after `<id>|`: a probe's status, the end of its output, its output cut.
const RC_LINE = /^@@rc=(\d+) ms=(-?\d+)$/;
const END_MARK = '@@end';
const TRUNCATED_MARK = '@@truncated';

/** A tagged line's probe id (among `ids`) and the rest, or null for a line that is not one. */
function untag<T>(line: string, ids: Map<string, T>): { id: string; of: T; rest: string } | null {
  const bar = line.indexOf('|');
  const of = bar > 0 ? ids.get(line.slice(0, bar)) : undefined;
  return of === undefined ? null : { id: line.slice(0, bar), of, rest: line.slice(bar + 1) };
}

const PROBE_FN = [
  // probe ID CAP SCRIPT: starts SCRIPT in the background, in a subshell (a fork, no exec; the
  // pipeline itself is the background job: no shell forked just to wait for it), its lines tagged by awk, then
  // prints ID|@@rc=N ms=M from the subshell's EXIT trap. Times come from /proc/uptime through the
  // read builtin. The group's `timeout` TERMs the whole group at its deadline: a probe still running
  // then reports 124, and its tagger, which ignores TERM, still passes on what the probe printed
  // before (mawk reads ahead). A probe whose output was cut reports 141 (SIGPIPE). The tagger ends
  // with ID|@@end once the probe's output is all passed on: the rc line can overtake the last lines.
  // A probe's own line that starts with @ or \ gets a \ in front, so it can never pass for one of these.
  '_nd_end() {',
  '  read _nd_u _ < /proc/uptime; _nd_e=$(( ${_nd_u%.*}000 + 1${_nd_u#*.}0 - 1000 ))',
  `  printf '%s|@@rc=%s ms=%s\\n' "$_nd_id" "$1" "$((_nd_e - _nd_s))"`,
  '}',
  'probe() {',
  '  _nd_id=$1 _nd_sc=$3',
  '  read _nd_u _ < /proc/uptime; _nd_s=$(( ${_nd_u%.*}000 + 1${_nd_u#*.}0 - 1000 ))',
  `  { trap '_nd_end $? >&3' EXIT; trap 'exit 124' TERM; trap 'exit 141' PIPE; set --; eval "$_nd_sc"; } 2>&1 | ( trap '' TERM; exec awk -v id="$1" -v cap="$2" '{ n += length($0) + 1; if (n > cap) { print id "|${TRUNCATED_MARK}"; fflush(); exit } l = substr($0, 1, ${MAX_LINE_CHARS}); if (l ~ /^[@\\\\]/) l = "\\\\" l; print id "|" l; fflush() } END { print id "|${END_MARK}" }' ) >&3 &`,
  '}',
  'exec 3>&1',
].join('\n');

/**
 * The batch script for these probes. Probes that share a deadline run under
 * one `timeout` (a probe's own deadline, without a `timeout` and a shell
 * exec per probe: process creation is most of a small probe's cost). Each
 * group's shell gets the probe function through the environment and the
 * probe scripts as its arguments, so no script is quoted twice.
 */
export function buildBatchScript(items: BatchItem[]): string {
  const groups = new Map<number, BatchItem[]>();
  for (const it of items) {
    const seconds = Math.max(1, Math.ceil(it.timeoutMs / 1000));
    groups.set(seconds, [...(groups.get(seconds) ?? []), it]);
  }
  const launches = [...groups].map(([seconds, group]) => {
    const calls = group.map((it, i) => `probe ${shellQuote(it.id)} ${it.maxOutputBytes} "$${i + 1}"`);
    const body = ['eval "$_nd_fn"', ...calls, 'wait'].join('\n');
    return `timeout -k 2 ${seconds} sh -c ${shellQuote(body)} sh ${group.map((it) => shellQuote(it.script)).join(' ')} &`;
  });
  return [`_nd_fn=${shellQuote(PROBE_FN)}; export _nd_fn`, ...launches, 'wait'].join('\n');
}

/**
 * Follows a batch's output as it arrives and says which probes have
 * finished: their exit status and all their output are in (the status line
 * and the tagger's end mark can come in either order).
 */
export class BatchProgress {
  private partial = '';
  private readonly seen = new Map<string, { rc: boolean; end: boolean }>();

  constructor(ids: string[]) {
    for (const id of ids) this.seen.set(id, { rc: false, end: false });
  }

  /** Takes the next piece of output; returns the probes it completed. */
  push(text: string): string[] {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    const done: string[] = [];
    for (const line of lines) {
      const tagged = untag(line, this.seen);
      if (!tagged || (tagged.of.rc && tagged.of.end)) continue;
      const { id, of: state, rest } = tagged;
      if (rest === END_MARK) state.end = true;
      else if (RC_LINE.test(rest)) state.rc = true;
      else continue;
      if (state.rc && state.end) done.push(id);
    }
    return done;
  }
}

/** Splits the batch output back into per-probe results. */
export function parseBatchOutput(output: string, ids: string[]): Map<string, BatchResult> {
  const lines = new Map<string, string[]>(ids.map((id) => [id, []]));
  const results = new Map<string, BatchResult>();
  const truncated = new Set<string>();
  for (const raw of output.split('\n')) {
    const tagged = untag(raw, lines);
    if (!tagged) continue;
    const { id, of: bucket, rest } = tagged;
    if (rest === TRUNCATED_MARK) {
      truncated.add(id);
      continue;
    }
    if (rest === END_MARK) continue;
    if (rest.startsWith('\\')) {
      bucket.push(rest.slice(1));
      continue;
    }
    const rc = RC_LINE.exec(rest);
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
