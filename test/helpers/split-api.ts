/**
 * One API endpoint for the bot over two servers: nodediag's own kinds
 * (NodeIncident, NodediagMessage, the rails, Leases) go to the REAL API
 * server (test/helpers/real-api.ts), the core API (Nodes, Pods, Events,
 * evictions) to the stand-in, which the real apiextensions-apiserver does not
 * serve. A TLS proxy that streams both ways (watches included) and speaks to
 * each upstream with its own credentials.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { selfSignedCert } from '../../src/sim/self-signed.js';
import { writeKubeconfig } from './kube-api.js';

/** The API groups the real server answers for. */
const REAL_GROUPS = ['/apis/nodediag.io/', '/apis/coordination.k8s.io/'];

interface Upstream {
  url: URL;
  token: string;
}

function upstreamOf(kubeconfigPath: string): Upstream {
  const kc = parse(readFileSync(kubeconfigPath, 'utf8')) as { clusters: Array<{ cluster: { server: string } }>; users: Array<{ user: { token: string } }> };
  return { url: new URL(kc.clusters[0]!.cluster.server), token: kc.users[0]!.user.token };
}

/** A split API: its kubeconfig, and how to stop it. */
export interface SplitApi {
  kubeconfigPath: string;
  /** Requests answered by each side so far (to show both were used). */
  counts: { real: number; core: number };
  stop(): Promise<void>;
}

/** Starts the proxy in front of the stand-in (`coreKubeconfig`) and the real server (`realKubeconfig`). */
export async function splitApi(coreKubeconfig: string, realKubeconfig: string): Promise<SplitApi> {
  const core = upstreamOf(coreKubeconfig);
  const real = upstreamOf(realKubeconfig);
  const tls = selfSignedCert(['127.0.0.1']);
  if (!tls) throw new Error('openssl is needed for the split API proxy');
  const counts = { real: 0, core: 0 };
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const toReal = REAL_GROUPS.some((g) => (req.url ?? '').startsWith(g));
    const up = toReal ? real : core;
    counts[toReal ? 'real' : 'core'] += 1;
    const headers = { ...req.headers, host: up.url.host, authorization: `Bearer ${up.token}` };
    const out = request({ host: up.url.hostname, port: up.url.port, path: req.url, method: req.method, headers, rejectUnauthorized: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `split proxy: ${err.message}`, code: 502 }));
    });
    // A client that goes away (a closed watch) closes the upstream request too.
    res.on('close', () => out.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const kubeconfigPath = join(mkdtempSync(join(tmpdir(), 'nodediag-split-api-')), 'kubeconfig');
  writeKubeconfig(kubeconfigPath, { name: 'split', server: `https://127.0.0.1:${port}`, token: 'split-proxy-token', caPem: tls.cert });
  return {
    kubeconfigPath,
    counts,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
