/**
 * Recognises the commands nodediag sends: unwraps the remote wrapper, splits
 * a probe batch into its probes, and matches single scripts against the
 * catalog templates (a `{{param}}` matches one shell-quoted value). Used by
 * the simulated node to answer like a real one.
 */
import type { Catalogs } from '../catalog/load.js';
import { supportScriptData } from '../catalog/runbooks.js';
import { STDIN_SCRIPT } from '../shell.js';

/** A catalog script recognised in a command. */
export interface ScriptMatch {
  /** `probe:<id>`, `<step-id>:<action|skipIf|requires|verify|undo>`, `preview:<runbook-id>` or `support:<clock|snapshot|alive>`. */
  key: string;
  /** Values of the template parameters (unquoted). */
  params: Record<string, string>;
}

/** Undoes {@link shellQuote}: `'it'\''s'` → `it's`. */
export function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/'\\''/g, "'");
}

const QUOTED = `'(?:[^']|'\\\\'')*'`;

/** The script inside `env LC_ALL=C timeout -k K S sh -c '<script>'`, or null. */
export function unwrapCommand(command: string): { script: string; timeoutSeconds: number } | null {
  const m = new RegExp(`^env LC_ALL=C timeout -k \\d+ (\\d+) sh -c (${QUOTED})$`, 's').exec(command);
  return m ? { script: unquote(m[2]!), timeoutSeconds: Number(m[1]) } : null;
}

/** The deadline of a command whose script comes on standard input (see `wrapStdinScriptCommand`), or null. */
export function stdinScriptTimeout(command: string): number | null {
  const m = /^env LC_ALL=C timeout -k \d+ (\d+) sh -c (.*)$/s.exec(command);
  return m && m[2] === STDIN_SCRIPT ? Number(m[1]) : null;
}

/** The probes of a batch script (groups of probes under one `timeout` each, their scripts as arguments): id, timeout, cap and script, or null when it is not a batch. */
export function splitBatch(script: string): Array<{ id: string; timeoutSeconds: number; cap: number; script: string }> | null {
  if (!script.startsWith('_nd_fn=')) return null;
  const out: Array<{ id: string; timeoutSeconds: number; cap: number; script: string }> = [];
  const group = new RegExp(`^timeout -k \\d+ (\\d+) sh -c (${QUOTED}) sh((?: ${QUOTED})+) &$`, 'gm');
  for (const g of script.matchAll(group)) {
    const args = [...g[3]!.matchAll(new RegExp(QUOTED, 'g'))].map((a) => unquote(a[0]));
    for (const m of unquote(g[2]!).matchAll(/^probe ('(?:[^']|'\\'')*') (\d+) "\$(\d+)"$/gm)) {
      out.push({ id: unquote(m[1]!), timeoutSeconds: Number(g[1]), cap: Number(m[2]), script: args[Number(m[3]) - 1]! });
    }
  }
  return out.length ? out : null;
}

function templateRegex(template: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  let source = '';
  let last = 0;
  for (const m of template.matchAll(/\{\{([a-zA-Z][a-zA-Z0-9]*)\}\}/g)) {
    source += template.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (m[1] === 'sudo') source += '(?:sudo -n )?';
    else {
      source += `(${QUOTED})`;
      names.push(m[1]!);
    }
    last = m.index! + m[0].length;
  }
  source += template.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return { re: new RegExp(`^${source}$`, 's'), names };
}

/** Builds a matcher over every script in the catalogs. */
export function catalogScriptMatcher(catalogs: Catalogs): (script: string) => ScriptMatch | null {
  const entries: Array<{ key: string; re: RegExp; names: string[] }> = [];
  const add = (key: string, template: string) => entries.push({ key, ...templateRegex(template) });
  for (const p of catalogs.probes) if (p.transport === 'ssh') add(`probe:${p.id}`, p.script);
  for (const [name, script] of Object.entries(supportScriptData)) add(`support:${name}`, script);
  for (const rb of catalogs.runbooks) {
    if (rb.preview) add(`preview:${rb.id}`, rb.preview.script);
    for (const s of rb.steps) {
      if (s.action?.kind === 'ssh') add(`${s.id}:action`, s.action.script);
      if (s.skipIf) add(`${s.id}:skipIf`, s.skipIf.script);
      if (s.requires) add(`${s.id}:requires`, s.requires.script);
      if (s.verify?.kind === 'ssh') add(`${s.id}:verify`, s.verify.script);
      if (s.undo) add(`${s.id}:undo`, s.undo.script);
    }
  }
  return (script) => {
    for (const e of entries) {
      const m = e.re.exec(script);
      if (!m) continue;
      const params: Record<string, string> = {};
      e.names.forEach((n, i) => (params[n] = unquote(m[i + 1]!)));
      return { key: e.key, params };
    }
    return null;
  };
}
