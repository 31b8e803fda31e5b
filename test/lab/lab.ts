/**
 * The real-node lab: N nodes, each with its own network namespace and
 * address, its own view of /etc, /var, /root (overlays), private /run and
 * /tmp, its own cgroup subtree, and REAL systemd as PID 1 running Debian's
 * REAL containerd.service and ssh.service, plus a kubelet STAND-IN
 * (kubelet-standin.mjs: there is no kubelet package here) that reports to the
 * Kubernetes API STAND-IN (src/sim/kube-standin.ts).
 *
 * Safety (see ../shared/FACTS.md): systemd shares the host's kernel and
 * files, so every unit that would touch the host (tmpfiles, sysctl, modules,
 * timesyncd, networking, udev, getty, timers…) is masked in the node's own
 * /etc/systemd/system, /tmp and /run are private tmpfs mounts made before
 * systemd starts, and the lab's state lives outside /tmp. Teardown SIGKILLs
 * each node's PID 1 (it ignores SIGTERM), then removes cgroups, links,
 * namespaces and state, and checks nothing is left.
 *
 * Needs root, util-linux unshare/nsenter, iproute2, openssh-server and
 * containerd; `requireLabEnvironment()` says loudly what is missing.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, chmodSync, copyFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fingerprintSha256 } from '../../src/adapters/host-keys.js';
import { KubeApiStandin, makeDaemonSetPod, makeNode } from '../../src/sim/kube-standin.js';
import { selfSignedCert } from '../../src/sim/self-signed.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The containerd versions lab nodes run: bookworm's 1.6, and trixie's 1.7 and unstable's 2.1 fetched by fetch-containerd.sh. */
export const CONTAINERD_VERSIONS = ['1.6', '1.7', '2.1'] as const;
export type ContainerdVersion = (typeof CONTAINERD_VERSIONS)[number];

/** Where fetch-containerd.sh unpacked the other containerd versions. */
export const LAB_PKGS = process.env.NODEDIAG_LAB_PKGS ?? '/srv/nodediag-pkgs';

/** The containerd binary of a version: Debian's own for 1.6, the unpacked package's otherwise. */
export function containerdBinary(v: ContainerdVersion): string {
  return v === '1.6' ? '/usr/bin/containerd' : join(LAB_PKGS, `containerd-${v}`, 'usr', 'bin', 'containerd');
}

/**
 * How a node's runtime is laid out: Debian's containerd.service (the default); k3s's (containerd
 * under a unit named k3s, with k3s's socket, root, state and config paths — a STAND-IN for the
 * k3s supervisor, which is not packaged here); CRI-O's (a crio.service STAND-IN listening on
 * CRI-O's socket: CRI-O is not packaged here); or the default with a volatile journal.
 */
export type LabLayout = 'containerd' | 'k3s' | 'cri-o' | 'volatile-journal';

/** A node to boot: its name, the containerd it runs and its layout. */
export interface LabNodeSpec {
  name: string;
  containerd?: ContainerdVersion;
  layout?: LabLayout;
}

const K3S = {
  socket: '/run/k3s/containerd/containerd.sock',
  root: '/var/lib/rancher/k3s/agent/containerd',
  state: '/run/k3s/containerd',
  config: '/var/lib/rancher/k3s/agent/etc/containerd/config.toml',
};

/** The private registry every lab node is configured for, as production GPU nodes are (credentials per lab). */
export const LAB_REGISTRY = 'registry.lab.example';
export const LAB_MIRROR = 'https://mirror.lab.example';
/** The repository root (works from src and from dist). */
export const REPO_ROOT = HERE.includes('/dist/') ? join(HERE, '..', '..', '..') : join(HERE, '..', '..');
const KUBELET_STANDIN = join(REPO_ROOT, 'test', 'lab', 'kubelet-standin.mjs');

/** Units a lab node must never run: each would touch the shared host. */
export const MASKED_UNITS = [
  'systemd-tmpfiles-setup.service', 'systemd-tmpfiles-clean.service', 'systemd-tmpfiles-clean.timer', 'systemd-tmpfiles-setup-dev.service',
  'systemd-sysctl.service', 'systemd-modules-load.service', 'systemd-timesyncd.service', 'networking.service', 'systemd-networkd.service',
  'systemd-networkd.socket', 'systemd-resolved.service', 'systemd-udevd.service', 'systemd-udev-trigger.service', 'systemd-udev-settle.service',
  'systemd-udevd-control.socket', 'systemd-udevd-kernel.socket', 'getty@tty1.service', 'getty.target', 'console-getty.service',
  'serial-getty@.service', 'systemd-remount-fs.service', 'systemd-binfmt.service', 'proc-sys-fs-binfmt_misc.automount',
  'proc-sys-fs-binfmt_misc.mount', 'apt-daily.timer', 'apt-daily-upgrade.timer', 'man-db.timer', 'e2scrub_all.timer', 'e2scrub_reap.service',
  'fstrim.timer', 'dpkg-db-backup.timer', 'systemd-pstore.service', 'systemd-random-seed.service', 'systemd-firstboot.service',
  'systemd-machine-id-commit.service', 'systemd-repart.service', 'systemd-pcrphase-sysinit.service', 'systemd-pcrphase.service',
  'systemd-update-utmp.service', 'systemd-update-utmp-runlevel.service', 'kmod-static-nodes.service', 'dev-hugepages.mount',
  'dev-mqueue.mount', 'sys-fs-fuse-connections.mount', 'sys-kernel-config.mount', 'sys-kernel-debug.mount', 'sys-kernel-tracing.mount',
  'systemd-logind.service', 'postgresql.service', 'cryptsetup.target', 'systemd-ask-password-console.path', 'systemd-ask-password-wall.path',
  'systemd-hwdb-update.service', 'systemd-journal-catalog-update.service', 'ldconfig.service', 'systemd-sysusers.service',
  'systemd-boot-system-token.service', 'systemd-journal-flush.service', 'systemd-fsck-root.service',
];

/** Output of a command run inside a node. */
export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ShResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

async function must(cmd: string, args: string[], what: string): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`lab: ${what} failed (${cmd} ${args.join(' ')}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * Throws, loudly, when this machine cannot host lab nodes. The lab tests call
 * it in `beforeAll`, so CI fails instead of passing silently.
 */
export function requireLabEnvironment(versions: readonly ContainerdVersion[] = []): void {
  const missing: string[] = [];
  for (const v of versions) {
    if (v !== '1.6' && !existsSync(join(LAB_PKGS, `containerd-${v}`, 'usr', 'bin', 'containerd'))) missing.push(`containerd ${v} in ${LAB_PKGS} (run test/lab/fetch-containerd.sh)`);
  }
  if (process.getuid?.() !== 0) missing.push('root (the lab creates namespaces, mounts and cgroups)');
  for (const bin of ['/usr/bin/unshare', '/usr/bin/nsenter', '/usr/sbin/ip', '/usr/sbin/sshd', '/usr/bin/containerd', '/usr/bin/ctr', '/lib/systemd/systemd', '/usr/bin/ssh-keygen', '/usr/bin/runc']) {
    if (!existsSync(bin)) missing.push(bin);
  }
  if (missing.length) {
    throw new Error(
      `LAB UNAVAILABLE — the real-node lab cannot run here; missing: ${missing.join(', ')}.\n` +
        'Run as root with: apt-get install -y openssh-server containerd iproute2 util-linux, then test/lab/fetch-containerd.sh (see .ci/run).',
    );
  }
}

/** Cgroup hierarchies mounted on the host (v1 controllers and the v2 tree). */
function hostCgroupMounts(): string[] {
  const mounts: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const fstype = post.split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') mounts.push(pre.split(' ')[4]!);
  }
  return mounts;
}

/**
 * Shell lines that mount, inside a node's cgroup namespace, the same cgroup
 * hierarchies the host has (same controller sets). systemd would otherwise
 * try its own combinations (cpu,cpuacct), fail where the host differs, and
 * leave runc without a cpu hierarchy.
 */
function nodeCgroupMounts(): string[] {
  const lines = ['mount -t tmpfs -o mode=755 cgroup-root /sys/fs/cgroup'];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const [fstype, , superOpts = ''] = post.split(' ');
    const mountPoint = pre.split(' ')[4]!;
    if (fstype === 'cgroup2' && mountPoint === '/sys/fs/cgroup') return ['mount -t cgroup2 cgroup2 /sys/fs/cgroup'];
    if (!mountPoint.startsWith('/sys/fs/cgroup/')) continue;
    const dir = mountPoint.slice('/sys/fs/cgroup/'.length);
    if (fstype === 'cgroup2') lines.push(`mkdir -p /sys/fs/cgroup/${dir}`, `mount -t cgroup2 cgroup2 /sys/fs/cgroup/${dir}`);
    if (fstype !== 'cgroup') continue;
    const controllers = superOpts.split(',').filter((o) => !/^(rw|ro|relatime|nosuid|nodev|noexec|clone_children|xattr)$/.test(o));
    lines.push(`mkdir -p /sys/fs/cgroup/${dir}`, `mount -t cgroup -o ${controllers.join(',')} cgroup /sys/fs/cgroup/${dir}`);
  }
  return lines;
}

/** One lab node. */
export class LabNode {
  /** Host PID of the node's systemd (PID 1 inside). */
  systemdPid = 0;
  hostKeyFingerprint = '';

  /** This node's /etc/machine-id (the API stand-in's Node says the same, as kubelet would report it). */
  machineId = '';
  /** The node's runtime layout. */
  layout: LabLayout = 'containerd';

  /** The CRI socket on this node. */
  get socket(): string {
    return this.layout === 'k3s' ? K3S.socket : this.layout === 'cri-o' ? '/var/run/crio/crio.sock' : '/run/containerd/containerd.sock';
  }

  constructor(
    readonly lab: Lab,
    readonly name: string,
    readonly containerd: ContainerdVersion,
    readonly index: number,
    readonly address: string,
    readonly hostAddress: string,
    readonly dir: string,
    readonly netns: string,
    readonly hostIf: string,
    readonly cgroupName: string,
  ) {}

  /** Runs a shell script inside the node (all its namespaces), as root. */
  sh(script: string, timeoutMs = 60_000): Promise<ShResult> {
    return run(
      '/usr/bin/nsenter',
      ['-t', String(this.systemdPid), '-p', '-m', '-u', '-n', '-C', '--', '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL=C', 'SYSTEMD_PAGER=', 'SYSTEMD_COLORS=0', '/bin/sh', '-c', script],
      { timeoutMs },
    );
  }

  /** Runs a script inside the node and fails when it fails. */
  async must(script: string, timeoutMs = 60_000): Promise<string> {
    const r = await this.sh(script, timeoutMs);
    if (r.code !== 0) throw new Error(`lab ${this.name}: \`${script.slice(0, 120)}\` exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  /** Polls a script until it exits 0. */
  async waitFor(script: string, timeoutMs = 30_000, what = script): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: ShResult | undefined;
    while (Date.now() < deadline) {
      last = await this.sh(script, 10_000);
      if (last.code === 0) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`lab ${this.name}: timed out waiting for ${what}: ${last?.stderr.trim() || last?.stdout.trim()}`);
  }

  /** The PID (host view is not needed: inside the node) of containerd's main process. */
  async containerdPid(): Promise<number> {
    return Number((await this.must('systemctl show -p MainPID --value containerd')).trim());
  }

  /** Waits until containerd answers on its socket. */
  waitRuntime(timeoutMs = 30_000): Promise<void> {
    if (this.layout === 'cri-o') return this.waitFor(`[ -S ${this.socket} ]`, timeoutMs, 'the CRI-O stand-in socket');
    return this.waitFor(`ctr --address ${this.socket} --timeout 2s version >/dev/null 2>&1`, timeoutMs, 'containerd to answer');
  }

  /** The tasks containerd manages in k8s.io, by container id: their PIDs and status (by hand, not through nodediag). */
  async tasks(): Promise<Map<string, { pid: number; status: string }>> {
    const out = await this.must('ctr -n k8s.io --connect-timeout 3s --timeout 4s tasks ls');
    const map = new Map<string, { pid: number; status: string }>();
    for (const line of out.trim().split('\n').slice(1)) {
      const [id, pid, status] = line.trim().split(/\s+/);
      if (id && pid && status) map.set(id, { pid: Number(pid), status });
    }
    return map;
  }

  /** The node's containerd config file. */
  config(): Promise<string> {
    return this.must('cat /etc/containerd/config.toml');
  }
}

/** Options of {@link Lab.boot}. */
export interface LabOptions {
  nodes: Array<string | LabNodeSpec>;
  /** Where node state lives (never under /tmp, /var, /etc or /root: those are overlaid). */
  stateRoot?: string;
}

/** A set of lab nodes plus the Kubernetes API stand-in they report to. */
export class Lab {
  readonly nodes: LabNode[] = [];
  kube!: KubeApiStandin;
  readonly token = randomBytes(16).toString('hex');
  /** The registry password every node's config holds: it must never appear in any output. */
  readonly registryPassword = `lab-${randomBytes(12).toString('hex')}`;
  /** The registry token of containerd 2.x nodes' hosts.toml (Authorization: Basic …). */
  readonly registryBasic = Buffer.from(`robot:${randomBytes(12).toString('hex')}`).toString('base64');
  readonly dir: string;
  readonly botKeyPath: string;
  readonly inventoryPath: string;
  readonly kubeconfigPath: string;
  private readonly subnet: number;

  private constructor(readonly id: string, stateRoot: string) {
    this.dir = join(stateRoot, id);
    this.botKeyPath = join(this.dir, 'bot_ed25519');
    this.inventoryPath = join(this.dir, 'inventory.yaml');
    this.kubeconfigPath = join(this.dir, 'kubeconfig');
    this.subnet = 64 + (parseInt(id.slice(0, 4), 16) % 64);
  }

  /** Boots the nodes (in parallel) and writes an inventory and kubeconfig for the product. */
  static async boot(opts: LabOptions): Promise<Lab> {
    const specs = opts.nodes.map((n) => (typeof n === 'string' ? { name: n } : n));
    requireLabEnvironment(specs.map((n) => n.containerd ?? '1.6'));
    const lab = new Lab(randomBytes(3).toString('hex'), opts.stateRoot ?? '/srv/nodediag-lab');
    mkdirSync(lab.dir, { recursive: true });
    try {
      // A node sees /tmp, /var, /etc and /root as its own, and a checkout may live there:
      // what a node runs is copied next to its state.
      mkdirSync(join(lab.dir, 'bin'));
      copyFileSync(process.execPath, join(lab.dir, 'bin', 'node'));
      chmodSync(join(lab.dir, 'bin', 'node'), 0o755);
      copyFileSync(KUBELET_STANDIN, join(lab.dir, 'bin', 'kubelet-standin.mjs'));
      await must('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'nodediag-lab-bot', '-f', lab.botKeyPath], 'bot key');
      const hostAddresses = specs.map((_n, i) => `10.${lab.subnet}.${i + 1}.1`);
      const tls = selfSignedCert(['127.0.0.1', ...hostAddresses]);
      if (!tls) throw new Error('lab: openssl is needed to make the API stand-in certificate');
      writeFileSync(join(lab.dir, 'apiserver-ca.pem'), tls.cert);
      lab.kube = new KubeApiStandin({ token: lab.token, host: '0.0.0.0', nodeGraceSeconds: 8, tls });
      await lab.kube.start();
      writeFileSync(lab.kubeconfigPath, lab.kube.kubeconfig());
      lab.buildRootfs();
      specs.forEach((spec, i) => lab.nodes.push(lab.prepareNode(spec.name, spec.containerd ?? '1.6', i + 1, spec.layout ?? 'containerd')));
      await Promise.all(lab.nodes.map((n) => lab.startNode(n)));
      lab.writeInventory();
      return lab;
    } catch (err) {
      await lab.teardown();
      throw err;
    }
  }

  node(name: string): LabNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no lab node ${name}`);
    return n;
  }

  /** A minimal container root filesystem (sleep and its libraries) for real containers and shims. */
  private buildRootfs(): void {
    const rootfs = join(this.dir, 'rootfs-template');
    for (const d of ['bin', 'lib/x86_64-linux-gnu', 'lib64', 'proc', 'sys', 'dev', 'etc', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
    copyFileSync('/bin/sleep', join(rootfs, 'bin/sleep'));
    chmodSync(join(rootfs, 'bin/sleep'), 0o755);
    // A shell, so that a container can hold a device open (the GPU workload).
    copyFileSync('/bin/dash', join(rootfs, 'bin/sh'));
    chmodSync(join(rootfs, 'bin/sh'), 0o755);
    for (const lib of ['/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']) {
      if (existsSync(lib)) copyFileSync(lib, join(rootfs, lib.slice(1)));
    }
  }

  private prepareNode(name: string, containerd: ContainerdVersion, index: number, layout: LabLayout): LabNode {
    const dir = join(this.dir, name);
    const node = new LabNode(
      this,
      name,
      containerd,
      index,
      `10.${this.subnet}.${index}.2`,
      `10.${this.subnet}.${index}.1`,
      dir,
      `ndlab-${this.id}-${index}`,
      `ndl${this.id}${index}h`.slice(0, 15),
      `nodediag-lab-${this.id}-${index}`,
    );
    for (const d of ['etc-upper', 'etc-work', 'var-upper', 'var-work', 'root-upper', 'root-work', 'containerd']) mkdirSync(join(dir, d), { recursive: true });
    const etc = join(dir, 'etc-upper');
    writeFileSync(join(etc, 'hostname'), `${name}\n`);
    node.layout = layout;
    node.machineId = randomBytes(16).toString('hex');
    writeFileSync(join(etc, 'machine-id'), `${node.machineId}\n`);
    // A node resolves its own name (sudo looks it up; without it, sudo waits for DNS that is not there).
    writeFileSync(join(etc, 'hosts'), `${readFileSync('/etc/hosts', 'utf8').trimEnd()}\n127.0.1.1\t${name}\n`);
    const units = join(etc, 'systemd', 'system');
    mkdirSync(units, { recursive: true });
    for (const u of MASKED_UNITS) symlinkSync('/dev/null', join(units, u));
    const runtimeUnit = layout === 'k3s' ? 'k3s.service' : layout === 'cri-o' ? 'crio.service' : 'containerd.service';
    writeFileSync(join(units, 'lab.target'), `[Unit]\nDescription=nodediag lab node\nWants=ssh.service ${runtimeUnit} kubelet.service\n`);
    if (layout === 'k3s' || layout === 'cri-o') symlinkSync('/dev/null', join(units, 'containerd.service'));
    if (layout === 'k3s') {
      writeFileSync(
        join(units, 'k3s.service'),
        [
          '[Unit]',
          'Description=k3s STAND-IN (nodediag lab): real containerd in k3s\'s layout (socket, root, state, config under /run/k3s and /var/lib/rancher/k3s)',
          '[Service]',
          `ExecStart=/usr/bin/containerd --config ${K3S.config} --address ${K3S.socket} --root ${K3S.root} --state ${K3S.state}`,
          'KillMode=process',
          'Delegate=yes',
          '',
        ].join('\n'),
      );
    }
    if (layout === 'cri-o') {
      writeFileSync(
        join(units, 'crio.service'),
        [
          '[Unit]',
          'Description=CRI-O STAND-IN (nodediag lab): listens on CRI-O\'s socket; CRI-O is not packaged here',
          '[Service]',
          `ExecStart=${join(this.dir, 'bin', 'node')} -e "require('node:fs').mkdirSync('/var/run/crio', { recursive: true }); require('node:net').createServer((s) => s.end()).listen('/var/run/crio/crio.sock')"`,
          '',
        ].join('\n'),
      );
    }
    if (layout === 'volatile-journal') {
      mkdirSync(join(etc, 'systemd', 'journald.conf.d'), { recursive: true });
      writeFileSync(join(etc, 'systemd', 'journald.conf.d', 'volatile.conf'), '[Journal]\nStorage=volatile\n');
    }
    symlinkSync(join('/etc/systemd/system', 'lab.target'), join(units, 'default.target'));
    writeFileSync(
      join(units, 'kubelet.service'),
      [
        '[Unit]',
        'Description=kubelet STAND-IN (nodediag lab): checks the runtime, logs like kubelet, posts node status',
        'After=containerd.service',
        '[Service]',
        `ExecStart=${join(this.dir, 'bin', 'node')} ${join(this.dir, 'bin', 'kubelet-standin.mjs')}`,
        `Environment=NODE_NAME=${name} API_URL=https://${node.hostAddress}:${this.kube.port} API_TOKEN=${this.token} RUNTIME_SOCKET=/run/containerd/containerd.sock NODE_EXTRA_CA_CERTS=${join(this.dir, 'apiserver-ca.pem')}`,
        'Restart=always',
        'RestartSec=2',
        '',
      ].join('\n'),
    );
    // As kubeadm installs kubelet: its config file by flag, the CRI endpoint from kubeadm-flags.env.
    mkdirSync(join(units, 'kubelet.service.d'), { recursive: true });
    writeFileSync(
      join(units, 'kubelet.service.d', '10-kubeadm.conf'),
      [
        '[Service]',
        'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"',
        'EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env',
        'ExecStart=',
        `ExecStart=${join(this.dir, 'bin', 'node')} ${join(this.dir, 'bin', 'kubelet-standin.mjs')} $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS`,
        '',
      ].join('\n'),
    );
    // sshd: this node's own ed25519 host key only, on its own address.
    const ssh = join(etc, 'ssh');
    mkdirSync(join(ssh, 'sshd_config.d'), { recursive: true });
    writeFileSync(
      join(ssh, 'sshd_config.d', 'nodediag-lab.conf'),
      // No PAM session (pam_motd, pam_systemd): each SSH session costs a few processes instead of dozens on the lab's 2 CPUs.
      `ListenAddress ${node.address}\nHostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nUseDNS no\nMaxStartups 100:30:200\nUsePAM no\nPrintMotd no\nPrintLastLog no\n`,
    );
    // containerd: the Debian config with the CRI cgroup driver set to systemd, matching kubelet.
    mkdirSync(join(etc, 'containerd'), { recursive: true });
    mkdirSync(join(etc, 'cni', 'net.d'), { recursive: true });
    writeFileSync(
      join(etc, 'cni', 'net.d', '10-lab-bridge.conflist'),
      JSON.stringify({ cniVersion: '0.4.0', name: 'lab', plugins: [{ type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: true, ipam: { type: 'host-local', subnet: '10.244.0.0/24' } }] }, null, 2),
    );
    const kubelet = join(dir, 'var-upper', 'lib', 'kubelet');
    mkdirSync(kubelet, { recursive: true });
    writeFileSync(join(kubelet, 'config.yaml'), 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\nfailSwapOn: true\n');
    writeFileSync(join(kubelet, 'kubeadm-flags.env'), `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix://${node.socket} --pod-infra-container-image=registry.k8s.io/pause:3.9"\n`);
    mkdirSync(join(dir, 'root-upper', '.ssh'), { recursive: true, mode: 0o700 });
    // root's shell startup files as on a fresh node: sshd runs every command through root's bash,
    // which reads ~/.bashrc; the host's (a developer machine's pyenv and the like) would fork dozens of processes per command.
    writeFileSync(join(dir, 'root-upper', '.bashrc'), '# nodediag lab node\n');
    writeFileSync(join(dir, 'root-upper', '.profile'), '# nodediag lab node\n');
    return node;
  }

  private async startNode(node: LabNode): Promise<void> {
    const etc = join(node.dir, 'etc-upper');
    await must('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', node.name, '-f', join(etc, 'ssh', 'ssh_host_ed25519_key')], 'host key');
    const pub = readFileSync(join(etc, 'ssh', 'ssh_host_ed25519_key.pub'), 'utf8').split(/\s+/)[1]!;
    node.hostKeyFingerprint = fingerprintSha256(Buffer.from(pub, 'base64'));
    writeFileSync(join(node.dir, 'root-upper', '.ssh', 'authorized_keys'), readFileSync(`${this.botKeyPath}.pub`), { mode: 0o600 });
    const bin = containerdBinary(node.containerd);
    const defaults = await must(bin, ['config', 'default'], 'containerd config default');
    writeFileSync(join(etc, 'containerd', 'config.toml'), productionConfig(defaults, this));
    if (node.layout === 'k3s') {
      const k3sEtc = join(node.dir, 'var-upper', 'lib', 'rancher', 'k3s', 'agent', 'etc', 'containerd');
      mkdirSync(k3sEtc, { recursive: true });
      writeFileSync(join(k3sEtc, 'config.toml'), productionConfig(defaults, this));
    }
    if (/^version = 3/m.test(defaults)) {
      // containerd 2.x: registries by config_path; the private one's credentials in its hosts.toml.
      const certs = join(etc, 'containerd', 'certs.d', LAB_REGISTRY);
      mkdirSync(certs, { recursive: true });
      writeFileSync(
        join(certs, 'hosts.toml'),
        `server = "https://${LAB_REGISTRY}"\n\n[host."https://${LAB_REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n  [host."https://${LAB_REGISTRY}".header]\n    Authorization = ["Basic ${this.registryBasic}"]\n`,
        { mode: 0o600 },
      );
      mkdirSync(join(etc, 'containerd', 'certs.d', 'docker.io'), { recursive: true });
      writeFileSync(join(etc, 'containerd', 'certs.d', 'docker.io', 'hosts.toml'), `server = "https://registry-1.docker.io"\n\n[host."${LAB_MIRROR}"]\n  capabilities = ["pull", "resolve"]\n`);
    }
    const rootfs = join(node.dir, 'rootfs');
    await must('/bin/cp', ['-a', join(this.dir, 'rootfs-template'), rootfs], 'rootfs');

    await must('/usr/sbin/ip', ['netns', 'add', node.netns], 'netns');
    await must('/usr/sbin/ip', ['link', 'add', node.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.netns], 'veth');
    await must('/usr/sbin/ip', ['addr', 'add', `${node.hostAddress}/30`, 'dev', node.hostIf], 'host address');
    await must('/usr/sbin/ip', ['link', 'set', node.hostIf, 'up'], 'host link');
    await must('/usr/sbin/ip', ['-n', node.netns, 'addr', 'add', `${node.address}/30`, 'dev', 'eth0'], 'node address');
    await must('/usr/sbin/ip', ['-n', node.netns, 'link', 'set', 'eth0', 'up'], 'node link');
    await must('/usr/sbin/ip', ['-n', node.netns, 'link', 'set', 'lo', 'up'], 'node loopback');
    await must('/usr/sbin/ip', ['-n', node.netns, 'route', 'add', 'default', 'via', node.hostAddress], 'node route');
    // A new network namespace starts with forwarding off; a Kubernetes node has it on.
    await must('/usr/sbin/ip', ['netns', 'exec', node.netns, '/usr/sbin/sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.bridge.bridge-nf-call-iptables=1'], 'node sysctls');

    const init = join(node.dir, 'init.sh');
    writeFileSync(
      init,
      [
        'set -e',
        `hostname ${node.name}`,
        ...nodeCgroupMounts(),
        'mount -t tmpfs -o mode=755 tmpfs /run',
        'mount -t tmpfs -o mode=1777 tmpfs /tmp',
        `mount -t overlay overlay -o lowerdir=/etc,upperdir=${node.dir}/etc-upper,workdir=${node.dir}/etc-work /etc`,
        `mount -t overlay overlay -o lowerdir=/var,upperdir=${node.dir}/var-upper,workdir=${node.dir}/var-work /var`,
        `mount -t overlay overlay -o lowerdir=/root,upperdir=${node.dir}/root-upper,workdir=${node.dir}/root-work /root`,
        'mkdir -p /var/lib/containerd',
        // A small runtime disk of its own, as a node's /var/lib/containerd partition is: the disk fault fills it.
        'mount -t tmpfs -o size=96m,nr_inodes=8000,mode=711 lab-containerd /var/lib/containerd',
        ...(node.containerd === '1.6'
          ? []
          : ['containerd', 'ctr', 'containerd-shim-runc-v2'].map((b) => `mount --bind ${LAB_PKGS}/containerd-${node.containerd}/usr/bin/${b} /usr/bin/${b}`)),
        'exec /lib/systemd/systemd --system',
        '',
      ].join('\n'),
    );
    const cgroups = hostCgroupMounts()
      .map((m) => {
        const d = `${m}/${node.cgroupName}`;
        return `mkdir -p ${d}; if [ -f ${m}/cpuset.cpus ]; then cat ${m}/cpuset.cpus > ${d}/cpuset.cpus; cat ${m}/cpuset.mems > ${d}/cpuset.mems; fi; echo $$ > ${d}/cgroup.procs`;
      })
      .join('\n');
    const launcher = `${cgroups}\nexec /usr/sbin/ip netns exec ${node.netns} /usr/bin/unshare --cgroup --pid --fork --mount --uts --mount-proc --propagation private /usr/bin/env -i container=nodediag-lab PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/bash ${init}`;
    const child = spawn('/bin/bash', ['-c', launcher], { detached: true, stdio: ['ignore', 'ignore', 'ignore'] });
    child.unref();
    const unsharePid = child.pid!;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !node.systemdPid) {
      try {
        const kids = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        for (const k of kids) {
          if (readFileSync(`/proc/${k}/cmdline`, 'utf8').startsWith('/lib/systemd/systemd')) node.systemdPid = Number(k);
        }
      } catch {
        /* not yet */
      }
      if (!node.systemdPid) await new Promise((r) => setTimeout(r, 100));
    }
    if (!node.systemdPid) throw new Error(`lab ${node.name}: systemd did not start`);
    this.kube.addNode(makeNode(node.name, node.address, { 'nodediag.dev/lab': 'true', pool: 'gpu', 'nodediag.dev/containerd': node.containerd }, false, node.machineId));
    this.kube.expectHeartbeats(node.name);
    await node.waitFor(`s=$(systemctl is-system-running 2>/dev/null); [ "$s" = running ] || [ "$s" = degraded ]`, 60_000, 'systemd to finish booting');
    await node.waitRuntime();
    await waitTcp(node.address, 22, 15_000);
    if (node.layout !== 'cri-o') await startWorkloads(node);
  }

  /** Writes the inventory the product uses to reach the lab nodes. */
  private writeInventory(): void {
    const lines = ['defaults:', '  user: root', `  privateKeyPath: ${this.botKeyPath}`, '  connectTimeoutMs: 5000', 'nodes:'];
    for (const n of this.nodes) lines.push(`  - name: ${n.name}`, `    host: ${n.address}`, `    hostKey: "${n.hostKeyFingerprint}"`);
    writeFileSync(this.inventoryPath, `${lines.join('\n')}\n`);
  }

  /**
   * Replaces the pods on a node with a fresh DaemonSet pod: the seed-000
   * NVIDIA toolkit pod (mounting the runtime socket by hostPath with no type,
   * as in the incident) or a plain kube-proxy pod.
   */
  resetPods(node: string, kind: 'toolkit' | 'kube-proxy'): void {
    for (const p of this.kube.podsOn(node)) this.kube.pods.delete(`${p.metadata.namespace}/${p.metadata.name}`);
    this.kube.addPod(
      kind === 'toolkit'
        ? makeDaemonSetPod({
            namespace: 'gpu-operator',
            daemonSet: 'nvidia-container-toolkit-daemonset',
            node,
            container: 'nvidia-container-toolkit-ctr',
            image: 'nvcr.io/nvidia/k8s/container-toolkit:v1.17.0-ubuntu20.04',
            health: 'running',
            hostPaths: [{ name: 'containerd-socket', path: '/run/containerd/containerd.sock' }],
          })
        : makeDaemonSetPod({
            namespace: 'kube-system',
            daemonSet: 'kube-proxy',
            node,
            container: 'kube-proxy',
            image: 'registry.k8s.io/kube-proxy:v1.30.0',
            health: 'running',
          }),
    );
  }

  /** Stops every node and removes everything the lab created; throws if something is left. */
  async teardown(): Promise<void> {
    const problems: string[] = [];
    for (const n of this.nodes) {
      if (n.systemdPid) {
        try {
          process.kill(n.systemdPid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    for (const n of this.nodes) {
      const deadline = Date.now() + 10_000;
      while (n.systemdPid && existsSync(`/proc/${n.systemdPid}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const m of hostCgroupMounts()) {
        const d = `${m}/${n.cgroupName}`;
        if (!existsSync(d)) continue;
        const until = Date.now() + 10_000;
        while (existsSync(d) && Date.now() < until) {
          await run('/usr/bin/find', [d, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
          if (existsSync(d)) await new Promise((r) => setTimeout(r, 100));
        }
        if (existsSync(d)) problems.push(`cgroup ${d} still exists`);
      }
      await run('/usr/sbin/ip', ['link', 'del', n.hostIf]);
      await run('/usr/sbin/ip', ['netns', 'del', n.netns]);
    }
    await this.kube?.stop().catch(() => undefined);
    await run('/usr/sbin/swapoff', [join(this.dir, 'swapfile')]);
    const stray = (await run('/bin/sh', ['-c', `grep -l 'nodediag-lab-${this.id}-' /proc/[0-9]*/cgroup 2>/dev/null || true`])).stdout.trim();
    if (stray) problems.push(`stray processes: ${stray.split('\n').join(' ')}`);
    const netns = (await run('/usr/sbin/ip', ['netns', 'list'])).stdout;
    if (netns.includes(`ndlab-${this.id}-`)) problems.push('network namespaces left');
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
    if (problems.length) throw new Error(`lab teardown left things behind: ${problems.join('; ')}`);
  }
}

/** Waits until a TCP port accepts connections. */
export async function waitTcp(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}

/** Lists lab leftovers on the host (for a test that proves teardown is clean). */
export function labLeftovers(id: string): string[] {
  const left: string[] = [];
  for (const m of hostCgroupMounts()) {
    for (const d of readdirSync(m)) if (d.startsWith(`nodediag-lab-${id}-`)) left.push(`${m}/${d}`);
  }
  return left;
}

/**
 * The config of a production GPU node, made from the version's own
 * `containerd config default`: SystemdCgroup = true; the NVIDIA runtime
 * added and made the default the way `nvidia-ctk runtime configure
 * --runtime=containerd --set-as-default` does it (a copy of the runc runtime
 * with BinaryName set); and, on config version 2, a private registry with
 * credentials and a mirror (version 3 keeps them in certs.d hosts.toml).
 */
export function productionConfig(defaults: string, lab: Pick<Lab, 'registryPassword'>): string {
  const lines = defaults.replace(/SystemdCgroup = false/g, 'SystemdCgroup = true').split('\n');
  const out: string[] = [];
  const header = /^\s*\[/;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    out.push(l.replace(/(default_runtime_name = )(['"])runc\2/, '$1$2nvidia$2'));
    if (!/\.runtimes\.runc\]$/.test(l.trim())) continue;
    let j = i + 1;
    while (j < lines.length && !(header.test(lines[j]!) && !lines[j]!.includes('runtimes.runc'))) j++;
    const block = lines.slice(i, j);
    out.push(...lines.slice(i + 1, j));
    for (const b of block) {
      out.push(b.replace('runtimes.runc', 'runtimes.nvidia').replace(/(BinaryName = )(['"]).*\2/, '$1$2/usr/bin/nvidia-container-runtime$2'));
    }
    i = j - 1;
  }
  let text = out.join('\n');
  if (/^version = 2/m.test(defaults)) {
    text = text.replace(
      /^(\s*)\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\.configs\]\s*$/m,
      (all, indent: string) =>
        `${all}\n${indent}  [plugins."io.containerd.grpc.v1.cri".registry.configs."${LAB_REGISTRY}".auth]\n${indent}    username = "robot"\n${indent}    password = "${lab.registryPassword}"`,
    );
    text = text.replace(
      /^(\s*)\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\.mirrors\]\s*$/m,
      (all, indent: string) => `${all}\n${indent}  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n${indent}    endpoint = ["${LAB_MIRROR}"]`,
    );
  }
  return text;
}

/** The workloads every lab node runs: a plain container, and a "GPU" one holding /dev/nvidia0 open (a bind of /dev/null). */
export const LAB_WORKLOADS = ['lab-app', 'lab-gpu'] as const;

/** Starts the node's workloads (real containers, each with its real shim). */
export async function startWorkloads(node: LabNode): Promise<void> {
  const rootfs = `${node.dir}/rootfs`;
  const ctr = `ctr --address ${node.socket} -n k8s.io`;
  await node.must(`${ctr} run -d --rootfs ${rootfs} lab-app /bin/sleep 1000000`);
  await node.must(
    `${ctr} run -d --mount type=bind,src=/dev/null,dst=/dev/nvidia0,options=rbind:rw --rootfs ${rootfs} lab-gpu /bin/sh -c 'exec 3</dev/nvidia0; exec /bin/sleep 1000000'`,
  );
}
