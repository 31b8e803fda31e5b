/** `nodediag serve`: runs the Slack bot until SIGTERM/SIGINT. */
import type { Config } from '../config.js';
import { EXIT } from '../errors.js';
import { startServer } from '../main.js';
import type { Io } from './io.js';

export async function serveCommand(argv: string[], config: Config, io: Io): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out('Usage: nodediag serve\n\nRuns the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT (/slack/events, /healthz, /readyz).\nEvery setting comes from the environment: see .env.example.');
    return EXIT.ok;
  }
  const server = await startServer(config);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  server.logger.info('shutting down');
  await server.stop();
  return EXIT.ok;
}
