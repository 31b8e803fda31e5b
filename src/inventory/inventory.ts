/**
 * The inventory: how to reach each node over SSH. A YAML file, validated with
 * zod; errors name the field and its line. Host keys are always pinned
 * (`hostKey` fingerprints or an OpenSSH `knownHostsPath`): there is no
 * accept-anything default.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { InventoryError, UnknownNodeError } from '../errors.js';
import type { HostKeyPin, KubeNode, SshTarget } from '../ports.js';
import type { LayoutOverrides } from '../probes/layout.js';
import { suggestNames, validateNodeName } from './node-name.js';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?)*$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const SAFE_PATH = /^[A-Za-z0-9._/@+-]+$/;

const filePath = z
  .string()
  .min(1)
  .regex(SAFE_PATH, 'only letters, digits and . _ / @ + - are allowed in a path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments');

const hostKeyField = z.union([
  z.string().regex(FINGERPRINT, 'must be a SHA256 fingerprint as `ssh-keygen -lf` prints it (SHA256:…, 43 characters)'),
  z.array(z.string().regex(FINGERPRINT, 'must be a SHA256 fingerprint (SHA256:…)')).min(1),
]);

const connection = {
  user: z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/, 'must be a POSIX user name'),
  port: z.number().int().min(1).max(65535),
  privateKeyPath: filePath,
  sudo: z.boolean(),
  knownHostsPath: filePath,
  connectTimeoutMs: z.number().int().min(500).max(120_000),
  runtimeSocket: z.string().regex(/^\/[A-Za-z0-9._/-]+$/, 'must be an absolute path').refine((p) => !p.split('/').includes('..'), 'must not contain ".."'),
};

const absolutePath = connection.runtimeSocket;

/** Paths on the node that the inventory may pin instead of letting nodediag discover them. */
const pathOverrides = {
  /** The CRI socket (default: kubelet's endpoint, else containerd's --address, else /run/containerd/containerd.sock). */
  runtimeSocket: absolutePath.optional(),
  /** containerd's config file (default: its --config, else /etc/containerd/config.toml). */
  containerdConfig: absolutePath.optional(),
  /** kubelet's config file (default: its --config). */
  kubeletConfig: absolutePath.optional(),
  /** Absolute paths of the tools (default: the running containerd's binary and its neighbours, then PATH). */
  containerdPath: absolutePath.optional(),
  ctrPath: absolutePath.optional(),
  crictlPath: absolutePath.optional(),
};

const defaultsSchema = z
  .object({
    user: connection.user.default('root'),
    port: connection.port.default(22),
    privateKeyPath: connection.privateKeyPath.optional(),
    sudo: connection.sudo.default(false),
    knownHostsPath: connection.knownHostsPath.optional(),
    connectTimeoutMs: connection.connectTimeoutMs.default(5000),
    ...pathOverrides,
  })
  .strict();

const nodeSchema = z
  .object({
    name: z.string().refine((n) => {
      try {
        validateNodeName(n);
        return true;
      } catch {
        return false;
      }
    }, 'must be a valid Kubernetes node name (RFC 1123: lowercase letters, digits, "-" and ".")'),
    host: z
      .string()
      .refine((h) => HOSTNAME.test(h) || IPV4.test(h) || (h.includes(':') && IPV6.test(h)), 'must be a host name or an IP address')
      .optional(),
    port: connection.port.optional(),
    user: connection.user.optional(),
    privateKeyPath: connection.privateKeyPath.optional(),
    sudo: connection.sudo.optional(),
    hostKey: hostKeyField.optional(),
    knownHostsPath: connection.knownHostsPath.optional(),
    connectTimeoutMs: connection.connectTimeoutMs.optional(),
    ...pathOverrides,
  })
  .strict();

const inventorySchema = z
  .object({
    defaults: defaultsSchema.default(defaultsSchema.parse({})),
    nodes: z.array(nodeSchema).default([]),
  })
  .strict();

/** Connection settings shared by all nodes unless a node overrides them. */
export type InventoryDefaults = z.infer<typeof defaultsSchema>;
/** One inventory entry, as written. */
export type InventoryNode = z.infer<typeof nodeSchema>;

/** A loaded, validated inventory. */
export interface Inventory {
  /** Where it was read from (relative paths resolve against its directory). */
  source: string;
  defaults: InventoryDefaults;
  nodes: InventoryNode[];
}

/** How nodediag reaches one node: an SSH target plus node facts the probes need. */
export interface NodeAccess {
  target: SshTarget;
  /** Prefix privileged commands with `sudo -n`. */
  sudo: boolean;
  /** Paths pinned by the inventory; the rest is discovered on the node. */
  overrides: LayoutOverrides;
}

function lineOf(doc: ReturnType<typeof parseDocument>, counter: LineCounter, path: PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as Array<string | number>, true) as YamlNode | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

function pathText(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('') || '(top level)';
}

/** Parses and validates inventory YAML text. */
export function parseInventory(text: string, source: string): Inventory {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new InventoryError(`${source}${line ? `:${line}` : ''}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const data = doc.toJS() ?? {};
  if (!isMap(doc.contents) && doc.contents !== null) throw new InventoryError(`${source}: the inventory must be a mapping with "defaults" and "nodes"`);
  const result = inventorySchema.safeParse(data);
  if (!result.success) {
    const lines = result.error.issues.slice(0, 5).map((issue) => {
      const line = lineOf(doc, counter, issue.path);
      return `${source}${line ? `:${line}` : ''}: ${pathText(issue.path)}: ${issue.message}`;
    });
    throw new InventoryError(lines.join('\n'), 'see the inventory example in the README');
  }
  const inv = result.data;
  const seen = new Map<string, number>();
  inv.nodes.forEach((n, i) => {
    const first = seen.get(n.name);
    if (first !== undefined) {
      const line = lineOf(doc, counter, ['nodes', i, 'name']);
      throw new InventoryError(`${source}${line ? `:${line}` : ''}: nodes[${i}].name: duplicate node "${n.name}" (first at nodes[${first}])`);
    }
    seen.set(n.name, i);
    if (!n.hostKey && !n.knownHostsPath && !inv.defaults.knownHostsPath) {
      const line = lineOf(doc, counter, ['nodes', i]);
      throw new InventoryError(
        `${source}${line ? `:${line}` : ''}: nodes[${i}] (${n.name}): no pinned host key`,
        'set hostKey (the SHA256 fingerprint `ssh-keygen -lf` prints) or knownHostsPath; unknown host keys are refused',
      );
    }
    if (!n.privateKeyPath && !inv.defaults.privateKeyPath) {
      throw new InventoryError(`${source}: nodes[${i}] (${n.name}): no privateKeyPath (set it on the node or in defaults)`);
    }
  });
  if (isSeq(doc.get('nodes', true)) === false && doc.get('nodes') !== undefined) {
    throw new InventoryError(`${source}: nodes must be a list`);
  }
  return { source, defaults: inv.defaults, nodes: inv.nodes };
}

/** Reads and validates an inventory file. */
export function loadInventory(path: string): Inventory {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InventoryError(
      `cannot read inventory ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'error')}`,
      'pass --inventory FILE or set NODEDIAG_INVENTORY',
    );
  }
  return parseInventory(text, path);
}

function resolvePath(inv: Inventory, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(inv.source), p);
}

function dropUndefined<T extends Record<string, string | undefined>>(o: T): { [K in keyof T]?: string } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: string };
}

/** Names of every node in the inventory. */
export function inventoryNames(inv: Inventory): string[] {
  return inv.nodes.map((n) => n.name);
}

/**
 * How to reach a node: its inventory entry, or — when the node is not listed
 * but Kubernetes knows it and the defaults pin host keys with a known_hosts
 * file — the defaults and the node's InternalIP.
 */
export function resolveAccess(inv: Inventory, name: string, kubeNode?: KubeNode | null, kubeNames: string[] = []): NodeAccess {
  const entry = inv.nodes.find((n) => n.name === name);
  if (!entry && !(kubeNode && inv.defaults.knownHostsPath)) {
    throw new UnknownNodeError(name, suggestNames(name, [...inventoryNames(inv), ...kubeNames]));
  }
  const d = inv.defaults;
  const internalIp = kubeNode?.addresses.find((a) => a.type === 'InternalIP')?.address;
  const host = entry?.host ?? internalIp;
  if (!host) {
    throw new InventoryError(
      `node "${name}" has no host in the inventory and its InternalIP is not known`,
      'set host on the node, or give nodediag Kubernetes access so it can read the InternalIP',
    );
  }
  const fingerprints = entry?.hostKey ? (Array.isArray(entry.hostKey) ? entry.hostKey : [entry.hostKey]) : undefined;
  const knownHosts = entry?.knownHostsPath ?? d.knownHostsPath;
  const hostKey: HostKeyPin = fingerprints
    ? { kind: 'fingerprints', fingerprints }
    : { kind: 'known-hosts', path: resolvePath(inv, knownHosts!) };
  const keyPath = entry?.privateKeyPath ?? d.privateKeyPath;
  if (!keyPath) throw new InventoryError(`node "${name}": no privateKeyPath (set it on the node or in defaults)`);
  return {
    target: {
      node: name,
      host,
      port: entry?.port ?? d.port,
      user: entry?.user ?? d.user,
      privateKeyPath: resolvePath(inv, keyPath),
      hostKey,
      connectTimeoutMs: entry?.connectTimeoutMs ?? d.connectTimeoutMs,
    },
    sudo: entry?.sudo ?? d.sudo,
    overrides: dropUndefined({
      socket: entry?.runtimeSocket ?? d.runtimeSocket,
      containerdConfig: entry?.containerdConfig ?? d.containerdConfig,
      kubeletConfig: entry?.kubeletConfig ?? d.kubeletConfig,
      containerd: entry?.containerdPath ?? d.containerdPath,
      ctr: entry?.ctrPath ?? d.ctrPath,
      crictl: entry?.crictlPath ?? d.crictlPath,
    }),
  };
}
