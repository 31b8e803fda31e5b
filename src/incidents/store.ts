/**
 * Durable incident state: one JSON file per incident, written atomically
 * (temp file, fsync, rename), with a version for compare-and-set so that a
 * state change happens once even when Slack delivers a click twice. A small
 * in-memory cache holds recent incidents; the files are the truth. One
 * process only: several replicas share incidents through the Kubernetes
 * store (adapters/kube-incident-store.ts).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { NodediagError } from '../errors.js';
import { INCIDENT_ID, TERMINAL_STATES, type Incident, type IncidentState } from './incident.js';

/** A compare-and-set lost to a concurrent change. */
export class ConflictError extends NodediagError {
  constructor(id: string) {
    super('STORE_ERROR', `incident ${id} changed concurrently`);
  }
}

/** Where incidents live. */
export interface IncidentStore {
  get(id: string): Promise<Incident | null>;
  create(incident: Incident): Promise<void>;
  /** Writes `next` if the stored version is still `next.version - 1`; else {@link ConflictError}. */
  put(next: Incident): Promise<void>;
  /** Incidents in the given states (for recovery and expiry). */
  list(states: IncidentState[]): Promise<Incident[]>;
}

/** Writes a file atomically and durably. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Writes a file atomically and durably without blocking the event loop. */
export async function writeFileAtomicAsync(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** The file-backed store (the default: no server needed). */
export class FileIncidentStore implements IncidentStore {
  private readonly cache = new Map<string, Incident>();
  /** Ids of incidents not yet in a terminal state (expiry and recovery look only at these). */
  private readonly open = new Set<string>();
  /** The write in progress per incident. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly dir: string,
    private readonly cacheSize = 500,
  ) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new NodediagError('STORE_ERROR', `cannot create the incident store ${dir}: ${(err as NodeJS.ErrnoException).code}`, 'set NODEDIAG_STATE_DIR to a writable directory');
    }
    for (const id of this.storedIds()) {
      try {
        const i = JSON.parse(readFileSync(this.path(id), 'utf8')) as Incident;
        if (!TERMINAL_STATES.has(i.state)) this.open.add(i.id);
      } catch {
        /* an unreadable file is reported when that incident is used */
      }
    }
  }

  /** Ids of every incident file in the store. */
  private storedIds(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json') && INCIDENT_ID.test(f.slice(0, -5)))
      .map((f) => f.slice(0, -5));
  }

  private path(id: string): string {
    if (!INCIDENT_ID.test(id)) throw new NodediagError('STORE_ERROR', 'not an incident id');
    return join(this.dir, `${id}.json`);
  }

  private remember(i: Incident): void {
    this.cache.delete(i.id);
    this.cache.set(i.id, i);
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
  }

  async get(id: string): Promise<Incident | null> {
    if (!INCIDENT_ID.test(id)) return null;
    const cached = this.cache.get(id);
    if (cached) return structuredClone(cached);
    const p = this.path(id);
    if (!existsSync(p)) return null;
    const i = JSON.parse(readFileSync(p, 'utf8')) as Incident;
    this.remember(i);
    return structuredClone(i);
  }

  private async write(i: Incident): Promise<void> {
    try {
      await writeFileAtomicAsync(this.path(i.id), JSON.stringify(i));
      if (TERMINAL_STATES.has(i.state)) this.open.delete(i.id);
      else this.open.add(i.id);
    } catch (err) {
      throw new NodediagError('STORE_ERROR', `cannot write incident ${i.id}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 'free disk space or fix permissions of NODEDIAG_STATE_DIR');
    }
    this.remember(structuredClone(i));
  }

  async create(incident: Incident): Promise<void> {
    if (existsSync(this.path(incident.id))) throw new ConflictError(incident.id);
    await this.write(incident);
  }

  async put(next: Incident): Promise<void> {
    // Check and write as one step per incident, so that two racing writers of one version cannot both win.
    const prev = this.writing.get(next.id) ?? Promise.resolve();
    const run = prev.then(async () => {
      const current = await this.get(next.id);
      if (!current || current.version !== next.version - 1) throw new ConflictError(next.id);
      await this.write(next);
    });
    const tail = run.catch(() => undefined);
    this.writing.set(next.id, tail);
    void tail.then(() => {
      if (this.writing.get(next.id) === tail) this.writing.delete(next.id);
    });
    return run;
  }

  async list(states: IncidentState[]): Promise<Incident[]> {
    const out: Incident[] = [];
    const ids = states.every((s) => !TERMINAL_STATES.has(s)) ? [...this.open] : this.storedIds();
    for (const id of ids) {
      const i = await this.get(id);
      if (i && states.includes(i.state)) out.push(i);
    }
    return out;
  }
}
