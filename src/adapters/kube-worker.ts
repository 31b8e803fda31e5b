/**
 * The Kubernetes client in a worker thread (see kube-in-worker.ts): loading
 * @kubernetes/client-node takes most of a second of CPU, which on the main
 * thread would stall the SSH probes running at the same time.
 */
import { enableCompileCache } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { NodediagError } from '../errors.js';
import type { KubeClient } from '../ports.js';
import { createKubeClient, type KubeAccessOptions } from './kube.js';

/** A call from the main thread. */
export interface KubeCall {
  id: number;
  method: keyof KubeClient;
  args: unknown[];
}

/** Its answer: the value, or the error as data. */
export type KubeAnswer = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { name: string; code?: string; message: string; hint?: string } };

// The main thread's compile cache does not reach this thread: cached, the client library's code loads in ~2/3 of the time.
enableCompileCache?.();
const made = createKubeClient(workerData as KubeAccessOptions);
const port = parentPort!;
port.on('message', (call: KubeCall) => {
  void (async () => {
    try {
      if (!made.client) throw new Error(made.reason);
      const fn = made.client[call.method] as (...a: unknown[]) => Promise<unknown>;
      port.postMessage({ id: call.id, ok: true, value: await fn(...call.args) } satisfies KubeAnswer);
    } catch (err) {
      const e = err as Error;
      port.postMessage({ id: call.id, ok: false, error: { name: e.name, message: e.message, ...(err instanceof NodediagError ? { code: err.code, ...(err.hint ? { hint: err.hint } : {}) } : {}) } } satisfies KubeAnswer);
    }
  })();
});
