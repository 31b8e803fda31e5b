/**
 * One diagnosis of one node: resolve it (inventory + Kubernetes), run the SSH
 * probes over one connection and the Kubernetes checks in parallel, classify.
 * A connection that fails still yields a report (Kubernetes findings, and
 * every SSH check marked skipped with the reason).
 */
import type { Catalogs } from '../catalog/load.js';
import type { KubeProbe, SshProbe } from '../catalog/schema.js';
import { NodediagError, errorMessage, type ErrorCode } from '../errors.js';
import { resolveAccess, type Inventory, type NodeAccess } from '../inventory/inventory.js';
import { validateNodeName } from '../inventory/node-name.js';
import type { Clock, KubeNode, KubeReader, RemoteShell, SshConnector } from '../ports.js';
import { runKubeProbes } from '../probes/kube-collector.js';
import { defaultLayout, type NodeLayout } from '../probes/layout.js';
import { runSshProbes, skippedSshProbes } from '../probes/ssh-collector.js';
import type { Redactor } from '../redact.js';
import { classifyAll, type Finding, type Undecided } from './classify.js';
import { observationsOf, type Observation } from './observation.js';

/** A check as the report lists it. */
export interface CheckSummary {
  id: string;
  title: string;
  status: Observation['status'];
  durationMs: number;
  reason?: string;
}

/** The outcome of diagnosing one node. */
export interface DiagnosisReport {
  node: string;
  /** The address SSH used (null when it could not be resolved). */
  host: string | null;
  startedAt: string;
  durationMs: number;
  /** The SSH connection was established. */
  reachable: boolean;
  /** Why SSH failed, when it did. */
  connectionError?: { code: ErrorCode; message: string };
  findings: Finding[];
  /** Findings that could be neither proven nor ruled out: a check they need did not run. */
  undecided: Undecided[];
  /** Where the runtime, its config and kubelet's config are on this node (null when SSH did not connect). */
  layout: NodeLayout | null;
  checks: CheckSummary[];
  /** Every observation (redacted), for the audit trail, fixtures and debugging. */
  observations: Observation[];
}

/** How fresh the evidence must be (after a fix: only what came after it counts). */
export interface FreshnessOptions {
  /** Journal lines before this epoch second, by the node's clock, are ignored. */
  sinceEpochSec?: number;
  /** Kubernetes events last seen before this time (ms, by the node's clock) are ignored… */
  sinceMs?: number;
  /** …and the Node's status must have been posted by kubelet after it: wait up to this long for that. */
  waitForNodeStatusMs?: number;
}

/** Collaborators of a diagnosis. */
export interface DiagnoseDeps {
  catalogs: Catalogs;
  inventory: Inventory;
  ssh: SshConnector;
  kube: KubeReader | null;
  kubeUnavailableReason: string;
  clock: Clock;
  redact: Redactor;
  /** Output cap per probe. */
  maxOutputBytes: number;
}

/** Error codes that are configuration problems, not an unreachable node: they are thrown. */
const CONFIG_CODES: ReadonlySet<ErrorCode> = new Set(['KEY_FILE_UNREADABLE', 'CONFIG_INVALID', 'INVENTORY_INVALID']);

async function nodeOrNull(kube: KubeReader | null, name: string): Promise<KubeNode | null> {
  if (!kube) return null;
  try {
    return await kube.getNode(name);
  } catch {
    return null;
  }
}

/**
 * A node resolved once for a whole flow (diagnosis, plan, fix, the checks
 * before each step, the verdict): where SSH goes, and the Node as the API had it.
 */
export interface ResolvedNode {
  access: NodeAccess;
  kubeNode: Promise<KubeNode | null>;
}

/** The same SSH target, with the Node read again (a later check needs the Node as it is now). */
export function reread(name: string, access: NodeAccess, deps: Pick<DiagnoseDeps, 'kube'>): ResolvedNode {
  return { access, kubeNode: nodeOrNull(deps.kube, name) };
}

/** Resolves how to reach a node; throws for an invalid or unknown name. `known` is the Node when already read (fleet mode). */
export async function resolveNode(name: string, deps: Pick<DiagnoseDeps, 'inventory' | 'kube'>, known?: KubeNode): Promise<ResolvedNode> {
  validateNodeName(name);
  if (known) return { access: resolveAccess(deps.inventory, name, known), kubeNode: Promise.resolve(known) };
  const kubeNodeRead = deps.kube ? deps.kube.getNode(name) : Promise.resolve(null);
  kubeNodeRead.catch(() => undefined);
  const entry = deps.inventory.nodes.find((n) => n.name === name);
  if (entry?.host) return { access: resolveAccess(deps.inventory, name), kubeNode: kubeNodeRead };
  const kubeNode = await nodeOrNull(deps.kube, name);
  let kubeNames: string[] = [];
  if (!kubeNode && !entry && deps.kube) kubeNames = await deps.kube.listNodes().then((l) => l.map((n) => n.name), () => []);
  return { access: resolveAccess(deps.inventory, name, kubeNode, kubeNames), kubeNode: kubeNodeRead };
}

/** Runs every probe against an already open connection (or none) and classifies. */
export async function collectAndClassify(
  node: string,
  access: NodeAccess,
  shell: RemoteShell | null,
  unreachableReason: string,
  deps: DiagnoseDeps,
  kubeNode?: Promise<KubeNode | null>,
  fresh: FreshnessOptions = {},
): Promise<{ findings: Finding[]; undecided: Undecided[]; observations: Observation[]; layout: NodeLayout | null }> {
  const sshProbes = deps.catalogs.probes.filter((p): p is SshProbe => p.transport === 'ssh');
  const kubeProbes = deps.catalogs.probes.filter((p): p is KubeProbe => p.transport === 'kube');
  const sshCtx = {
    sudo: access.sudo,
    overrides: access.overrides,
    ...(fresh.sinceEpochSec !== undefined ? { sinceEpochSec: fresh.sinceEpochSec } : {}),
    maxOutputBytes: deps.maxOutputBytes,
    clock: deps.clock,
    redact: deps.redact,
  };
  const ssh = shell
    ? runSshProbes(shell, sshProbes, sshCtx)
    : Promise.resolve({ observations: skippedSshProbes(sshProbes, unreachableReason), layout: null });
  const [sshResult, kubeObs] = await Promise.all([
    ssh,
    runKubeProbes(node, kubeProbes, {
      kube: deps.kube,
      unavailableReason: deps.kubeUnavailableReason,
      // The socket kubelet uses is known once the layout probe has run; pods are rendered then.
      runtimeSockets: ssh.then((r) => [(r.layout ?? defaultLayout(access.overrides)).params.socket]),
      clock: deps.clock,
      redact: deps.redact,
      node: kubeNode,
      ...(fresh.sinceMs !== undefined ? { sinceMs: fresh.sinceMs } : {}),
      ...(fresh.waitForNodeStatusMs !== undefined ? { waitForNodeStatusMs: fresh.waitForNodeStatusMs } : {}),
    }),
  ]);
  const observations = [...sshResult.observations, ...kubeObs];
  const { findings, undecided } = classifyAll(observationsOf(observations), deps.catalogs);
  return { findings, undecided, observations, layout: sshResult.layout };
}

/** Summaries of the checks, in catalog order. */
export function summariseChecks(observations: Observation[], deps: Pick<DiagnoseDeps, 'catalogs'>): CheckSummary[] {
  return observations.map((o) => ({
    id: o.check,
    title: deps.catalogs.probeById.get(o.check)?.title ?? o.check,
    status: o.status,
    durationMs: o.durationMs,
    ...(o.reason ? { reason: o.reason } : {}),
  }));
}

/**
 * Diagnoses one node: resolved here, or `at` where the flow resolved it (or
 * the Node read already, in fleet mode). Throws only for bad input or
 * configuration (invalid or unknown name, unreadable key).
 */
export async function diagnoseNode(name: string, deps: DiagnoseDeps, at?: KubeNode | ResolvedNode, fresh: FreshnessOptions = {}): Promise<DiagnosisReport> {
  const started = deps.clock.now();
  const { access, kubeNode } = at && 'access' in at ? at : await resolveNode(name, deps, at);
  let shell: RemoteShell | null = null;
  let connectionError: DiagnosisReport['connectionError'];
  try {
    shell = await deps.ssh.connect(access.target);
  } catch (err) {
    if (err instanceof NodediagError && CONFIG_CODES.has(err.code)) throw err;
    connectionError = {
      code: err instanceof NodediagError ? err.code : 'SSH_UNREACHABLE',
      message: deps.redact(errorMessage(err)),
    };
  }
  try {
    const { findings, undecided, observations, layout } = await collectAndClassify(
      name,
      access,
      shell,
      `not run: ${connectionError?.message ?? 'no SSH connection'}`,
      deps,
      fresh.waitForNodeStatusMs ? undefined : kubeNode,
      fresh,
    );
    return {
      node: name,
      host: access.target.host,
      startedAt: new Date(started).toISOString(),
      durationMs: deps.clock.now() - started,
      reachable: shell !== null,
      ...(connectionError ? { connectionError } : {}),
      findings,
      undecided,
      layout,
      checks: summariseChecks(observations, deps),
      observations,
    };
  } finally {
    shell?.close();
  }
}
