/**
 * The Kubernetes client in a worker thread (see kube-in-worker.ts): loading
 * @kubernetes/client-node takes most of a second of CPU, which on the main
 * thread would stall the SSH probes running at the same time. The thread
 * starts loading the library at once; where the API is comes later, in the
 * first message (the command may start the thread before it has read its
 * configuration).
 */
import { enableCompileCache } from 'node:module';
import { parentPort } from 'node:worker_threads';
import { NodediagError } from '../errors.js';
import type { KubeClient } from '../ports.js';
import { createKubeClient, preloadClientNode, type KubeAccessOptions } from './kube.js';

/** A call from the main thread. */
export interface KubeCall {
  id: number;
  method: keyof KubeClient;
  args: unknown[];
}

/** The first message: where the API is and how to reach it. */
export interface KubeInit {
  init: KubeAccessOptions;
}

/** Its answer: the value, or the error as data. */
export type KubeAnswer = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { name: string; code?: string; message: string; hint?: string } };

// The main thread's compile cache does not reach this thread: cached, the client library's code loads in ~2/3 of the time.
enableCompileCache?.();
preloadClientNode();
let made: ReturnType<typeof createKubeClient> | undefined;
const port = parentPort!;
port.on('message', (message: KubeInit | KubeCall) => {
  if ('init' in message) {
    made = createKubeClient(message.init);
    return;
  }
  const call = message;
  void (async () => {
    try {
      if (!made?.client) throw new Error(made?.reason ?? 'the Kubernetes client was not given its configuration');
      const fn = made.client[call.method] as (...a: unknown[]) => Promise<unknown>;
      port.postMessage({ id: call.id, ok: true, value: await fn(...call.args) } satisfies KubeAnswer);
    } catch (err) {
      const e = err as Error;
      port.postMessage({ id: call.id, ok: false, error: { name: e.name, message: e.message, ...(err instanceof NodediagError ? { code: err.code, ...(err.hint ? { hint: err.hint } : {}) } : {}) } } satisfies KubeAnswer);
    }
  })();
});
