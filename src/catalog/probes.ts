/**
 * The probe catalog: what nodediag looks at on a node. Data only; validated
 * by `loadCatalogs()`.
 *
 * Script templates: `{{sudo}}` marks a privileged command (rendered as
 * `sudo -n ` when the inventory says `sudo: true`, else nothing) and is
 * always followed by a fixed command whose arguments are literals or
 * `{{param}}` values, so that `nodediag sudoers` can list exactly what the
 * bot may run as root. Everything else runs as the SSH user. Each script
 * ends with status 0 when it observed something; the observation is in its
 * output.
 */

/** Journal window: lines since the unit last started (minus 2 s), at most 30 minutes back. */
function journalScript(unit: string): string {
  return [
    `now=$(date +%s); up=$(cut -d' ' -f1 /proc/uptime)`,
    `mono=$(systemctl show -p InactiveExitTimestampMonotonic --value ${unit} 2>/dev/null)`,
    `echo "window-start=$(awk -v n="$now" -v u="$up" -v m="\${mono:-0}" 'BEGIN { s = n - u + m / 1000000 - 2; w = n - 1800; if (m == 0 || s < w) s = w; printf "%d", s }') now=$now"`,
    `{{sudo}}journalctl -u ${unit} --no-pager -o short-iso -n 300`,
  ].join('\n');
}

function serviceScript(unit: string): string {
  return `systemctl show ${unit} --no-pager -p LoadState -p ActiveState -p SubState -p Result -p MainPID -p NRestarts -p ExecMainStatus`;
}

export const probeCatalogData: unknown = [
  {
    id: 'containerd-service',
    title: 'containerd service state (systemctl show containerd)',
    transport: 'ssh',
    script: serviceScript('containerd'),
    timeoutMs: 5000,
  },
  {
    id: 'containerd-journal',
    title: 'containerd journal since its last start (journalctl -u containerd)',
    transport: 'ssh',
    script: journalScript('containerd'),
    timeoutMs: 8000,
    parser: 'journal',
  },
  {
    id: 'runtime-socket',
    title: 'runtime socket file type (stat of the CRI socket path)',
    transport: 'ssh',
    script: [
      `p={{socket}}`,
      `if [ -S "$p" ]; then echo "type=socket path=$p"`,
      `elif [ -d "$p" ]; then echo "type=directory path=$p entries=$(ls -A "$p" 2>/dev/null | wc -l)"`,
      `elif [ -e "$p" ]; then echo "type=other path=$p"`,
      `else echo "type=missing path=$p"; fi`,
      `ls -ld "$p" 2>&1 || true`,
    ].join('\n'),
    timeoutMs: 4000,
  },
  {
    id: 'runtime-ping',
    title: 'runtime answers on its socket (crictl version, else ctr version; bounded)',
    transport: 'ssh',
    script: [
      // Without a socket there is nothing to dial: gRPC would retry until its deadline.
      `if [ ! -S {{socket}} ]; then echo no socket at {{socket}}; echo "runtime-ping-exit=1"; exit 0; fi`,
      `if command -v crictl >/dev/null 2>&1; then {{sudo}}crictl --runtime-endpoint unix://{{socket}} --timeout 4s version 2>&1`,
      `else {{sudo}}ctr --address {{socket}} --connect-timeout 3s --timeout 4s version 2>&1; fi`,
      `echo "runtime-ping-exit=$?"`,
    ].join('\n'),
    timeoutMs: 6000,
  },
  {
    id: 'containerd-config',
    title: 'containerd effective config (containerd config dump): validity and SystemdCgroup',
    transport: 'ssh',
    script: [
      `out=$({{sudo}}containerd config dump 2>&1); rc=$?`,
      `echo "config-dump-exit=$rc"`,
      `if [ "$rc" -ne 0 ]; then printf '%s\\n' "$out" | tail -n 5`,
      `else printf '%s\\n' "$out" | awk '/^ *\\[/ { s = $0; gsub(/^ +| +$/, "", s) } /SystemdCgroup|systemd_cgroup|default_runtime_name/ { v = $0; gsub(/^ +/, "", v); print s " " v }'; fi`,
    ].join('\n'),
    timeoutMs: 6000,
  },
  {
    id: 'kubelet-service',
    title: 'kubelet service state (systemctl show kubelet)',
    transport: 'ssh',
    script: serviceScript('kubelet'),
    timeoutMs: 5000,
  },
  {
    id: 'kubelet-journal',
    title: 'kubelet journal since its last start (journalctl -u kubelet)',
    transport: 'ssh',
    script: journalScript('kubelet'),
    timeoutMs: 8000,
    parser: 'journal',
  },
  {
    id: 'kubelet-config',
    title: 'kubelet config (cgroupDriver, failSwapOn)',
    transport: 'ssh',
    script: [
      `if c=$({{sudo}}cat /var/lib/kubelet/config.yaml 2>&1); then echo "kubelet-config=present path=/var/lib/kubelet/config.yaml"`,
      `printf '%s\\n' "$c" | grep -E '^[[:space:]]*(cgroupDriver|failSwapOn|containerRuntimeEndpoint):' || true`,
      `else echo "kubelet-config=unreadable path=/var/lib/kubelet/config.yaml"; printf '%s\\n' "$c" | head -n 2; fi`,
    ].join('\n'),
    timeoutMs: 4000,
  },
  {
    id: 'disk-space',
    title: 'disk usage of the runtime, kubelet and log paths (df -P)',
    transport: 'ssh',
    script: `for p in /var/lib/containerd /var/lib/kubelet /var/log /; do [ -e "$p" ] && df -P "$p" 2>&1 | awk -v p="$p" 'NR == 2 { print p ": " $0 }'; done; true`,
    timeoutMs: 5000,
  },
  {
    id: 'disk-inodes',
    title: 'inode usage of the runtime, kubelet and log paths (df -Pi)',
    transport: 'ssh',
    script: `for p in /var/lib/containerd /var/lib/kubelet /var/log /; do [ -e "$p" ] && df -Pi "$p" 2>&1 | awk -v p="$p" 'NR == 2 { print p ": " $0 }'; done; true`,
    timeoutMs: 5000,
  },
  {
    id: 'swap',
    title: 'swap devices (/proc/swaps)',
    transport: 'ssh',
    script: `cat /proc/swaps; echo "swap-total-kb=$(awk '/^SwapTotal:/ { print $2 }' /proc/meminfo)"`,
    timeoutMs: 3000,
  },
  {
    id: 'bridge-netfilter',
    title: 'br_netfilter and the bridge/forwarding sysctls',
    transport: 'ssh',
    script: [
      `if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then echo "br_netfilter=available"`,
      `echo "net.bridge.bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)"`,
      `else echo "br_netfilter=missing (no /proc/sys/net/bridge)"; fi`,
      `echo "net.ipv4.ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"`,
    ].join('\n'),
    timeoutMs: 3000,
  },
  {
    id: 'cni-config',
    title: 'CNI network config present (/etc/cni/net.d)',
    transport: 'ssh',
    script: [
      `d=/etc/cni/net.d`,
      `if [ -d "$d" ]; then n=$(find "$d" -maxdepth 1 -type f \\( -name '*.conf' -o -name '*.conflist' -o -name '*.json' \\) | wc -l); echo "cni-config-files=$n dir=$d"; ls -1 "$d" | head -n 10`,
      `else echo "cni-config-files=0 dir=$d (missing)"; fi`,
    ].join('\n'),
    timeoutMs: 3000,
  },
  {
    id: 'time-sync',
    title: "node clock against the bot's clock, and NTP synchronisation",
    transport: 'ssh',
    script: `echo "node-epoch-ms=$(date +%s%3N)"; timedatectl show -p NTPSynchronized -p NTP 2>&1 | head -n 2; true`,
    timeoutMs: 4000,
    parser: 'clock',
  },
  {
    id: 'kubelet-cert',
    title: 'kubelet client certificate expiry',
    transport: 'ssh',
    script: [
      `out=$({{sudo}}openssl x509 -in /var/lib/kubelet/pki/kubelet-client-current.pem -noout -enddate -checkend 0 2>&1)`,
      `if printf '%s\\n' "$out" | grep -q '^notAfter='; then printf '%s\\n' "$out" | head -n 2`,
      `else echo "kubelet-client-cert=unreadable path=/var/lib/kubelet/pki/kubelet-client-current.pem: $(printf '%s\\n' "$out" | head -n 1)"; fi`,
    ].join('\n'),
    timeoutMs: 4000,
  },
  {
    id: 'security-denials',
    title: 'AppArmor / SELinux denials in the kernel log (last hour)',
    transport: 'ssh',
    script: `{{sudo}}journalctl -k --no-pager -o short-iso -n 20 --since -1h -g 'apparmor="DENIED"|avc: +denied' 2>&1 | grep -v '^-- No entries --$'; true`,
    timeoutMs: 5000,
  },
  {
    id: 'shim-processes',
    title: 'containerd-shim processes (ps)',
    transport: 'ssh',
    script: `ps -eo pid=,ppid=,comm=,args= | awk '$3 ~ /^containerd-shim/' | head -n 50; true`,
    timeoutMs: 3000,
  },
  { id: 'k8s-node', title: 'Kubernetes Node: conditions, taints, addresses', transport: 'kube', resource: 'node' },
  {
    id: 'k8s-pods',
    title: 'Kubernetes pods on the node: state, restarts, runtime-socket hostPaths',
    transport: 'kube',
    resource: 'pods',
  },
  { id: 'k8s-events', title: 'Kubernetes events for the node and its pods', transport: 'kube', resource: 'events' },
];
