/**
 * The durable audit log: one JSON object per line, each entry carrying the
 * hash of the previous one (a hash chain), fsync'ed before the caller goes
 * on, plus a `.head` file with the last sequence number and hash, so that an
 * edited, removed (even the last) or reordered entry is detected by
 * `nodediag audit verify`.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { AuditError } from '../errors.js';
import type { Redactor } from '../redact.js';

/** What an audit entry records. */
export interface AuditEvent {
  /** Kind of event: fix-requested, approved, step-started, step-finished, run-finished, interrupted… */
  type: string;
  node: string;
  /** Who did it (a Slack user id, a CLI user) or `nodediag`. */
  actor: string;
  incident?: string;
  /** The node's cluster, when the bot looks after several. */
  cluster?: string;
  /** Details: command, exit status, duration, output excerpt (redacted). */
  data?: Record<string, unknown>;
}

/** An entry as stored. */
export interface AuditEntry extends AuditEvent {
  seq: number;
  ts: string;
  prev: string;
  hash: string;
}

/** Where audit entries go. */
export interface AuditSink {
  /** Appends durably; throws {@link AuditError} when it cannot. Returns the stored entry. */
  append(event: AuditEvent): AuditEntry;
}

const GENESIS = '0'.repeat(64);

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The hash of an entry (over everything but its own hash). */
export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  return createHash('sha256').update(canonical(e)).digest('hex');
}

function readHead(path: string): { seq: number; hash: string } | null {
  const head = `${path}.head`;
  if (!existsSync(head)) return null;
  const [seq, hash] = readFileSync(head, 'utf8').trim().split(' ');
  return { seq: Number(seq), hash: hash ?? '' };
}

/** A file-backed, hash-chained audit log. */
export class FileAuditLog implements AuditSink {
  private seq = 0;
  private last = GENESIS;

  constructor(
    readonly path: string,
    private readonly redact: Redactor,
    private readonly now: () => number = () => Date.now(),
  ) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      const head = readHead(path);
      if (head) {
        this.seq = head.seq;
        this.last = head.hash;
      }
    } catch (err) {
      throw new AuditError('AUDIT_UNWRITABLE', `cannot open the audit log ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 'set NODEDIAG_AUDIT_LOG to a writable file');
    }
  }

  append(event: AuditEvent): AuditEntry {
    const data = event.data ? (JSON.parse(this.redact(JSON.stringify(event.data))) as Record<string, unknown>) : undefined;
    const body: Omit<AuditEntry, 'hash'> = {
      seq: this.seq + 1,
      ts: new Date(this.now()).toISOString(),
      prev: this.last,
      type: event.type,
      node: event.node,
      actor: event.actor,
      ...(event.incident ? { incident: event.incident } : {}),
      ...(event.cluster ? { cluster: event.cluster } : {}),
      ...(data ? { data } : {}),
    };
    const entry: AuditEntry = { ...body, hash: entryHash(body) };
    try {
      const fd = openSync(this.path, 'a', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(entry)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      const tmp = `${this.path}.head.tmp`;
      const hfd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(hfd, `${entry.seq} ${entry.hash}\n`);
        fsyncSync(hfd);
      } finally {
        closeSync(hfd);
      }
      renameSync(tmp, `${this.path}.head`);
    } catch (err) {
      throw new AuditError(
        'AUDIT_UNWRITABLE',
        `cannot write the audit log ${this.path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        'no audit, no action: free disk space or fix permissions, then retry',
      );
    }
    this.seq = entry.seq;
    this.last = entry.hash;
    return entry;
  }
}

/** Result of checking an audit log. */
export interface AuditVerdict {
  ok: boolean;
  entries: number;
  /** The first problem found, with the 1-based line it concerns. */
  problem?: { line: number; reason: string };
}

/** Checks the chain of an audit log file and its head. */
export function verifyAuditLog(path: string): AuditVerdict {
  if (!existsSync(path)) return { ok: false, entries: 0, problem: { line: 0, reason: `no audit log at ${path}` } };
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim());
  let prev = GENESIS;
  let seq = 0;
  for (let i = 0; i < lines.length; i++) {
    let e: AuditEntry;
    try {
      e = JSON.parse(lines[i]!) as AuditEntry;
    } catch {
      return { ok: false, entries: i, problem: { line: i + 1, reason: 'not valid JSON' } };
    }
    if (e.seq !== seq + 1) return { ok: false, entries: i, problem: { line: i + 1, reason: `sequence ${e.seq} follows ${seq}: an entry was removed or reordered` } };
    if (e.prev !== prev) return { ok: false, entries: i, problem: { line: i + 1, reason: 'does not chain to the previous entry: an entry was removed, reordered or altered' } };
    const { hash, ...body } = e;
    if (entryHash(body) !== hash) return { ok: false, entries: i, problem: { line: i + 1, reason: 'its content does not match its hash: the entry was altered' } };
    prev = hash;
    seq = e.seq;
  }
  const head = readHead(path);
  if (head && (head.seq !== seq || head.hash !== prev)) {
    return { ok: false, entries: lines.length, problem: { line: lines.length, reason: `the log ends at entry ${seq} but its head says ${head.seq}: entries were removed from the end` } };
  }
  return { ok: true, entries: lines.length };
}

/**
 * The last `step-started` entry of each given incident, read from the log.
 * The log is flushed before each step runs, so after a crash it knows the
 * step in flight better than the incident store, which is written after.
 */
export function lastStepsStarted(path: string, incidents: ReadonlySet<string>): Map<string, { index: number; title: string }> {
  const found = new Map<string, { index: number; title: string }>();
  if (incidents.size === 0 || !existsSync(path)) return found;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.includes('"step-started"')) continue;
    try {
      const e = JSON.parse(line) as AuditEntry;
      if (e.type !== 'step-started' || !e.incident || !incidents.has(e.incident)) continue;
      found.set(e.incident, { index: Number(e.data?.index ?? 0), title: String(e.data?.title ?? '') });
    } catch {
      /* a torn last line after a crash: what came before still counts */
    }
  }
  return found;
}

/** An audit sink that names the cluster on every entry it appends. */
export function auditForCluster(sink: AuditSink, cluster: string): AuditSink {
  return { append: (event) => sink.append({ ...event, cluster }) };
}
