/**
 * The terminal commands: `nodediag diag|fix|demo|serve|sudoers|audit`. A
 * composition root: reads the environment once, maps errors to exit codes,
 * and never prints a stack trace or a secret. Loaded by ../cli.ts once the
 * Node.js version is known to be supported.
 */
import { setFlagsFromString } from 'node:v8';
import { config as zodConfig } from 'zod';
import { kubeSource } from '../adapters/kube.js';
import { directKubeTarget } from '../adapters/kube-direct.js';
import { prestartKubeWorker } from '../adapters/kube-in-worker.js';
import { loadConfig, type Config } from '../config.js';
import { processIo, type Io } from './io.js';
import { ansi, plain, type Style } from '../diagnose/format-text.js';
import { EXIT, NodediagError } from '../errors.js';
import { redact } from '../redact.js';

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

// A short-lived CLI allocating many small objects (fleet mode): a small young generation keeps
// garbage from piling up in RSS. The shebang sets it at start (fully effective); this line covers
// `node dist/src/cli.js`, where it applies only partly (benchmark: 243 → 171 MB vs 226 MB, 100 nodes).
setFlagsFromString('--max-semi-space-size=2');

/**
 * The configuration of a command that may read the Kubernetes API. When
 * the API may be used through the client library (a kubeconfig that is not
 * of the plain kind kube-direct.ts reads itself, or a clusters file), the
 * library's thread starts now and loads while the command's own code loads
 * and its SSH connection opens.
 */
function configWithKubeStarted(argv: string[], config = loadConfig()): Config {
  if (argv.some((a) => a === '-h' || a === '--help')) return config;
  const at = argv.findIndex((a) => a === '--kubeconfig' || a.startsWith('--kubeconfig='));
  const flagPath = at < 0 ? undefined : argv[at]!.startsWith('--kubeconfig=') ? argv[at]!.slice('--kubeconfig='.length) : argv[at + 1];
  const kubeconfigPath = flagPath ?? config.kubeconfigPath;
  const mayUseApi = at >= 0 || kubeSource({ kubeconfigPath }) !== null;
  if (config.clustersPath || (mayUseApi && !directKubeTarget({ kubeconfigPath }))) prestartKubeWorker();
  return config;
}

// Each command loads only what it needs: `diag` must not pay for Bolt or the simulator at start-up.
const commands: Record<string, Command> = {
  diag: async (argv, io, style) => {
    const config = configWithKubeStarted(argv);
    return (await import('./diag-command.js')).diagCommand(argv, config, io, style);
  },
  fix: async (argv, io, style) => {
    const config = configWithKubeStarted(argv);
    return (await import('./fix-command.js')).fixCommand(argv, config, io, style);
  },
  demo: async (argv, io, style) => (await import('./demo-command.js')).demoCommand(argv, io, style),
  serve: async (argv, io) => (await import('./serve-command.js')).serveCommand(argv, loadConfig(), io),
  sudoers: async (argv, io) => (await import('./admin-commands.js')).sudoersCommand(argv, io),
  audit: async (argv, io) => (await import('./admin-commands.js')).auditCommand(argv, loadConfig(), io),
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
  // A terminal command validates each input once: zod's compiled parsers cost more to compile than they
  // save then (the catalogs validate in half the time without). The bot, which runs for days, keeps them.
  if (name !== 'serve') zodConfig({ jitless: true });
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

