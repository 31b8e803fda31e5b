/**
 * The shapes of the three catalogs (probes, findings, runbooks), validated
 * with zod when they are loaded. The catalogs are data: adding a finding is
 * adding an entry and a fixture, not editing the engine.
 */
import { z } from 'zod';

/** Whether a check could be performed: the JSON report's `checks[].status`. */
export const CHECK_STATUSES = ['ok', 'failed', 'timeout', 'skipped'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

const kebabId = z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be a kebab-case id');

function compiles(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/** A regular expression given as a string; must compile. */
const regexSource = z.string().min(1).refine(compiles, { message: 'invalid regex' });

/**
 * A condition over the observations of one diagnosis.
 *
 * - `line`: some output line of `check` matches the regex; the matching lines
 *   become evidence, and the regex's named groups become finding parameters.
 *   With `capture`, the named group must also hold a number within bounds;
 *   with `maxAgeSeconds`, a journal line must be that recent.
 * - `status`: the check ended with one of these statuses (a probe that timed
 *   out is itself evidence of a hung runtime).
 * - `noLine`: the check ran (`ok`) and no line matches.
 * - `allOf` / `anyOf` / `not`: combinators.
 */
export type Matcher =
  | { check: string; line: string; capture?: { group: string; gte?: number; lte?: number }; maxAgeSeconds?: number }
  | { check: string; status: CheckStatus[] }
  | { check: string; noLine: string }
  | { allOf: Matcher[] }
  | { anyOf: Matcher[] }
  | { not: Matcher };

export const matcherSchema: z.ZodType<Matcher> = z.lazy(() =>
  z.union([
    z
      .object({
        check: kebabId,
        line: regexSource,
        capture: z
          .object({ group: z.string().min(1), gte: z.number().optional(), lte: z.number().optional() })
          .strict()
          .optional(),
        /** Only journal lines at most this old (by the node's clock) count: history is not current state. */
        maxAgeSeconds: z.number().int().min(1).optional(),
      })
      .strict(),
    z.object({ check: kebabId, status: z.array(z.enum(CHECK_STATUSES)).min(1) }).strict(),
    z.object({ check: kebabId, noLine: regexSource }).strict(),
    z.object({ allOf: z.array(matcherSchema).min(1) }).strict(),
    z.object({ anyOf: z.array(matcherSchema).min(1) }).strict(),
    z.object({ not: matcherSchema }).strict(),
  ]),
);

/** How a probe's raw output becomes observation lines. */
export const PARSERS = ['lines', 'journal', 'clock'] as const;
export type ParserName = (typeof PARSERS)[number];

/** The Kubernetes reads a kube probe performs. */
export const KUBE_RESOURCES = ['node', 'pods', 'events'] as const;

/** One probe: a bounded remote command over SSH, or one read of the Kubernetes API. */
export const probeSchema = z.discriminatedUnion('transport', [
  z
    .object({
      id: kebabId,
      title: z.string().min(1),
      transport: z.literal('ssh'),
      /** Shell script template: `{{sudo}}` marks a privileged command, `{{name}}` a quoted parameter. */
      script: z.string().min(1),
      timeoutMs: z.number().int().min(500).max(120_000),
      parser: z.enum(PARSERS).default('lines'),
      /** Output cap for this probe, in bytes (the run's global cap applies when absent). */
      maxOutputBytes: z.number().int().min(1024).optional(),
    })
    .strict(),
  z
    .object({
      id: kebabId,
      title: z.string().min(1),
      transport: z.literal('kube'),
      resource: z.enum(KUBE_RESOURCES),
    })
    .strict(),
]);
export type Probe = z.infer<typeof probeSchema>;
export type SshProbe = Extract<Probe, { transport: 'ssh' }>;
export type KubeProbe = Extract<Probe, { transport: 'kube' }>;

export const SEVERITIES = ['critical', 'high', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const ROLES = ['root-cause', 'contributing', 'symptom'] as const;
export type Role = (typeof ROLES)[number];

/** One named finding: how it is recognised, what it means, what to do. */
export const findingRuleSchema = z
  .object({
    id: kebabId,
    title: z.string().min(1),
    severity: z.enum(SEVERITIES),
    role: z.enum(ROLES),
    /** One sentence on what this means for the node. */
    summary: z.string().min(1),
    /** When the finding holds. */
    when: matcherSchema,
    /** Extra evidence quoted when the finding holds; never makes it hold. */
    supporting: z.array(matcherSchema).default([]),
    /** This finding is not reported when any of these holds (a more specific cause). */
    suppressedBy: z.array(kebabId).default([]),
    /** For symptoms: the root causes that can explain it. */
    causedBy: z.array(kebabId).default([]),
    /** For contributing causes: the root causes they make possible. */
    contributesTo: z.array(kebabId).default([]),
    /** The runbook that fixes it, or null for advice only. */
    runbook: kebabId.nullable().default(null),
    /** What an engineer should do or look at next (shown always, and instead of a runbook when there is none). */
    advice: z.array(z.string().min(1)).min(1),
    /** Where the rule comes from (seed section), for reviewers. */
    source: z.string().min(1),
  })
  .strict();
export type FindingRule = z.infer<typeof findingRuleSchema>;

/** A remote check: a script and what its result must look like. */
export const remoteCheckSchema = z
  .object({
    script: z.string().min(1),
    /** The check passes when the exit status is this (default 0)… */
    exitCode: z.number().int().default(0),
    /** …and, when given, some output line matches. */
    stdout: regexSource.optional(),
    timeoutMs: z.number().int().min(500).max(300_000).default(10_000),
  })
  .strict();
export type RemoteCheck = z.infer<typeof remoteCheckSchema>;

/** Kubernetes operations a runbook step may perform (the bot's RBAC allows exactly these). */
export const KUBE_OPS = ['delete-crashloop-pods', 'cordon', 'uncordon'] as const;
export type KubeOp = (typeof KUBE_OPS)[number];
export const KUBE_VERIFIES = ['node-ready', 'pods-recreated'] as const;
export type KubeVerify = (typeof KUBE_VERIFIES)[number];

const sshActionSchema = z.object({ kind: z.literal('ssh'), script: z.string().min(1), timeoutMs: z.number().int().min(500).max(600_000) }).strict();
const kubeActionSchema = z.object({ kind: z.literal('kube'), op: z.enum(KUBE_OPS) }).strict();

const verifySchema = z.discriminatedUnion('kind', [
  remoteCheckSchema.extend({
    kind: z.literal('ssh'),
    /** Poll until the check passes or this many milliseconds pass. */
    withinMs: z.number().int().min(0).max(600_000).default(0),
  }),
  z
    .object({
      kind: z.literal('kube'),
      check: z.enum(KUBE_VERIFIES),
      withinMs: z.number().int().min(0).max(600_000).default(60_000),
    })
    .strict(),
]);
export type StepVerify = z.infer<typeof verifySchema>;

/** One step of a runbook. */
export const stepSchema = z
  .object({
    id: kebabId,
    title: z.string().min(1),
    /** Why this step exists, shown in the plan. */
    why: z.string().min(1),
    /** Run once per value of this list parameter (e.g. each left-over shim PID). */
    forEach: z.string().optional(),
    /** Skip the step (state already reached) when this check passes. */
    skipIf: remoteCheckSchema.optional(),
    /** Abort the run before acting unless this check passes (unsafe state). */
    requires: remoteCheckSchema.extend({ refusal: z.string().min(1) }).optional(),
    /** What the step does; a step without an action only checks (its verify). */
    action: z.discriminatedUnion('kind', [sshActionSchema, kubeActionSchema]).optional(),
    verify: verifySchema.optional(),
    /** Whether running the step twice is harmless. */
    retrySafe: z.boolean(),
  })
  .strict()
  .refine((s) => s.action || s.verify, { message: 'a step needs an action, a verify, or both' });
export type RunbookStep = z.infer<typeof stepSchema>;

/** A named, typed parameter a runbook takes from the finding (named regex groups). */
export const runbookParamSchema = z
  .object({
    /** The finding's named capture group. */
    from: z.string().min(1),
    /** Every value must match this (anchored) pattern before it reaches a script. */
    pattern: regexSource,
    min: z.number().int().min(0).default(1),
    max: z.number().int().min(1).default(64),
  })
  .strict();

/** A fix sequence for one finding. */
export const runbookSchema = z
  .object({
    id: kebabId,
    title: z.string().min(1),
    finding: kebabId,
    /** What the approver must know: impact, what is dropped, what keeps running. */
    impact: z.string().min(1),
    /** The runbook is offered only when this holds on the diagnosis (else the finding's advice stands). */
    appliesWhen: matcherSchema.optional(),
    params: z.record(z.string(), runbookParamSchema).default({}),
    /** Suggest cordoning the node before this runbook. */
    suggestCordon: z.boolean().default(false),
    /** A read-only script run when the plan is shown, whose output the approver sees (e.g. what a reset drops). */
    preview: z.object({ title: z.string().min(1), script: z.string().min(1) }).strict().optional(),
    steps: z.array(stepSchema).min(1),
    /** The documented source and the corrections made to it. */
    source: z.string().min(1),
  })
  .strict();
export type Runbook = z.infer<typeof runbookSchema>;
