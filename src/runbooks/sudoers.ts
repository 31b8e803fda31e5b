/**
 * `nodediag sudoers`: the sudoers lines that let the bot's SSH user run, as
 * root, exactly the privileged commands of the catalogs (every command after
 * `{{sudo}}` in a probe or runbook script) and nothing else. Literal
 * arguments are matched exactly; parameters (PIDs, backup stamps, image
 * references) by anchored regular expressions (sudo ≥ 1.9.10). Pure.
 */
import type { Catalogs } from '../catalog/load.js';

/**
 * The container tools are often installed from upstream tarballs into
 * /usr/local/bin (kubeadm guides, cri-tools releases): both places are
 * allowed, each for exactly the same arguments.
 */
const ALSO_IN_USR_LOCAL = new Set(['crictl', 'ctr', 'containerd']);

/** Where the commands live on Debian and Ubuntu nodes. */
export const COMMAND_PATHS: Record<string, string> = {
  systemctl: '/usr/bin/systemctl',
  journalctl: '/usr/bin/journalctl',
  ctr: '/usr/bin/ctr',
  crictl: '/usr/bin/crictl',
  containerd: '/usr/bin/containerd',
  cat: '/usr/bin/cat',
  grep: '/usr/bin/grep',
  sed: '/usr/bin/sed',
  tee: '/usr/bin/tee',
  cp: '/usr/bin/cp',
  cmp: '/usr/bin/cmp',
  rmdir: '/usr/bin/rmdir',
  kill: '/usr/bin/kill',
  openssl: '/usr/bin/openssl',
  modprobe: '/usr/sbin/modprobe',
  sysctl: '/usr/sbin/sysctl',
  swapoff: '/usr/sbin/swapoff',
  timedatectl: '/usr/bin/timedatectl',
};

/** Regexes for template parameters that vary per run. */
const PARAM_PATTERNS: Record<string, string> = {
  stamp: '[0-9]{8}T[0-9]{6}Z',
  pid: '[1-9][0-9]*',
};

type Piece = { literal: string } | { pattern: string };

/** Splits the simple command after a `{{sudo}}` into words (a small POSIX-shell subset). */
export function privilegedWords(rest: string, socket: string): Piece[][] {
  const words: Piece[][] = [];
  let word: Piece[] = [];
  let i = 0;
  const push = (p: Piece) => word.push(p);
  const endWord = () => {
    if (word.length) words.push(word);
    word = [];
  };
  while (i < rest.length) {
    const c = rest[i]!;
    if (c === "'") {
      const j = rest.indexOf("'", i + 1);
      push({ literal: rest.slice(i + 1, j) });
      i = j + 1;
    } else if (c === '"') {
      const j = rest.indexOf('"', i + 1);
      const inner = rest.slice(i + 1, j);
      for (const part of inner.split(/(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)/)) {
        if (!part) continue;
        push(part.startsWith('$') ? { pattern: '[^ ]+' } : { literal: part });
      }
      i = j + 1;
    } else if (rest.startsWith('{{', i)) {
      const j = rest.indexOf('}}', i);
      const name = rest.slice(i + 2, j);
      push(name === 'socket' ? { literal: socket } : { pattern: PARAM_PATTERNS[name] ?? '[^ ]+' });
      i = j + 2;
    } else if (c === '$') {
      const m = /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/.exec(rest.slice(i))!;
      push({ pattern: '[^ ]+' });
      i += m[0].length;
    } else if (/[;|&\n)<>`]/.test(c)) {
      break;
    } else if (/\s/.test(c)) {
      endWord();
      i++;
    } else {
      push({ literal: c });
      i++;
    }
  }
  endWord();
  // A trailing redirection's fd number ("2>&1") is not an argument.
  const last = words.at(-1);
  if (last && last.length === 1 && 'literal' in last[0]! && /^\d$/.test(last[0].literal) && /\s\d[<>]/.test(rest)) words.pop();
  return words;
}

// Checked with visudo: these need a backslash in a literal argument; "(", ")", "|", '"' and "$" must not get one.
function escapeLiteral(s: string): string {
  return s.replace(/[\\,:=*?[\]#]/g, (c) => `\\${c}`);
}

function escapeRegexForSudoers(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/[,:=#]/g, (c) => `\\${c}`);
}

/** The sudoers command entries for one command: exact when every argument is literal, else an anchored regex. */
export function sudoersCommand(words: Piece[][]): { command: string; specs: string[] } {
  const [cmdWord, ...args] = words;
  const name = cmdWord!.map((p) => ('literal' in p ? p.literal : '')).join('');
  const paths = [COMMAND_PATHS[name] ?? `/usr/bin/${name}`, ...(ALSO_IN_USR_LOCAL.has(name) ? [`/usr/local/bin/${name}`] : [])];
  const literal = args.every((w) => w.every((p) => 'literal' in p));
  if (literal) {
    const argText = args.map((w) => escapeLiteral(w.map((p) => ('literal' in p ? p.literal : '')).join(''))).join(' ');
    return { command: name, specs: paths.map((path) => (argText ? `${path} ${argText}` : `${path} ""`)) };
  }
  const re = args.map((w) => w.map((p) => ('literal' in p ? escapeRegexForSudoers(p.literal) : p.pattern)).join('')).join(' ');
  return { command: name, specs: paths.map((path) => `${path} ^${re}$`) };
}

/** Every privileged command in the catalogs, deduplicated and sorted. */
export function privilegedCommands(catalogs: Catalogs, socket = '/run/containerd/containerd.sock'): string[] {
  const templates: string[] = [];
  for (const p of catalogs.probes) if (p.transport === 'ssh') templates.push(p.script);
  for (const rb of catalogs.runbooks) {
    if (rb.preview) templates.push(rb.preview.script);
    for (const s of rb.steps) {
      if (s.action?.kind === 'ssh') templates.push(s.action.script);
      for (const c of [s.skipIf, s.requires, s.verify]) if (c && 'script' in c) templates.push(c.script);
    }
  }
  const specs = new Set<string>();
  for (const t of templates) {
    for (const m of t.matchAll(/\{\{sudo\}\}/g)) {
      const words = privilegedWords(t.slice(m.index! + m[0].length), socket);
      if (words.length) for (const spec of sudoersCommand(words).specs) specs.add(spec);
    }
  }
  return [...specs].sort();
}

/** The sudoers file text for a user. */
export function sudoersFile(catalogs: Catalogs, user: string, socket?: string): string {
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/.test(user)) throw new Error(`"${user}" is not a valid user name`);
  const specs = privilegedCommands(catalogs, socket);
  return [
    `# nodediag: lets "${user}" run, as root, exactly the privileged commands of nodediag's probes and runbooks.`,
    `# Install on each node: nodediag sudoers --user ${user} > /etc/sudoers.d/nodediag && chmod 0440 /etc/sudoers.d/nodediag && visudo -cf /etc/sudoers.d/nodediag`,
    '# Then set `sudo: true` and `user: ' + user + '` in the inventory. Needs sudo >= 1.9.10 (regular expressions in arguments).',
    '# Paths are Debian/Ubuntu\'s (crictl, ctr and containerd also in /usr/local/bin): compare with `command -v <name>` on your nodes.',
    `Cmnd_Alias NODEDIAG = \\\n    ${specs.join(', \\\n    ')}`,
    `${user} ALL=(root) NOPASSWD: NODEDIAG`,
    '',
  ].join('\n');
}
