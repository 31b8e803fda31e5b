/**
 * The workload guard: what ran on the node before a fix must run after it.
 * Reads the `containerd-shims` script's output (the same script the probe
 * runs) into a snapshot, and compares two snapshots. Pure.
 */

/** One container as its shim and containerd see it. */
export interface GuardedWorkload {
  /** The shim, `pid@start` (a PID alone can be reused). */
  shim: string;
  namespace: string;
  id: string;
  /** containerd's view of its task: `RUNNING`, another status, `unknown` (containerd does not know it) or `unchecked` (containerd did not answer). */
  task: string;
  /** The task's PID as containerd lists it (the container's init process). */
  taskPid?: number;
  /** The container processes under the shim, as the probe printed them. */
  procs: string;
}

/** The workloads on a node at one moment. */
export interface WorkloadSnapshot {
  workloads: GuardedWorkload[];
  /** containerd answered the task listing (for at least one namespace). */
  listed: boolean;
}

/** Reads the shim script's output. */
export function parseWorkloads(output: string): WorkloadSnapshot {
  const tasks = new Map<string, { status: string; pid: number }>();
  const workloads: GuardedWorkload[] = [];
  let listed = false;
  for (const line of output.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^task (\S+) (\S+) (\S+) (\d+) (\S+)$/.exec(line))) tasks.set(`${m[2]}/${m[3]}`, { pid: Number(m[4]), status: m[5]! });
    else if (/^listed \S+ \S+$/.test(line)) listed = true;
    else if ((m = /^shim (\d+@\d+) ns=(\S+) id=(\S+) .*?task=(known|unknown|unchecked) .*?procs=(.*)$/.exec(line))) {
      workloads.push({ shim: m[1]!, namespace: m[2]!, id: m[3]!, task: m[4]!, procs: m[5]! });
    }
  }
  for (const w of workloads) {
    const t = tasks.get(`${w.namespace}/${w.id}`);
    if (w.task === 'known' && t) {
      w.task = t.status;
      w.taskPid = t.pid;
    }
  }
  return { workloads, listed };
}

function name(w: GuardedWorkload): string {
  return `${w.namespace}/${w.id} (shim ${w.shim.replace(/@.*/, '')}${w.taskPid ? `, pid ${w.taskPid}` : ''})`;
}

/** Workloads of `before` whose shim is gone, given the `alive`/`gone` lines of the liveness check. */
export function endedShims(before: WorkloadSnapshot, aliveOutput: string, expectToEnd: readonly string[]): string[] {
  const gone = new Set([...aliveOutput.matchAll(/^gone (\d+@\d+)$/gm)].map((m) => m[1]!));
  return before.workloads.filter((w) => gone.has(w.shim) && !expectToEnd.includes(w.shim)).map((w) => `${name(w)} ended`);
}

/**
 * What went wrong with the workloads between two snapshots: a container that
 * ran before and ended, or that containerd managed (or could not be asked
 * about) before and does not manage as RUNNING after, with the same PID.
 */
export function workloadViolations(before: WorkloadSnapshot, after: WorkloadSnapshot, expectToEnd: readonly string[]): string[] {
  const out: string[] = [];
  const now = new Map(after.workloads.map((w) => [w.shim, w]));
  for (const w of before.workloads) {
    if (expectToEnd.includes(w.shim)) continue;
    const a = now.get(w.shim);
    if (!a) {
      out.push(`${name(w)} ended`);
      continue;
    }
    // An orphan before the fix is not the fix's doing; everything else must be RUNNING under containerd.
    if (w.task === 'unknown' || !after.listed) continue;
    if (a.task !== 'RUNNING') out.push(`${name(w)} is ${a.task === 'unknown' ? 'no longer managed by containerd' : `${a.task} under containerd`} after the fix`);
    else if (w.taskPid !== undefined && a.taskPid !== undefined && w.taskPid !== a.taskPid) out.push(`${name(w)} runs with another PID (${a.taskPid}) after the fix`);
  }
  return out;
}
