#!/usr/bin/env node
/**
 * kubelet STAND-IN for the nodediag lab (there is no kubelet package here).
 * Runs as the node's kubelet.service under real systemd. Every 2 s it checks
 * what a real kubelet depends on — the runtime answering on its socket (real
 * `ctr`), swap (exits like kubelet with failSwapOn), CNI config and the
 * bridge/forwarding sysctls, disk usage of /var/lib/containerd — logs in
 * kubelet's klog format to the journal, posts the node's conditions to the
 * Kubernetes API stand-in, and moves the node's pods between Running and
 * CrashLoopBackOff as the runtime comes and goes. It is NOT kubelet.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statfsSync, unlinkSync } from 'node:fs';

const NODE = process.env.NODE_NAME;
const API = process.env.API_URL;
const TOKEN = process.env.API_TOKEN;
/** Flags as kubelet takes them (kubeadm passes --config and --container-runtime-endpoint). */
function flag(name) {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return undefined;
}
const SOCK = (flag('container-runtime-endpoint') ?? process.env.RUNTIME_SOCKET ?? 'unix:///run/containerd/containerd.sock').replace(/^unix:\/\//, '');
const CONFIG = flag('config');
/**
 * The lab's PLEG fault: while this file holds containerd's current main PID, the stand-in's
 * relist is "stuck" (a real kubelet's is when the runtime is overloaded): PLEG is not healthy
 * although the runtime answers. A containerd restart (a new main PID) clears it.
 */
const PLEG_STALL = '/run/kubelet-standin/pleg-stall';

function klog(level, file, msg) {
  const d = new Date();
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const head = `${level}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds() * 1000, 6)}`;
  process.stdout.write(`${head} ${String(process.pid).padStart(7)} ${file}] ${msg}\n`);
}

function read(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

async function api(method, path, body) {
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/merge-patch+json' },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(3000),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status}`);
  return res.json();
}

const config = CONFIG ? read(CONFIG) : '';
// As kubelet exits when its --config file is missing (a node whose kubeadm join never wrote it, or a cleanup took it).
if (config === null) {
  klog('E', 'run.go:74', `"command failed" err="failed to load kubelet config file, path: ${CONFIG}, error: failed to load Kubelet config file ${CONFIG}, error failed to read kubelet config file \\"${CONFIG}\\", error: open ${CONFIG}: no such file or directory"`);
  process.exit(1);
}
const failSwapOn = !/^failSwapOn:\s*false/m.test(config);
klog('I', 'server.go:487', `"Kubelet version" kubeletVersion="v1.30.0-standin" node="${NODE}"`);

const swaps = (read('/proc/swaps') ?? '').trim().split('\n');
if (failSwapOn && swaps.length > 1) {
  klog('E', 'run.go:74', `"command failed" err="failed to run Kubelet: running with swap on is not supported, please disable swap! or set --fail-swap-on flag to false. /proc/swaps contained: [${swaps.join(' ')}]"`);
  process.exit(1);
}

let runtimeDownSince = null;
/** When the runtime last came back; crash-looping pods restart once back-off (shortened to 15 s here) has passed. */
let runtimeUpSince = null;
const BACKOFF_MS = 15_000;
let lastState = '';

function cond(type, status, reason, message) {
  const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return { type, status, reason, message, lastHeartbeatTime: t, lastTransitionTime: t };
}

let plegSince = null;

function plegStalled() {
  const stalledPid = (read(PLEG_STALL) ?? '').trim();
  if (!stalledPid) return false;
  const pid = (spawnSync('systemctl', ['show', '-p', 'MainPID', '--value', 'containerd'], { encoding: 'utf8', timeout: 3000 }).stdout ?? '').trim();
  if (pid !== stalledPid) {
    try {
      unlinkSync(PLEG_STALL);
    } catch {
      /* already gone */
    }
    return false;
  }
  return true;
}

async function tick() {
  // ctr speaks containerd's API, not CRI: on the CRI-O stand-in the runtime is "up" when its socket is.
  const ping = SOCK.includes('crio')
    ? { status: existsSync(SOCK) ? 0 : 1, stderr: 'no CRI-O socket' }
    : spawnSync('ctr', ['--address', SOCK, '--timeout', '2s', 'version'], { timeout: 3000, encoding: 'utf8' });
  const runtimeOk = ping.status === 0;
  const pleg = runtimeOk && plegStalled();
  if (pleg) {
    plegSince ??= Date.now() - 185_300;
    klog('E', 'kubelet.go:2359', `"Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active ${((Date.now() - plegSince) / 60000).toFixed(0)}m${(((Date.now() - plegSince) / 1000) % 60).toFixed(1)}s ago; threshold is 3m0s"`);
  } else plegSince = null;
  let cniFiles = 0;
  try {
    cniFiles = readdirSync('/etc/cni/net.d').filter((f) => /\.(conf|conflist|json)$/.test(f)).length;
  } catch {
    cniFiles = 0;
  }
  const bridge = (read('/proc/sys/net/bridge/bridge-nf-call-iptables') ?? '0').trim();
  const forward = (read('/proc/sys/net/ipv4/ip_forward') ?? '0').trim();
  const networkOk = cniFiles > 0 && bridge === '1' && forward === '1';
  let diskUse = 0;
  try {
    const s = statfsSync('/var/lib/containerd');
    const inodes = s.files ? Math.round(((s.files - s.ffree) / s.files) * 100) : 0;
    diskUse = Math.max(Math.round(((s.blocks - s.bfree) / s.blocks) * 100), inodes);
  } catch {
    diskUse = 0;
  }

  if (!runtimeOk) {
    runtimeDownSince ??= Date.now();
    const why = (ping.stderr || ping.error?.message || 'no answer').trim().split('\n')[0];
    klog('E', 'remote_runtime.go:633', `"Status from runtime service failed" err="rpc error: code = Unavailable desc = connection error: ${why.replaceAll('"', "'")}"`);
    if (Date.now() - runtimeDownSince > 10_000) {
      klog('E', 'kubelet.go:2359', `"Skipping pod synchronization" err="[container runtime is down, PLEG is not healthy: pleg was last seen active ${Math.round((Date.now() - runtimeDownSince) / 1000)}s ago; threshold is 3m0s]"`);
    }
  } else {
    runtimeDownSince = null;
    runtimeUpSince ??= Date.now();
  }
  if (!runtimeOk) runtimeUpSince = null;
  if (runtimeOk && !networkOk) {
    klog('E', 'kubelet.go:2885', '"Container runtime network not ready" networkReady="NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"');
  }

  const ready = runtimeOk && networkOk && !pleg;
  const message = !runtimeOk
    ? 'container runtime is down'
    : pleg
      ? `PLEG is not healthy: pleg was last seen active ${((Date.now() - plegSince) / 60000).toFixed(0)}m${(((Date.now() - plegSince) / 1000) % 60).toFixed(1)}s ago; threshold is 3m0s`
      : !networkOk
      ? 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized'
      : 'kubelet is posting ready status';
  const state = `${ready}/${message}/${diskUse >= 90}`;
  if (state !== lastState) {
    klog('I', 'kubelet_node_status.go:697', `"Recording event message for node" node="${NODE}" event="${ready ? 'NodeReady' : 'NodeNotReady'}"`);
    lastState = state;
  }
  await api('PATCH', `/api/v1/nodes/${NODE}/status`, {
    status: {
      conditions: [
        cond('Ready', ready ? 'True' : 'False', ready ? 'KubeletReady' : 'KubeletNotReady', message),
        diskUse >= 90
          ? cond('DiskPressure', 'True', 'KubeletHasDiskPressure', 'kubelet has disk pressure')
          : cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      ],
    },
  });

  const pods = await api('GET', `/api/v1/pods?fieldSelector=spec.nodeName%3D${NODE}`);
  for (const pod of pods.items) {
    const cs = pod.status?.containerStatuses?.[0];
    if (!cs) continue;
    const waiting = cs.state?.waiting?.reason;
    const running = Boolean(cs.state?.running);
    let next = null;
    const backedOff = waiting === 'CrashLoopBackOff' && runtimeUpSince !== null && Date.now() - runtimeUpSince > BACKOFF_MS;
    if (runtimeOk && (waiting === 'ContainerCreating' || pod.status.phase === 'Pending' || backedOff)) {
      next = { phase: 'Running', containerStatuses: [{ ...cs, ready: true, started: true, restartCount: cs.restartCount + (backedOff ? 1 : 0), state: { running: { startedAt: new Date().toISOString() } } }] };
      klog('I', 'kubelet.go:2446', `"SyncLoop (PLEG): event for pod" pod="${pod.metadata.namespace}/${pod.metadata.name}" event={"Type":"ContainerStarted"}`);
    } else if (!runtimeOk && running) {
      next = {
        phase: 'Running',
        containerStatuses: [
          {
            ...cs,
            ready: false,
            started: false,
            restartCount: cs.restartCount + 1,
            state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 10s restarting failed container=${cs.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})` } },
            lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: new Date().toISOString(), finishedAt: new Date().toISOString() } },
          },
        ],
      };
      klog('E', 'pod_workers.go:1298', `"Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"${cs.name}\\" with CrashLoopBackOff: \\"back-off 10s restarting failed container=${cs.name}\\"" pod="${pod.metadata.namespace}/${pod.metadata.name}"`);
    }
    if (next) await api('PATCH', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`, { status: next });
  }
}

async function loop() {
  for (;;) {
    try {
      await tick();
    } catch (err) {
      klog('E', 'kubelet_node_status.go:544', `"Error updating node status, will retry" err="${String(err.message).replaceAll('"', "'")}"`);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

process.on('SIGTERM', () => {
  klog('I', 'server.go:1263', '"Shutting down kubelet STAND-IN"');
  process.exit(0);
});
loop();
