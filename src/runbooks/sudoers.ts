/**
 * `nodediag sudoers`: the sudoers lines that let the bot's SSH user run, as
 * root, exactly the privileged commands of the catalogs (every command after
 * `{{sudo}}` in a probe or runbook script) and nothing else. Literal
 * arguments are matched exactly; parameters (PIDs, backup stamps, image
 * references) by anchored regular expressions (sudo ≥ 1.9.10). Pure.
 */
import type { Catalogs } from '../catalog/load.js';
import { supportScriptData } from '../catalog/runbooks.js';

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
  install: '/usr/bin/install',
  mv: '/usr/bin/mv',
  readlink: '/usr/bin/readlink',
  ls: '/usr/bin/ls',
  test: '/usr/bin/test',
  sha256sum: '/usr/bin/sha256sum',
  du: '/usr/bin/du',
};

/**
 * Tools whose path the node's layout gives (`{{containerd}}`, `{{ctr}}`, `{{crictl}}`): they are
 * called by absolute path, so sudo's secure_path does not matter; these are the places allowed.
 */
const TOOL_PARAMS: Record<string, string[]> = {
  containerd: ['/usr/bin/containerd', '/usr/local/bin/containerd'],
  ctr: ['/usr/bin/ctr', '/usr/local/bin/ctr'],
  crictl: ['/usr/bin/crictl', '/usr/local/bin/crictl'],
};

/** Regexes for template parameters that vary per run or per node. */
const PARAM_PATTERNS: Record<string, string> = {
  stamp: '[0-9]{8}T[0-9]{6}Z',
  shim: '[1-9][0-9]*@[0-9]+',
  candidateSha: '[0-9a-f]{64}',
  runtimeUnit: '(containerd|k3s|k3s-agent|rke2-server|rke2-agent|crio)',
};
/** Paths found on the node (the layout): absolute, no spaces. */
const PATH_PATTERN = '/[^ ]+';

/** What the scripts' shell variables that reach a privileged command can hold (the scripts set them so). */
const VAR_PATTERNS: Record<string, string> = {
  p: '[1-9][0-9]*',
  k: '[1-9][0-9]*',
  ns: '[A-Za-z0-9._-]+',
  ad: PATH_PATTERN,
  mode: '[0-7]{3,4}',
  b: PATH_PATTERN,
  t: PATH_PATTERN,
  work: PATH_PATTERN,
  '1': PATH_PATTERN,
  start: '[0-9]+[.][0-9]+',
  // "$@": the shims probe's list of /proc/<pid>/cwd or /proc/<pid>/fd paths (read-only listings).
  '@': '/proc/[1-9][0-9]*/(cwd|fd)( /proc/[1-9][0-9]*/(cwd|fd))*',
};

type Piece = { literal: string } | { pattern: string };

/** Splits the simple command after a `{{sudo}}` into words (a small POSIX-shell subset). */
export function privilegedWords(rest: string): Piece[][] {
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
      for (const part of inner.split(/(\$@|\$\{?[A-Za-z_0-9][A-Za-z0-9_]*\}?)/)) {
        if (!part) continue;
        push(part.startsWith('$') ? { pattern: VAR_PATTERNS[part.replace(/[${}]/g, '')] ?? '[^ ]+' } : { literal: part });
      }
      i = j + 1;
    } else if (rest.startsWith('{{', i)) {
      const j = rest.indexOf('}}', i);
      const name = rest.slice(i + 2, j);
      push(word.length === 0 && words.length === 0 && name in TOOL_PARAMS ? { literal: `{{${name}}}` } : { pattern: PARAM_PATTERNS[name] ?? PATH_PATTERN });
      i = j + 2;
    } else if (c === '$') {
      const m = /^\$\{?[A-Za-z_0-9][A-Za-z0-9_]*\}?/.exec(rest.slice(i))!;
      push({ pattern: VAR_PATTERNS[m[0].replace(/[${}]/g, '')] ?? '[^ ]+' });
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
  const tool = /^\{\{(\w+)\}\}$/.exec(name)?.[1];
  const paths = tool ? TOOL_PARAMS[tool]! : [COMMAND_PATHS[name] ?? `/usr/bin/${name}`, ...(ALSO_IN_USR_LOCAL.has(name) ? [`/usr/local/bin/${name}`] : [])];
  const literal = args.every((w) => w.every((p) => 'literal' in p));
  if (literal) {
    const argText = args.map((w) => escapeLiteral(w.map((p) => ('literal' in p ? p.literal : '')).join(''))).join(' ');
    return { command: tool ?? name, specs: paths.map((path) => (argText ? `${path} ${argText}` : `${path} ""`)) };
  }
  const re = args.map((w) => w.map((p) => ('literal' in p ? escapeRegexForSudoers(p.literal) : p.pattern)).join('')).join(' ');
  return { command: tool ?? name, specs: paths.map((path) => `${path} ^${re}$`) };
}

/** Every privileged command in the catalogs, deduplicated and sorted. */
export function privilegedCommands(catalogs: Catalogs): string[] {
  const templates: string[] = Object.values(supportScriptData);
  for (const p of catalogs.probes) if (p.transport === 'ssh') templates.push(p.script);
  for (const rb of catalogs.runbooks) {
    if (rb.preview) templates.push(rb.preview.script);
    for (const s of rb.steps) {
      if (s.action?.kind === 'ssh') templates.push(s.action.script);
      if (s.undo) templates.push(s.undo.script);
      for (const c of [s.skipIf, s.requires, s.verify]) if (c && 'script' in c) templates.push(c.script);
    }
  }
  const specs = new Set<string>();
  for (const t of templates) {
    for (const m of t.matchAll(/\{\{sudo\}\}/g)) {
      const words = privilegedWords(t.slice(m.index! + m[0].length));
      if (words.length) for (const spec of sudoersCommand(words).specs) specs.add(spec);
    }
  }
  return [...specs].sort();
}

/** The sudoers file text for a user. */
export function sudoersFile(catalogs: Catalogs, user: string): string {
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/.test(user)) throw new Error(`"${user}" is not a valid user name`);
  const specs = privilegedCommands(catalogs);
  return [
    `# nodediag: lets "${user}" run, as root, exactly the privileged commands of nodediag's probes and runbooks.`,
    `# Install on each node: nodediag sudoers --user ${user} > /etc/sudoers.d/nodediag && chmod 0440 /etc/sudoers.d/nodediag && visudo -cf /etc/sudoers.d/nodediag`,
    '# Then set `sudo: true` and `user: ' + user + '` in the inventory. Needs sudo >= 1.9.10 (regular expressions in arguments).',
    '# Paths are Debian/Ubuntu\'s; containerd, ctr and crictl are called by the path found on the node (/usr/bin or /usr/local/bin allowed).',
    `Cmnd_Alias NODEDIAG = \\\n    ${specs.join(', \\\n    ')}`,
    `${user} ALL=(root) NOPASSWD: NODEDIAG`,
    '',
  ].join('\n');
}
