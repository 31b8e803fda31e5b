/**
 * A SIMULATED node: the state of a Kubernetes GPU node's runtime layer and
 * the answers a real node gives to nodediag's commands, for the demo, fast
 * tests, the benchmark's fleet and the soak test. The real thing is the lab
 * (test/lab); the output formats here are modelled on its captures (real
 * systemd 252, containerd 1.6, OpenSSH 9.2). Like a production GPU node it
 * runs containers (each in its shim) and has the NVIDIA runtime as
 * containerd's default.
 *
 * Commands are recognised by catalog template (script-match.ts); anything
 * else gets exit 127, as on a real node.
 */
import { createHash } from 'node:crypto';
import type { Catalogs } from '../catalog/load.js';
import { catalogScriptMatcher, splitBatch, unwrapCommand, type ScriptMatch } from './script-match.js';

/** What the simulated node answers to one command. */
export interface SimAnswer {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** Simulated time the command takes before answering. */
  delayMs: number;
}

type UnitState = 'running' | 'failed' | 'inactive' | 'auto-restart';

/** A container running on the node: its shim, and whether containerd knows its task. */
export interface SimWorkload {
  /** The shim's PID and start time (clock ticks since boot). */
  pid: number;
  start: number;
  namespace: string;
  id: string;
  /** The container's main process. */
  taskPid: number;
  command: string;
  /** containerd lost it: no task for it after a restart, its bundle gone. */
  orphan: boolean;
  /** It holds /dev/nvidia* open. */
  gpu: boolean;
}

/** The simulated node's state. Mutated by faults and by runbook steps. */
export interface SimState {
  hostname: string;
  /** /etc/machine-id (kubelet reports it as the Node's status.nodeInfo.machineID). */
  machineId: string;
  containerd: { state: UnitState; hung: boolean; pid: number; result: string; startedAtMs: number; exitStatus: number };
  socket: 'socket' | 'directory' | 'missing';
  socketDirEntries: number;
  config: { valid: boolean; systemdCgroup: boolean; defaultRuntime: 'runc' | 'nvidia' };
  /** A last-known-good copy of the config was kept by a diagnosis while containerd ran. */
  lastGood: boolean;
  files: Set<string>;
  kubelet: { loaded: boolean; state: UnitState; pid: number; startedAtMs: number; cgroupDriver: 'systemd' | 'cgroupfs' };
  workloads: SimWorkload[];
  journal: { containerd: Array<[number, string]>; kubelet: Array<[number, string]> };
  disk: { spacePct: number; inodePct: number; unusedImages: boolean };
  swap: { on: boolean; inFstab: boolean };
  net: { brNetfilter: boolean; bridgeNf: 0 | 1; ipForward: 0 | 1; modulePersisted: boolean; sysctlPersisted: boolean };
  cniFiles: number;
  clock: { skewMs: number; ntp: boolean; synced: boolean };
  certExpired: boolean;
  pleg: boolean;
  denials: string[];
}

/**
 * Faults the simulated node can be put in: the lab's, plus those the lab
 * cannot make. Each is named after the finding it produces (`<finding>` or
 * `<finding>--<variant>`).
 */
export const SIM_FAULTS = [
  'containerd-socket-is-directory',
  'containerd-hung',
  'containerd-config-invalid',
  'containerd-leftover-shims',
  'containerd-down',
  'containerd-down--restart-storm',
  'swap-enabled',
  'disk-pressure',
  'cni-not-ready--no-config',
  'cni-not-ready',
  'cgroup-driver-mismatch',
  'clock-skew',
  'cert-expired',
  'pleg-unhealthy',
  'kubelet-down',
] as const;
export type SimFault = (typeof SIM_FAULTS)[number];

/** The finding a fault produces. */
export function findingOfFault(fault: SimFault): string {
  return fault.replace(/--.*$/, '');
}

const SOCK = '/run/containerd/containerd.sock';
const CONFIG = '/etc/containerd/config.toml';
const KUBELET_CONFIG = '/var/lib/kubelet/config.yaml';
const FSTAB = '/etc/fstab';
const CLK_TCK = 100;

function iso(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}+0000`;
}

function logrus(ms: number, level: string, msg: string): string {
  return `time="${new Date(ms).toISOString().replace('Z', '000Z')}" level=${level} msg="${msg}"`;
}

function ok(stdout = '', exitCode = 0, stderr = '', delayMs = 2): SimAnswer {
  return { stdout, stderr, exitCode, delayMs };
}

/** A simulated node. */
export class SimNode {
  readonly state: SimState;
  /** Called after every state change (the demo wires it to the API stand-in). */
  onChange: (node: SimNode) => void = () => {};
  private readonly match: (script: string) => ScriptMatch | null;
  private nextPid = 900;
  private readonly bootMs: number;

  constructor(
    readonly name: string,
    catalogs: Catalogs,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.match = catalogScriptMatcher(catalogs);
    const t = this.now() - 3_600_000;
    this.bootMs = t - 60_000;
    this.state = {
      hostname: name,
      machineId: createHash('md5').update(`sim-machine-${name}`).digest('hex'),
      containerd: { state: 'running', hung: false, pid: 412, result: 'success', startedAtMs: t, exitStatus: 0 },
      socket: 'socket',
      socketDirEntries: 0,
      config: { valid: true, systemdCgroup: true, defaultRuntime: 'nvidia' },
      lastGood: false,
      files: new Set([CONFIG, KUBELET_CONFIG, FSTAB]),
      kubelet: { loaded: true, state: 'running', pid: 467, startedAtMs: t + 1000, cgroupDriver: 'systemd' },
      workloads: [
        { pid: 1204, start: 6021, namespace: 'k8s.io', id: 'f3a9c1d27b4e', taskPid: 1231, command: '/pause', orphan: false, gpu: false },
        { pid: 1377, start: 6190, namespace: 'k8s.io', id: '8e21d0b6c9aa', taskPid: 1402, command: 'python3 train.py --epochs 40', orphan: false, gpu: true },
      ],
      journal: { containerd: [], kubelet: [] },
      disk: { spacePct: 41, inodePct: 7, unusedImages: false },
      swap: { on: false, inFstab: false },
      net: { brNetfilter: true, bridgeNf: 1, ipForward: 1, modulePersisted: true, sysctlPersisted: true },
      cniFiles: 1,
      clock: { skewMs: 0, ntp: true, synced: true },
      certExpired: false,
      pleg: false,
      denials: [],
    };
    this.logContainerdBoot(t);
    this.logKubelet(t + 1000, 'I', 'server.go:487', '"Kubelet version" kubeletVersion="v1.30.4"');
  }

  /** Whether the runtime answers and kubelet runs: what makes the Node Ready. */
  get ready(): boolean {
    const c = this.state.containerd;
    return c.state === 'running' && !c.hung && this.state.socket === 'socket' && this.state.kubelet.state === 'running' && this.networkReady && !this.state.pleg;
  }

  /** The message kubelet would post with the Ready condition. */
  get readyMessage(): string {
    if (!this.runtimeHealthy) return 'container runtime is down';
    if (this.state.kubelet.state !== 'running') return 'Kubelet stopped posting node status.';
    if (this.state.pleg) return 'PLEG is not healthy: pleg was last seen active 3m5.1s ago; threshold is 3m0s';
    if (!this.networkReady) return 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized';
    return 'kubelet is posting ready status';
  }

  get runtimeHealthy(): boolean {
    const c = this.state.containerd;
    return c.state === 'running' && !c.hung && this.state.socket === 'socket';
  }

  private get networkReady(): boolean {
    const n = this.state.net;
    return this.state.cniFiles > 0 && n.brNetfilter && n.bridgeNf === 1 && n.ipForward === 1;
  }

  // ── faults ────────────────────────────────────────────────────────────
  /** Puts the node into a fault state, the way it happens in production. */
  inject(fault: SimFault): void {
    const s = this.state;
    const t = this.now();
    switch (fault) {
      case 'containerd-socket-is-directory':
        this.stopContainerd(t - 20_000);
        s.socket = 'directory';
        this.startContainerd(t - 5000);
        break;
      case 'containerd-hung':
        s.containerd.hung = true;
        break;
      case 'containerd-config-invalid':
        // A diagnosis while it was healthy kept the config that loaded (with the nvidia runtime as default).
        s.lastGood = true;
        s.config.valid = false;
        this.restartContainerd(t - 5000);
        break;
      case 'containerd-leftover-shims':
        // containerd lost the bundle of a GPU training job (restarted while /run was cleaned): its shim and container run unmanaged.
        s.workloads.push({ pid: 797, start: 4411, namespace: 'k8s.io', id: 'c0ffee15dead', taskPid: 812, command: 'python3 finetune.py', orphan: true, gpu: true });
        break;
      case 'containerd-down':
        this.stopContainerd(t - 5000);
        break;
      case 'containerd-down--restart-storm':
        // The toolkit's SIGHUPs restart containerd until systemd's start limit; every live shim is named on each start.
        for (let i = 0; i < 5; i++) {
          this.stopContainerd(t - 9000 + i * 1000);
          this.startContainerd(t - 8800 + i * 1000);
        }
        this.stopContainerd(t - 3000);
        s.containerd.state = 'failed';
        s.containerd.result = 'start-limit-hit';
        this.logSystemd('containerd', t - 3000, 'containerd.service: Start request repeated too quickly.');
        this.logSystemd('containerd', t - 3000, "containerd.service: Failed with result 'start-limit-hit'.");
        break;
      case 'swap-enabled':
        s.swap = { on: true, inFstab: true };
        this.restartKubelet(t - 5000);
        break;
      case 'disk-pressure':
        s.disk = { spacePct: 94, inodePct: 92, unusedImages: true };
        break;
      case 'cni-not-ready--no-config':
        s.cniFiles = 0;
        break;
      case 'cni-not-ready':
        s.net.bridgeNf = 0;
        s.net.ipForward = 0;
        break;
      case 'cgroup-driver-mismatch':
        s.config.systemdCgroup = false;
        this.restartContainerd(t - 5000);
        break;
      case 'clock-skew':
        s.clock = { skewMs: 120_000, ntp: false, synced: false };
        break;
      case 'cert-expired':
        s.certExpired = true;
        break;
      case 'kubelet-down':
        this.stopKubelet(t - 5000);
        break;
      case 'pleg-unhealthy':
        s.pleg = true;
        this.logKubelet(t - 3000, 'E', 'kubelet.go:2359', '"Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m5.1s ago; threshold is 3m0s"');
        break;
    }
    this.onChange(this);
  }

  // ── units ─────────────────────────────────────────────────────────────
  private logContainerd(ms: number, line: string, pid = this.state.containerd.pid): void {
    this.state.journal.containerd.push([ms, `containerd[${pid}]: ${line}`]);
  }

  private logSystemd(unit: 'containerd' | 'kubelet', ms: number, line: string): void {
    this.state.journal[unit].push([ms, `systemd[1]: ${line}`]);
  }

  private logKubelet(ms: number, level: string, where: string, msg: string): void {
    const d = new Date(ms);
    const p = (n: number, w = 2) => String(n).padStart(w, '0');
    const head = `${level}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds() * 1000, 6)}`;
    this.state.journal.kubelet.push([ms, `kubelet[${this.state.kubelet.pid}]: ${head} ${String(this.state.kubelet.pid).padStart(7)} ${where}] ${msg}`]);
  }

  private logContainerdBoot(ms: number): void {
    this.logSystemd('containerd', ms, 'Starting containerd.service - containerd container runtime...');
    this.logContainerd(ms, logrus(ms, 'info', 'starting containerd" revision="1.6.20~ds1-1+deb12u3" version="1.6.20~ds1'));
    this.logContainerd(ms, logrus(ms, 'info', `serving...`).replace('msg="serving..."', `msg=serving... address=${SOCK}.ttrpc`));
  }

  private stopContainerd(ms: number): void {
    const c = this.state.containerd;
    if (c.state === 'running') {
      this.logSystemd('containerd', ms, 'Stopping containerd.service - containerd container runtime...');
      // KillMode=process: the shims and their containers keep running.
      for (const w of this.state.workloads) this.logSystemd('containerd', ms, `containerd.service: Unit process ${w.pid} (containerd-shim) remains running after unit stopped.`);
      this.logSystemd('containerd', ms, 'Stopped containerd.service - containerd container runtime.');
    }
    c.state = 'inactive';
    c.hung = false;
    c.pid = 0;
    if (this.state.socket === 'socket') this.state.socket = 'missing';
  }

  /** Starts containerd; returns whether it came up. */
  private startContainerd(ms: number): boolean {
    const s = this.state;
    const c = s.containerd;
    if (c.state === 'running') return true;
    c.pid = this.nextPid++;
    c.startedAtMs = ms;
    this.logContainerdBoot(ms);
    for (const w of s.workloads) {
      this.logSystemd('containerd', ms, `containerd.service: Found left-over process ${w.pid} (containerd-shim) in control group while starting unit. Ignoring.`);
    }
    let failure: string | null = null;
    if (!s.config.valid) failure = `containerd: failed to load TOML: ${CONFIG}: (243, 2): unexpected token unclosed table key, was expecting a table key`;
    else if (s.socket === 'directory') failure = 'containerd: failed to get listener for main endpoint: is a directory';
    if (failure !== null) {
      this.logContainerd(ms, failure);
      this.logSystemd('containerd', ms, 'containerd.service: Main process exited, code=exited, status=1/FAILURE');
      this.logSystemd('containerd', ms, "containerd.service: Failed with result 'exit-code'.");
      this.logSystemd('containerd', ms, 'Failed to start containerd.service - containerd container runtime.');
      c.state = 'auto-restart';
      c.result = 'exit-code';
      c.exitStatus = 1;
      c.pid = 0;
      return false;
    }
    s.socket = 'socket';
    c.state = 'running';
    c.hung = false;
    c.result = 'success';
    c.exitStatus = 0;
    this.logContainerd(ms, logrus(ms, 'info', 'containerd successfully booted in 0.018119s'));
    this.logSystemd('containerd', ms, 'Started containerd.service - containerd container runtime.');
    return true;
  }

  private restartContainerd(ms: number): boolean {
    this.stopContainerd(ms);
    const up = this.startContainerd(ms);
    if (up) this.state.pleg = false;
    return up;
  }

  private stopKubelet(ms: number): void {
    const k = this.state.kubelet;
    if (k.state === 'running') {
      this.logSystemd('kubelet', ms, 'Stopping kubelet.service - kubelet: The Kubernetes Node Agent...');
      this.logSystemd('kubelet', ms, 'Stopped kubelet.service - kubelet: The Kubernetes Node Agent.');
    }
    k.state = 'inactive';
    k.pid = 0;
  }

  private restartKubelet(ms: number): void {
    const k = this.state.kubelet;
    k.pid = this.nextPid++;
    k.startedAtMs = ms;
    this.logSystemd('kubelet', ms, 'Started kubelet.service - kubelet: The Kubernetes Node Agent.');
    if (this.state.swap.on) {
      this.logKubelet(ms, 'E', 'run.go:74', '"command failed" err="failed to run Kubelet: running with swap on is not supported, please disable swap! or set --fail-swap-on flag to false. /proc/swaps contained: [Filename Type Size Used Priority /swapfile file 16380 0 -2]"');
      this.logSystemd('kubelet', ms, 'kubelet.service: Main process exited, code=exited, status=1/FAILURE');
      k.state = 'auto-restart';
      return;
    }
    k.state = 'running';
  }

  // ── command handling ─────────────────────────────────────────────────
  /** Answers one command as the real node would. */
  exec(command: string): SimAnswer {
    const unwrapped = unwrapCommand(command);
    if (!unwrapped) return ok('', 127, `sh: 1: ${command.split(' ')[0]}: not found\n`);
    const batch = splitBatch(unwrapped.script);
    if (batch) return this.batch(batch);
    const m = this.match(unwrapped.script);
    if (!m) return ok('', 127, 'sim: unknown command (not in the catalogs)\n');
    const answer = m.key.startsWith('probe:') ? this.probe(m.key.slice(6)) : this.step(m);
    this.onChange(this);
    return answer;
  }

  private batch(items: Array<{ id: string; timeoutSeconds: number; cap: number; script: string }>): SimAnswer {
    const out: string[] = [];
    let slowest = 2;
    for (const it of items) {
      const m = this.match(it.script);
      const r = m?.key === `probe:${it.id}` ? this.probe(it.id, m.params) : ok('', 127, 'sim: unknown probe script\n');
      const timedOut = r.delayMs > it.timeoutSeconds * 1000;
      const text = `${r.stdout}${r.stderr}`.replace(/\n$/, '');
      let bytes = 0;
      for (const line of text ? text.split('\n') : []) {
        bytes += line.length + 1;
        if (bytes > it.cap) {
          out.push(`${it.id}|@@truncated`);
          break;
        }
        out.push(`${it.id}|${/^[@\\]/.test(line) ? '\\' : ''}${line}`);
      }
      out.push(`${it.id}|@@end`);
      out.push(`${it.id}|@@rc=${timedOut ? 124 : r.exitCode} ms=${Math.min(r.delayMs, it.timeoutSeconds * 1000)}`);
      slowest = Math.max(slowest, Math.min(r.delayMs, it.timeoutSeconds * 1000));
    }
    return ok(`${out.join('\n')}\n`, 0, '', slowest);
  }

  private journal(unit: 'containerd' | 'kubelet', since: number): SimAnswer {
    const now = this.now();
    const started = unit === 'containerd' ? this.state.containerd.startedAtMs : this.state.kubelet.startedAtMs;
    // As the probe does: journalctl --since the unit's start (to 50 ms), at most 30 minutes back, never before `since`.
    const windowMs = Math.max(started - 50, now - 1_800_000, since * 1000);
    const lines = this.state.journal[unit].filter(([ms]) => ms >= windowMs).slice(-300).map(([ms, l]) => `${iso(ms)} ${this.state.hostname} ${l}`);
    return ok(`window-start=${Math.floor(windowMs / 1000)} now=${Math.floor(now / 1000)}\n${lines.join('\n') || '-- No entries --'}\njournal-exit=0\n`);
  }

  private show(u: { state: UnitState; pid: number }, result: string, exitStatus: number, loaded = true): SimAnswer {
    const active = u.state === 'running' ? 'active' : u.state === 'auto-restart' ? 'activating' : u.state;
    const sub = u.state === 'running' ? 'running' : u.state === 'auto-restart' ? 'auto-restart' : u.state === 'failed' ? 'failed' : 'dead';
    return ok(
      [`MainPID=${u.pid}`, `Result=${result}`, 'NRestarts=0', `ExecMainStatus=${exitStatus}`, `LoadState=${loaded ? 'loaded' : 'not-found'}`, `ActiveState=${active}`, `SubState=${sub}`, ''].join('\n'),
    );
  }

  private df(inodes: boolean): SimAnswer {
    const pct = inodes ? this.state.disk.inodePct : this.state.disk.spacePct;
    const row = inodes ? `/dev/sda1       16777216 ${Math.round(16777216 * pct / 100)} ${Math.round(16777216 * (100 - pct) / 100)}   ${pct}% /` : `/dev/sda1        263174212 ${Math.round(263174212 * pct / 100)}  ${Math.round(263174212 * (100 - pct) / 100)}      ${pct}% /`;
    return ok(['/var/lib/containerd', '/var/lib/kubelet', '/var/log', '/'].map((p) => `${p}: ${row}`).join('\n') + '\n');
  }

  private layout(): SimAnswer {
    const s = this.state;
    const unit = (name: string, u: { state: UnitState; pid: number } | null) =>
      u ? `unit ${name} load=loaded active=${u.state === 'running' ? 'active' : u.state === 'auto-restart' ? 'activating' : u.state} pid=${u.pid}` : `unit ${name} load=not-found active=inactive pid=0`;
    return ok(
      [
        unit('containerd', s.containerd),
        'exec containerd unit /usr/bin/containerd',
        unit('kubelet', s.kubelet),
        'exec kubelet unit /usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS',
        `flag kubelet environment --config=${KUBELET_CONFIG}`,
        ...['k3s', 'k3s-agent', 'rke2-server', 'rke2-agent', 'crio'].map((u) => unit(u, null)),
        ...(s.containerd.pid ? ['exec containerd running /usr/bin/containerd'] : []),
        ...(s.kubelet.state === 'running' ? ['exec kubelet running /usr/bin/kubelet', `flag kubelet cmdline --config=${KUBELET_CONFIG}`] : []),
        `flag kubelet envfile --container-runtime-endpoint=unix://${SOCK}`,
        ...(s.socket !== 'missing' ? [`path ${SOCK}`] : []),
        'journal storage=auto dir=persistent',
        'bin containerd /usr/bin/containerd',
        'bin ctr /usr/bin/ctr',
        'bin crictl -',
        '',
      ].join('\n'),
    );
  }

  /** The shims and tasks, as the containerd-shims script prints them. */
  private shims(): SimAnswer {
    const s = this.state;
    const answers = this.runtimeHealthy;
    const nowTicks = Math.floor((this.now() - this.bootMs) / 10);
    const lines = [`shims=${s.workloads.length}`];
    if (s.workloads.length) {
      if (answers) {
        for (const w of s.workloads) if (!w.orphan) lines.push(`task ${SOCK} ${w.namespace} ${w.id} ${w.taskPid} RUNNING`);
        lines.push(`listed ${SOCK} k8s.io`);
      } else {
        lines.push(`unlisted ${SOCK} k8s.io ctr: failed to dial "${SOCK}": connection error`);
      }
    }
    for (const w of s.workloads) {
      const task = !answers ? 'unchecked' : w.orphan ? 'unknown' : 'known';
      lines.push(
        `shim ${w.pid}@${w.start} ns=${w.namespace} id=${w.id} age=${Math.floor((nowTicks - w.start) / CLK_TCK)} bundle=${w.orphan ? 'deleted' : 'present'} task=${task} gpu=${w.gpu ? 'yes' : 'no'} procs=${w.taskPid}:${w.command};`,
      );
    }
    return ok(`${lines.join('\n')}\n`);
  }

  private configDump(): SimAnswer {
    const c = this.state.config;
    if (!c.valid) {
      return ok(`config-dump-exit=1 path=${CONFIG}\ncontainerd: failed to load TOML: ${CONFIG}: (243, 2): unexpected token unclosed table key, was expecting a table key\n`);
    }
    if (this.state.containerd.state === 'running') this.state.lastGood = true;
    return ok(
      [
        `config-dump-exit=0 path=${CONFIG}`,
        'disabled-plugins=[]',
        `runtime nvidia SystemdCgroup=${c.systemdCgroup}`,
        `runtime runc SystemdCgroup=${c.systemdCgroup}`,
        `[plugins."io.containerd.grpc.v1.cri".containerd] default_runtime_name = "${c.defaultRuntime}"`,
        `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options] SystemdCgroup = ${c.systemdCgroup}`,
        `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options] SystemdCgroup = ${c.systemdCgroup}`,
        '[plugins."io.containerd.grpc.v1.cri".registry] config_path = ""',
        'config-version=2',
        'cri-plugin=enabled',
        `default-runtime=${c.defaultRuntime}`,
        `effective-systemd-cgroup=${c.systemdCgroup}`,
        '',
      ].join('\n'),
    );
  }

  /** Output of one probe. */
  probe(id: string, params: Record<string, string> = {}): SimAnswer {
    const s = this.state;
    switch (id) {
      case 'node-layout':
        return this.layout();
      case 'containerd-service':
        return this.show(s.containerd, s.containerd.result, s.containerd.exitStatus);
      case 'kubelet-service':
        return this.show(s.kubelet, s.kubelet.state === 'running' || s.kubelet.state === 'inactive' ? 'success' : 'exit-code', s.kubelet.state === 'running' || s.kubelet.state === 'inactive' ? 0 : 1, s.kubelet.loaded);
      case 'containerd-journal':
        return this.journal('containerd', Number(params.since ?? 0));
      case 'kubelet-journal':
        return this.journal('kubelet', Number(params.since ?? 0));
      case 'runtime-socket':
        if (s.socket === 'socket') return ok(`type=socket path=${SOCK}\nsrw-rw---- 1 root root 0 Nov 22 08:01 ${SOCK}\n`);
        if (s.socket === 'directory') return ok(`type=directory path=${SOCK} entries=${s.socketDirEntries}\ndrwxr-xr-x 2 root root 40 Nov 22 09:12 ${SOCK}\n`);
        return ok(`type=missing path=${SOCK}\nls: cannot access '${SOCK}': No such file or directory\n`);
      case 'runtime-ping': {
        if (s.socket !== 'socket') return ok(`no socket at ${SOCK}\nruntime-ping-exit=1\n`);
        const client = 'Client:\n  Version:  1.6.20~ds1\n  Revision: 1.6.20~ds1-1+deb12u3\n  Go version: go1.19.8\n\n';
        if (s.containerd.hung || s.containerd.state !== 'running') {
          return ok(`${client}ctr: failed to dial "${SOCK}": context deadline exceeded: timed out waiting for server handshake\nruntime-ping-exit=1\n`, 0, '', 3000);
        }
        return ok(`${client}Server:\n  Version:  1.6.20~ds1\n  Revision: 1.6.20~ds1-1+deb12u3\n  UUID: 1ac0b295-01c9-4532-bbec-a9ea34c16477\nruntime-ping-exit=0\n`);
      }
      case 'containerd-config':
        return this.configDump();
      case 'containerd-shims':
        return this.shims();
      case 'kubelet-config':
        return ok(`kubelet-config=present path=${KUBELET_CONFIG}\ncgroupDriver: ${s.kubelet.cgroupDriver}\nfailSwapOn: true\ncontainerRuntimeEndpoint: unix://${SOCK}\n`);
      case 'disk-space':
        return this.df(false);
      case 'disk-inodes':
        return this.df(true);
      case 'swap':
        return ok(`Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n${s.swap.on ? '/swapfile                               file\t\t16380\t\t0\t\t-2\n' : ''}swap-total-kb=${s.swap.on ? 16380 : 0}\n`);
      case 'bridge-netfilter':
        return ok(
          (s.net.brNetfilter ? `br_netfilter=available\nnet.bridge.bridge-nf-call-iptables=${s.net.bridgeNf}\n` : 'br_netfilter=missing (no /proc/sys/net/bridge)\n') +
            `net.ipv4.ip_forward=${s.net.ipForward}\n`,
        );
      case 'cni-config':
        return ok(s.cniFiles ? 'cni-config-files=1 dir=/etc/cni/net.d\n10-calico.conflist\n' : 'cni-config-files=0 dir=/etc/cni/net.d\n');
      case 'time-sync':
        return ok(`node-epoch-ms=${this.now() + s.clock.skewMs}\nNTP=${s.clock.ntp ? 'yes' : 'no'}\nNTPSynchronized=${s.clock.synced ? 'yes' : 'no'}\n`);
      case 'kubelet-cert':
        return ok(s.certExpired ? 'notAfter=Feb  1 00:00:00 2024 GMT\nCertificate will expire\n' : 'notAfter=Oct 14 09:12:00 2027 GMT\nCertificate will not expire\n');
      case 'security-denials':
        return ok(['kernel-log=read', ...s.denials.map((d) => `${iso(this.now() - 60_000)} ${s.hostname} kernel: ${d}`)].join('\n'));
      default:
        return ok('', 127, `sim: no probe ${id}\n`);
    }
  }

  private unitActive(u: UnitState): string {
    return u === 'running' ? 'active' : u === 'auto-restart' ? 'activating' : u;
  }

  /** The config repair's candidate: what the node would get (the last-known-good, keeping nvidia), and its hash. */
  private candidate(): { sha: string; source: string } | null {
    if (!this.state.lastGood) return null;
    return { sha: createHash('sha256').update(`${this.name}:last-good:${this.state.config.defaultRuntime}`).digest('hex'), source: 'last-good /var/lib/nodediag/containerd-config.last-good.toml' };
  }

  /** Effect and answer of one runbook script. */
  private step(m: ScriptMatch): SimAnswer {
    const s = this.state;
    const t = this.now();
    const exists = (p: string) => s.files.has(p);
    const p = m.params;
    const fail = (msg: string, code = 1) => ok('', code, msg.endsWith('\n') ? msg : `${msg}\n`);
    const [stepId, part] = m.key.split(':') as [string, string];
    // Backup steps share one template shape: the path is the value, whichever step's names matched.
    const backupPath = (): string => p.containerdConfig ?? p.kubeletConfig ?? FSTAB;
    const swapEntry = () => (s.swap.inFstab ? ok() : ok('', 1));
    const workload = (ref: string | undefined) => s.workloads.find((w) => `${w.pid}@${w.start}` === ref);

    if (stepId.startsWith('backup-') && part !== 'skipIf') {
      const path = backupPath();
      const bak = `${path}.bak-${p.stamp}`;
      if (part === 'requires') return exists(bak) ? ok('', 1) : ok();
      if (part === 'action') {
        if (exists(bak)) return fail(`cp: cannot create regular file '${bak}': File exists`);
        s.files.add(bak);
        return ok();
      }
      return exists(bak) ? ok() : fail(`cmp: ${bak}: No such file or directory`, 2);
    }
    switch (m.key) {
      case 'support:clock':
        return ok(`${t}\n`);
      case 'support:identity':
        return ok(`machine-id=${s.machineId}\nsystem-uuid=\n`);
      case 'support:alive':
        return ok(
          (p.shims ?? '')
            .split(' ')
            .filter(Boolean)
            .map((ref) => (workload(ref) ? `alive ${ref}` : `gone ${ref}`))
            .join('\n') + '\n',
        );
      case 'preview:containerd-config-invalid': {
        const c = this.candidate();
        if (!c) return fail('error: no candidate config loads and keeps what the old one had: containerd: failed to load TOML: (243, 2)');
        return ok(
          [
            `source=${c.source}`,
            `default-runtime=${s.config.defaultRuntime}`,
            `candidate-sha256=${c.sha}`,
            '@@ -240,5 +240,3 @@',
            '     [plugins."io.containerd.grpc.v1.cri".registry.configs."registry.corp.example".auth]',
            '       username = "robot$ci"',
            '       password = "[MASKED]"',
            '-[plugins."io.containerd.grpc.v1.cri".registry',
            '-  broken = = true',
            '',
          ].join('\n'),
          0,
          '',
          250,
        );
      }
      case 'install-repaired-config:requires':
        return exists(`${CONFIG}.bak-${p.stamp}`) ? ok() : ok('', 1);
      case 'install-repaired-config:action': {
        const c = this.candidate();
        if (!c || c.sha !== p.candidateSha) return fail(`refused: the config built now is not the one approved (${p.candidateSha})`, 3);
        s.config = { ...s.config, valid: true };
        return ok(`installed config from ${c.source}\n`, 0, '', 300);
      }
      case 'install-repaired-config:verify':
        return ok(s.config.valid ? 'config-ok\n' : '');
      case 'install-repaired-config:undo':
        return ok();
      case 'stop-containerd:action':
        this.stopContainerd(t);
        return ok('', 0, '', 300);
      case 'stop-containerd:verify':
      case 'kill-hung-containerd:skipIf':
        return ok(`${this.unitActive(s.containerd.state)}\n`);
      case 'check-socket-directory-empty:skipIf':
      case 'remove-socket-directory:skipIf':
      case 'remove-socket-directory:verify':
        return s.socket === 'directory' ? ok('', 1) : ok();
      case 'check-socket-directory-empty:requires':
      case 'check-socket-directory-empty:verify':
      case 'remove-socket-directory:requires':
        return s.socket !== 'directory' || s.socketDirEntries === 0 ? ok() : ok('', 1);
      case 'remove-socket-directory:action':
        if (s.socket !== 'directory') return fail(`rmdir: failed to remove '${p.socket}': Not a directory`);
        if (s.socketDirEntries > 0) return fail(`rmdir: failed to remove '${p.socket}': Directory not empty`);
        s.socket = 'missing';
        return ok();
      case 'start-containerd:action':
        if (s.containerd.state === 'failed') s.containerd.state = 'inactive';
        if (s.containerd.state === 'running') return ok();
        return this.startContainerd(t)
          ? ok('', 0, '', 400)
          : fail('Job for containerd.service failed because the control process exited with error code.\nSee "systemctl status containerd.service" and "journalctl -xeu containerd.service" for details.');
      case 'restart-containerd:action':
        if (s.containerd.hung) return ok('', 124, '', 120_000);
        if (s.containerd.state === 'failed') s.containerd.state = 'inactive';
        return this.restartContainerd(t)
          ? ok('', 0, '', 600)
          : fail('Job for containerd.service failed because the control process exited with error code.\nSee "systemctl status containerd.service" and "journalctl -xeu containerd.service" for details.');
      case 'start-containerd:verify':
      case 'restart-containerd:verify':
        return ok(this.runtimeHealthy ? 'runtime-ok\n' : '');
      case 'restart-containerd:requires':
        return s.disk.spacePct >= 95 ? ok('', 1) : ok();
      case 'kill-hung-containerd:action':
        if (s.containerd.state !== 'running') return fail('Failed to kill unit containerd.service: No main process to kill');
        s.containerd = { ...s.containerd, state: 'auto-restart', hung: false, pid: 0, result: 'signal' };
        this.logSystemd('containerd', t, 'containerd.service: Main process exited, code=killed, status=9/KILL');
        return ok();
      case 'restart-kubelet:skipIf':
        return ok(s.kubelet.loaded ? 'loaded\n' : 'not-found\n');
      case 'restart-kubelet:action':
        this.restartKubelet(t);
        return ok('', 0, '', 300);
      case 'restart-kubelet:verify':
        return ok(`${this.unitActive(s.kubelet.state)}\n`);
      case 'start-kubelet:action':
        if (s.kubelet.state !== 'running') this.restartKubelet(t);
        return ok('', 0, '', 300);
      case 'start-kubelet:verify':
        return ok(s.kubelet.state === 'running' ? 'kubelet-steady\n' : '', 0, '', 8000);
      case 'check-kubelet-config-in-use:requires':
      case 'check-kubelet-config-in-use:verify':
        return ok();
      case 'set-systemd-cgroup:skipIf':
      case 'set-systemd-cgroup:verify':
        return ok(`default-runtime-systemd-cgroup=${s.config.valid && s.config.systemdCgroup}\n`);
      case 'set-systemd-cgroup:requires':
        return s.config.valid ? ok() : ok('', 1);
      case 'set-systemd-cgroup:action':
        s.config.systemdCgroup = true;
        return ok();
      case 'set-kubelet-cgroup-driver:skipIf':
      case 'set-kubelet-cgroup-driver:verify':
        return ok(`cgroupDriver: ${s.kubelet.cgroupDriver}\n`);
      case 'set-kubelet-cgroup-driver:action':
        s.kubelet.cgroupDriver = 'systemd';
        return ok();
      case 'set-systemd-cgroup:undo':
      case 'set-kubelet-cgroup-driver:undo':
        return ok();
      case 'kill-orphan-shim:skipIf':
        return workload(p.shim) ? ok('', 1) : ok();
      case 'kill-orphan-shim:requires':
        return workload(p.shim)?.orphan && this.runtimeHealthy ? ok() : ok('', 1);
      case 'kill-orphan-shim:action': {
        const w = workload(p.shim);
        if (!w) return fail(`PID ${p.shim?.split('@')[0]} is not a shim any more`, 3);
        s.workloads = s.workloads.filter((x) => x !== w);
        return ok();
      }
      case 'kill-orphan-shim:verify':
        return workload(p.shim) ? ok('', 1) : ok();
      case 'load-br-netfilter:skipIf':
      case 'load-br-netfilter:verify':
        return s.net.brNetfilter ? ok() : ok('', 1);
      case 'load-br-netfilter:action':
        s.net.brNetfilter = true;
        return ok();
      case 'persist-br-netfilter:skipIf':
      case 'persist-br-netfilter:verify':
        return s.net.modulePersisted ? ok() : ok('', 1);
      case 'persist-br-netfilter:action':
        s.net.modulePersisted = true;
        return ok();
      case 'set-sysctls:action':
        s.net.bridgeNf = 1;
        s.net.ipForward = 1;
        return ok('net.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.ip_forward = 1\n');
      case 'set-sysctls:verify':
        return ok(`${s.net.bridgeNf} ${s.net.ipForward}\n`);
      case 'persist-sysctls:action':
        s.net.sysctlPersisted = true;
        return ok();
      case 'persist-sysctls:verify':
        return ok(s.net.sysctlPersisted ? '2\n' : '0\n', s.net.sysctlPersisted ? 0 : 1);
      case 'vacuum-journal:action':
        s.disk.spacePct = Math.max(1, s.disk.spacePct - 2);
        return ok('', 0, 'Vacuuming done, freed 0B of archived journals from /var/log/journal.\n');
      case 'prune-images:action':
        if (s.disk.unusedImages) {
          s.disk = { spacePct: 38, inodePct: 6, unusedImages: false };
          return ok('removing unused image registry.local/old-training-image:v1\n', 0, '', 800);
        }
        return ok();
      case 'prune-images:verify':
        return ok(
          s.disk.spacePct >= 90 || s.disk.inodePct >= 90
            ? `still ${Math.max(s.disk.spacePct, s.disk.inodePct)}% on /\nwhat uses the space:\n41G\t/var/lib/containerd/io.containerd.content.v1.content\n`
            : 'disk-ok\n',
        );
      case 'set-ntp:action':
        s.clock = { skewMs: 0, ntp: true, synced: true };
        return ok();
      case 'set-ntp:verify':
        return ok(s.clock.synced ? 'yes\n' : 'no\n');
      case 'swapoff:action':
        s.swap.on = false;
        return ok();
      case 'swapoff:verify':
        return ok(s.swap.on ? '1\n' : '0\n');
      case 'backup-fstab:skipIf':
      case 'comment-fstab-swap:skipIf':
      case 'comment-fstab-swap:verify':
        return swapEntry();
      case 'comment-fstab-swap:action':
        s.swap.inFstab = false;
        return ok();
      default:
        if (m.key.endsWith(':skipIf') && stepId.startsWith('backup-')) return exists(backupPath()) ? ok('', 1) : ok();
        return ok('', 127, `sim: no behaviour for ${m.key}\n`);
    }
  }
}
