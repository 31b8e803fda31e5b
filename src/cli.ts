#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The `nodediag` executable. It checks the Node.js version before anything
 * else loads: on an older Node the libraries nodediag needs fail with
 * unrelated errors (`enableCompileCache` missing, undici's `bind` of
 * undefined), so this file imports nothing statically and says plainly what
 * is needed instead.
 */

/** The oldest Node.js nodediag runs on: @slack/bolt and @kubernetes/client-node need undici 8, which needs 22.19. */
export const MIN_NODE = [22, 19] as const;

/** Why this Node.js cannot run nodediag, or null when it can. */
export function unsupportedNode(version: string): string | null {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  if (major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1])) return null;
  return [
    `nodediag needs Node.js ${MIN_NODE.join('.')} or later; this is Node.js ${version}.`,
    'Install Node.js 24 LTS (https://nodejs.org/en/download, or your distribution\'s nodejs 24 package) and run nodediag with it.',
    'Inside a nodediag checkout, `npm install` brings Node.js 24 for the repository\'s own scripts: `npm run nodediag -- diag <node>`.',
  ].join('\n');
}

const problem = unsupportedNode(process.version);
const invokedDirectly = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli.js');
if (invokedDirectly) {
  if (problem) {
    process.stderr.write(`${problem}\n`);
    process.exitCode = 2;
  } else {
    // Cache compiled code on disk before the CLI's code loads, so that it is cached too: later runs start faster.
    (await import('node:module')).enableCompileCache?.();
    // The build's bundle (scripts/bundle.mjs) where there is one: the same code, a faster start.
    const { existsSync } = await import('node:fs');
    const bundled = new URL('./bundle/run-cli.js', import.meta.url);
    const { runCli } = (await import(existsSync(bundled) ? bundled.href : './cli/run-cli.js')) as typeof import('./cli/run-cli.js');
    process.exitCode = await runCli(process.argv.slice(2)).catch(() => 4);
  }
}
