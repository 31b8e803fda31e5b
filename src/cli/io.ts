/** Terminal output for the CLI: results on stdout, messages and progress on stderr. */

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** A transient status line (only on a terminal); '' clears it. */
  progress(text: string): void;
  /** Asks a yes/no question on the terminal; false when there is none. */
  confirm(question: string): Promise<boolean>;
  readonly interactive: boolean;
}

export function processIo(): Io {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  return {
    out: (t) => process.stdout.write(`${t}\n`),
    err: (t) => process.stderr.write(`${t}\n`),
    progress: (t) => {
      if (!tty) return;
      process.stderr.write(`\r\x1b[2K${t}`);
      shown = t !== '';
      if (!shown) process.stderr.write('\r');
    },
    interactive: process.stdin.isTTY === true && tty,
    async confirm(question) {
      if (!(process.stdin.isTTY && tty)) return false;
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        const answer = await rl.question(`${question} [y/N] `);
        return /^y(es)?$/i.test(answer.trim());
      } finally {
        rl.close();
      }
    },
  };
}
