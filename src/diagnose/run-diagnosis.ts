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
import { runSshProbes, skippedSshProbes } from '../probes/ssh-collector.js';
import type { Redactor } from '../redact.js';
import { classify, type Finding } from './classify.js';
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
  checks: CheckSummary[];
  /** Every observation (redacted), for the audit trail, fixtures and debugging. */
  observations: Observation[];
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

/** Resolves how to reach a node; throws for an invalid or unknown name. `known` is the Node when already read (fleet mode). */
export async function resolveNode(
  name: string,
  deps: Pick<DiagnoseDeps, 'inventory' | 'kube'>,
  known?: KubeNode,
): Promise<{ access: NodeAccess; kubeNode: Promise<KubeNode | null> }> {
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
): Promise<{ findings: Finding[]; observations: Observation[] }> {
  const sshProbes = deps.catalogs.probes.filter((p): p is SshProbe => p.transport === 'ssh');
  const kubeProbes = deps.catalogs.probes.filter((p): p is KubeProbe => p.transport === 'kube');
  const sshCtx = { sudo: access.sudo, runtimeSocket: access.runtimeSocket, maxOutputBytes: deps.maxOutputBytes, clock: deps.clock, redact: deps.redact };
  const [sshObs, kubeObs] = await Promise.all([
    shell ? runSshProbes(shell, sshProbes, sshCtx) : Promise.resolve(skippedSshProbes(sshProbes, unreachableReason)),
    runKubeProbes(node, kubeProbes, {
      kube: deps.kube,
      unavailableReason: deps.kubeUnavailableReason,
      runtimeSockets: [access.runtimeSocket],
      clock: deps.clock,
      redact: deps.redact,
      node: kubeNode,
    }),
  ]);
  const observations = [...sshObs, ...kubeObs];
  return { findings: classify(observationsOf(observations), deps.catalogs), observations };
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

/** Diagnoses one node. Throws only for bad input or configuration (invalid or unknown name, unreadable key). */
export async function diagnoseNode(name: string, deps: DiagnoseDeps, known?: KubeNode): Promise<DiagnosisReport> {
  const started = deps.clock.now();
  const { access, kubeNode } = await resolveNode(name, deps, known);
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
    const { findings, observations } = await collectAndClassify(
      name,
      access,
      shell,
      `not run: ${connectionError?.message ?? 'no SSH connection'}`,
      deps,
      kubeNode,
    );
    return {
      node: name,
      host: access.target.host,
      startedAt: new Date(started).toISOString(),
      durationMs: deps.clock.now() - started,
      reachable: shell !== null,
      ...(connectionError ? { connectionError } : {}),
      findings,
      checks: summariseChecks(observations, deps),
      observations,
    };
  } finally {
    shell?.close();
  }
}
