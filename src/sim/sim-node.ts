/**
 * A SIMULATED node: the state of a Kubernetes node's runtime layer and the
 * answers a real node gives to nodediag's commands, for the demo, fast tests,
 * the benchmark's fleet and the soak test. The real thing is the lab
 * (test/lab); the output formats here are modelled on its captures (real
 * systemd 252, containerd 1.6, OpenSSH 9.2).
 *
 * Commands are recognised by catalog template (script-match.ts); anything
 * else gets exit 127, as on a real node.
 */
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

/** The simulated node's state. Mutated by faults and by runbook steps. */
export interface SimState {
  hostname: string;
  containerd: { state: UnitState; hung: boolean; pid: number; result: string; startedAtMs: number; exitStatus: number };
  socket: 'socket' | 'directory' | 'missing';
  socketDirEntries: number;
  config: { valid: boolean; systemdCgroup: boolean };
  files: Set<string>;
  kubelet: { loaded: boolean; state: UnitState; pid: number; startedAtMs: number; cgroupDriver: 'systemd' | 'cgroupfs' };
  shims: Array<{ pid: number; inCgroup: boolean }>;
  /** The restart storm left containerd unable to start until the shims are gone. */
  shimsBlockStart: boolean;
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

/** Faults the simulated node can be put in (the lab's faults, plus those the lab cannot make). */
export const SIM_FAULTS = [
  'socket-is-directory',
  'containerd-hung',
  'config-invalid',
  'leftover-shims',
  'containerd-down',
  'swap-enabled',
  'disk-pressure',
  'cni-missing',
  'bridge-netfilter-off',
  'cgroup-driver-mismatch',
  'clock-skew',
  'cert-expired',
  'pleg-unhealthy',
] as const;
export type SimFault = (typeof SIM_FAULTS)[number];

const SOCK = '/run/containerd/containerd.sock';
const CONFIG = '/etc/containerd/config.toml';
const KUBELET_CONFIG = '/var/lib/kubelet/config.yaml';
const FSTAB = '/etc/fstab';

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

  constructor(
    readonly name: string,
    catalogs: Catalogs,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.match = catalogScriptMatcher(catalogs);
    const t = this.now() - 3_600_000;
    this.state = {
      hostname: name,
      containerd: { state: 'running', hung: false, pid: 412, result: 'success', startedAtMs: t, exitStatus: 0 },
      socket: 'socket',
      socketDirEntries: 0,
      config: { valid: true, systemdCgroup: true },
      files: new Set([CONFIG, KUBELET_CONFIG, FSTAB]),
      kubelet: { loaded: true, state: 'running', pid: 467, startedAtMs: t + 1000, cgroupDriver: 'systemd' },
      shims: [],
      shimsBlockStart: false,
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
      case 'socket-is-directory':
        this.stopContainerd(t - 20_000);
        s.socket = 'directory';
        this.startContainerd(t - 5000);
        break;
      case 'containerd-hung':
        s.containerd.hung = true;
        break;
      case 'config-invalid':
        s.config.valid = false;
        this.restartContainerd(t - 5000);
        break;
      case 'leftover-shims':
        s.shims = [{ pid: 797, inCgroup: true }];
        s.shimsBlockStart = true;
        this.stopContainerd(t - 8000);
        this.startContainerd(t - 6000);
        s.containerd.result = 'start-limit-hit';
        break;
      case 'containerd-down':
        this.stopContainerd(t - 5000);
        break;
      case 'swap-enabled':
        s.swap = { on: true, inFstab: true };
        this.restartKubelet(t - 5000);
        break;
      case 'disk-pressure':
        s.disk = { spacePct: 94, inodePct: 92, unusedImages: true };
        break;
      case 'cni-missing':
        s.cniFiles = 0;
        break;
      case 'bridge-netfilter-off':
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
      for (const sh of this.state.shims) if (sh.inCgroup) this.logSystemd('containerd', ms, `containerd.service: Unit process ${sh.pid} (containerd-shim) remains running after unit stopped.`);
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
    for (const sh of s.shims) {
      if (sh.inCgroup) this.logSystemd('containerd', ms, `containerd.service: Found left-over process ${sh.pid} (containerd-shim) in control group while starting unit. Ignoring.`);
    }
    let failure: string | null = null;
    if (!s.config.valid) failure = `containerd: failed to load TOML: ${CONFIG}: (243, 2): unexpected token unclosed table key, was expecting a table key`;
    else if (s.socket === 'directory') failure = 'containerd: failed to get listener for main endpoint: is a directory';
    else if (s.shimsBlockStart && s.shims.some((x) => x.inCgroup)) failure = '';
    if (failure !== null) {
      if (failure) this.logContainerd(ms, failure);
      this.logSystemd('containerd', ms, 'containerd.service: Main process exited, code=exited, status=1/FAILURE');
      this.logSystemd('containerd', ms, "containerd.service: Failed with result 'exit-code'.");
      this.logSystemd('containerd', ms, 'Failed to start containerd.service - containerd container runtime.');
      c.state = failure ? 'auto-restart' : 'failed';
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
    const answer = this.step(m);
    this.onChange(this);
    return answer;
  }

  private batch(items: Array<{ id: string; timeoutSeconds: number; cap: number; script: string }>): SimAnswer {
    const out: string[] = [];
    let slowest = 2;
    for (const it of items) {
      const m = this.match(it.script);
      const r = m?.key === `probe:${it.id}` ? this.probe(it.id) : ok('', 127, 'sim: unknown probe script\n');
      const timedOut = r.delayMs > it.timeoutSeconds * 1000;
      const text = `${r.stdout}${r.stderr}`.replace(/\n$/, '');
      let bytes = 0;
      for (const line of text ? text.split('\n') : []) {
        bytes += line.length + 1;
        if (bytes > it.cap) {
          out.push(`${it.id}|@@truncated`);
          break;
        }
        out.push(`${it.id}|${line}`);
      }
      out.push(`${it.id}|@@rc=${timedOut ? 124 : r.exitCode} ms=${Math.min(r.delayMs, it.timeoutSeconds * 1000)}`);
      slowest = Math.max(slowest, Math.min(r.delayMs, it.timeoutSeconds * 1000));
    }
    return ok(`${out.join('\n')}\n`, 0, '', slowest);
  }

  private journal(unit: 'containerd' | 'kubelet'): SimAnswer {
    const now = this.now();
    const started = unit === 'containerd' ? this.state.containerd.startedAtMs : this.state.kubelet.startedAtMs;
    const window = Math.floor(Math.max(started / 1000 - 2, now / 1000 - 1800));
    const lines = this.state.journal[unit].slice(-300).map(([ms, l]) => `${iso(ms)} ${this.state.hostname} ${l}`);
    return ok(`window-start=${window}\n${lines.join('\n')}\n`);
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

  /** Output of one probe. */
  probe(id: string): SimAnswer {
    const s = this.state;
    switch (id) {
      case 'containerd-service':
        return this.show(s.containerd, s.containerd.result, s.containerd.exitStatus);
      case 'kubelet-service':
        return this.show(s.kubelet, s.kubelet.state === 'running' ? 'success' : 'exit-code', s.kubelet.state === 'running' ? 0 : 1, s.kubelet.loaded);
      case 'containerd-journal':
        return this.journal('containerd');
      case 'kubelet-journal':
        return this.journal('kubelet');
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
        if (!s.config.valid) {
          return ok(`config-dump-exit=1\ncontainerd: failed to load TOML: ${CONFIG}: (243, 2): unexpected token unclosed table key, was expecting a table key\n`);
        }
        return ok(
          [
            'config-dump-exit=0',
            '[plugins."io.containerd.grpc.v1.cri"] systemd_cgroup = false',
            '[plugins."io.containerd.grpc.v1.cri".containerd] default_runtime_name = "runc"',
            `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options] SystemdCgroup = ${s.config.systemdCgroup}`,
            '',
          ].join('\n'),
        );
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
        return ok(s.denials.map((d) => `${iso(this.now() - 60_000)} ${s.hostname} kernel: ${d}`).join('\n'));
      case 'shim-processes':
        return ok(s.shims.map((x) => `    ${x.pid}       1 containerd-shim /usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id ${x.pid.toString(16)}e1 -address ${SOCK}`).join('\n'));
      default:
        return ok('', 127, `sim: no probe ${id}\n`);
    }
  }

  private unitActive(u: UnitState, hung = false): string {
    return u === 'running' ? (hung ? 'active' : 'active') : u === 'auto-restart' ? 'activating' : u;
  }

  /** Effect and answer of one runbook script. */
  private step(m: ScriptMatch): SimAnswer {
    const s = this.state;
    const t = this.now();
    const exists = (p: string) => s.files.has(p);
    const p = m.params;
    const fail = (msg: string, code = 1) => ok('', code, msg.endsWith('\n') ? msg : `${msg}\n`);
    const [stepId, part] = m.key.split(':') as [string, string];
    const backupPath = (): string => ({ 'backup-config': CONFIG, 'backup-containerd-config': CONFIG, 'backup-kubelet-config': KUBELET_CONFIG, 'backup-fstab': FSTAB })[stepId]!;
    const swapEntry = () => (s.swap.inFstab ? ok() : ok('', 1));

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
      case 'preview:containerd-config-reset':
        return ok(s.config.valid ? '' : '12:  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n15:      BinaryName = "/usr/bin/nvidia-container-runtime"\n243:[plugins."io.containerd.grpc.v1.cri".registry\n');
      case 'stop-containerd:action':
        this.stopContainerd(t);
        return ok('', 0, '', 300);
      case 'stop-containerd:verify':
      case 'kill-hung-containerd:skipIf':
      case 'start-containerd:skipIf':
        return ok(`${this.unitActive(s.containerd.state, s.containerd.hung)}\n`);
      case 'remove-socket-directory:skipIf':
      case 'remove-socket-directory:verify':
        return s.socket === 'directory' ? ok('', 1) : ok();
      case 'remove-socket-directory:requires':
        return s.socket === 'directory' && s.socketDirEntries === 0 ? ok() : ok('', 1);
      case 'remove-socket-directory:action':
        if (s.socket !== 'directory') return fail(`rmdir: failed to remove '${p.socket}': Not a directory`);
        if (s.socketDirEntries > 0) return fail(`rmdir: failed to remove '${p.socket}': Directory not empty`);
        s.socket = 'missing';
        return ok();
      case 'start-containerd:action':
        if (s.containerd.state === 'running') return ok();
        return this.startContainerd(t)
          ? ok('', 0, '', 400)
          : fail('Job for containerd.service failed because the control process exited with error code.\nSee "systemctl status containerd.service" and "journalctl -xeu containerd.service" for details.');
      case 'restart-containerd:action':
        if (s.containerd.hung) return ok('', 124, '', 120_000);
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
        this.logSystemd('containerd', t, "containerd.service: Main process exited, code=killed, status=9/KILL");
        return ok();
      case 'reset-failed:action':
        if (s.containerd.state === 'failed') s.containerd.state = 'inactive';
        return ok();
      case 'restart-kubelet:skipIf':
        return ok(s.kubelet.loaded ? 'loaded\n' : 'not-found\n');
      case 'restart-kubelet:action':
        this.restartKubelet(t);
        return ok('', 0, '', 300);
      case 'restart-kubelet:verify':
        return ok(`${this.unitActive(s.kubelet.state)}\n`);
      case 'write-default-config:action':
        s.config = { valid: true, systemdCgroup: true };
        s.files.add(CONFIG);
        return ok();
      case 'write-default-config:verify':
      case 'set-systemd-cgroup:skipIf':
      case 'set-systemd-cgroup:verify':
        return ok(s.config.valid && s.config.systemdCgroup ? '            SystemdCgroup = true\n' : '');
      case 'set-systemd-cgroup:action':
        s.config.systemdCgroup = true;
        return ok();
      case 'set-kubelet-cgroup-driver:skipIf':
      case 'set-kubelet-cgroup-driver:verify':
        return ok(`cgroupDriver: ${s.kubelet.cgroupDriver}\n`);
      case 'set-kubelet-cgroup-driver:action':
        s.kubelet.cgroupDriver = 'systemd';
        return ok();
      case 'daemon-reload:action':
        return ok();
      case 'kill-shim:skipIf':
        return s.shims.some((x) => String(x.pid) === p.pid) ? ok('', 1) : ok();
      case 'kill-shim:requires':
        return s.shims.some((x) => String(x.pid) === p.pid && x.inCgroup) ? ok() : ok('', 1);
      case 'kill-shim:action':
        if (!s.shims.some((x) => String(x.pid) === p.pid)) return fail(`kill: (${p.pid}) - No such process`);
        s.shims = s.shims.filter((x) => String(x.pid) !== p.pid);
        return ok();
      case 'kill-shim:verify':
        return s.shims.some((x) => String(x.pid) === p.pid) ? ok('', 1) : ok();
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
        return ok(s.disk.spacePct >= 90 || s.disk.inodePct >= 90 ? `still ${Math.max(s.disk.spacePct, s.disk.inodePct)}% on /\n` : 'disk-ok\n');
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
