/**
 * Where things really are on a node: the containerd binary, its config,
 * address and state dir (from the unit's ExecStart and drop-ins, or the
 * running process), the CRI socket kubelet uses, kubelet's `--config`, and
 * which runtime layout the node has (standalone containerd, k3s, RKE2,
 * CRI-O). Read from the `node-layout` probe's output; the inventory can
 * override any path. Pure.
 */

/** The runtime layouts nodediag recognises. Runbooks that assume a standalone containerd run only on `containerd`. */
export const RUNTIME_FLAVOURS = ['containerd', 'k3s', 'rke2', 'cri-o', 'unknown'] as const;
export type RuntimeFlavour = (typeof RUNTIME_FLAVOURS)[number];

/** The script parameters a layout provides; `-` means "not on this node". */
export interface LayoutParams {
  /** The CRI socket path kubelet talks to. */
  socket: string;
  /** Absolute path of the containerd binary (called by path: sudo's secure_path may not hold it). */
  containerd: string;
  ctr: string;
  crictl: string;
  /** The config file containerd loads (`--config`, default /etc/containerd/config.toml). */
  containerdConfig: string;
  /** containerd's state dir (`--state`, default /run/containerd): task bundles live under it. */
  containerdState: string;
  /** containerd's root dir (`--root`, default /var/lib/containerd): images and snapshots. */
  containerdRoot: string;
  /** The KubeletConfiguration file kubelet runs with (`--config`), or `-` when it runs on flags only. */
  kubeletConfig: string;
  /** The systemd unit that runs the runtime: containerd, or k3s / k3s-agent / rke2-server / rke2-agent / crio. */
  runtimeUnit: string;
}

/** Names of the layout parameters, in the order scripts may use them. */
export const LAYOUT_PARAM_NAMES = ['socket', 'containerd', 'ctr', 'crictl', 'containerdConfig', 'containerdState', 'containerdRoot', 'kubeletConfig', 'runtimeUnit'] as const satisfies ReadonlyArray<keyof LayoutParams>;

/** Paths an inventory entry may pin instead of discovering them. */
export type LayoutOverrides = Partial<Pick<LayoutParams, 'socket' | 'containerd' | 'ctr' | 'crictl' | 'containerdConfig' | 'kubeletConfig'>>;

const UNIT_NAME = /^[a-z0-9-]+$/;

/** A node's layout: flavour, paths and where each path came from. */
export interface NodeLayout {
  flavour: RuntimeFlavour;
  params: LayoutParams;
  /** For each parameter: `inventory`, `running process`, `unit`, `kubelet flag`, `kubelet config`, `default`… */
  sources: Record<keyof LayoutParams, string>;
  /** `volatile`: the journal is lost at reboot (no /var/log/journal, or Storage=volatile). */
  journal: 'persistent' | 'volatile' | 'unknown';
  /** Units that are loaded on the node (containerd, kubelet, k3s, crio…). */
  units: Record<string, { load: string; active: string; pid: number }>;
}

const DEFAULTS: LayoutParams = {
  socket: '/run/containerd/containerd.sock',
  containerd: '/usr/bin/containerd',
  ctr: '/usr/bin/ctr',
  crictl: '-',
  containerdConfig: '/etc/containerd/config.toml',
  containerdState: '/run/containerd',
  containerdRoot: '/var/lib/containerd',
  kubeletConfig: '-',
  runtimeUnit: 'containerd',
};

const K3S_SOCKET = '/run/k3s/containerd/containerd.sock';

interface Flag {
  unit: string;
  source: 'cmdline' | 'environment' | 'envfile' | 'unit';
  name: string;
  value: string;
}

const SOURCE_RANK: Record<Flag['source'], number> = { cmdline: 0, unit: 1, environment: 2, envfile: 3 };

function splitFlag(token: string): { name: string; value: string } | null {
  const m = /^(--?[A-Za-z][A-Za-z0-9-]*)=(.*)$/.exec(token);
  return m ? { name: m[1]!, value: m[2]! } : null;
}

/** Flags of an argv written as one line (`/usr/bin/containerd --config /x`): `--a=b` and `--a b` forms. */
function flagsOfArgv(argv: string, names: ReadonlySet<string>): Array<{ name: string; value: string }> {
  const words = argv.split(/\s+/).filter(Boolean);
  const out: Array<{ name: string; value: string }> = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    const eq = splitFlag(w);
    if (eq && names.has(eq.name)) out.push(eq);
    else if (names.has(w) && i + 1 < words.length) out.push({ name: w, value: words[++i]! });
  }
  return out;
}

const FLAG_NAMES = new Set([
  '--config', '-c', '--address', '-a', '--root', '--state', '--container-runtime-endpoint', '--cgroup-driver', '--fail-swap-on', '--root-dir', '--data-dir', '-d',
]);

function endpointPath(endpoint: string): string | null {
  const p = endpoint.replace(/^unix:\/\//, '').trim();
  return p.startsWith('/') ? p : null;
}

function safePath(p: string | undefined): string | undefined {
  return p && /^\/[A-Za-z0-9._/@+-]*$/.test(p) && !p.split('/').includes('..') ? p : undefined;
}

/**
 * Reads the `node-layout` probe's lines into a layout. Values that do not
 * look like plain absolute paths are ignored (they reach shell scripts).
 */
export function resolveLayout(lines: string[], overrides: LayoutOverrides = {}): NodeLayout {
  const units: NodeLayout['units'] = {};
  const exec = new Map<string, { running?: string; unit?: string }>();
  const flags: Flag[] = [];
  const paths = new Set<string>();
  const bins = new Map<string, string>();
  const kubeletKeys = new Map<string, string>();
  let journal: NodeLayout['journal'] = 'unknown';

  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^unit (\S+) load=(\S*) active=(\S*) pid=(\d*)$/.exec(line))) {
      units[m[1]!] = { load: m[2]!, active: m[3]!, pid: Number(m[4] || 0) };
    } else if ((m = /^exec (\S+) (running|unit) (.+)$/.exec(line))) {
      const e = exec.get(m[1]!) ?? {};
      e[m[2] as 'running' | 'unit'] = m[3]!;
      exec.set(m[1]!, e);
    } else if ((m = /^flag (\S+) (cmdline|environment|envfile) (\S+)$/.exec(line))) {
      const f = splitFlag(m[3]!);
      if (f) flags.push({ unit: m[1]!, source: m[2] as Flag['source'], ...f });
    } else if ((m = /^path (\S+)$/.exec(line))) {
      paths.add(m[1]!);
    } else if ((m = /^bin (\S+) (\S+)$/.exec(line))) {
      bins.set(m[1]!, m[2]!);
    } else if ((m = /^kubelet-config (containerRuntimeEndpoint|cgroupDriver):\s*"?([^"\s]+)"?/.exec(line))) {
      kubeletKeys.set(m[1]!, m[2]!);
    } else if ((m = /^journal storage=(\S+) dir=(\S+)$/.exec(line))) {
      const storage = m[1]!.toLowerCase();
      journal = storage === 'volatile' || storage === 'none' ? 'volatile' : storage === 'persistent' ? 'persistent' : m[2] === 'persistent' ? 'persistent' : 'volatile';
    }
  }
  for (const [unit, e] of exec) {
    if (e.unit) for (const f of flagsOfArgv(e.unit, FLAG_NAMES)) flags.push({ unit, source: 'unit', ...f });
  }
  // The running process wins over the unit, the unit over environment files.
  const flagOf = (unit: string, ...names: string[]): Flag | undefined =>
    flags.filter((f) => f.unit === unit && names.includes(f.name)).sort((a, b) => SOURCE_RANK[a.source] - SOURCE_RANK[b.source])[0];
  const loaded = (u: string) => units[u]?.load === 'loaded';

  const flavour: RuntimeFlavour =
    loaded('k3s') || loaded('k3s-agent') || paths.has('/var/lib/rancher/k3s') || paths.has(K3S_SOCKET)
      ? paths.has('/var/lib/rancher/rke2') || loaded('rke2-server') || loaded('rke2-agent')
        ? 'rke2'
        : 'k3s'
      : loaded('rke2-server') || loaded('rke2-agent') || paths.has('/var/lib/rancher/rke2')
        ? 'rke2'
        : loaded('crio') || paths.has('/var/run/crio/crio.sock')
          ? 'cri-o'
          : loaded('containerd')
            ? 'containerd'
            : 'unknown';

  const params: LayoutParams = { ...DEFAULTS };
  const sources = Object.fromEntries(Object.keys(DEFAULTS).map((k) => [k, 'default'])) as NodeLayout['sources'];
  const set = (k: keyof LayoutParams, v: string | undefined, source: string) => {
    const p = v === '-' ? v : k === 'runtimeUnit' ? (v && UNIT_NAME.test(v) ? v : undefined) : safePath(v);
    if (p === undefined) return false;
    params[k] = p;
    sources[k] = source;
    return true;
  };

  const runtimeUnit = ['k3s', 'k3s-agent', 'rke2-server', 'rke2-agent', 'crio', 'containerd'].find((u) => loaded(u) && (units[u]!.active !== 'inactive' || u === 'containerd'));
  if (runtimeUnit) set('runtimeUnit', runtimeUnit, 'systemd');
  // On k3s/RKE2 the runtime's flags are on the k3s unit (the lab's stand-in runs containerd as it).
  const cd = exec.get('containerd') ?? (runtimeUnit && runtimeUnit !== 'crio' ? exec.get(runtimeUnit) : undefined);
  const cdBin = (cd?.running ?? cd?.unit)?.split(/\s+/)[0];
  if (!set('containerd', cdBin, cd?.running ? 'running process' : 'unit')) set('containerd', bins.get('containerd'), 'PATH');
  const cdUnit = exec.has('containerd') ? 'containerd' : (runtimeUnit ?? 'containerd');
  const cfg = flagOf(cdUnit, '--config', '-c');
  if (cfg) set('containerdConfig', cfg.value, `${cdUnit} ${cfg.source}`);
  const state = flagOf(cdUnit, '--state');
  if (state) set('containerdState', state.value, `${cdUnit} ${state.source}`);
  const root = flagOf(cdUnit, '--root');
  if (root) set('containerdRoot', root.value, `${cdUnit} ${root.source}`);
  const addr = flagOf(cdUnit, '--address', '-a');
  if (addr) set('socket', addr.value, `${cdUnit} ${addr.source}`);
  if ((flavour === 'k3s' || flavour === 'rke2') && !addr) {
    set('socket', K3S_SOCKET, flavour);
    set('containerdState', '/run/k3s/containerd', flavour);
    set('containerdRoot', `/var/lib/rancher/${flavour}/agent/containerd`, flavour);
    set('containerdConfig', `/var/lib/rancher/${flavour}/agent/etc/containerd/config.toml`, flavour);
  }
  if (flavour === 'cri-o') set('socket', '/var/run/crio/crio.sock', 'cri-o');
  const kcfg = flagOf('kubelet', '--config');
  if (kcfg) set('kubeletConfig', kcfg.value, `kubelet ${kcfg.source}`);
  const endpointFlag = flagOf('kubelet', '--container-runtime-endpoint');
  const endpoint = endpointFlag ? endpointPath(endpointFlag.value) : kubeletKeys.has('containerRuntimeEndpoint') ? endpointPath(kubeletKeys.get('containerRuntimeEndpoint')!) : null;
  if (endpoint) set('socket', endpoint, endpointFlag ? `kubelet ${endpointFlag.source}` : 'kubelet config');
  // ctr and crictl: next to the containerd binary when the probe found them there, else on PATH.
  for (const tool of ['ctr', 'crictl'] as const) {
    const found = bins.get(tool);
    if (found && found !== '-') set(tool, found, 'PATH');
    else if (tool === 'crictl') set(tool, '-', 'not installed');
  }

  for (const [k, v] of Object.entries(overrides) as Array<[keyof LayoutParams, string | undefined]>) {
    if (v) set(k, v, 'inventory');
  }
  return { flavour, params, sources, journal, units };
}

/** The layout when the `node-layout` check could not run: the defaults, inventory overrides applied, flavour unknown. */
export function defaultLayout(overrides: LayoutOverrides = {}): NodeLayout {
  const l = resolveLayout([], overrides);
  return { ...l, flavour: 'unknown' };
}

/** Lines appended to the `node-layout` observation, for rules and the report. */
export function layoutLines(layout: NodeLayout): string[] {
  return [
    `flavour=${layout.flavour}`,
    `journal=${layout.journal}`,
    ...LAYOUT_PARAM_NAMES.map((k) => `resolved ${k}=${layout.params[k]} from=${layout.sources[k].replace(/\s+/g, '-')}`),
  ];
}
