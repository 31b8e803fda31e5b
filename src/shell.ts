/**
 * POSIX shell quoting. Every value that reaches a remote shell goes through
 * {@link shellQuote}; nothing is ever interpolated raw.
 */

/** Single-quotes a value for a POSIX shell (`it's` → `'it'\''s'`). */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new Error('a shell argument cannot contain NUL');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Options for {@link wrapRemoteCommand}. */
export interface WrapOptions {
  /** Remote deadline in milliseconds: `timeout` kills the command after it. */
  timeoutMs: number;
  /** Grace after TERM before KILL, in seconds. */
  killAfterSeconds?: number;
}

/**
 * Wraps a shell script for remote execution: fixed C locale, a hard remote
 * deadline (`timeout -k`, since closing an SSH channel does not stop the
 * process), and the script passed as one quoted argument to `sh -c`.
 */
export function wrapRemoteCommand(script: string, opts: WrapOptions): string {
  return `${remoteShell(opts)} -c ${shellQuote(script)}`;
}

function remoteShell(opts: WrapOptions): string {
  return `env LC_ALL=C timeout -k ${opts.killAfterSeconds ?? 2} ${Math.max(1, Math.ceil(opts.timeoutMs / 1000))} sh`;
}

/**
 * As {@link wrapRemoteCommand}, for a script sent on the command's standard
 * input: the login shell that starts the command reads no quoting of the
 * script (fish and csh read quotes and newlines their own way), and the
 * session can open before the script is known. The whole script is read
 * before it runs, so a command in it that reads standard input finds its end,
 * not the rest of the script.
 */
export function wrapStdinScriptCommand(opts: WrapOptions): string {
  return `${remoteShell(opts)} -c ${STDIN_SCRIPT}`;
}

/** `sh -c` argument that runs the script on standard input (no quote or newline in it for the login shell to read). */
export const STDIN_SCRIPT = `'eval "$(cat)"'`;

/** Exit status GNU `timeout` uses when the deadline expired. */
export const TIMEOUT_EXIT_CODES = new Set([124, 137]);
