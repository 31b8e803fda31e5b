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
 *   with `maxAgeSeconds`, the line must be that recent (a journal line's
 *   timestamp, or a Kubernetes line's `at=`); with `clearedBy`, only lines
 *   after the check's last line matching that regex count (a recovery the
 *   log itself records ends what came before); with `minDistinct`, the named
 *   group must take at least that many distinct values.
 * - `status`: the check ended with one of these statuses.
 * - `noLine`: the check ran (`ok`), its output was not cut, and no line matches.
 * - `allOf` / `anyOf` / `not`: combinators.
 *
 * Matchers have three values (see diagnose/match.ts): a `line` or `noLine`
 * over a check that did not run is unknown, never true or false.
 */
export type Matcher =
  | {
      check: string;
      line: string;
      capture?: { group: string; gte?: number; lte?: number };
      maxAgeSeconds?: number;
      clearedBy?: string;
      minDistinct?: { group: string; count: number };
    }
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
        /** Only lines at most this old (by the node's clock) count: history is not current state. */
        maxAgeSeconds: z.number().int().min(1).optional(),
        /** Lines up to the last one matching this (in the check's own order: a journal's is time) are history. */
        clearedBy: regexSource.optional(),
        /** The named group must take at least this many distinct values (e.g. two different pods). */
        minDistinct: z.object({ group: z.string().min(1), count: z.number().int().min(2) }).strict().optional(),
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
      /**
       * `layout` probes find where things are (binaries, configs, sockets). They run first, with
       * the `main` probes that name none of those paths; a `main` probe that names one is rendered
       * with what the first layout probe found and starts as soon as that one has reported.
       */
      stage: z.enum(['layout', 'main']).default('main'),
      /** Shell script template: `{{sudo}}` marks a privileged command, `{{name}}` a quoted parameter. */
      script: z.string().min(1),
      timeoutMs: z.number().int().min(500).max(120_000),
      parser: z.enum(PARSERS).default('lines'),
      /**
       * A line the script prints only when it really looked (regex over its raw output). Without
       * it the check failed, whatever the exit status: a `systemctl` that cannot reach systemd,
       * or a journal the SSH user may not read, prints nothing, and nothing must not read as healthy.
       */
      ranIf: z.string().min(1).optional(),
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
    /**
     * For symptoms: when none of `causedBy` is present, the symptom is reported
     * only if this holds too (one pod's own crash is the app's business, not the node's).
     */
    withoutCause: matcherSchema.optional(),
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

/**
 * Kubernetes operations a runbook step may perform (the bot's RBAC allows exactly these):
 * `delete-pods` deletes the pods the plan names (its `pods` parameter), each only if its UID
 * is still the one the diagnosis saw; `drain` evicts through the Eviction API.
 */
export const KUBE_OPS = ['delete-pods', 'cordon', 'uncordon', 'drain'] as const;
export type KubeOp = (typeof KUBE_OPS)[number];
export const KUBE_VERIFIES = ['node-ready', 'pods-recreated', 'node-drained'] as const;
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
    /**
     * Refuse unless this check passes (unsafe state). Checked before the first step changes
     * anything (unless `preflight: false`: it depends on an earlier step) and again just before this one.
     */
    requires: remoteCheckSchema.extend({ refusal: z.string().min(1), preflight: z.boolean().default(true) }).optional(),
    /** What the step does; a step without an action only checks (its verify). */
    action: z.discriminatedUnion('kind', [sshActionSchema, kubeActionSchema]).optional(),
    verify: verifySchema.optional(),
    /** How to take the step back when it or a later step fails (e.g. put a config back from its backup). */
    undo: z.object({ script: z.string().min(1), timeoutMs: z.number().int().min(500).max(120_000), note: z.string().min(1) }).strict().optional(),
    /** Whether running the step twice is harmless. */
    retrySafe: z.boolean(),
  })
  .strict()
  .refine((s) => s.action || s.verify, { message: 'a step needs an action, a verify, or both' });
export type RunbookStep = z.infer<typeof stepSchema>;

/**
 * A named, typed parameter a runbook takes from the finding's named regex groups (or from a
 * finding it explains, e.g. the crash-looping pods), or from what its preview printed.
 */
export const runbookParamSchema = z
  .object({
    /** The named capture group. */
    from: z.string().min(1).optional(),
    /** Take it from this finding (a symptom the runbook's finding explains) instead of the runbook's own. */
    finding: kebabId.optional(),
    /** Take it from this capture of the preview (what the approver saw). */
    preview: z.string().min(1).optional(),
    /** Every value must match this (anchored) pattern before it reaches a script. */
    pattern: regexSource,
    min: z.number().int().min(0).default(1),
    max: z.number().int().min(1).default(64),
  })
  .strict()
  .refine((p) => (p.from !== undefined) !== (p.preview !== undefined), { message: 'a parameter comes from a finding group (from) or a preview capture (preview), one of them' });

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
    /**
     * A script run when the plan is made, changing nothing, whose output the approver sees (e.g. the
     * config diff). `captures` turn lines of it into plan parameters (regexes with a `value` group).
     */
    preview: z
      .object({ title: z.string().min(1), script: z.string().min(1), captures: z.record(z.string(), regexSource).default({}) })
      .strict()
      .optional(),
    /** The workload guard expects the shims named by this parameter (`pid@start`) to end; every other container must survive. */
    expectToEnd: z.string().optional(),
    steps: z.array(stepSchema).min(1),
    /** The documented source and the corrections made to it. */
    source: z.string().min(1),
  })
  .strict();
export type Runbook = z.infer<typeof runbookSchema>;
