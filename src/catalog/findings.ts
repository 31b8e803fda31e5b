/**
 * The finding catalog: every named finding, how it is recognised from the
 * observations, what it means and what fixes it. Data only; validated by
 * `loadCatalogs()`. The ids are public API.
 *
 * Observation lines a rule can match are those the probes print (see
 * probes.ts) and, for the Kubernetes checks, the lines `render-kube.ts`
 * writes:
 *   node <name> / condition <Type>=<Status> reason=… message="…" / taint … / address <Type>=<addr>
 *   pod <ns>/<name> phase=… owner=<Kind>/<name>
 *   container <ns>/<pod>/<container> ready=… restarts=N state=… reason=… last=terminated:<Reason> exit=N
 *   hostPath <ns>/<pod> volume=<v> path=<p> type=<type|<unset>> owner=<Kind>/<name>
 *   event <Type> <Reason> <Kind>/<ns>/<name>: <message> (xN, last <time>)
 * Named regex groups become finding parameters (e.g. the shim PIDs a runbook kills).
 */

/** containerd's findings do not apply on a CRI-O node (its socket does not speak containerd's API). */
const NOT_CRIO = { not: { check: 'node-layout', line: '^flavour=cri-o$' } };

/** What kubelet and crictl say when the socket answers but serves no CRI (the plugin is off). */
const CRI_UNIMPLEMENTED = 'unknown service runtime\\.v1(?:alpha2)?\\.RuntimeService';

const RUNTIME_ROOT_CAUSES = [
  'containerd-socket-is-directory',
  'containerd-hung',
  'containerd-config-invalid',
  'containerd-cri-disabled',
  'containerd-leftover-shims',
  'containerd-down',
];

export const findingCatalogData: unknown = [
  // ── seed 000: the runtime socket and containerd itself ─────────────────
  {
    id: 'containerd-socket-is-directory',
    title: 'The containerd socket path is a directory',
    severity: 'critical',
    role: 'root-cause',
    summary:
      'The CRI socket path is a directory, so containerd cannot create its listener and exits on every start; kubelet and every pod on the node lose the runtime.',
    when: {
      anyOf: [
        { check: 'runtime-socket', line: '^type=directory ' },
        {
          allOf: [
            // 1.x: "…main endpoint: is a directory"; 2.x: "…main endpoint: failed to create unix socket on <path>: is a directory".
            { check: 'containerd-journal', line: 'failed to get listener for main endpoint: (?:.*: )?is a directory' },
            { not: { check: 'runtime-socket', line: '^type=socket ' } },
          ],
        },
      ],
    },
    supporting: [
      { check: 'runtime-socket', line: '^d[rwx-]{9}' },
      { check: 'containerd-journal', line: 'failed to get listener for main endpoint|Main process exited|Failed with result' },
      { check: 'containerd-service', line: '^ActiveState=(failed|activating|inactive)$' },
    ],
    runbook: 'containerd-socket-is-directory',
    advice: [
      'Find what created the directory: a pod mounting the socket path by hostPath without `type: Socket` (see runtime-socket-hostpath-unsafe).',
      'Manual check: `ls -ld /run/containerd/containerd.sock` (a leading "d" is the fault) and `journalctl -xeu containerd`.',
    ],
    source: 'seed 000 §5–6 (is a directory)',
  },
  {
    id: 'containerd-hung',
    title: 'containerd is running but does not answer on its socket',
    severity: 'critical',
    role: 'root-cause',
    summary:
      'The containerd process is active but its socket gives no answer within the probe timeout: the daemon is hung, so kubelet cannot create, stop or list containers.',
    when: {
      allOf: [
        NOT_CRIO,
        { check: 'containerd-service', line: '^ActiveState=active$' },
        {
          anyOf: [
            { check: 'runtime-ping', status: ['timeout'] },
            // 1.x: "failed to dial … context deadline exceeded"; 2.x: "error reading server preface: … use of closed network connection".
            { check: 'runtime-ping', line: 'context deadline exceeded|DeadlineExceeded|error reading server preface' },
          ],
        },
      ],
    },
    supporting: [
      { check: 'containerd-journal', line: 'context deadline exceeded|DeadlineExceeded|ttrpc.*(?:timeout|timed out|closed)|level=(?:error|warning).*timed? ?out' },
      { check: 'runtime-socket', line: '^type=socket ' },
    ],
    suppressedBy: ['containerd-socket-is-directory'],
    runbook: 'containerd-hung',
    advice: [
      'Restart containerd only; do not touch its config (seed case B).',
      'If the restart fails, diagnose again: the seed incident went hang → restart fails → socket is a directory.',
    ],
    source: 'seed 000 §3.2 and case B (timeout)',
  },
  {
    id: 'containerd-config-invalid',
    title: 'containerd config.toml does not parse',
    severity: 'critical',
    role: 'root-cause',
    summary:
      'containerd cannot load its config file, so it exits at start and the node has no runtime.',
    when: {
      anyOf: [
        { check: 'containerd-config', line: '^config-dump-exit=[1-9]' },
        {
          allOf: [
            { check: 'containerd-journal', line: 'failed to load TOML|toml: |invalid character|parse error' },
            { not: { check: 'containerd-config', line: '^config-dump-exit=0$' } },
          ],
        },
      ],
    },
    supporting: [
      { check: 'containerd-config', line: 'TOML|toml|invalid|parse|error' },
      { check: 'containerd-journal', line: 'failed to load TOML|toml: |invalid character|parse error' },
    ],
    runbook: 'containerd-config-invalid',
    advice: [
      'The repair keeps what the node had: the last config that loaded on this node, else the newest backup that loads, else the file with only the sections containerd rejects removed. The approval shows the diff; never reset a GPU node to `containerd config default` (the nvidia runtime is lost).',
      'If the error names another file (a drop-in config.toml imports, such as conf.d/99-nvidia.toml), fix that file: the repair edits only config.toml and refuses then.',
    ],
    source: 'seed 000 §4 and case C (parse error)',
  },
  {
    id: 'containerd-cri-disabled',
    title: "containerd runs with its CRI plugin disabled: kubelet cannot use it",
    severity: 'critical',
    role: 'root-cause',
    summary:
      "containerd's config disables the CRI plugin (the config.toml of Docker's containerd.io package says disabled_plugins = [\"cri\"]), so containerd runs but does not serve the Kubernetes runtime API: kubelet exits with \"unknown service runtime.v1.RuntimeService\" and the node is NotReady. Running containers are not affected.",
    when: {
      allOf: [
        NOT_CRIO,
        {
          anyOf: [
            { check: 'containerd-config', line: '^cri-plugin=disabled$' },
            { check: 'runtime-ping', line: CRI_UNIMPLEMENTED },
            { check: 'kubelet-journal', line: CRI_UNIMPLEMENTED, maxAgeSeconds: 300 },
          ],
        },
      ],
    },
    supporting: [{ check: 'containerd-config', line: '^config-dump-exit=0 path=|^disabled-plugins=' }],
    runbook: null,
    advice: [
      'Remove "cri" (or "io.containerd.grpc.v1.cri") from disabled_plugins at the top of containerd\'s config file (its path is in the evidence), keeping everything else (runtimes, registries), then `systemctl restart containerd` (its containers keep running) and `systemctl restart kubelet`.',
      'Do not replace the file with `containerd config default`: a GPU node would lose its nvidia runtime and a private registry its credentials.',
      'If a package upgrade brought that file (Docker\'s containerd.io), its previous version is usually next to it as config.toml.dpkg-old or config.toml.rpmsave.',
    ],
    source: 'containerd issues #3101 and #4581, kubernetes/minikube #3471: the containerd.io package disables cri; kubelet 1.26+ fails "validate service connection … unknown service runtime.v1.RuntimeService"',
  },
  {
    id: 'containerd-leftover-shims',
    title: 'Orphaned containerd shims: containers running that containerd no longer manages',
    severity: 'high',
    role: 'root-cause',
    summary:
      'A shim is alive but the containerd it belongs to does not know its task (or its bundle is gone): its container runs unmanaged — kubelet cannot stop it, and its CPU, memory and GPUs stay taken.',
    when: {
      anyOf: [
        // The task listing answered and does not have it; shims younger than 20 s may still be starting.
        { check: 'containerd-shims', line: '^shim (?<shim>\\d+@\\d+) ns=\\S+ id=\\S+ age=(?<age>\\d+) bundle=\\S+ task=unknown ', capture: { group: 'age', gte: 20 } },
        { check: 'containerd-shims', line: '^shim (?<shim>\\d+@\\d+) ns=\\S+ id=\\S+ age=(?<age>\\d+) bundle=deleted ', capture: { group: 'age', gte: 20 } },
      ],
    },
    supporting: [{ check: 'containerd-service', line: '^ActiveState=' }],
    suppressedBy: ['containerd-socket-is-directory', 'containerd-config-invalid', 'containerd-hung'],
    runbook: 'containerd-leftover-shims',
    advice: [
      '"Found left-over process N (containerd-shim) in control group while starting unit. Ignoring." is routine with KillMode=process: every live shim is named on every start. It is not this finding.',
      'Never `pkill -9 -f containerd`: it kills every container on the node. Only orphaned shims ({{shim}}) are killed, each checked by PID and start time.',
    ],
    source: 'seed 000 §8 (left-over processes), corrected: a shim is left over only when containerd, once up, does not know its task',
  },
  {
    id: 'orphan-holds-gpu',
    title: 'An orphaned container holds NVIDIA GPU devices',
    severity: 'high',
    role: 'symptom',
    summary: 'A container no longer managed by containerd keeps /dev/nvidia* open: its GPU memory is taken, and new GPU pods fail or share the GPU without knowing.',
    when: {
      anyOf: [
        { check: 'containerd-shims', line: '^shim (?<shim>\\d+@\\d+) ns=\\S+ id=\\S+ age=(?<age>\\d+) bundle=\\S+ task=unknown gpu=yes ', capture: { group: 'age', gte: 20 } },
        { check: 'containerd-shims', line: '^shim (?<shim>\\d+@\\d+) ns=\\S+ id=\\S+ age=(?<age>\\d+) bundle=deleted task=\\S+ gpu=yes ', capture: { group: 'age', gte: 20 } },
      ],
    },
    causedBy: ['containerd-leftover-shims'],
    runbook: null,
    advice: ['Killing the orphaned shim ({{shim}}) ends its container and frees the GPU; check with `nvidia-smi` afterwards.'],
    source: 'issue 11 (orphaned containers holding GPU memory on GPU nodes)',
  },
  {
    id: 'containerd-down',
    title: 'containerd is not running, or not serving its socket',
    severity: 'critical',
    role: 'root-cause',
    summary:
      'The containerd service is stopped, failed or restarting (a restart storm leaves it start-limited), or its socket refuses connections or is gone (deleted while containerd runs: nothing can connect until it restarts). Containers that were running keep running in their shims until it is back.',
    when: {
      allOf: [
        NOT_CRIO,
        { check: 'containerd-service', line: '^LoadState=loaded$' },
        {
          anyOf: [
            { check: 'containerd-service', line: '^ActiveState=(failed|inactive)$' },
            { check: 'containerd-service', line: '^SubState=auto-restart$' },
            { check: 'runtime-ping', line: 'connection refused|no such file or directory|^no socket at ' },
          ],
        },
      ],
    },
    supporting: [
      { check: 'containerd-service', line: '^(SubState|Result|NRestarts|ExecMainStatus)=' },
      { check: 'containerd-journal', line: 'Main process exited|Failed with result|level=(error|fatal)' },
    ],
    suppressedBy: ['containerd-socket-is-directory', 'containerd-config-invalid', 'containerd-hung'],
    runbook: 'containerd-down',
    advice: [
      'A start-limited unit (Result=start-limit-hit) needs `systemctl reset-failed containerd` before it starts again.',
      '"Found left-over process … Ignoring." lines are routine (KillMode=process keeps shims and containers running): do not kill them.',
      'If the start fails, diagnose again and read `journalctl -xeu containerd` for the reason.',
    ],
    source: 'seed 000 §3.3 and §8',
  },
  {
    id: 'runtime-socket-hostpath-unsafe',
    title: 'A pod mounts the runtime socket by hostPath without type: Socket',
    severity: 'warning',
    role: 'contributing',
    summary:
      'When the socket is briefly missing (containerd restarting), this mount makes the runtime create an empty directory at the socket path, which then blocks containerd from starting.',
    when: {
      check: 'k8s-pods',
      line: '^hostPath (?<pod>\\S+) volume=\\S+ path=\\S+ type=(?:<unset>|DirectoryOrCreate)(?: owner=(?<owner>\\S+))?',
    },
    contributesTo: ['containerd-socket-is-directory'],
    runbook: null,
    advice: [
      'Set `type: Socket` on the socket hostPath volume of {{owner}} (its pods: {{pod}}); then a missing socket fails the pod instead of creating a directory.',
    ],
    source: 'seed 000 §5.2 (mechanism)',
  },
  {
    id: 'pod-crashloop',
    title: 'Pods on the node are in CrashLoopBackOff',
    severity: 'high',
    role: 'symptom',
    summary: 'Containers on this node keep crashing and Kubernetes backs off restarting them.',
    when: {
      check: 'k8s-pods',
      line: '^container (?<pod>[^/\\s]+/[^/\\s]+)/\\S+ .*\\breason=CrashLoopBackOff\\b.* pod-ref=(?<podRef>\\S+)$',
    },
    supporting: [{ check: 'k8s-events', line: 'Back-off restarting failed container' }],
    causedBy: [...RUNTIME_ROOT_CAUSES, 'cgroup-driver-mismatch', 'probe-kill-loop', 'oom-killed', 'gpu-device-plugin-failed'],
    // One pod's own crash (a bad entrypoint) is the app's business; pods of several workloads crashing point at the node.
    withoutCause: {
      check: 'k8s-pods',
      line: '^container (?<pod>[^/\\s]+/[^/\\s]+)/\\S+ .*\\breason=CrashLoopBackOff\\b',
      minDistinct: { group: 'pod', count: 2 },
    },
    runbook: null,
    advice: [
      "When a node-level root cause is listed, its fix deletes these pods once the runtime is healthy, so their controllers recreate them.",
      'Otherwise read the crash: `kubectl logs --previous -n <namespace> <pod>` for {{pod}}.',
    ],
    source: 'seed 000 §2.1',
  },

  // ── seed 002: kubelet and container-runtime error patterns ─────────────
  {
    id: 'image-pull-failed',
    title: 'Image pulls fail',
    severity: 'warning',
    role: 'root-cause',
    summary: 'Pods cannot start because their image cannot be pulled (wrong name or tag, registry auth, TLS or mirror config).',
    when: {
      anyOf: [
        { check: 'k8s-events', line: 'Failed to pull image|pull access denied|ErrImagePull|ImagePullBackOff', maxAgeSeconds: 900 },
        { check: 'k8s-pods', line: '^container (?<pod>[^/\\s]+/[^/\\s]+)/\\S+ .*\\breason=(?:ErrImagePull|ImagePullBackOff)\\b' },
        { check: 'kubelet-journal', line: 'Failed to pull image|pull access denied', maxAgeSeconds: 600 },
      ],
    },
    runbook: null,
    advice: [
      'Check the image name and tag, the imagePullSecret and its registry domain.',
      'On the node: `crictl pull <image>`; with mirrors or a proxy check `registry.mirrors` / `config_path` in /etc/containerd/config.toml.',
    ],
    source: 'seed 002 §4.1',
  },
  {
    id: 'shim-task-failed',
    title: 'containerd fails to create shim tasks',
    severity: 'high',
    role: 'root-cause',
    summary: 'containerd cannot create the shim or task for containers: shim trouble, overlayfs, cgroup settings or an exhausted disk.',
    when: {
      anyOf: [
        { check: 'containerd-journal', line: 'failed to create shim task|failed to create containerd task|failed to start shim' },
        { check: 'kubelet-journal', line: 'failed to create shim task|failed to create containerd task', maxAgeSeconds: 600 },
        { check: 'k8s-events', line: 'failed to create shim task|failed to create containerd task', maxAgeSeconds: 900 },
      ],
    },
    runbook: null,
    advice: [
      'Check disk and inodes (`df -h; df -hi`) and the ownership of /var/lib/containerd; see disk-pressure if it is listed.',
      'Check the overlay filesystem (`lsmod | grep overlay`; on XFS `xfs_info` must say ftype=1); restart containerd after draining the node if it persists.',
    ],
    source: 'seed 002 §4.2',
  },
  {
    id: 'cgroup-driver-mismatch',
    title: "kubelet's cgroup driver differs from containerd's",
    severity: 'high',
    role: 'root-cause',
    summary:
      'kubelet and containerd manage cgroups through different drivers (systemd vs cgroupfs); pods fail or are killed under resource pressure.',
    // The default runtime's effective SystemdCgroup (config dump: 2.x ignores misplaced keys) against kubelet's driver (config file or flag).
    when: {
      anyOf: [
        {
          allOf: [
            {
              anyOf: [
                { check: 'kubelet-config', line: '^\\s*cgroupDriver:\\s*"?systemd' },
                { check: 'node-layout', line: '^flag kubelet cmdline --cgroup-driver=systemd$' },
              ],
            },
            { check: 'containerd-config', line: '^effective-systemd-cgroup=false$' },
          ],
        },
        {
          allOf: [
            {
              anyOf: [
                { check: 'kubelet-config', line: '^\\s*cgroupDriver:\\s*"?cgroupfs' },
                { check: 'node-layout', line: '^flag kubelet cmdline --cgroup-driver=cgroupfs$' },
              ],
            },
            { check: 'containerd-config', line: '^effective-systemd-cgroup=true$' },
          ],
        },
      ],
    },
    supporting: [
      { check: 'containerd-config', line: '^default-runtime=|^runtime \\S+ SystemdCgroup=' },
      { check: 'kubelet-journal', line: 'cgroup driver|cgroupDriver|failed to set cgroup|cannot allocate resource' },
    ],
    runbook: 'cgroup-driver-mismatch',
    advice: [
      'Use systemd in both: `cgroupDriver: systemd` in the kubelet config its --config names, and `SystemdCgroup = true` under the options of containerd\'s default runtime (nvidia on a GPU node; read the effective value with `containerd config dump`). The fix drains the node first.',
    ],
    source: 'seed 002 §4.3 and §7',
  },
  {
    id: 'pleg-unhealthy',
    title: 'kubelet reports PLEG is not healthy',
    severity: 'high',
    role: 'root-cause',
    summary:
      "kubelet's pod lifecycle event generator cannot relist containers in time: the runtime is overloaded or its disk is slow; the node flaps NotReady.",
    when: {
      anyOf: [
        { check: 'k8s-node', line: 'PLEG is not healthy' },
        // kubelet's log is history; it stands in for the Node condition only when the API cannot be read.
        {
          allOf: [
            { check: 'kubelet-journal', line: 'PLEG is not healthy', maxAgeSeconds: 120, clearedBy: 'event="NodeReady"' },
            { check: 'k8s-node', status: ['skipped', 'failed', 'timeout'] },
          ],
        },
      ],
    },
    suppressedBy: ['containerd-hung', 'containerd-down', 'containerd-socket-is-directory'],
    runbook: 'pleg-unhealthy',
    advice: ['Check disk first (`df -h; df -hi`); reduce container churn and clean images if the disk is full.'],
    source: 'seed 002 §4.4 and §11.3',
  },
  {
    id: 'csi-mount-failed',
    title: 'Volume mounts fail (CSI)',
    severity: 'warning',
    role: 'root-cause',
    summary: 'Pods cannot mount their volumes: CSI driver, node permissions, filesystem or zone mismatch.',
    when: {
      anyOf: [
        { check: 'k8s-events', line: 'MountVolume\\.(?:MountDevice|SetUp|WaitForAttach) failed|FailedMount|FailedAttachVolume', maxAgeSeconds: 900 },
        { check: 'kubelet-journal', line: 'MountVolume\\.(?:MountDevice|SetUp|WaitForAttach) failed', maxAgeSeconds: 600 },
      ],
    },
    runbook: null,
    advice: [
      '`kubectl -n kube-system get pods | grep csi` and the csi-node pod logs (node-driver-registrar).',
      'Check CSI version compatibility, node IAM, and that the volume and node are in the same zone.',
    ],
    source: 'seed 002 §4.5',
  },
  {
    id: 'kubelet-down',
    title: 'kubelet is not running',
    severity: 'critical',
    role: 'root-cause',
    summary:
      'The kubelet service is stopped, failed or restarting: the node stops reporting to the API server (NotReady after about 40 s), no pod is started, stopped or probed on it, and its pods are evicted after the grace period. Running containers keep running meanwhile.',
    when: {
      allOf: [
        { check: 'kubelet-service', line: '^LoadState=loaded$' },
        {
          anyOf: [
            { check: 'kubelet-service', line: '^ActiveState=(failed|inactive)$' },
            { check: 'kubelet-service', line: '^SubState=auto-restart$' },
          ],
        },
      ],
    },
    supporting: [
      { check: 'kubelet-service', line: '^(SubState|Result|NRestarts|ExecMainStatus)=' },
      { check: 'kubelet-journal', line: 'failed to run Kubelet|command failed|Failed with result|Stopped kubelet|Main process exited' },
      // A cordoned node with kubelet stopped is likely in maintenance: the approver should see it.
      { check: 'k8s-node', line: '^node \\S+ unschedulable=true$' },
    ],
    // Each of these makes kubelet exit or refuse to start: it is the cause to fix, kubelet's state only its effect.
    suppressedBy: [...RUNTIME_ROOT_CAUSES, 'swap-enabled', 'cgroup-driver-mismatch', 'cert-expired'],
    runbook: 'kubelet-down',
    advice: [
      'If kubelet was stopped on purpose (node maintenance; a cordoned node is quoted as unschedulable=true), leave it: starting it makes the node take pods again.',
      'If it keeps failing after a start, `journalctl -u kubelet -n 50 --no-pager` names why (its config, its certificates, the runtime endpoint, swap).',
    ],
    source: 'kubelet.service stopped or failed under systemd (kubeadm nodes); produced for real by the lab fault kubelet-down',
  },
  {
    id: 'node-not-ready',
    title: 'The node is NotReady',
    severity: 'high',
    role: 'symptom',
    summary: 'Kubernetes considers the node not ready: nothing new is scheduled on it and its pods may be evicted.',
    when: {
      anyOf: [
        { check: 'k8s-node', line: '^condition Ready=(?:False|Unknown)\\b' },
        { check: 'kubelet-journal', line: 'Node not registered|failed to get node info|Unable to register node', maxAgeSeconds: 300, clearedBy: 'Successfully registered node' },
      ],
    },
    supporting: [{ check: 'kubelet-service', line: '^ActiveState=(?:failed|inactive|activating)$' }],
    causedBy: [
      ...RUNTIME_ROOT_CAUSES,
      'kubelet-down',
      'pleg-unhealthy',
      'cni-not-ready',
      'clock-skew',
      'cert-expired',
      'swap-enabled',
      'disk-pressure',
      'cgroup-driver-mismatch',
    ],
    runbook: null,
    advice: [
      'Look at the root causes listed with it. If none: kubelet ↔ API server TLS or network, a damaged kubelet.conf, or clock skew (`timedatectl status`).',
    ],
    source: 'seed 002 §4.6',
  },
  {
    id: 'probe-kill-loop',
    title: 'Liveness or startup probes keep killing containers',
    severity: 'warning',
    role: 'root-cause',
    summary: 'Probes fail and kubelet restarts the containers: probes too aggressive, or wrong path or port.',
    when: { check: 'k8s-events', line: '(?:Liveness|Startup) probe failed', maxAgeSeconds: 900 },
    supporting: [{ check: 'k8s-events', line: 'Back-off restarting failed container|failed liveness probe' }],
    runbook: null,
    advice: [
      'Raise initialDelaySeconds/timeoutSeconds or add a startupProbe; check the probe path and port with `kubectl port-forward`.',
    ],
    source: 'seed 002 §4.7',
  },
  {
    id: 'oom-killed',
    title: 'Containers are OOMKilled',
    severity: 'warning',
    role: 'root-cause',
    summary: 'Containers exceed their memory limit and are killed by the kernel.',
    // Current: killed now, crash-looping because of it, or killed within the hour. An old OOMKilled in a running container's last state is history.
    when: {
      anyOf: [
        { check: 'k8s-pods', line: '^container (?<pod>[^/\\s]+/[^/\\s]+)/\\S+ .*\\bstate=terminated reason=OOMKilled\\b' },
        { check: 'k8s-pods', line: '^container (?<pod>[^/\\s]+/[^/\\s]+)/\\S+ .*\\breason=CrashLoopBackOff\\b.* last=terminated:OOMKilled\\b' },
        { check: 'k8s-pods', line: '^container (?<pod>[^/\\s]+/[^/\\s]+)/\\S+ .* last=terminated:OOMKilled\\b', maxAgeSeconds: 3600 },
      ],
    },
    runbook: null,
    advice: ['Raise the memory limit or find the leak: `kubectl describe pod {{pod}} | grep -i OOM`, `kubectl top pod`.'],
    source: 'seed 002 §4.8',
  },
  {
    id: 'cni-not-ready',
    title: 'Pod networking is not ready (CNI)',
    severity: 'high',
    role: 'root-cause',
    summary:
      'The node cannot set up pod networks: no CNI config, br_netfilter missing, or bridge/forwarding sysctls off.',
    when: {
      anyOf: [
        { check: 'cni-config', line: '^cni-config-files=0\\b' },
        { check: 'bridge-netfilter', line: '^br_netfilter=missing' },
        { check: 'bridge-netfilter', line: '^net\\.bridge\\.bridge-nf-call-iptables=0$' },
        { check: 'bridge-netfilter', line: '^net\\.ipv4\\.ip_forward=0$' },
        { check: 'k8s-node', line: 'NetworkPluginNotReady|network plugin is not ready|cni plugin not initialized' },
      ],
    },
    supporting: [
      { check: 'containerd-journal', line: 'no network config found in /etc/cni/net\\.d|failed to load cni|cni plugin not initialized' },
      { check: 'kubelet-journal', line: 'NetworkPluginNotReady|cni plugin not initialized|network plugin is not ready' },
      { check: 'k8s-events', line: 'NetworkPlugin cni failed|failed to set up sandbox container .* network' },
    ],
    runbook: 'cni-not-ready',
    advice: [
      'A missing CNI config is fixed by (re)installing the cluster network add-on, not on the node: check its DaemonSet pods on this node.',
      'br_netfilter and the sysctls: `modprobe br_netfilter`, `sysctl -w net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1`, persisted in /etc/modules-load.d and /etc/sysctl.d.',
    ],
    source: 'seed 002 §4.9 and §11.1',
  },
  {
    id: 'disk-pressure',
    title: 'Disk or inodes nearly exhausted',
    severity: 'high',
    role: 'root-cause',
    summary:
      'A filesystem holding the runtime, kubelet or logs is at least 90% full (space or inodes): image pulls, container creation and logging fail.',
    when: {
      anyOf: [
        {
          check: 'disk-space',
          line: '^(?<path>\\S+): \\S+\\s+\\d+\\s+\\d+\\s+\\d+\\s+(?<use>\\d+)%\\s+\\S+$',
          capture: { group: 'use', gte: 90 },
        },
        {
          check: 'disk-inodes',
          line: '^(?<path>\\S+): \\S+\\s+\\d+\\s+\\d+\\s+\\d+\\s+(?<use>\\d+)%\\s+\\S+$',
          capture: { group: 'use', gte: 90 },
        },
        // kubelet keeps DiskPressure for its transition period (5 min by default) after space is freed:
        // with df at hand the condition counts only while usage is still high (its imagefs threshold is 85%).
        {
          allOf: [
            { check: 'k8s-node', line: '^condition DiskPressure=True\\b' },
            {
              anyOf: [
                { check: 'disk-space', status: ['skipped', 'failed', 'timeout'] },
                { check: 'disk-space', line: '^\\S+: \\S+\\s+\\d+\\s+\\d+\\s+\\d+\\s+(?<high>\\d+)%\\s+\\S+$', capture: { group: 'high', gte: 85 } },
                { check: 'disk-inodes', line: '^\\S+: \\S+\\s+\\d+\\s+\\d+\\s+\\d+\\s+(?<ihigh>\\d+)%\\s+\\S+$', capture: { group: 'ihigh', gte: 85 } },
              ],
            },
          ],
        },
      ],
    },
    supporting: [
      { check: 'k8s-node', line: '^condition DiskPressure=True\\b' },
      { check: 'containerd-journal', line: 'no space left on device' },
      { check: 'kubelet-journal', line: 'no space left on device|eviction manager|DiskPressure' },
    ],
    runbook: 'disk-pressure',
    advice: [
      'Find what grew: `du -xsh /var/lib/containerd /var/lib/kubelet /var/log`; `journalctl --disk-usage`.',
      'If cleanup is not enough: logrotate, a larger disk, or fewer images on the node.',
    ],
    source: 'seed 002 §4.10 and §11.3',
  },
  {
    id: 'security-policy-denied',
    title: 'AppArmor or SELinux denials',
    severity: 'warning',
    role: 'root-cause',
    summary: 'The kernel security policy denies container operations (permission denied / operation not permitted).',
    // Only denials of containers: host daemons' routine denials (cupsd, snapd, …) are not the node's runtime problem.
    when: {
      check: 'security-denials',
      line: 'apparmor="DENIED".*profile="(?:cri-containerd\\.apparmor\\.d|docker-default|containerd-default|k8s-[^"]*|crio-default)[^"]*"|avc: +denied .*scontext=\\S*:(?:container_t|spc_t|container_runtime_t|svirt_lxc_net_t)\\b',
    },
    runbook: null,
    advice: [
      'Give the pod the right profile or context; allow only the capability it needs. Policy changes have security impact: review them, do not disable enforcement.',
    ],
    source: 'seed 002 §4.11',
  },
  {
    id: 'clock-skew',
    title: "The node's clock is off",
    severity: 'high',
    role: 'root-cause',
    summary:
      "The node's clock differs from the bot's by 30 s or more: TLS checks, token expiry and registry pulls fail.",
    when: { check: 'time-sync', line: '^clock-skew-seconds=(?<skew>\\d+)', capture: { group: 'skew', gte: 30 } },
    supporting: [{ check: 'time-sync', line: '^NTPSynchronized=no$|^NTP=no$' }],
    runbook: 'clock-skew',
    advice: ['`timedatectl status`; enable NTP (`timedatectl set-ntp true`) and check the NTP servers are reachable.'],
    source: 'seed 002 §4.6 and §4.12',
  },
  {
    id: 'cert-expired',
    title: "kubelet's client certificate has expired",
    severity: 'critical',
    role: 'root-cause',
    summary: 'kubelet cannot authenticate to the API server with an expired client certificate; the node goes NotReady.',
    when: { check: 'kubelet-cert', line: '^Certificate will expire$' },
    supporting: [{ check: 'kubelet-cert', line: '^notAfter=' }],
    runbook: null,
    advice: [
      'Rotate it: on kubeadm clusters `kubeadm certs renew` on the control plane and re-join or re-bootstrap the kubelet; check the clock first (clock-skew).',
    ],
    source: 'seed 002 §4.12',
  },
  {
    id: 'swap-enabled',
    title: 'Swap is enabled',
    severity: 'high',
    role: 'root-cause',
    summary: 'Swap is on; kubelet refuses to run with swap unless explicitly configured for it (failSwapOn).',
    // kubelet configured for swap (failSwapOn: false) and zram (memory, not disk) are healthy; kubelet's own refusal always counts.
    when: {
      anyOf: [
        {
          allOf: [
            { check: 'swap', line: '^/(?!dev/zram)\\S+\\s+(?:partition|file)\\s' },
            { not: { check: 'kubelet-config', line: '^\\s*failSwapOn:\\s*false' } },
            { not: { check: 'node-layout', line: '^flag kubelet \\S+ --fail-swap-on=false$' } },
          ],
        },
        { check: 'kubelet-journal', line: 'running with swap on is not supported', maxAgeSeconds: 600 },
      ],
    },
    supporting: [
      { check: 'kubelet-journal', line: 'swap is enabled|running with swap on is not supported|failSwapOn' },
      { check: 'kubelet-config', line: 'failSwapOn' },
    ],
    runbook: 'swap-enabled',
    advice: ['`swapoff -a` and comment the swap entries in /etc/fstab (keep a backup), then restart kubelet.'],
    source: 'seed 002 §4.13',
  },
  {
    id: 'gpu-device-plugin-failed',
    title: 'The GPU device plugin is failing',
    severity: 'high',
    role: 'root-cause',
    summary: 'kubelet cannot allocate GPUs: the device plugin is unhealthy or crashing, so GPU pods fail admission.',
    when: {
      anyOf: [
        { check: 'k8s-events', line: 'UnexpectedAdmissionError|Allocate failed due to|Failed to allocate device|device plugin (?:is )?unhealthy', maxAgeSeconds: 900 },
        { check: 'kubelet-journal', line: 'Failed to allocate device|device plugin (?:is )?unhealthy|Allocate failed due to', maxAgeSeconds: 600 },
        {
          check: 'k8s-pods',
          line: '^container (?<pod>[^/\\s]+/[^/\\s]*device-plugin[^/\\s]*)/\\S+ .*\\breason=(?:CrashLoopBackOff|Error)\\b',
        },
      ],
    },
    runbook: null,
    advice: [
      'Restart the device-plugin pod ({{pod}}) and read its logs; check driver, CUDA and runtime versions match and /dev/nvidia* permissions.',
    ],
    source: 'seed 002 §4.14',
  },
  {
    id: 'pod-sandbox-changed',
    title: 'Pod sandboxes keep being recreated',
    severity: 'warning',
    role: 'symptom',
    summary: 'kubelet found pod sandboxes changed and kills and recreates them: sandbox damage, network setup failure or a runtime restart.',
    when: { check: 'k8s-events', line: '[Pp]od sandbox (?:has )?changed', maxAgeSeconds: 900 },
    causedBy: [...RUNTIME_ROOT_CAUSES, 'cni-not-ready'],
    runbook: null,
    advice: ['Stabilise the runtime first, then recreate the pods; drain → fix → uncordon if it keeps happening.'],
    source: 'seed 002 §4.15',
  },
];
