/**
 * The runbooks' changes to containerd's config, run as the catalog has them
 * with the real containerd binaries of each version (Debian's 1.6, trixie's
 * 1.7, unstable's 2.1: test/lab/fetch-containerd.sh):
 *
 * - the config repair's candidate, against a production GPU node's config
 *   moved to another disk: whatever its source, containerd's root and state
 *   stay where the running containers have theirs (a containerd started on
 *   another root has none of their metadata and removes their tasks);
 * - the cgroup fix's check, before it cordons anything, that its edit of
 *   config.toml gives the default runtime the systemd driver.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalogs } from '../../src/catalog/load.js';
import { LAST_GOOD } from '../../src/catalog/probes.js';
import { renderScript } from '../../src/catalog/template.js';
import { CONTAINERD_VERSIONS, containerdBinary, productionConfig } from '../lab/lab.js';

const catalogs = loadCatalogs();
const repair = catalogs.runbooks.find((r) => r.id === 'containerd-config-invalid')!;

const BINARIES = Object.fromEntries(CONTAINERD_VERSIONS.map((v) => [v, containerdBinary(v)])) as Record<string, string>;
const missing = Object.entries(BINARIES).filter(([, bin]) => !existsSync(bin)).map(([v, bin]) => `containerd ${v} (${bin})`);
if (missing.length) throw new Error(`missing: ${missing.join(', ')} — .ci/run installs them (apt containerd, test/lab/fetch-containerd.sh)`);

const DATA_ROOT = '/data/containerd';
const BROKEN = '\n[plugins."io.containerd.grpc.v1.cri".registry\n  broken = = true\n';

/** A top-level key of a TOML text (before its first table), unquoted. */
function topLevel(toml: string, key: string): string | undefined {
  for (const line of toml.split('\n')) {
    if (/^\s*\[/.test(line)) return undefined;
    const m = new RegExp(`^\\s*${key}\\s*=\\s*(['"])(.*)\\1`).exec(line);
    if (m) return m[2];
  }
  return undefined;
}

/** An nvidia-ctk style drop-in in `dir`/conf.d: the nvidia runtime, made the default, with its cgroup driver. */
function nvidiaDropIn(dir: string, defaults: string, systemdCgroup: boolean): void {
  const v3 = /^version = 3$/m.test(defaults);
  const cri = v3 ? "'io.containerd.cri.v1.runtime'" : '"io.containerd.grpc.v1.cri"';
  mkdirSync(join(dir, 'conf.d'), { recursive: true });
  writeFileSync(
    join(dir, 'conf.d', '99-nvidia.toml'),
    [
      `version = ${v3 ? 3 : 2}`,
      `[plugins.${cri}.containerd]`,
      '  default_runtime_name = "nvidia"',
      `[plugins.${cri}.containerd.runtimes.nvidia]`,
      '  runtime_type = "io.containerd.runc.v2"',
      `[plugins.${cri}.containerd.runtimes.nvidia.options]`,
      '  BinaryName = "/usr/bin/nvidia-container-runtime"',
      `  SystemdCgroup = ${systemdCgroup}`,
      '',
    ].join('\n'),
  );
}

/** `toml` importing `dir`/conf.d/*.toml (its own imports line replaced). */
function importingConfD(toml: string, dir: string): string {
  return toml.replace(/^imports = .*\n/m, '').replace(/^(version = \d+)$/m, `$1\nimports = ["${dir}/conf.d/*.toml"]`);
}

/** What the node's containerd makes of a candidate: its `config dump`. */
function dumpOf(bin: string, candidate: string, dir: string): string {
  writeFileSync(join(dir, 'candidate.toml'), candidate);
  return execFileSync(bin, ['--config', join(dir, 'candidate.toml'), 'config', 'dump'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

/** Runs the preview as the runbook has it (root, no sudo), with the last-good copy kept in `dir`; returns its output and the candidate. */
function preview(bin: string, dir: string): { out: string; candidate: string } {
  const script = renderScript(repair.preview!.script, { sudo: false, containerd: bin, containerdConfig: join(dir, 'config.toml') }).replaceAll(LAST_GOOD, join(dir, 'last-good.toml'));
  const r = spawnSync('/bin/sh', ['-c', `${script}\necho "==candidate=="; cat "$work/cand"`], { encoding: 'utf8', timeout: 60_000 });
  const [out, candidate = ''] = `${r.stdout}${r.stderr}`.split('==candidate==\n');
  return { out: out!, candidate };
}

describe.each(Object.keys(BINARIES))('config repair on containerd %s keeps root and state', (v) => {
  const bin = BINARIES[v]!;
  let dir: string;
  let good: string;
  beforeAll(() => {
    const defaults = execFileSync(bin, ['config', 'default'], { encoding: 'utf8' });
    good = productionConfig(defaults, { registryPassword: 'not-a-real-secret' }).replace(/^root = (['"]).*\1$/m, `root = "${DATA_ROOT}"`);
    expect(topLevel(good, 'root')).toBe(DATA_ROOT);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodediag-repair-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a backup from before root moved is not the candidate: the broken file is repaired instead', () => {
    writeFileSync(join(dir, 'config.toml.bak-20250101-000000'), good.replace(`root = "${DATA_ROOT}"`, 'root = "/var/lib/containerd"'));
    writeFileSync(join(dir, 'config.toml'), good + BROKEN);
    const { out, candidate } = preview(bin, dir);
    expect(out).toMatch(/^source=repaired /m);
    expect(topLevel(candidate, 'root')).toBe(DATA_ROOT);
  });

  it('root set by a drop-in the config imports: the repaired file leaves it to the drop-in, as the old one did', () => {
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'conf.d', '10-root.toml'), `${/^version = \d+$/m.exec(good)![0]}\nroot = "${DATA_ROOT}"\n`);
    const own = importingConfD(good.replace(/^root = .*\n/m, ''), dir);
    expect(topLevel(own, 'root')).toBeUndefined();
    writeFileSync(join(dir, 'config.toml'), own + BROKEN);
    const { out, candidate } = preview(bin, dir);
    expect(out).toMatch(/^source=repaired /m);
    expect(topLevel(candidate, 'root')).toBeUndefined();
    const dump = dumpOf(bin, candidate, dir);
    expect(topLevel(dump, 'root')).toBe(DATA_ROOT);
  });

  it("the nvidia runtime made the default by a drop-in (nvidia-ctk's conf.d): repaired, and nvidia stays the runtime in effect", () => {
    nvidiaDropIn(dir, good, true);
    // config.toml as the default left it (runc named), importing the drop-in.
    const defaults = execFileSync(bin, ['config', 'default'], { encoding: 'utf8' });
    writeFileSync(join(dir, 'config.toml'), importingConfD(defaults, dir) + BROKEN);
    const { out, candidate } = preview(bin, dir);
    expect(out).toMatch(/^source=repaired /m);
    expect(out).toMatch(/^default-runtime=runc$/m);
    expect(out).toMatch(/^default-runtime-in-effect=nvidia /m);
    const dump = dumpOf(bin, candidate, dir);
    expect(dump).toMatch(/default_runtime_name = (['"])nvidia\1/);
  });

  // A version 3 file read by 2.x: keys in version 2's place are ignored (and only warned about). 1.x has no version 3.
  (v === '2.1' ? it : it.skip)('a backup whose runtime keys sit where containerd does not read them is not a candidate, though its text names nvidia', () => {
    expect(good).toMatch(/^version = 3$/m);
    writeFileSync(join(dir, 'config.toml.bak-20250101-000000'), good.replaceAll("'io.containerd.cri.v1.runtime'", '"io.containerd.grpc.v1.cri"'));
    writeFileSync(join(dir, 'config.toml'), good + BROKEN);
    const { out } = preview(bin, dir);
    expect(out).not.toMatch(/^source=backup /m);
    expect(out).toMatch(/^source=repaired /m);
  });

  it('a value of the wrong type (1.6 reports it as "failed to unmarshal TOML: (row, column)"): only its line is dropped', () => {
    expect(good).toMatch(/^oom_score = /m);
    writeFileSync(join(dir, 'config.toml'), good.replace(/^oom_score = .*$/m, 'oom_score = "high"'));
    const { out, candidate } = preview(bin, dir);
    expect(out).toMatch(/^source=repaired \(dropped: line \d+;\)$/m);
    expect(candidate).not.toMatch(/^oom_score/m);
    expect(topLevel(candidate, 'root')).toBe(DATA_ROOT);
    expect(candidate).toMatch(/BinaryName = (['"])\/usr\/bin\/nvidia-container-runtime\1/);
  });

  it("a file too broken to repair section by section: containerd's defaults with the old top level and sections carried over keep root, the nvidia runtime and the registry credentials", () => {
    // Thirteen copies of one table: more than the section-by-section repair drops (the merge keeps the last).
    writeFileSync(join(dir, 'config.toml'), good + '\n[debug]\n  level = "info"\n'.repeat(13));
    const { out, candidate } = preview(bin, dir);
    expect(out).toMatch(/^source=default with the old top level and sections carried over /m);
    expect(out).toMatch(/^default-runtime=nvidia$/m);
    expect(topLevel(candidate, 'root')).toBe(DATA_ROOT);
    expect(topLevel(candidate, 'state')).toBe(topLevel(good, 'state'));
    expect(candidate).toMatch(/BinaryName = (['"])\/usr\/bin\/nvidia-container-runtime\1/);
    if (/^version = 2/m.test(good)) expect(candidate).toContain('password = "not-a-real-secret"');
    // What the preview shows never carries the credential.
    expect(out).not.toContain('not-a-real-secret');
    // The node's own containerd loads it, with root where it was.
    const dump = dumpOf(bin, candidate, dir);
    expect(topLevel(dump, 'root')).toBe(DATA_ROOT);
  });
});

describe.each(Object.keys(BINARIES))("cgroup fix on containerd %s: its edit of config.toml is checked on a copy before the node is cordoned", (v) => {
  const bin = BINARIES[v]!;
  const step = catalogs.runbooks.find((r) => r.id === 'cgroup-driver-mismatch')!.steps.find((s) => s.id === 'set-systemd-cgroup')!;
  let dir: string;
  let defaults: string;
  beforeAll(() => {
    defaults = execFileSync(bin, ['config', 'default'], { encoding: 'utf8' });
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodediag-cgroup-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Exit status of the step's check, with config.toml in `dir`. */
  const check = () => spawnSync('/bin/sh', ['-c', renderScript(step.requires!.script, { sudo: false, containerd: bin, containerdConfig: join(dir, 'config.toml') })], { encoding: 'utf8', timeout: 30_000 }).status;

  it('the nvidia default with SystemdCgroup = false in config.toml (seed 002): the edit gives it the systemd driver', () => {
    writeFileSync(join(dir, 'config.toml'), productionConfig(defaults, { registryPassword: 'x' }).replace(/SystemdCgroup = true/g, 'SystemdCgroup = false'));
    expect(check()).toBe(0);
  });

  it("the nvidia default and its SystemdCgroup = false in an imported drop-in: the edit would change nothing in effect, refused", () => {
    nvidiaDropIn(dir, defaults, false);
    writeFileSync(join(dir, 'config.toml'), importingConfD(defaults, dir));
    expect(readFileSync(join(dir, 'config.toml'), 'utf8')).toMatch(/SystemdCgroup = false/);
    expect(check()).not.toBe(0);
  });
});
