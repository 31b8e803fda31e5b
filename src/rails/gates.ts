/**
 * The fleet safety rails, as pure decisions: the storm gate (too many nodes
 * unhealthy, or too many incidents opened, at once: fixes need two
 * approvers), the retry budget (at most N fix runs per node per window, then
 * escalate), and the pause. The numbers are the anchors of the field:
 * medik8s NodeHealthCheck's maxUnhealthy, EKS node auto-repair turning
 * itself off above 20% unhealthy, Kured's concurrency 1, AKS's three tries.
 */

/** The rails' settings. */
export interface RailsConfig {
  /** Fix runs at once in the cluster; more wait in a queue. */
  maxConcurrentFixes: number;
  /** Storm when more than this share (0–1) of the nodes in scope are unhealthy… */
  stormUnhealthyShare: number;
  /** …and at least this many are (one broken node in a small cluster is an incident, not a storm). */
  stormMinNodes: number;
  /** Storm when more than this many incidents opened within {@link RailsConfig.stormWindowMs}. */
  stormIncidents: number;
  stormWindowMs: number;
  /** Fix runs allowed per node within {@link RailsConfig.retryWindowMs}. */
  retryBudget: number;
  retryWindowMs: number;
}

/** Defaults (documented in .env.example). */
export const DEFAULT_RAILS: RailsConfig = {
  maxConcurrentFixes: 1,
  stormUnhealthyShare: 0.3,
  stormMinNodes: 2,
  stormIncidents: 10,
  stormWindowMs: 10 * 60_000,
  retryBudget: 2,
  retryWindowMs: 24 * 3600_000,
};

/** What the rails remember (see ledger.ts). */
export interface LedgerEvent {
  /** Epoch ms. */
  at: number;
  node: string;
  kind: 'incident-opened' | 'unhealthy' | 'healthy' | 'fix-run';
}

/** A storm: fixes are not offered to one approver. */
export interface Storm {
  /** The unhealthy nodes (sorted). */
  nodes: string[];
  /** Why, in a sentence. */
  why: string;
}

/** The nodes whose latest word in the window is "unhealthy". */
export function unhealthyNodes(events: readonly LedgerEvent[], now: number, windowMs: number): string[] {
  const last = new Map<string, LedgerEvent['kind']>();
  for (const e of events) {
    if (e.at < now - windowMs || (e.kind !== 'unhealthy' && e.kind !== 'healthy')) continue;
    last.set(e.node, e.kind);
  }
  return [...last].filter(([, k]) => k === 'unhealthy').map(([n]) => n).sort();
}

/** The storm, if there is one now. `scope`: the nodes the bot looks after (others, such as names no inventory knows, do not count). */
export function stormNow(events: readonly LedgerEvent[], scope: ReadonlySet<string>, now: number, cfg: RailsConfig): Storm | null {
  const inScope = events.filter((e) => scope.has(e.node));
  const nodes = unhealthyNodes(inScope, now, cfg.stormWindowMs);
  const opened = inScope.filter((e) => e.kind === 'incident-opened' && e.at >= now - cfg.stormWindowMs).length;
  const minutes = Math.round(cfg.stormWindowMs / 60_000);
  const size = scope.size;
  const share = size > 0 ? nodes.length / size : 0;
  if (size > 0 && share > cfg.stormUnhealthyShare && nodes.length >= cfg.stormMinNodes) {
    return { nodes, why: `${nodes.length} of ${size} nodes (${Math.round(share * 100)}%) are unhealthy in the last ${minutes} min, above ${Math.round(cfg.stormUnhealthyShare * 100)}%` };
  }
  if (opened > cfg.stormIncidents) {
    return { nodes, why: `${opened} incidents opened in the last ${minutes} min, above ${cfg.stormIncidents}` };
  }
  return null;
}

/** Fix runs on a node inside the retry window. */
export function fixRunsOf(events: readonly LedgerEvent[], node: string, now: number, cfg: RailsConfig): number {
  return events.filter((e) => e.kind === 'fix-run' && e.node === node && e.at >= now - cfg.retryWindowMs).length;
}

/** Why the budget forbids another run, or null. */
export function budgetRefusal(events: readonly LedgerEvent[], node: string, now: number, cfg: RailsConfig): string | null {
  const runs = fixRunsOf(events, node, now, cfg);
  if (runs < cfg.retryBudget) return null;
  const hours = Math.round(cfg.retryWindowMs / 3600_000);
  return `${runs} fix runs on ${node} in the last ${hours} h (the budget is ${cfg.retryBudget}): the fixes do not hold, a human must look`;
}

/** A pause of every fix (`/diag pause`). */
export interface Pause {
  by: string;
  reason: string;
  /** ISO times. */
  at: string;
  until: string;
  channel: string;
}

/** The pause in force at `now`, or null. */
export function activePause(p: Pause | null, now: number): Pause | null {
  return p && Date.parse(p.until) > now ? p : null;
}

/** Parses "30m", "2h", "1d", "90s" (1 minute to 7 days). */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,4})\s*(s|m|min|h|d)$/i.exec(text.trim());
  if (!m) return null;
  const unit = m[2]!.toLowerCase();
  const ms = Number(m[1]) * (unit === 's' ? 1000 : unit === 'h' ? 3600_000 : unit === 'd' ? 86_400_000 : 60_000);
  return ms >= 60_000 && ms <= 7 * 86_400_000 ? ms : null;
}
