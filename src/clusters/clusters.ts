/**
 * One bot, several clusters: each with its inventory, its Kubernetes access
 * and the Slack channels bound to it. Which cluster a request means is
 * decided here, purely, and never guessed: an explicit `--cluster`, else the
 * channel's cluster, else the one cluster whose inventory has the node; a
 * node name two clusters share is refused until someone says which.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { Refusal } from '../incidents/transitions.js';

/** The name of the only cluster when none is configured. */
export const DEFAULT_CLUSTER = 'default';

/** A cluster name: a DNS label, shown on cards and typed after `--cluster`. */
export const CLUSTER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** One cluster the bot looks after. */
export interface ClusterSpec {
  name: string;
  inventoryPath: string;
  /** Kubeconfig for this cluster (else the bot's default credentials). */
  kubeconfigPath?: string;
  /** Context in that kubeconfig (else its current context). */
  context?: string;
  /** Slack channels bound to this cluster: `/diag` there means this cluster. */
  channels: string[];
}

const fileSchema = z
  .object({
    clusters: z
      .array(
        z
          .object({
            name: z.string().regex(CLUSTER_NAME, 'a cluster name is a DNS label (a-z, 0-9, -; at most 63)'),
            inventory: z.string().min(1),
            kubeconfig: z.string().min(1).optional(),
            context: z.string().min(1).max(253).optional(),
            channels: z.array(z.string().regex(/^[CGD][A-Z0-9]{2,30}$/, 'a Slack channel id such as C0123ABCD')).default([]),
          })
          .strict(),
      )
      .min(1)
      .max(100),
  })
  .strict();

/** Reads the clusters file (NODEDIAG_CLUSTERS); paths in it are relative to the file. */
export function loadClusterSpecs(path: string): ClusterSpec[] {
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read the clusters file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]}`, 'NODEDIAG_CLUSTERS names a YAML file with a `clusters:` list');
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new ConfigError(`the clusters file ${path} is invalid at ${i.path.join('.') || '(top)'}: ${i.message}`, 'each cluster: name, inventory, optional kubeconfig, context and channels');
  }
  const specs = parsed.data.clusters.map((c) => ({
    name: c.name,
    inventoryPath: resolve(dirname(path), c.inventory),
    ...(c.kubeconfig ? { kubeconfigPath: resolve(dirname(path), c.kubeconfig) } : {}),
    ...(c.context ? { context: c.context } : {}),
    channels: c.channels,
  }));
  const dup = specs.find((s, i) => specs.findIndex((t) => t.name === s.name) !== i);
  if (dup) throw new ConfigError(`the clusters file ${path} names the cluster "${dup.name}" twice`);
  const bound = new Map<string, string>();
  for (const s of specs) {
    for (const ch of s.channels) {
      const other = bound.get(ch);
      if (other) throw new ConfigError(`the channel ${ch} is bound to both "${other}" and "${s.name}" in ${path}`, 'a channel means one cluster');
      bound.set(ch, s.name);
    }
  }
  return specs;
}

/** A node of a cluster as one key: `cluster/node`, or the node alone when no cluster is named. */
export function clusterNodeKey(cluster: string | undefined, node: string): string {
  return cluster ? `${cluster}/${node}` : node;
}

/** The parts of a {@link clusterNodeKey} (neither a cluster nor a node name holds a slash). */
export function splitClusterNodeKey(key: string): { cluster?: string; node: string } {
  const i = key.indexOf('/');
  return i < 0 ? { node: key } : { cluster: key.slice(0, i), node: key.slice(i + 1) };
}

/** What resolution needs to know of a cluster. */
export interface ClusterIndex {
  name: string;
  /** Node names in its inventory. */
  nodes: ReadonlySet<string>;
  channels: readonly string[];
}

/** The cluster a request means, or why it cannot be told. */
export function resolveCluster(clusters: readonly ClusterIndex[], req: { node?: string; channel: string; cluster?: string }): { cluster: string } | Refusal {
  const names = clusters.map((c) => c.name);
  if (req.cluster) {
    const c = clusters.find((x) => x.name === req.cluster);
    if (!c) return { reason: `There is no cluster "${req.cluster}".`, hint: `Clusters: ${names.join(', ')}.` };
    return { cluster: c.name };
  }
  if (clusters.length === 1) return { cluster: clusters[0]!.name };
  const bound = clusters.find((c) => c.channels.includes(req.channel));
  if (bound) return { cluster: bound.name };
  if (!req.node) return { reason: 'This channel is not bound to a cluster.', hint: `Add --cluster NAME (${names.join(', ')}).` };
  const having = clusters.filter((c) => c.nodes.has(req.node!));
  if (having.length === 1) return { cluster: having[0]!.name };
  if (having.length > 1) {
    return { reason: `"${req.node}" is a node in ${having.length} clusters: ${having.map((c) => c.name).join(', ')}.`, hint: `Say which: /diag ${req.node} --cluster ${having[0]!.name}` };
  }
  return { reason: `Node "${req.node}" is not in the inventory of any cluster (${names.join(', ')}).`, hint: 'Check the name, or add --cluster NAME for a node Kubernetes knows.' };
}
