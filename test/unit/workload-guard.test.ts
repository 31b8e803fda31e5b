import { endedShims, parseWorkloads, workloadViolations } from '../../src/runbooks/workload-guard.js';
import { readFixture } from '../fixtures/fixture.js';

/** The containerd-shims output of a real node (lab capture): two containers, one holding /dev/nvidia0. */
function captured(name: string): string {
  return readFixture(name).observations!.find((o) => o.check === 'containerd-shims')!.raw;
}

describe('the workload guard', () => {
  const healthy = parseWorkloads(captured('lab/containerd-2.1/healthy'));

  it('reads the shims and their tasks from a real node', () => {
    expect(healthy.listed).toBe(true);
    expect(healthy.workloads.map((w) => [w.id, w.task])).toEqual(expect.arrayContaining([['lab-app', 'RUNNING'], ['lab-gpu', 'RUNNING']]));
    for (const w of healthy.workloads) {
      expect(w.shim).toMatch(/^[1-9]\d*@\d+$/);
      expect(w.taskPid).toBeGreaterThan(0);
    }
  });

  it('finds nothing wrong when the same containers run with the same PIDs', () => {
    expect(workloadViolations(healthy, healthy, [])).toEqual([]);
  });

  it('names a container that ended, one containerd no longer manages, and one that runs with another PID', () => {
    const [a, b] = healthy.workloads;
    expect(workloadViolations(healthy, { ...healthy, workloads: [b!] }, [])).toEqual([expect.stringMatching(new RegExp(`^k8s\\.io/${a!.id} \\(shim \\d+, pid \\d+\\) ended$`))]);
    expect(workloadViolations(healthy, { ...healthy, workloads: [{ ...a!, task: 'unknown' }, b!] }, [])).toEqual([expect.stringMatching(/no longer managed by containerd/)]);
    expect(workloadViolations(healthy, { ...healthy, workloads: [{ ...a!, taskPid: 99999 }, b!] }, [])).toEqual([expect.stringMatching(/runs with another PID \(99999\)/)]);
  });

  it('does not blame the fix for what it was meant to end, nor for an orphan that was one before', () => {
    const [a, b] = healthy.workloads;
    expect(workloadViolations(healthy, { ...healthy, workloads: [b!] }, [a!.shim])).toEqual([]);
    const before = { ...healthy, workloads: [{ ...a!, task: 'unknown' }, b!] };
    expect(workloadViolations(before, { ...healthy, workloads: [{ ...a!, task: 'unknown' }, b!] }, [])).toEqual([]);
  });

  it('cannot check tasks while containerd does not answer, but still sees a shim that ended', () => {
    const down = parseWorkloads(captured('lab/containerd-2.1/containerd-down'));
    expect(down.listed).toBe(false);
    expect(down.workloads.every((w) => w.task === 'unchecked')).toBe(true);
    const [a] = down.workloads;
    expect(endedShims(down, `gone ${a!.shim}\n`, [])).toEqual([expect.stringMatching(/ended$/)]);
    expect(endedShims(down, `alive ${a!.shim}\n`, [])).toEqual([]);
  });
});
