/**
 * `nodediag sudoers` and `nodediag audit verify`.
 */
import { loadCatalogs } from '../catalog/load.js';
import type { Config } from '../config.js';
import { EXIT, UsageError } from '../errors.js';
import { verifyAuditLog } from '../incidents/audit-log.js';
import { sudoersFile } from '../runbooks/sudoers.js';
import { parseArgs } from './args.js';
import type { Io } from './io.js';

export async function sudoersCommand(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv, { user: { value: true }, help: { value: false, short: 'h' } }, 'sudoers');
  if (args.flags.help) {
    io.out('Usage: nodediag sudoers [--user NAME]\n\nPrints the sudoers lines that let NAME (default: nodediag) run, as root, exactly the commands in nodediag\'s catalogs.');
    return EXIT.ok;
  }
  const user = (args.flags.user as string | undefined) ?? 'nodediag';
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/.test(user)) throw new UsageError(`sudoers: "${user.slice(0, 40)}" is not a valid user name`);
  io.out(sudoersFile(loadCatalogs(), user).trimEnd());
  return EXIT.ok;
}

export async function auditCommand(argv: string[], config: Config, io: Io): Promise<number> {
  const args = parseArgs(argv, { json: { value: false }, help: { value: false, short: 'h' } }, 'audit');
  if (args.flags.help || args.positional[0] !== 'verify') {
    io.out('Usage: nodediag audit verify [FILE] [--json]\n\nChecks the audit log\'s hash chain (default: $NODEDIAG_AUDIT_LOG). Exit 0 intact, 1 tampered or missing.');
    return args.flags.help ? EXIT.ok : EXIT.usage;
  }
  const path = args.positional[1] ?? config.auditLogPath;
  const v = verifyAuditLog(path);
  if (args.flags.json) io.out(JSON.stringify({ path, ...v }, null, 2));
  else if (v.ok) io.out(`${path}: intact, ${v.entries} entries, chain and head check out`);
  else io.out(`${path}: NOT INTACT after ${v.entries} good entries — line ${v.problem!.line}: ${v.problem!.reason}`);
  return v.ok ? EXIT.ok : EXIT.findings;
}
