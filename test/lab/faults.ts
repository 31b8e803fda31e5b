/**
 * Real faults for lab nodes, each produced the way it happens in production
 * and checked to have really happened (the real message in the journal, the
 * real state in systemd) before a test relies on it.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabNode } from './lab.js';

function host(script: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('/bin/sh', ['-c', script], { timeout: 120_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`host: ${script.slice(0, 80)}: ${stderr || err.message}`)) : resolve(String(stdout)),
    ),
  );
}

/** A lab fault: how to produce it, what the product must name, how to undo it. */
export interface LabFault {
  id: string;
  /** What happens in production and how the lab produces it. */
  title: string;
  /** Findings `nodediag diag` must report (the first one is the root cause to fix). */
  expect: string[];
  /** Whether `nodediag fix <node> <expect[0]>` must return the node to healthy. */
  fixable: boolean;
  /** This fault touches state all lab nodes share (swap is kernel-wide): run it alone. */
  global?: boolean;
  inject(node: LabNode, lab: Lab): Promise<void>;
  /** Undo by hand (for advisory-only faults, and cleanup after a failed test). */
  restore(node: LabNode, lab: Lab): Promise<void>;
}

const SOCK = '/run/containerd/containerd.sock';

/** Puts containerd back to a clean running state (cleanup helper). */
export async function resetContainerd(node: LabNode): Promise<void> {
  const pid = await node.sh('systemctl show -p MainPID --value containerd');
  if (pid.stdout.trim() && pid.stdout.trim() !== '0') await node.sh(`kill -CONT ${pid.stdout.trim()}`);
  await node.sh(`[ -d ${SOCK} ] && systemctl stop containerd && rmdir ${SOCK}; systemctl reset-failed containerd; systemctl start containerd`);
  await node.waitRuntime();
}

/** Starts a real container (and so a real containerd-shim) on the node. */
export async function runContainer(node: LabNode, id: string): Promise<number> {
  await node.must(`ctr -n k8s.io run -d --rootfs ${node.dir}/rootfs ${id} /bin/sleep 1000000`);
  const out = await node.must(`ctr -n k8s.io tasks ls | awk '$1 == "${id}" { print $2 }'`);
  return Number(out.trim());
}

/** Builds an OCI image archive no container uses: a fat random layer plus many empty files. */
async function buildUnusedImage(dir: string, megabytes: number, files: number): Promise<string> {
  const d = join(dir, 'unused-image');
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

export const LAB_FAULTS: LabFault[] = [
  {
    id: 'socket-is-directory',
    title: 'seed 000: containerd stopped, the socket path recreated as an empty directory (what a hostPath mount without type: Socket does), start fails',
    expect: ['containerd-socket-is-directory'],
    fixable: true,
    async inject(node) {
      await node.sh(`systemctl stop containerd; rm -f ${SOCK}; mkdir ${SOCK}; systemctl start containerd`);
      await node.waitFor(`journalctl -u containerd -n 50 --no-pager | grep -q 'failed to get listener for main endpoint: is a directory'`, 20_000, 'the real "is a directory" failure');
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
    id: 'config-invalid',
    title: 'seed 000 case C: a broken /etc/containerd/config.toml, containerd fails to load it on restart',
    expect: ['containerd-config-invalid'],
    fixable: true,
    async inject(node) {
      await node.must(`cp /etc/containerd/config.toml /root/config.toml.lab-good && printf '\\n[plugins."io.containerd.grpc.v1.cri".registry\\n  broken = = true\\n' >> /etc/containerd/config.toml`);
      await node.sh('systemctl restart containerd');
      await node.waitFor(`journalctl -u containerd -n 50 --no-pager | grep -q 'failed to load TOML'`, 20_000, 'the real TOML failure');
    },
    async restore(node) {
      await node.sh('[ -f /root/config.toml.lab-good ] && cp /root/config.toml.lab-good /etc/containerd/config.toml');
      await resetContainerd(node);
    },
  },
  {
    id: 'leftover-shims',
    title: 'seed 000 §8: a real container running, then a containerd restart storm until systemd refuses to start it; the shim stays in the unit cgroup',
    expect: ['containerd-leftover-shims'],
    fixable: true,
    async inject(node) {
      await runContainer(node, 'lab-sleeper');
      // A restart storm (what the toolkit's SIGHUPs do) until systemd refuses to start containerd again.
      await node.sh('for i in $(seq 1 30); do [ "$(systemctl is-active containerd)" = failed ] && break; systemctl restart containerd; done');
      await node.waitFor(`[ "$(systemctl is-active containerd)" = failed ] && journalctl -u containerd -n 80 --no-pager | grep -q 'Found left-over process'`, 20_000, 'a failed containerd with left-over shims');
    },
    async restore(node) {
      await node.sh(`for p in $(ps -eo pid=,comm= | awk '$2 ~ /^containerd-shim/ { print $1 }'); do kill -9 $p; done`);
      await resetContainerd(node);
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
    title: 'seed 002 §4.10: /var/lib/containerd on a small tmpfs filled (space and inodes) by an image no container uses',
    expect: ['disk-pressure'],
    fixable: true,
    async inject(node, lab) {
      const image = await buildUnusedImage(lab.dir, 24, 1950);
      await node.must('systemctl stop containerd && mount -t tmpfs -o size=48m,nr_inodes=2100 tmpfs /var/lib/containerd && systemctl start containerd');
      await node.waitRuntime();
      await node.must(`ctr -n k8s.io images import --base-name lab.local/old-training-image ${image}`, 120_000);
      await node.must(`df -P /var/lib/containerd | awk 'NR == 2 { sub(/%/, "", $5); exit !($5 >= 90) }'`);
    },
    async restore(node) {
      await node.sh('systemctl stop containerd; umount /var/lib/containerd; systemctl start containerd');
      await node.waitRuntime();
    },
  },
  {
    id: 'cni-missing',
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
    id: 'bridge-netfilter-off',
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
    title: 'seed 002 §4.3: kubelet cgroupDriver systemd, containerd runc SystemdCgroup = false',
    expect: ['cgroup-driver-mismatch'],
    fixable: true,
    async inject(node) {
      await node.must("sed -i 's/SystemdCgroup = true/SystemdCgroup = false/' /etc/containerd/config.toml && systemctl restart containerd");
      await node.waitRuntime();
    },
    async restore(node) {
      await node.sh("sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml; systemctl restart containerd");
      await node.waitRuntime();
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
