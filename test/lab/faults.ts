/**
 * Real faults for lab nodes, each produced the way it happens in production
 * and checked to have really happened (the real message in the journal, the
 * real state in systemd) before a test relies on it. A fault has the id of
 * the finding it produces (`<finding>` or `<finding>--<variant>`): the
 * finding, its fault, its fixture and its runbook share one name.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerdVersion, Lab, LabNode } from './lab.js';

function host(script: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('/bin/sh', ['-c', script], { timeout: 120_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`host: ${script.slice(0, 80)}: ${stderr || err.message}`)) : resolve(String(stdout)),
    ),
  );
}

/** A lab fault: how to produce it, what the product must name, how to undo it. */
export interface LabFault {
  /** The finding it produces, or `<finding>--<variant>`. */
  id: string;
  /** What happens in production and how the lab produces it. */
  title: string;
  /** Findings `nodediag diag` must report (the first one is the root cause to fix). */
  expect: string[];
  /** Whether `nodediag fix <node> <expect[0]>` must return the node to healthy. */
  fixable: boolean;
  /** This fault touches state all lab nodes share (swap is kernel-wide): run it alone. */
  global?: boolean;
  /** Containers (k8s.io ids) the fix is meant to end. */
  ends?: string[];
  /** The containerd versions it is produced on (default: every version in the lab). */
  versions?: ContainerdVersion[];
  inject(node: LabNode, lab: Lab): Promise<void>;
  /** Undo by hand (for advisory-only faults, and cleanup after a failed test). */
  restore(node: LabNode, lab: Lab): Promise<void>;
}

/** The finding a fault produces. */
export function findingOf(fault: Pick<LabFault, 'id'>): string {
  return fault.id.replace(/--.*$/, '');
}

const SOCK = '/run/containerd/containerd.sock';

/** Puts containerd back to a clean running state (cleanup helper). */
export async function resetContainerd(node: LabNode): Promise<void> {
  const pid = await node.sh('systemctl show -p MainPID --value containerd');
  if (pid.stdout.trim() && pid.stdout.trim() !== '0') await node.sh(`kill -CONT ${pid.stdout.trim()}`);
  await node.sh(`[ -d ${SOCK} ] && systemctl stop containerd && rm -rf ${SOCK}; systemctl reset-failed containerd; systemctl start containerd`);
  await node.waitRuntime();
}

/** Starts a real container (and so a real containerd-shim) on the node; returns its task PID. */
export async function runContainer(node: LabNode, id: string, gpu = false): Promise<number> {
  const device = gpu ? '--mount type=bind,src=/dev/null,dst=/dev/nvidia0,options=rbind:rw ' : '';
  const cmd = gpu ? `/bin/sh -c 'exec 3</dev/nvidia0; exec /bin/sleep 1000000'` : '/bin/sleep 1000000';
  await node.must(`ctr -n k8s.io run -d ${device}--rootfs ${node.dir}/rootfs ${id} ${cmd}`);
  return (await node.tasks()).get(id)!.pid;
}

/** Removes a container and its task, whatever state it is in. */
export async function removeContainer(node: LabNode, id: string): Promise<void> {
  await node.sh(`ctr -n k8s.io tasks kill -s KILL ${id} 2>/dev/null; sleep 0.3; ctr -n k8s.io tasks rm -f ${id} 2>/dev/null; ctr -n k8s.io containers rm ${id} 2>/dev/null; true`);
}

/** Builds an OCI image archive no container uses: a fat random layer plus many empty files. */
async function buildUnusedImage(dir: string, megabytes: number, files: number): Promise<string> {
  const d = join(dir, `unused-image-${megabytes}-${files}`);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(join(d, 'layer', 'files'), { recursive: true });
  mkdirSync(join(d, 'oci', 'blobs', 'sha256'), { recursive: true });
  await host(
    [
      `head -c ${megabytes * 1_000_000} /dev/urandom > ${d}/layer/filler`,
      `cd ${d}/layer/files && i=0; while [ $i -lt ${files} ]; do : > f$i; i=$((i + 1)); done`,
      `tar -C ${d}/layer -cf ${d}/layer.tar .`,
    ].join('\n'),
  );
  const digest = async (f: string) => (await host(`sha256sum ${f} | cut -d' ' -f1`)).trim();
  const size = async (f: string) => Number((await host(`stat -c %s ${f}`)).trim());
  const blob = async (f: string) => {
    const dg = await digest(f);
    await host(`cp ${f} ${d}/oci/blobs/sha256/${dg}`);
    return { digest: `sha256:${dg}`, size: await size(f) };
  };
  const layer = await blob(`${d}/layer.tar`);
  writeFileSync(`${d}/config.json`, JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} }));
  const config = await blob(`${d}/config.json`);
  writeFileSync(
    `${d}/manifest.json`,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  );
  const manifest = await blob(`${d}/manifest.json`);
  writeFileSync(
    `${d}/oci/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'lab.local/old-training-image:v1' } }],
    }),
  );
  writeFileSync(`${d}/oci/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  await host(`tar -C ${d}/oci -cf ${d}/image.tar .`);
  return `${d}/image.tar`;
}

/** A broken section appended to config.toml (what a half-applied edit leaves). */
const BROKEN_TOML = `printf '\\n[plugins."io.containerd.grpc.v1.cri".registry\\n  broken = = true\\n' >> /etc/containerd/config.toml`;

async function breakConfig(node: LabNode): Promise<void> {
  await node.must(`cp -p /etc/containerd/config.toml /root/config.toml.lab-good && ${BROKEN_TOML}`);
  await node.sh('systemctl restart containerd');
  await node.waitFor(`journalctl -u containerd -n 50 --no-pager | grep -Eq 'failed to load TOML|failed to unmarshal TOML'`, 20_000, 'the real TOML failure');
}

async function restoreConfig(node: LabNode): Promise<void> {
  await node.sh('[ -f /root/config.toml.lab-good ] && cp -p /root/config.toml.lab-good /etc/containerd/config.toml; rm -f /etc/containerd/config.toml.bak-*');
  await resetContainerd(node);
}

/** A restart storm (what the toolkit's SIGHUPs do) until systemd refuses to start containerd again. */
async function restartStorm(node: LabNode): Promise<void> {
  const since = (await node.must('date +%s')).trim();
  await node.sh('for i in $(seq 1 30); do [ "$(systemctl is-active containerd)" = failed ] && break; systemctl restart containerd; done');
  await node.waitFor(
    `[ "$(systemctl is-active containerd)" = failed ] && journalctl -u containerd --since @${since} --no-pager | grep -q 'Found left-over process'`,
    20_000,
    'a start-limited containerd with its shims still running',
  );
}

export const LAB_FAULTS: LabFault[] = [
  {
    id: 'containerd-socket-is-directory',
    title: 'seed 000: containerd stopped, the socket path recreated as an empty directory (what a hostPath mount without type: Socket does), start fails',
    expect: ['containerd-socket-is-directory'],
    fixable: true,
    async inject(node) {
      await node.sh(`systemctl stop containerd; rm -f ${SOCK}; mkdir ${SOCK}; systemctl start containerd`);
      await node.waitFor(`journalctl -u containerd -n 80 --no-pager | grep -Eq 'failed to get listener for main endpoint: (.*: )?is a directory'`, 20_000, 'the real "is a directory" failure');
    },
    restore: resetContainerd,
  },
  {
    id: 'containerd-hung',
    title: 'seed 000 case B: containerd hung (SIGSTOP of its main process): service active, socket not answering',
    expect: ['containerd-hung'],
    fixable: true,
    async inject(node) {
      const pid = await node.containerdPid();
      await node.must(`kill -STOP ${pid}`);
      await node.waitFor(`[ "$(systemctl is-active containerd)" = active ] && ! ctr --connect-timeout 1s --timeout 1s version >/dev/null 2>&1`, 10_000, 'an active but silent containerd');
    },
    restore: resetContainerd,
  },
  {
    id: 'containerd-config-invalid',
    title: 'seed 000 case C on a GPU node (nvidia runtime as default, registry credentials): a broken config.toml, containerd fails to load it on restart; earlier diagnoses kept the last config that loaded',
    expect: ['containerd-config-invalid'],
    fixable: true,
    inject: breakConfig,
    restore: restoreConfig,
  },
  {
    id: 'containerd-config-invalid--no-last-good',
    title: 'the same, on a node nodediag never saw healthy (no last-known-good copy): the repair drops only the section containerd rejects',
    expect: ['containerd-config-invalid'],
    fixable: true,
    async inject(node) {
      await node.must('rm -f /var/lib/nodediag/containerd-config.last-good.toml');
      await breakConfig(node);
    },
    restore: restoreConfig,
  },
  {
    id: 'containerd-leftover-shims',
    title: 'seed 000 §8, read right: a GPU training container whose bundle containerd lost (state dir cleaned while it was stopped): its shim runs on, unmanaged, holding /dev/nvidia0',
    expect: ['containerd-leftover-shims', 'orphan-holds-gpu'],
    fixable: true,
    ends: ['lab-orphan'],
    async inject(node) {
      await runContainer(node, 'lab-orphan', true);
      await node.must(`systemctl stop containerd && rm -rf /run/containerd/io.containerd.runtime.v2.task/k8s.io/lab-orphan && systemctl start containerd`);
      await node.waitRuntime();
      await node.waitFor(`! ctr -n k8s.io tasks ls -q | grep -qx lab-orphan && pgrep -f 'containerd-shim.* -id lab-orphan ' >/dev/null`, 10_000, 'an orphaned shim');
      // A shim younger than 20 s may still be starting: nodediag waits before calling it an orphan.
      await new Promise((r) => setTimeout(r, 21_000));
    },
    async restore(node) {
      await node.sh(`pkill -KILL -f 'containerd-shim.* -id lab-orphan ' ; true`);
      await removeContainer(node, 'lab-orphan');
    },
  },
  {
    id: 'containerd-down',
    title: 'containerd stopped',
    expect: ['containerd-down'],
    fixable: true,
    async inject(node) {
      await node.must('systemctl stop containerd');
    },
    restore: resetContainerd,
  },
  {
    id: 'containerd-down--restart-storm',
    title: 'seed 000 §8 as it really is: a restart storm while containers run, until systemd refuses to start containerd (start-limit-hit); every live shim is named "left-over" on each start, and is fine',
    expect: ['containerd-down'],
    fixable: true,
    inject: restartStorm,
    restore: resetContainerd,
  },
  {
    id: 'containerd-down--socket-deleted',
    title: 'containerd running, its socket file deleted under it (a cleanup of /run, a hostPath mount gone wrong): nothing can connect until containerd restarts',
    expect: ['containerd-down'],
    fixable: true,
    async inject(node) {
      await node.must(`rm -f ${SOCK} && systemctl is-active containerd`);
    },
    async restore(node) {
      await node.sh(`[ -S ${SOCK} ] || systemctl restart containerd`);
      await resetContainerd(node);
    },
  },
  {
    id: 'containerd-cri-disabled',
    title: "containerd's CRI plugin disabled in its config (as the containerd.io package's config.toml does), the rest of the production config kept; containerd restarted and its containers still running",
    expect: ['containerd-cri-disabled'],
    fixable: false,
    async inject(node) {
      await node.must(
        `cp -p /etc/containerd/config.toml /root/config.toml.before-cri && sed -i 's/^disabled_plugins = \\[\\]$/disabled_plugins = ["io.containerd.grpc.v1.cri"]/' /etc/containerd/config.toml && grep -q '^disabled_plugins = \\["io.containerd.grpc.v1.cri"\\]$' /etc/containerd/config.toml && systemctl restart containerd`,
      );
      await node.waitRuntime();
      await node.waitFor(`! ctr plugins ls | grep -q 'io.containerd.grpc.v1 *cri '`, 10_000, 'the CRI plugin gone from ctr plugins ls');
    },
    async restore(node) {
      await node.sh('[ -f /root/config.toml.before-cri ] && mv -f /root/config.toml.before-cri /etc/containerd/config.toml; systemctl restart containerd');
      await node.waitRuntime();
    },
  },
  {
    id: 'kubelet-down',
    title: 'kubelet stopped (by hand, or crashed and left stopped) while containerd and its containers run',
    expect: ['kubelet-down'],
    fixable: true,
    async inject(node) {
      await node.must('systemctl stop kubelet');
      await node.waitFor('[ "$(systemctl is-active kubelet)" = inactive ]', 10_000, 'kubelet stopped');
    },
    async restore(node) {
      await node.sh('systemctl reset-failed kubelet; systemctl start kubelet');
    },
  },
  {
    id: 'kubelet-down--config-missing',
    title: "kubelet's --config file gone: kubelet exits at start, and systemd starts it again every 10 s (RestartSec of the packaged kubelet.service), failing each time",
    expect: ['kubelet-down'],
    fixable: false,
    async inject(node) {
      await node.must(
        "mkdir -p /etc/systemd/system/kubelet.service.d && printf '[Service]\\nRestartSec=10\\n' > /etc/systemd/system/kubelet.service.d/90-lab-restartsec.conf && systemctl daemon-reload && mv /var/lib/kubelet/config.yaml /root/kubelet-config.yaml.away && systemctl restart kubelet; true",
      );
      await node.waitFor(`journalctl -u kubelet -n 20 --no-pager | grep -q 'failed to load kubelet config file' && [ "$(systemctl show -p SubState --value kubelet)" = auto-restart ]`, 20_000, 'kubelet failing on its missing config');
    },
    async restore(node) {
      await node.sh('[ -f /root/kubelet-config.yaml.away ] && mv -f /root/kubelet-config.yaml.away /var/lib/kubelet/config.yaml; rm -f /etc/systemd/system/kubelet.service.d/90-lab-restartsec.conf; systemctl daemon-reload; systemctl reset-failed kubelet; systemctl restart kubelet');
    },
  },
  {
    id: 'swap-enabled',
    title: 'seed 002 §4.13: swap on (a swap file, also in /etc/fstab); kubelet refuses to run',
    expect: ['swap-enabled'],
    fixable: true,
    global: true,
    async inject(node, lab) {
      const f = join(lab.dir, 'swapfile');
      await host(`dd if=/dev/zero of=${f} bs=1M count=16 status=none && chmod 600 ${f} && mkswap ${f} >/dev/null && swapon ${f}`);
      await node.must(`echo '${f} none swap sw 0 0' >> /etc/fstab && systemctl restart kubelet`);
      await node.waitFor(`journalctl -u kubelet -n 30 --no-pager | grep -q 'running with swap on is not supported'`, 20_000, 'kubelet refusing swap');
    },
    async restore(node, lab) {
      await host(`swapoff ${join(lab.dir, 'swapfile')} 2>/dev/null; true`);
      await node.sh(`sed -i '\\|${join(lab.dir, 'swapfile')}|d' /etc/fstab; systemctl restart kubelet`);
    },
  },
  {
    id: 'disk-pressure',
    title: 'seed 002 §4.10: the node\'s runtime disk (/var/lib/containerd) filled, space and inodes, by an image no container uses',
    expect: ['disk-pressure'],
    fixable: true,
    async inject(node, lab) {
      const free = (await node.must(`df -P /var/lib/containerd | awk 'NR == 2 { print int($4 / 1024) }'`)).trim();
      const inodes = (await node.must(`df -Pi /var/lib/containerd | awk 'NR == 2 { print $4 }'`)).trim();
      // Importing unpacks too: the content blob and its snapshot each take the layer's size.
      const image = await buildUnusedImage(lab.dir, Math.max(1, Math.floor(Number(free) * 0.47)), Math.max(10, Number(inodes) - 300));
      await node.must(`ctr -n k8s.io images import --base-name lab.local/old-training-image ${image}`, 120_000);
      await node.must(`df -P /var/lib/containerd | awk 'NR == 2 { sub(/%/, "", $5); exit !($5 >= 90) }'`);
    },
    async restore(node) {
      await node.sh('ctr -n k8s.io images rm --sync lab.local/old-training-image:v1 2>/dev/null; for i in $(ctr -n k8s.io images ls -q | grep "^sha256:"); do ctr -n k8s.io images rm --sync "$i"; done; true');
    },
  },
  {
    id: 'cni-not-ready--no-config',
    title: 'seed 002 §4.9: no CNI config in /etc/cni/net.d (advice only: the network add-on owns it)',
    expect: ['cni-not-ready'],
    fixable: false,
    async inject(node) {
      await node.must('mkdir -p /root/cni-backup && mv /etc/cni/net.d/* /root/cni-backup/');
    },
    async restore(node) {
      await node.sh('mv /root/cni-backup/* /etc/cni/net.d/ 2>/dev/null; true');
    },
  },
  {
    id: 'cni-not-ready',
    title: 'seed 002 §4.9: bridge-nf-call-iptables=0 and ip_forward=0 (per network namespace here)',
    expect: ['cni-not-ready'],
    fixable: true,
    async inject(node) {
      await node.must('sysctl -q -w net.bridge.bridge-nf-call-iptables=0 net.ipv4.ip_forward=0');
    },
    async restore(node) {
      await node.sh('sysctl -q -w net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1');
    },
  },
  {
    id: 'cgroup-driver-mismatch',
    title: 'seed 002 §4.3: kubelet cgroupDriver systemd, containerd\'s default runtime (nvidia) with SystemdCgroup = false',
    expect: ['cgroup-driver-mismatch'],
    fixable: true,
    async inject(node) {
      await node.must("cp -p /etc/containerd/config.toml /root/config.toml.lab-good && sed -i 's/SystemdCgroup = true/SystemdCgroup = false/' /etc/containerd/config.toml && systemctl restart containerd");
      await node.waitRuntime();
    },
    async restore(node) {
      await node.sh('cp -p /root/config.toml.lab-good /etc/containerd/config.toml; rm -f /etc/containerd/config.toml.bak-* /var/lib/kubelet/config.yaml.bak-*; systemctl restart containerd');
      await node.waitRuntime();
    },
  },
  {
    id: 'pleg-unhealthy',
    title: 'seed 002 §4.4: kubelet reports PLEG is not healthy while the runtime answers (its relist is stuck; the stand-in stalls it until containerd restarts)',
    expect: ['pleg-unhealthy'],
    fixable: true,
    async inject(node, lab) {
      await node.must('mkdir -p /run/kubelet-standin && systemctl show -p MainPID --value containerd > /run/kubelet-standin/pleg-stall');
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const ready = lab.kube.nodes.get(node.name)?.status.conditions.find((c: { type: string }) => c.type === 'Ready');
        if (/PLEG is not healthy/.test(ready?.message ?? '')) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`lab ${node.name}: kubelet never reported PLEG unhealthy`);
    },
    async restore(node) {
      await node.sh('rm -f /run/kubelet-standin/pleg-stall');
    },
  },
];

/** An expired kubelet client certificate, made with `openssl ca` (explicit past dates). */
export async function injectExpiredKubeletCert(node: LabNode): Promise<void> {
  await node.must(
    [
      'd=/root/expired-ca && rm -rf $d && mkdir -p $d/newcerts && touch $d/index.txt && echo 01 > $d/serial',
      `printf '[ca]\\ndefault_ca=d\\n[d]\\ndir=%s\\ndatabase=%s/index.txt\\nnew_certs_dir=%s/newcerts\\nserial=%s/serial\\ndefault_md=sha256\\npolicy=p\\n[p]\\ncommonName=supplied\\norganizationName=optional\\n' $d $d $d $d > $d/ca.cnf`,
      `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $d/k.pem -subj "/O=system:nodes/CN=system:node:${node.name}" -out $d/r.csr 2>/dev/null`,
      'openssl ca -batch -selfsign -config $d/ca.cnf -keyfile $d/k.pem -in $d/r.csr -out $d/c.pem -startdate 20240101000000Z -enddate 20240201000000Z >/dev/null 2>&1',
      'mkdir -p /var/lib/kubelet/pki && cat $d/c.pem $d/k.pem > /var/lib/kubelet/pki/kubelet-client-current.pem',
    ].join('\n'),
  );
}
