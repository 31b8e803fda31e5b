/**
 * The runbook catalog: the documented fix sequences, step by step, with the
 * seeds' mistakes corrected. Data only; validated by `loadCatalogs()`.
 *
 * Script parameters: `{{sudo}}` (see probes.ts), `{{socket}}` (the node's CRI
 * socket path), `{{stamp}}` (UTC time of the run, for backup names: a new
 * backup never overwrites an older one), and the runbook's own parameters
 * (`{{pid}}` in a `forEach: pid` step). Every value is shell-quoted.
 *
 * Conventions: a check passes when its script exits with `exitCode` (default
 * 0) and, if `stdout` is given, some output line matches it.
 */

const RUNTIME_ANSWERS = `[ -S {{socket}} ] && {{sudo}}ctr --address {{socket}} --connect-timeout 3s --timeout 4s version >/dev/null 2>&1 && echo runtime-ok; true`;

const stopContainerd = {
  id: 'stop-containerd',
  title: 'Stop containerd',
  why: 'Nothing may hold or recreate the socket path while it is repaired.',
  action: { kind: 'ssh', script: '{{sudo}}systemctl stop containerd', timeoutMs: 120_000 },
  verify: { kind: 'ssh', script: 'systemctl is-active containerd; true', stdout: '^(inactive|failed)$', withinMs: 10_000 },
  retrySafe: true,
};

const startContainerd = {
  id: 'start-containerd',
  title: 'Start containerd and check the runtime answers',
  why: 'containerd must create a real socket and answer on it before kubelet can use it.',
  action: { kind: 'ssh', script: '{{sudo}}systemctl start containerd', timeoutMs: 90_000 },
  verify: { kind: 'ssh', script: RUNTIME_ANSWERS, stdout: '^runtime-ok$', withinMs: 30_000 },
  retrySafe: true,
};

const restartContainerd = {
  id: 'restart-containerd',
  title: 'Restart containerd and check the runtime answers',
  why: 'A fresh containerd process; containers keep running in their shims (KillMode=process).',
  action: { kind: 'ssh', script: '{{sudo}}systemctl restart containerd', timeoutMs: 120_000 },
  verify: { kind: 'ssh', script: RUNTIME_ANSWERS, stdout: '^runtime-ok$', withinMs: 30_000 },
  retrySafe: true,
};

const NO_KUBELET_UNIT = { script: 'systemctl show -p LoadState --value kubelet; true', stdout: '^not-found$' };

const restartKubelet = {
  id: 'restart-kubelet',
  title: 'Restart kubelet and wait for the node to be Ready',
  why: 'kubelet reconnects to the runtime and reports the node Ready again (the seed misspelt it "kubulet").',
  skipIf: NO_KUBELET_UNIT,
  action: { kind: 'ssh', script: '{{sudo}}systemctl restart kubelet', timeoutMs: 90_000 },
  verify: { kind: 'kube', check: 'node-ready', withinMs: 120_000 },
  retrySafe: true,
};

const deleteCrashloopPods = {
  id: 'delete-crashloop-pods',
  title: 'Delete the crash-looping pods on this node so their controllers recreate them',
  why: 'Pods that crash-looped while the runtime was broken stay in back-off; fresh pods start at once. Pods without a controller are left alone (nothing would recreate them).',
  action: { kind: 'kube', op: 'delete-crashloop-pods' },
  verify: { kind: 'kube', check: 'pods-recreated', withinMs: 120_000 },
  retrySafe: true,
};

function backupStep(id: string, path: string) {
  return {
    id,
    title: `Back up ${path} to a new timestamped file`,
    why: 'A way back. The backup name carries the run time and the step refuses to overwrite an existing file.',
    skipIf: { script: `[ ! -e ${path} ]` },
    requires: {
      script: `[ ! -e ${path}.bak-{{stamp}} ]`,
      refusal: `a backup named ${path}.bak-{{stamp}} already exists; refusing to overwrite it`,
    },
    action: { kind: 'ssh', script: `{{sudo}}cp -p ${path} ${path}.bak-{{stamp}}`, timeoutMs: 15_000 },
    verify: { kind: 'ssh', script: `{{sudo}}cmp ${path} ${path}.bak-{{stamp}}` },
    retrySafe: true,
  };
}

const SYSTEMD_CGROUP_TRUE = `{{sudo}}containerd config dump 2>&1 | grep -E '^[[:space:]]*SystemdCgroup = true'; true`;

export const runbookCatalogData: unknown = [
  {
    id: 'containerd-socket-directory',
    title: 'Replace the directory at the containerd socket path with a live socket',
    finding: 'containerd-socket-is-directory',
    impact:
      'Stops containerd for a few seconds (running containers keep running in their shims), restarts kubelet, and deletes the crash-looping pods on this node so their controllers recreate them. Config files are not touched.',
    steps: [
      stopContainerd,
      {
        id: 'remove-socket-directory',
        title: 'Remove the directory at the socket path (only while it is an empty directory)',
        why: 'The seed used `rm -rf`; `rmdir` removes only an empty directory, and the step refuses if the directory holds files.',
        skipIf: { script: '[ ! -d {{socket}} ]' },
        requires: {
          script: '[ -d {{socket}} ] && [ -z "$(ls -A {{socket}})" ]',
          refusal: 'the socket path is a directory that holds files; refusing to delete it — inspect it by hand',
        },
        action: { kind: 'ssh', script: '{{sudo}}rmdir {{socket}}', timeoutMs: 10_000 },
        verify: { kind: 'ssh', script: '[ ! -d {{socket}} ]' },
        retrySafe: true,
      },
      startContainerd,
      restartKubelet,
      deleteCrashloopPods,
    ],
    source: 'seed 000 §6.1–6.2; rm -rf replaced by rmdir, kubulet corrected, socket and runtime verified',
  },
  {
    id: 'containerd-restart-hung',
    title: 'Restart the hung containerd (config untouched)',
    finding: 'containerd-hung',
    impact:
      'Kills the hung containerd main process and starts a new one; containers keep running in their shims. Config files are not touched (seed case B).',
    steps: [
      {
        id: 'kill-hung-containerd',
        title: 'Kill the hung containerd main process (SIGKILL, main process only)',
        why: 'A hung daemon does not act on SIGTERM, so `systemctl restart` would wait TimeoutStopSec (90 s by default) first. Only the main process is killed: shims and containers survive.',
        skipIf: { script: 'systemctl is-active containerd; true', stdout: '^(inactive|failed)$' },
        action: { kind: 'ssh', script: '{{sudo}}systemctl kill --kill-who=main --signal=SIGKILL containerd', timeoutMs: 15_000 },
        retrySafe: true,
      },
      restartContainerd,
    ],
    source: 'seed 000 case B (restart only, do not touch config)',
  },
  {
    id: 'containerd-config-reset',
    title: 'Reset containerd config.toml to the default with SystemdCgroup = true',
    finding: 'containerd-config-invalid',
    impact:
      'Stops containerd, keeps the broken config as a timestamped backup, writes `containerd config default` with SystemdCgroup = true and starts containerd. Anything the old file configured beyond the defaults (registry mirrors, extra runtimes such as nvidia) is dropped and must be re-added: see the preview.',
    appliesWhen: { not: { check: 'kubelet-config', line: '^\\s*cgroupDriver:\\s*"?cgroupfs' } },
    preview: {
      title: 'What the reset drops from the current config.toml',
      script:
        `{{sudo}}cat /etc/containerd/config.toml 2>&1 | grep -nE '^[[:space:]]*\\[.*(runtimes\\.|registry|mirrors)|config_path|endpoint|BinaryName|^[[:space:]]*imports' | head -n 40; true`,
    },
    steps: [
      stopContainerd,
      backupStep('backup-config', '/etc/containerd/config.toml'),
      {
        id: 'write-default-config',
        title: 'Write the default config with SystemdCgroup = true',
        why: 'The seed\'s sed replaced `systemdCgroup`, a key that does not exist, so it changed nothing; the real key is `SystemdCgroup`, and the effective value is checked with `containerd config dump`.',
        action: {
          kind: 'ssh',
          script: `containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' | {{sudo}}tee /etc/containerd/config.toml >/dev/null`,
          timeoutMs: 15_000,
        },
        verify: { kind: 'ssh', script: SYSTEMD_CGROUP_TRUE, stdout: 'SystemdCgroup = true' },
        retrySafe: true,
      },
      startContainerd,
    ],
    source: 'seed 000 §4.1 and case C; mv→cp with a timestamped backup, systemdCgroup→SystemdCgroup, verified in the effective config',
  },
  {
    id: 'containerd-kill-leftover-shims',
    title: 'Kill exactly the left-over shim processes systemd named, then start containerd',
    finding: 'containerd-leftover-shims',
    impact:
      'Kills only the listed PIDs, each checked just before to still be a containerd-shim in containerd\'s cgroup; the containers those shims ran stop and kubelet recreates them. Never `pkill -f containerd`.',
    params: { pid: { from: 'pid', pattern: '^[1-9][0-9]{0,9}$', min: 1, max: 64 } },
    steps: [
      {
        id: 'kill-shim',
        title: 'Kill left-over shim {{pid}}',
        why: 'The seed\'s `pkill -9 -f containerd` kills every container on the node; only the named shims are killed, after checking each one.',
        forEach: 'pid',
        skipIf: { script: '[ ! -d /proc/{{pid}} ]' },
        requires: {
          script: `c=$(cat /proc/{{pid}}/comm 2>/dev/null); case "$c" in containerd-shim*) grep -q 'containerd.service' /proc/{{pid}}/cgroup ;; *) false ;; esac`,
          refusal: 'PID {{pid}} is no longer a containerd-shim in containerd\'s cgroup; refusing to kill it',
        },
        action: { kind: 'ssh', script: '{{sudo}}kill -KILL {{pid}}', timeoutMs: 10_000 },
        verify: {
          kind: 'ssh',
          script: `[ ! -d /proc/{{pid}} ] || [ "$(awk '{ print $3 }' /proc/{{pid}}/stat 2>/dev/null)" = Z ]`,
          withinMs: 10_000,
        },
        retrySafe: true,
      },
      {
        id: 'reset-failed',
        title: 'Clear the failed state of the containerd unit',
        why: 'After a restart storm systemd refuses new starts ("start of the service was attempted too often") until the unit is reset.',
        action: { kind: 'ssh', script: '{{sudo}}systemctl reset-failed containerd', timeoutMs: 10_000 },
        retrySafe: true,
      },
      {
        ...startContainerd,
        skipIf: { script: 'systemctl is-active containerd; true', stdout: '^active$' },
      },
    ],
    source: 'seed 000 §8; pkill -9 -f containerd replaced by a checked kill of each named PID; reset-failed found needed in the lab',
  },
  {
    id: 'containerd-restart',
    title: 'Restart containerd',
    finding: 'containerd-down',
    impact: 'Starts containerd again; containers that survived in their shims are picked up.',
    steps: [
      {
        id: 'reset-failed',
        title: 'Clear the failed state of the containerd unit',
        why: 'After too many quick restarts systemd refuses new starts ("start request repeated too quickly") until reset.',
        action: { kind: 'ssh', script: '{{sudo}}systemctl reset-failed containerd', timeoutMs: 10_000 },
        retrySafe: true,
      },
      restartContainerd,
    ],
    source: 'seed 000 §3.3',
  },
  {
    id: 'cgroup-driver-systemd',
    title: 'Use the systemd cgroup driver in both kubelet and containerd',
    finding: 'cgroup-driver-mismatch',
    impact:
      'Edits /etc/containerd/config.toml (SystemdCgroup = true) and /var/lib/kubelet/config.yaml (cgroupDriver: systemd), each backed up first, then restarts containerd and kubelet. Cordon the node first if it runs workloads.',
    suggestCordon: true,
    steps: [
      backupStep('backup-containerd-config', '/etc/containerd/config.toml'),
      {
        id: 'set-systemd-cgroup',
        title: 'Set SystemdCgroup = true in containerd',
        why: 'containerd 2.x silently ignores a misplaced key, so the effective value is checked, not the file.',
        skipIf: { script: SYSTEMD_CGROUP_TRUE, stdout: 'SystemdCgroup = true' },
        action: {
          kind: 'ssh',
          script: [
            `if [ ! -e /etc/containerd/config.toml ]; then containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' | {{sudo}}tee /etc/containerd/config.toml >/dev/null`,
            `elif {{sudo}}cat /etc/containerd/config.toml | grep -q 'SystemdCgroup = false'; then {{sudo}}sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml`,
            `else echo 'config.toml has no "SystemdCgroup = false" to change: add SystemdCgroup = true under the runc options by hand' >&2; exit 1; fi`,
          ].join('\n'),
          timeoutMs: 15_000,
        },
        verify: { kind: 'ssh', script: SYSTEMD_CGROUP_TRUE, stdout: 'SystemdCgroup = true' },
        retrySafe: true,
      },
      backupStep('backup-kubelet-config', '/var/lib/kubelet/config.yaml'),
      {
        id: 'set-kubelet-cgroup-driver',
        title: 'Set cgroupDriver: systemd in the kubelet config',
        why: 'Both sides must agree; systemd is the driver kubeadm and the seed recommend.',
        skipIf: { script: `{{sudo}}cat /var/lib/kubelet/config.yaml | grep -E '^cgroupDriver:'; true`, stdout: '^cgroupDriver: *"?systemd"?$' },
        action: {
          kind: 'ssh',
          script: [
            `if {{sudo}}cat /var/lib/kubelet/config.yaml | grep -q '^cgroupDriver:'; then {{sudo}}sed -i 's/^cgroupDriver:.*/cgroupDriver: systemd/' /var/lib/kubelet/config.yaml`,
            `else echo 'cgroupDriver: systemd' | {{sudo}}tee -a /var/lib/kubelet/config.yaml >/dev/null; fi`,
          ].join('\n'),
          timeoutMs: 15_000,
        },
        verify: { kind: 'ssh', script: `{{sudo}}cat /var/lib/kubelet/config.yaml | grep -E '^cgroupDriver:'; true`, stdout: '^cgroupDriver: systemd$' },
        retrySafe: true,
      },
      {
        id: 'daemon-reload',
        title: 'Reload systemd units',
        why: 'Picks up any drop-in that sets the kubelet cgroup driver by flag.',
        action: { kind: 'ssh', script: '{{sudo}}systemctl daemon-reload', timeoutMs: 30_000 },
        retrySafe: true,
      },
      restartContainerd,
      restartKubelet,
    ],
    source: 'seed 002 §4.3 and §7',
  },
  {
    id: 'containerd-restart-pleg',
    title: 'Restart containerd after checking the disk (PLEG)',
    finding: 'pleg-unhealthy',
    impact: 'Restarts containerd (containers keep running in their shims) and waits for the node to be Ready.',
    steps: [
      {
        ...restartContainerd,
        requires: {
          script: `df -P /var/lib/containerd 2>/dev/null | awk 'NR == 2 { sub(/%/, "", $5); exit ($5 >= 95) }'`,
          refusal: 'the runtime disk is 95% full or more: free space first (disk-pressure), a restart will not help',
        },
        verify: { kind: 'kube', check: 'node-ready', withinMs: 180_000 },
      },
    ],
    source: 'seed 002 §4.4 and §11.3',
  },
  {
    id: 'bridge-netfilter',
    title: 'Load br_netfilter and enable the bridge and forwarding sysctls, persistently',
    finding: 'cni-not-ready',
    impact:
      'Loads br_netfilter, sets net.bridge.bridge-nf-call-iptables=1 and net.ipv4.ip_forward=1 now and in /etc/modules-load.d and /etc/sysctl.d. Does not install a CNI config (that is the network add-on\'s job).',
    appliesWhen: {
      anyOf: [
        { check: 'bridge-netfilter', line: '^br_netfilter=missing' },
        { check: 'bridge-netfilter', line: '^net\\.bridge\\.bridge-nf-call-iptables=0$' },
        { check: 'bridge-netfilter', line: '^net\\.ipv4\\.ip_forward=0$' },
      ],
    },
    steps: [
      {
        id: 'load-br-netfilter',
        title: 'Load the br_netfilter module',
        why: 'Without it bridged pod traffic bypasses iptables and Services break.',
        skipIf: { script: '[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]' },
        action: { kind: 'ssh', script: '{{sudo}}modprobe br_netfilter', timeoutMs: 15_000 },
        verify: { kind: 'ssh', script: '[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]' },
        retrySafe: true,
      },
      {
        id: 'persist-br-netfilter',
        title: 'Load br_netfilter at boot (/etc/modules-load.d)',
        why: 'A fix that a reboot undoes is not a fix.',
        skipIf: { script: `grep -rqsx 'br_netfilter' /etc/modules-load.d /etc/modules` },
        action: { kind: 'ssh', script: `echo br_netfilter | {{sudo}}tee /etc/modules-load.d/nodediag-br_netfilter.conf >/dev/null`, timeoutMs: 10_000 },
        verify: { kind: 'ssh', script: `grep -rqsx 'br_netfilter' /etc/modules-load.d` },
        retrySafe: true,
      },
      {
        id: 'set-sysctls',
        title: 'Set net.bridge.bridge-nf-call-iptables=1 and net.ipv4.ip_forward=1',
        why: 'Kubernetes networking needs both (kubeadm checks them in preflight).',
        action: { kind: 'ssh', script: '{{sudo}}sysctl -w net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1', timeoutMs: 10_000 },
        verify: {
          kind: 'ssh',
          script: 'echo "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables) $(cat /proc/sys/net/ipv4/ip_forward)"',
          stdout: '^1 1$',
        },
        retrySafe: true,
      },
      {
        id: 'persist-sysctls',
        title: 'Persist the sysctls (/etc/sysctl.d/99-nodediag-k8s.conf)',
        why: 'A fix that a reboot undoes is not a fix.',
        action: {
          kind: 'ssh',
          script: `printf 'net.bridge.bridge-nf-call-iptables = 1\\nnet.ipv4.ip_forward = 1\\n' | {{sudo}}tee /etc/sysctl.d/99-nodediag-k8s.conf >/dev/null`,
          timeoutMs: 10_000,
        },
        verify: { kind: 'ssh', script: 'grep -c ' + `'= 1$'` + ' /etc/sysctl.d/99-nodediag-k8s.conf', stdout: '^2$' },
        retrySafe: true,
      },
      {
        id: 'wait-node-ready',
        title: 'Wait for the node to report Ready',
        why: 'kubelet notices the network at its next status update; until then the Node still says NetworkPluginNotReady.',
        verify: { kind: 'kube', check: 'node-ready', withinMs: 90_000 },
        retrySafe: true,
      },
    ],
    source: 'seed 002 §4.9 and §11.1',
  },
  {
    id: 'disk-cleanup',
    title: 'Free disk: vacuum the journal and remove unused images',
    finding: 'disk-pressure',
    impact:
      'Shrinks the systemd journal to 200 MB and removes container images no container uses (crictl rmi --prune, or the ctr equivalent). Images are pulled again when needed.',
    steps: [
      {
        id: 'vacuum-journal',
        title: 'Vacuum the systemd journal to 200 MB',
        why: 'Journals grow without bound on busy nodes (seed 002 §4.10: logs).',
        action: { kind: 'ssh', script: '{{sudo}}journalctl --vacuum-size=200M', timeoutMs: 120_000 },
        retrySafe: true,
      },
      {
        id: 'prune-images',
        title: 'Remove images that no container uses',
        why: 'Unused images are the usual bulk of /var/lib/containerd (seed 002 §11.3).',
        action: {
          kind: 'ssh',
          script: [
            `if command -v crictl >/dev/null 2>&1; then {{sudo}}crictl --runtime-endpoint unix://{{socket}} rmi --prune; exit $?; fi`,
            // Without crictl: an image can have several references (its name, the CRI's sha256 ID);
            // keep every reference whose target digest a container uses, remove the rest.
            `refs=$({{sudo}}ctr --address {{socket}} -n k8s.io images ls 2>/dev/null | awk 'NR > 1 { print $1, $3 }')`,
            `used=$({{sudo}}ctr --address {{socket}} -n k8s.io containers ls 2>/dev/null | awk 'NR > 1 { print $2 }' | sort -u)`,
            `keep=$(printf '%s\\n' "$refs" | while read -r ref digest; do printf '%s\\n' "$used" | grep -qxF "$ref" && echo "$digest"; done | sort -u)`,
            `printf '%s\\n' "$refs" | while read -r ref digest; do`,
            `  [ -n "$ref" ] || continue`,
            `  printf '%s\\n' "$keep" | grep -qxF "$digest" && continue`,
            `  echo "removing unused image $ref"; {{sudo}}ctr --address {{socket}} -n k8s.io images rm --sync "$ref" >/dev/null || exit 1`,
            `done`,
          ].join('\n'),
          timeoutMs: 300_000,
        },
        verify: {
          kind: 'ssh',
          script: `for p in /var/lib/containerd /var/lib/kubelet /var/log /; do [ -e "$p" ] && df -P "$p" && df -Pi "$p"; done | awk '$5 ~ /%$/ { sub(/%/, "", $5); if ($5 + 0 >= 90) { print "still " $5 "% on " $6; bad = 1 } } END { if (!bad) print "disk-ok" }'`,
          stdout: '^disk-ok$',
        },
        retrySafe: true,
      },
    ],
    source: 'seed 002 §4.10 and §11.3',
  },
  {
    id: 'enable-ntp',
    title: 'Enable NTP time synchronisation',
    finding: 'clock-skew',
    impact: 'Turns on systemd-timesyncd (timedatectl set-ntp true) and waits for the clock to synchronise.',
    appliesWhen: { check: 'time-sync', line: '^NTP=no$' },
    steps: [
      {
        id: 'set-ntp',
        title: 'Enable NTP (timedatectl set-ntp true)',
        why: 'A clock that is not synchronised drifts again after any manual correction.',
        action: { kind: 'ssh', script: '{{sudo}}timedatectl set-ntp true', timeoutMs: 30_000 },
        verify: { kind: 'ssh', script: 'timedatectl show -p NTPSynchronized --value; true', stdout: '^yes$', withinMs: 120_000 },
        retrySafe: true,
      },
    ],
    source: 'seed 002 §4.6 and §4.12',
  },
  {
    id: 'disable-swap',
    title: 'Turn swap off now and at boot',
    finding: 'swap-enabled',
    impact: 'Runs swapoff -a (memory pressure rises if swap was in use), comments the swap entries in /etc/fstab after a timestamped backup, restarts kubelet.',
    steps: [
      {
        id: 'swapoff',
        title: 'Turn all swap off (swapoff -a)',
        why: 'kubelet refuses to run with swap on (failSwapOn).',
        action: { kind: 'ssh', script: '{{sudo}}swapoff -a', timeoutMs: 300_000 },
        verify: { kind: 'ssh', script: `awk 'NR > 1' /proc/swaps | wc -l`, stdout: '^0$' },
        retrySafe: true,
      },
      {
        ...backupStep('backup-fstab', '/etc/fstab'),
        skipIf: { script: `grep -Eq '^[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab`, exitCode: 1 },
      },
      {
        id: 'comment-fstab-swap',
        title: 'Comment out the swap entries in /etc/fstab',
        why: 'Otherwise swap comes back at the next boot.',
        skipIf: { script: `grep -Eq '^[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab`, exitCode: 1 },
        action: {
          kind: 'ssh',
          script: `{{sudo}}sed -i -E 's|^([^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$|#\\1|' /etc/fstab`,
          timeoutMs: 10_000,
        },
        verify: { kind: 'ssh', script: `grep -Eq '^[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab`, exitCode: 1 },
        retrySafe: true,
      },
      { ...restartKubelet, verify: { kind: 'ssh', script: 'systemctl is-active kubelet; true', stdout: '^active$', withinMs: 30_000 } },
    ],
    source: 'seed 002 §4.13; the fstab edit keeps a timestamped backup',
  },
];
