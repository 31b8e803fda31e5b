#!/usr/bin/env node
/**
 * The terminal entry point: `nodediag diag|fix|demo|serve|sudoers|audit`.
 * A composition root: reads the environment once, maps errors to exit codes,
 * and never prints a stack trace or a secret.
 */
import { loadConfig } from './config.js';
import { auditCommand, sudoersCommand } from './cli/admin-commands.js';
import { diagCommand, DIAG_HELP } from './cli/diag-command.js';
import { demoCommand } from './cli/demo-command.js';
import { fixCommand } from './cli/fix-command.js';
import { serveCommand } from './cli/serve-command.js';
import { processIo, type Io } from './cli/io.js';
import { ansi, plain, type Style } from './diagnose/format-text.js';
import { EXIT, NodediagError } from './errors.js';
import { redact } from './redact.js';

const HELP = `nodediag — diagnose and safely fix broken Kubernetes nodes

Usage:
  nodediag diag <node> | -l <selector>   name what is wrong with a node, with evidence
  nodediag fix <node> <finding-id>       run the finding's runbook (--dry-run to preview)
  nodediag demo                          the whole flow on a simulated broken GPU node
  nodediag serve                         run the Slack bot
  nodediag sudoers [--user NAME]         the sudoers lines the bot's SSH user needs
  nodediag audit verify [FILE]           check the audit log's hash chain

Run "nodediag <command> --help" for a command's options.`;

type Command = (argv: string[], io: Io, style: Style) => Promise<number>;

const commands: Record<string, Command> = {
  diag: (argv, io, style) => diagCommand(argv, loadConfig(), io, style),
  fix: (argv, io, style) => fixCommand(argv, loadConfig(), io, style),
  demo: (argv, io, style) => demoCommand(argv, io, style),
  serve: (argv, io) => serveCommand(argv, loadConfig(), io),
  sudoers: (argv, io) => sudoersCommand(argv, io),
  audit: (argv, io) => auditCommand(argv, loadConfig(), io),
};

/** Runs the CLI; returns the exit status. */
export async function runCli(argv: string[], io: Io = processIo()): Promise<number> {
  const style = process.stdout.isTTY && !process.env.NO_COLOR ? ansi : plain;
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.out(HELP);
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version' || name === 'version') {
    io.out('nodediag 0.1.0');
    return EXIT.ok;
  }
  const command = commands[name];
  if (!command) {
    io.err(`nodediag: unknown command "${name.slice(0, 40)}"\n\n${HELP}`);
    return EXIT.usage;
  }
  try {
    return await command(rest, io, style);
  } catch (err) {
    io.progress('');
    if (err instanceof NodediagError) {
      io.err(`nodediag ${name}: ${redact(err.describe())}`);
      return err.exitCode;
    }
    io.err(`nodediag ${name}: unexpected error: ${redact((err as Error)?.message ?? String(err))}`);
    return EXIT.failed;
  }
}

export { DIAG_HELP };

const invokedDirectly = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli.js');
if (invokedDirectly) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    () => {
      process.exitCode = EXIT.failed;
    },
  );
}
