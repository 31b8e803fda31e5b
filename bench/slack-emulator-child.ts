/**
 * The Slack Web API emulator in its own process (Slack is remote in
 * production). Prints its URL; stays up until stdin closes.
 *   node dist/bench/slack-emulator-child.js <bot-token>
 */
import { SlackEmulator } from '../src/sim/slack-emulator.js';

const emulator = new SlackEmulator(process.argv[2] ?? '');
const url = await emulator.start();
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void emulator.stop().then(() => process.exit(0)));
