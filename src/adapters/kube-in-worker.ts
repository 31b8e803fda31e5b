/**
 * The terminal's Kubernetes client: the same calls as createKubeClient, run
 * in a worker thread so that loading the client library (most of a second
 * of CPU) overlaps the SSH probes instead of stalling them. Falls back to
 * the in-thread client where the compiled worker is not there (tests run
 * from the TypeScript sources).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { KubeAccessError, NodediagError, type ErrorCode } from '../errors.js';
import type { KubeClient } from '../ports.js';
import { createKubeClient, kubeSource, type KubeAccessOptions } from './kube.js';
import type { KubeAnswer, KubeCall } from './kube-worker.js';

const METHODS: Array<keyof KubeClient> = ['getNode', 'listNodes', 'listPodsOnNode', 'listEvents', 'deletePod', 'evictPod', 'setUnschedulable'];

function rebuild(e: Extract<KubeAnswer, { ok: false }>['error']): Error {
  if (e.name === 'KubeAccessError' && e.code) return new KubeAccessError(e.code as ConstructorParameters<typeof KubeAccessError>[0], e.message, e.hint);
  if (e.code) return new NodediagError(e.code as ErrorCode, e.message, e.hint);
  return new Error(e.message);
}

export function createKubeClientInWorker(opts: KubeAccessOptions = {}): { client: KubeClient; reason: '' } | { client: null; reason: string } {
  const workerFile = new URL('./kube-worker.js', import.meta.url);
  if (!existsSync(fileURLToPath(workerFile))) return createKubeClient(opts);
  if (!kubeSource(opts)) return createKubeClient(opts);
  const worker = new Worker(workerFile, { workerData: { kubeconfigPath: opts.kubeconfigPath, requestTimeoutMs: opts.requestTimeoutMs, ...(opts.context ? { context: opts.context } : {}) } satisfies KubeAccessOptions });
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
