/**
 * Catalog script templates. `{{sudo}}` becomes `sudo -n ` (or nothing when
 * the SSH user is root); every other `{{name}}` becomes the shell-quoted
 * value. A template may only name parameters its context provides: the
 * loader checks that, and rendering refuses unknown names.
 */
import { shellQuote } from '../shell.js';

const PLACEHOLDER = /\{\{([a-zA-Z][a-zA-Z0-9]*)\}\}/g;

/** Parameter names a template refers to (without `sudo`). */
export function templateParams(template: string): string[] {
  const names = new Set<string>();
  for (const m of template.matchAll(PLACEHOLDER)) if (m[1] !== 'sudo') names.add(m[1]!);
  return [...names];
}

/** Values for a script template. */
export interface ScriptParams {
  /** Prefix privileged commands with `sudo -n`. */
  sudo: boolean;
  [name: string]: string | boolean;
}

/** Renders a script template; each value is shell-quoted. */
export function renderScript(template: string, params: ScriptParams): string {
  return template.replace(PLACEHOLDER, (_all, name: string) => {
    if (name === 'sudo') return params.sudo ? 'sudo -n ' : '';
    const value = params[name];
    if (typeof value !== 'string') throw new Error(`template parameter {{${name}}} has no value`);
    return shellQuote(value);
  });
}

/** Renders a human text template (titles, refusals, advice) without quoting. */
export function renderText(template: string, params: Record<string, string | string[] | undefined>): string {
  return template.replace(PLACEHOLDER, (all, name: string) => {
    const value = params[name];
    if (value === undefined || (Array.isArray(value) && value.length === 0)) return all === '{{sudo}}' ? '' : `<${name}>`;
    return Array.isArray(value) ? value.join(', ') : value;
  });
}
