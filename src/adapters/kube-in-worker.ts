/**
 * The terminal's Kubernetes client. With a plain kubeconfig (see
 * kube-direct.ts) it reads over node:https and loads the client library
 * only for a write. Otherwise it makes the same calls as createKubeClient,
 * run in a worker thread so that loading the client library (most of a
 * second of CPU) overlaps the SSH probes instead of stalling them; the
 * in-thread client where the compiled worker is not there (tests run from
 * the TypeScript sources). A command that may need the library starts the
 * thread first of all ({@link prestartKubeWorker}): the library then loads
 * while the command reads its configuration and opens its SSH connection.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { KubeAccessError, NodediagError, type ErrorCode } from '../errors.js';
import type { KubeClient } from '../ports.js';
import { createDirectKubeReader, directKubeTarget } from './kube-direct.js';
import { createKubeClient, kubeSource, type KubeAccessOptions } from './kube.js';
import type { KubeAnswer, KubeCall, KubeInit } from './kube-worker.js';

const WORKER_FILE = new URL('./kube-worker.js', import.meta.url);
let prestarted: Worker | null = null;

/**
 * Starts the client's thread now, before its configuration is known (it
 * loads the library meanwhile); the next {@link createKubeClientInWorker}
 * adopts it, or stops it when there is no API to reach.
 */
export function prestartKubeWorker(): void {
  if (prestarted || !existsSync(fileURLToPath(WORKER_FILE))) return;
  const worker = new Worker(WORKER_FILE);
  // Until a call waits for it, the thread does not keep the process alive.
  worker.unref();
  // A thread that ended before it was adopted is not adopted: a new one is started instead.
  worker.on('error', () => undefined);
  worker.once('exit', () => {
    if (prestarted === worker) prestarted = null;
  });
  prestarted = worker;
}

function takePrestarted(): Worker | null {
  const worker = prestarted;
  prestarted = null;
  return worker;
}

const METHODS: Array<keyof KubeClient> = ['getNode', 'listNodes', 'listPodsOnNode', 'listEvents', 'deletePod', 'evictPod', 'setUnschedulable'];

function rebuild(e: Extract<KubeAnswer, { ok: false }>['error']): Error {
  if (e.name === 'KubeAccessError' && e.code) return new KubeAccessError(e.code as ConstructorParameters<typeof KubeAccessError>[0], e.message, e.hint);
  if (e.code) return new NodediagError(e.code as ErrorCode, e.message, e.hint);
  return new Error(e.message);
}

/**
 * The terminal's client: direct reads where the kubeconfig allows them (no
 * thread was started for it), else the client library in its thread.
 */
export function createKubeClientInWorker(opts: KubeAccessOptions = {}): { client: KubeClient; reason: '' } | { client: null; reason: string } {
  const early = takePrestarted();
  const target = early ? null : directKubeTarget(opts);
  if (!target) return libraryClient(opts, early);
  const reads = createDirectKubeReader(target, opts);
  // The library loads at the first write (a fix's cordon or pod deletion), not for a diagnosis.
  let writer: KubeClient | undefined;
  const writes = () => (writer ??= libraryClient(opts, null).client!);
  const client: KubeClient = {
    ...reads,
    deletePod: (ns, name, uid) => writes().deletePod(ns, name, uid),
    evictPod: (ns, name, uid) => writes().evictPod(ns, name, uid),
    setUnschedulable: (node, unschedulable) => writes().setUnschedulable(node, unschedulable),
  };
  return { client, reason: '' };
}

/** The client library's client: in its thread, adopting the one started early if there is one. */
function libraryClient(opts: KubeAccessOptions, early: Worker | null): { client: KubeClient; reason: '' } | { client: null; reason: string } {
  if (!existsSync(fileURLToPath(WORKER_FILE)) || !kubeSource(opts)) {
    void early?.terminate();
    return createKubeClient(opts);
  }
  const worker = early ?? new Worker(WORKER_FILE);
  worker.postMessage({ init: { kubeconfigPath: opts.kubeconfigPath, requestTimeoutMs: opts.requestTimeoutMs, ...(opts.context ? { context: opts.context } : {}) } } satisfies KubeInit);
  // The worker keeps the process alive only while a call waits for it: a command ends when its work does.
  worker.unref();
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let seq = 0;
  let dead: Error | null = null;
  worker.on('message', (a: KubeAnswer) => {
    const p = pending.get(a.id);
    if (!p) return;
    pending.delete(a.id);
    if (pending.size === 0) worker.unref();
    if (a.ok) p.resolve(a.value);
    else p.reject(rebuild(a.error));
  });
  const fail = (err: Error) => {
    dead = new KubeAccessError('KUBE_ERROR', `the Kubernetes client stopped: ${err.message}`);
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`exit ${code}`)));
  const call = (method: keyof KubeClient, args: unknown[]) =>
    new Promise<unknown>((resolve, reject) => {
      if (dead) return reject(dead);
      const id = ++seq;
      pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, method, args } satisfies KubeCall);
    });
  const client = Object.fromEntries(METHODS.map((m) => [m, (...args: unknown[]) => call(m, args)])) as unknown as KubeClient;
  return { client, reason: '' };
}
