/**
 * The small interfaces the core uses for I/O. The adapters (ssh2,
 * client-node, Slack, the file store) implement them; tests and the demo pass
 * in simulated ones. Nothing here imports an SDK.
 */

/** Time, injectable so that expiry and timeouts are testable. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Bounds for one remote command. */
export interface ExecOptions {
  /** Client-side deadline; the command is also wrapped in a remote `timeout`. */
  timeoutMs: number;
  /** Output cap (stdout + stderr); output beyond it is dropped and the channel closed. */
  maxOutputBytes: number;
  /** Each piece of standard output as it arrives (within the cap), for work that need not wait for the end. Optional for a shell to call. */
  onStdout?: (chunk: Buffer) => void;
  /**
   * Standard input, written when it resolves and then closed (for a command
   * that reads its script there). The command starts at once, so the node's
   * session setup overlaps the wait for the input.
   */
  input?: Promise<string>;
}

/** What one remote command did. */
export interface ExecResult {
  /** Exit status, or null when the command was cut off (deadline, cap, lost connection). */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** The deadline passed (client side, or the remote `timeout` fired). */
  timedOut: boolean;
  /** Output went over the cap. */
  truncated: boolean;
  durationMs: number;
}

/** One open SSH connection to a node. */
export interface RemoteShell {
  exec(command: string, opts: ExecOptions): Promise<ExecResult>;
  close(): void;
}

/** How the node's host key is pinned. */
export type HostKeyPin =
  | { kind: 'fingerprints'; fingerprints: string[] }
  | { kind: 'known-hosts'; path: string };

/** Everything needed to open an SSH connection to one node. */
export interface SshTarget {
  node: string;
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  hostKey: HostKeyPin;
  connectTimeoutMs: number;
}

/** Opens SSH connections (ssh2 in production, the same in tests against real sshd). */
export interface SshConnector {
  connect(target: SshTarget): Promise<RemoteShell>;
}

/** A node condition as the Kubernetes API reports it. */
export interface KubeCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  /** When kubelet last posted this condition (by the node's clock). */
  lastHeartbeatTime?: string;
}

/** The parts of a Node nodediag reads. */
export interface KubeNode {
  name: string;
  labels: Record<string, string>;
  unschedulable: boolean;
  conditions: KubeCondition[];
  taints: Array<{ key: string; value?: string; effect: string }>;
  addresses: Array<{ type: string; address: string }>;
  /** `status.nodeInfo`: what kubelet reports about the machine it runs on (the node reached must be this machine). */
  machineID?: string;
  systemUUID?: string;
}

/** One container's state in a pod. */
export interface KubeContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state: { kind: 'running' | 'waiting' | 'terminated' | 'unknown'; reason?: string; message?: string; exitCode?: number };
  lastTerminated?: { reason?: string; exitCode?: number; finishedAt?: string };
}

/** The parts of a Pod nodediag reads. */
export interface KubePod {
  namespace: string;
  name: string;
  uid: string;
  phase: string;
  owner?: { kind: string; name: string };
  containers: KubeContainerStatus[];
  hostPaths: Array<{ volume: string; path: string; type: string | null }>;
  createdAt?: string;
  /** A static pod's mirror (kubelet manages it; it cannot be evicted). */
  mirror?: boolean;
  /** Volumes whose data lives only on this node (emptyDir): evicting the pod loses it. */
  localVolumes?: string[];
}

/** An event about the node or one of its pods. */
export interface KubeEvent {
  type: string;
  reason: string;
  message: string;
  kind: string;
  namespace?: string;
  name: string;
  count: number;
  lastTimestamp?: string;
}

/** Read access to the Kubernetes API. */
export interface KubeReader {
  getNode(name: string): Promise<KubeNode | null>;
  listNodes(labelSelector?: string): Promise<KubeNode[]>;
  listPodsOnNode(node: string): Promise<KubePod[]>;
  /** Events for the node and for the given pods (namespace/name). */
  listEvents(node: string, pods: Array<{ namespace: string; name: string }>): Promise<KubeEvent[]>;
}

/** A running watch; stop() ends it. */
export interface WatchHandle {
  stop(): void;
}

/** Node changes as the API server streams them (a list first, then each change). */
export interface KubeNodeWatcher {
  /** Calls `onNode` for every node now and on each change; `onEnd` when the stream ends (the caller re-watches). */
  watchNodes(onNode: (node: KubeNode, type: 'ADDED' | 'MODIFIED' | 'DELETED') => void, onEnd: (err?: Error) => void): Promise<WatchHandle>;
}

/** How an eviction request ended. */
export type EvictionResult = 'evicted' | 'gone' | 'blocked-by-budget';

/** The few writes a runbook may perform. */
export interface KubeWriter {
  /** Deletes a pod; with `uid`, only that incarnation of it (a recreated pod of the same name is left alone). */
  deletePod(namespace: string, name: string, uid?: string): Promise<'deleted' | 'gone' | 'uid-changed'>;
  setUnschedulable(node: string, unschedulable: boolean): Promise<void>;
  /** Asks the Eviction API to evict a pod: PodDisruptionBudgets apply (`blocked-by-budget`: HTTP 429). */
  evictPod(namespace: string, name: string, uid?: string): Promise<EvictionResult>;
}

/** Kubernetes access as a whole. */
export type KubeClient = KubeReader & KubeWriter;

/** Structured logs (JSON lines on stderr in the server). Messages are redacted by the logger. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/** A Slack message: fallback text plus Block Kit blocks. */
export interface ChatMessage {
  text: string;
  blocks?: unknown[];
}

/** How a chat call failed, for the outbox's retry decision. */
export class ChatError extends Error {
  constructor(
    readonly kind: 'rate-limited' | 'transient' | 'permanent',
    /** Slack's error code (e.g. `channel_not_found`, `invalid_blocks`). */
    readonly code: string,
    /** From Retry-After, when rate limited. */
    readonly retryAfterMs?: number,
  ) {
    super(`slack: ${code}`);
  }
}

/** The Slack Web API calls nodediag makes (the @slack/web-api adapter implements it). */
export interface ChatPort {
  /** Posts; a `key` is carried in the message's metadata, so that {@link ChatPort.findPosted} can find it again. */
  post(channel: string, message: ChatMessage, threadTs?: string, key?: string): Promise<{ ts: string }>;
  /** The ts of a message posted with `key` in the channel (in the thread, when given) since `sinceMs`. */
  findPosted?(channel: string, key: string, threadTs: string | undefined, sinceMs: number): Promise<string | undefined>;
  update(channel: string, ts: string, message: ChatMessage): Promise<void>;
  postEphemeral(channel: string, user: string, message: ChatMessage, threadTs?: string): Promise<void>;
  openView(triggerId: string, view: Record<string, unknown>): Promise<void>;
  /** Members of a user group (`usergroups.users.list`). */
  groupMembers(groupId: string): Promise<string[]>;
  /**
   * An ephemeral reply through a slash command's `response_url`: it reaches
   * the requester even where the bot is not a member of the channel.
   */
  respond(responseUrl: string, message: ChatMessage): Promise<void>;
}
