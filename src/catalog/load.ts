/**
 * Loads and validates the three catalogs: zod shapes first, then the
 * cross-references (checks named by rules exist, runbooks exist and point
 * back, templates name only parameters their context provides). Errors name
 * the entry: `findings[3] (containerd-hung).when.line: invalid regex`.
 */
import { z } from 'zod';
import { CatalogError } from '../errors.js';
import { findingCatalogData } from './findings.js';
import { probeCatalogData } from './probes.js';
import { runbookCatalogData } from './runbooks.js';
import { namedGroups } from './regex.js';
import {
  findingRuleSchema,
  probeSchema,
  runbookSchema,
  type FindingRule,
  type Matcher,
  type Probe,
  type Runbook,
} from './schema.js';
import { templateParams } from './template.js';
import { LAYOUT_PARAM_NAMES } from '../probes/layout.js';

/** The validated catalogs with lookups by id. */
export interface Catalogs {
  probes: Probe[];
  findings: FindingRule[];
  runbooks: Runbook[];
  probeById: Map<string, Probe>;
  findingById: Map<string, FindingRule>;
  runbookById: Map<string, Runbook>;
}

/** Raw catalog data, for tests that load a variant. */
export interface CatalogData {
  probes: unknown;
  findings: unknown;
  runbooks: unknown;
}

/** Parameters every main probe and step script may use: where things are on the node (probes/layout.ts). */
export const BASE_SCRIPT_PARAMS = [...LAYOUT_PARAM_NAMES] as const;
/** Extra parameters main probe scripts may use: the start of the fresh-evidence window. */
export const PROBE_SCRIPT_PARAMS = [...LAYOUT_PARAM_NAMES, 'since'] as const;
/** Parameters runbook step scripts may use, besides the runbook's own. */
export const STEP_SCRIPT_PARAMS = [...LAYOUT_PARAM_NAMES, 'stamp'] as const;

function formatPath(list: string, data: unknown[], path: PropertyKey[]): string {
  const [index, ...rest] = path;
  const entry = typeof index === 'number' ? data[index] : undefined;
  const id = entry && typeof entry === 'object' && 'id' in entry ? ` (${String((entry as { id: unknown }).id)})` : '';
  const tail = rest.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  return `${list}[${String(index)}]${id}${tail}`;
}

function parseList<T>(list: string, schema: z.ZodType<T>, data: unknown): T[] {
  if (!Array.isArray(data)) throw new CatalogError(`${list}: must be a list`);
  const result = z.array(schema).safeParse(data);
  if (!result.success) {
    const lines = result.error.issues.slice(0, 10).map((i) => `${formatPath(list, data, i.path)}: ${i.message}`);
    throw new CatalogError(`invalid ${list} catalog:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}

/** Every leaf of a matcher tree. */
export function matcherLeaves(m: Matcher): Array<Extract<Matcher, { check: string }>> {
  if ('allOf' in m) return m.allOf.flatMap(matcherLeaves);
  if ('anyOf' in m) return m.anyOf.flatMap(matcherLeaves);
  if ('not' in m) return matcherLeaves(m.not);
  return [m];
}

function uniqueIds(list: string, ids: string[], problems: string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) problems.push(`${list}: duplicate id "${id}"`);
    seen.add(id);
  }
}

function checkMatcher(where: string, m: Matcher, probeIds: Set<string>, problems: string[]): string[] {
  const groups: string[] = [];
  for (const leaf of matcherLeaves(m)) {
    if (!probeIds.has(leaf.check)) problems.push(`${where}: unknown check "${leaf.check}"`);
    if ('line' in leaf) {
      const declared = namedGroups(leaf.line);
      groups.push(...declared);
      if (leaf.capture && !declared.includes(leaf.capture.group)) {
        problems.push(`${where}: capture group "${leaf.capture.group}" is not a named group of ${leaf.line}`);
      }
    }
  }
  return groups;
}

function checkTemplate(where: string, template: string, allowed: readonly string[], problems: string[]): void {
  for (const name of templateParams(template)) {
    if (!allowed.includes(name)) problems.push(`${where}: unknown template parameter {{${name}}}`);
  }
}

/** Loads the shipped catalogs (or the given data) and validates them. */
export function loadCatalogs(
  data: CatalogData = { probes: probeCatalogData, findings: findingCatalogData, runbooks: runbookCatalogData },
): Catalogs {
  const probes = parseList('probes', probeSchema, data.probes);
  const findings = parseList('findings', findingRuleSchema, data.findings);
  const runbooks = parseList('runbooks', runbookSchema, data.runbooks);
  const problems: string[] = [];

  uniqueIds('probes', probes.map((p) => p.id), problems);
  uniqueIds('findings', findings.map((f) => f.id), problems);
  uniqueIds('runbooks', runbooks.map((r) => r.id), problems);

  const probeIds = new Set(probes.map((p) => p.id));
  const findingIds = new Set(findings.map((f) => f.id));
  const runbookById = new Map(runbooks.map((r) => [r.id, r]));

  for (const p of probes) {
    if (p.transport === 'ssh') checkTemplate(`probes (${p.id}).script`, p.script, p.stage === 'layout' ? [] : PROBE_SCRIPT_PARAMS, problems);
  }

  const groupsByFinding = new Map<string, string[]>();
  for (const f of findings) {
    const where = `findings (${f.id})`;
    const groups = checkMatcher(`${where}.when`, f.when, probeIds, problems);
    f.supporting.forEach((m, i) => checkMatcher(`${where}.supporting[${i}]`, m, probeIds, problems));
    if (f.withoutCause) checkMatcher(`${where}.withoutCause`, f.withoutCause, probeIds, problems);
    if (f.withoutCause && f.role !== 'symptom') problems.push(`${where}.withoutCause: only a symptom can have one`);
    groupsByFinding.set(f.id, groups);
    for (const [field, ids] of [
      ['suppressedBy', f.suppressedBy],
      ['causedBy', f.causedBy],
      ['contributesTo', f.contributesTo],
    ] as const) {
      for (const id of ids) if (!findingIds.has(id)) problems.push(`${where}.${field}: unknown finding "${id}"`);
    }
    if (f.role === 'symptom' && f.causedBy.length === 0) problems.push(`${where}: a symptom must list causedBy`);
    if (f.role === 'contributing' && f.contributesTo.length === 0) problems.push(`${where}: a contributing cause must list contributesTo`);
    f.advice.forEach((a, i) => {
      for (const name of templateParams(a)) {
        if (!groups.includes(name)) problems.push(`${where}.advice[${i}]: {{${name}}} is not a named group of the rule`);
      }
    });
    if (f.runbook) {
      const rb = runbookById.get(f.runbook);
      if (!rb) problems.push(`${where}.runbook: unknown runbook "${f.runbook}"`);
      else if (rb.finding !== f.id) problems.push(`${where}.runbook: runbook "${rb.id}" is for finding "${rb.finding}"`);
      // One name per scenario: the finding, its runbook, its lab fault and its fixture share it.
      if (f.runbook !== f.id) problems.push(`${where}.runbook: a runbook has the id of its finding ("${f.id}"), not "${f.runbook}"`);
    }
  }

  for (const rb of runbooks) {
    const where = `runbooks (${rb.id})`;
    const finding = findings.find((f) => f.id === rb.finding);
    if (!finding) problems.push(`${where}.finding: unknown finding "${rb.finding}"`);
    else if (finding.runbook !== rb.id) problems.push(`${where}: finding "${rb.finding}" does not name this runbook`);
    if (rb.appliesWhen) checkMatcher(`${where}.appliesWhen`, rb.appliesWhen, probeIds, problems);
    for (const [name, param] of Object.entries(rb.params)) {
      const source = param.finding ?? rb.finding;
      if (param.finding && !findingIds.has(param.finding)) problems.push(`${where}.params.${name}.finding: unknown finding "${param.finding}"`);
      if (param.from !== undefined && !(groupsByFinding.get(source) ?? []).includes(param.from)) {
        problems.push(`${where}.params.${name}: "${param.from}" is not a named group of finding ${source}`);
      }
      if (param.preview !== undefined && !(param.preview in (rb.preview?.captures ?? {}))) {
        problems.push(`${where}.params.${name}: "${param.preview}" is not a capture of the runbook's preview`);
      }
      if (!param.pattern.startsWith('^') || !param.pattern.endsWith('$')) problems.push(`${where}.params.${name}.pattern: must be anchored (^…$)`);
    }
    for (const [name, re] of Object.entries(rb.preview?.captures ?? {})) {
      if (!namedGroups(re).includes('value')) problems.push(`${where}.preview.captures.${name}: needs a (?<value>…) group`);
    }
    if (rb.expectToEnd && !(rb.expectToEnd in rb.params)) problems.push(`${where}.expectToEnd: unknown parameter "${rb.expectToEnd}"`);
    if (rb.preview) checkTemplate(`${where}.preview.script`, rb.preview.script, STEP_SCRIPT_PARAMS, problems);
    // Scalar parameters (one value) may appear in any script; a list only in the step that runs once per value.
    const scalars = Object.entries(rb.params).filter(([, p]) => p.max === 1).map(([n]) => n);
    rb.steps.forEach((step, i) => {
      const sw = `${where}.steps[${i}] (${step.id})`;
      if (step.forEach && !(step.forEach in rb.params)) problems.push(`${sw}.forEach: unknown parameter "${step.forEach}"`);
      const allowed = [...STEP_SCRIPT_PARAMS, ...scalars, ...(step.forEach ? [step.forEach] : [])];
      if (step.action?.kind === 'ssh') checkTemplate(`${sw}.action.script`, step.action.script, allowed, problems);
      if (step.skipIf) checkTemplate(`${sw}.skipIf.script`, step.skipIf.script, allowed, problems);
      if (step.requires) checkTemplate(`${sw}.requires.script`, step.requires.script, allowed, problems);
      if (step.verify?.kind === 'ssh') checkTemplate(`${sw}.verify.script`, step.verify.script, allowed, problems);
      if (step.undo) checkTemplate(`${sw}.undo.script`, step.undo.script, allowed, problems);
      if (step.action?.kind === 'kube' && step.action.op === 'delete-pods' && !('pods' in rb.params)) {
        problems.push(`${sw}: delete-pods needs a "pods" parameter (the pods the diagnosis named)`);
      }
    });
    uniqueIds(`${where}.steps`, rb.steps.map((s) => s.id), problems);
  }

  if (problems.length > 0) throw new CatalogError(`invalid catalog:\n  ${problems.join('\n  ')}`);
  return {
    probes,
    findings,
    runbooks,
    probeById: new Map(probes.map((p) => [p.id, p])),
    findingById: new Map(findings.map((f) => [f.id, f])),
    runbookById,
  };
}
