/** JSON-lines logs on stderr; every message and field is redacted. */
import type { Logger } from './ports.js';
import type { Redactor } from './redact.js';

const ORDER = { info: 0, warn: 1, error: 2 } as const;

export function createLogger(level: keyof typeof ORDER, redact: Redactor, write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Logger {
  const log = (lvl: keyof typeof ORDER) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < ORDER[level]) return;
    write(redact(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...(fields ?? {}) })));
  };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}
