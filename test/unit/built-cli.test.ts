/**
 * The CLI as `npm run build` leaves it: it starts from its bundle
 * (scripts/bundle.mjs), not from the modules tsc wrote, and says the same.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIAG_HELP } from '../../src/cli/diag-command.js';
import { freePort } from '../../src/sim/free-port.js';
import { KubeApiStandin, makeNode } from '../../src/sim/kube-standin.js';
import { selfSignedCert } from '../../src/sim/self-signed.js';

const DIST = join(process.cwd(), 'dist', 'src');

/** Runs the built CLI in a real process, recording every module it loads. */
function runRecorded(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string; loaded: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-built-'));
  const hook = join(dir, 'hook.mjs');
  const list = join(dir, 'loaded.json');
  writeFileSync(
    hook,
    [
      `import { registerHooks } from 'node:module';`,
      `import { writeFileSync } from 'node:fs';`,
      `const loaded = [];`,
      `registerHooks({ resolve: (spec, ctx, next) => { const r = next(spec, ctx); loaded.push(r.url); return r; } });`,
      `process.on('exit', () => writeFileSync(${JSON.stringify(list)}, JSON.stringify(loaded)));`,
    ].join('\n'),
  );
  const r = spawnSync(process.execPath, ['--import', hook, join(DIST, 'cli.js'), ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  const loaded = JSON.parse(readFileSync(list, 'utf8')) as string[];
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded };
}

/** An inventory whose one node refuses SSH: the diagnosis goes on with the Kubernetes checks alone. */
function unreachableInventory(port: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-built-down-'));
  const inventory = join(dir, 'inventory.yaml');
  expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]).status).toBe(0);
  writeFileSync(inventory, `nodes:\n  - name: gpu-node-1\n    host: 127.0.0.1\n    port: ${port}\n    privateKeyPath: ${join(dir, 'key')}\n    hostKey: "SHA256:${'A'.repeat(43)}"\n`);
  return inventory;
}

/** Runs the built CLI (or, with `script`, Node on these arguments) without blocking this process (an API stand-in here answers it); counts the threads that ran JavaScript (one CPU profile each). */
async function runThreads(args: string[], env: NodeJS.ProcessEnv, script = false): Promise<{ status: number | null; stdout: string; threads: number }> {
  const profiles = mkdtempSync(join(tmpdir(), 'nodediag-built-prof-'));
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profiles, ...(script ? [] : [join(DIST, 'cli.js')]), ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.resume();
  const status = await new Promise<number | null>((r) => child.on('close', r));
  return { status, stdout, threads: readdirSync(profiles).filter((f) => f.endsWith('.cpuprofile')).length };
}

describe('the built CLI', () => {
  it('starts from its bundle, with zod and yaml inside it, and answers as the modules do', () => {
    const r = runRecorded(['diag', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(DIAG_HELP);
    expect(r.loaded).toContainEqual(expect.stringMatching(/\/dist\/src\/bundle\/run-cli\.js$/));
    expect(r.loaded.filter((u) => /\/dist\/src\/cli\//.test(u) || /\/node_modules\/(zod|yaml)\//.test(u))).toEqual([]);
  });

  it('still validates its input from the bundle: a bad inventory is named, exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodediag-built-inv-'));
    const inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, 'nodes:\n  - name: gpu-node-1\n    host: 10.0.0.1\n    port: not-a-port\n');
    const r = runRecorded(['diag', 'gpu-node-1', '--inventory', inventory]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/inventory/i);
    expect(r.stderr).toMatch(/port/);
  });

  it('says once why an unreachable node could not be checked, naming every check it skipped', async () => {
    const inventory = unreachableInventory(await freePort());
    const r = runRecorded(['diag', 'gpu-node-1', '--inventory', inventory], { NODEDIAG_KUBECONFIG: '', KUBECONFIG: '' });
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/UNREACHABLE over SSH/);
    const refused = r.stdout.split('\n').filter((l) => /connection refused/.test(l));
    // The connection error itself, then one line for the checks it stopped.
    expect(refused).toHaveLength(2);
    expect(refused[1]).toMatch(/node-layout, .*containerd-config, .*security-denials skipped: not run: /);
    expect(r.stdout).toMatch(/k8s-node, k8s-pods, k8s-events skipped: no Kubernetes access/);
  });

  it('reads the Kubernetes API itself for a plain kubeconfig (no thread), with the bundled client in a thread of its own for an exec plugin or a write, and starts none without an API', async () => {
    const api = new KubeApiStandin({ token: 'built-cli-token-0123456789', tls: selfSignedCert(['127.0.0.1']) });
    await api.start();
    try {
      api.addNode(makeNode('gpu-node-1', '127.0.0.1', { pool: 'gpu' }));
      const kubeDir = mkdtempSync(join(tmpdir(), 'nodediag-built-kube-'));
      const kubeconfig = join(kubeDir, 'kubeconfig');
      writeFileSync(kubeconfig, api.kubeconfig());
      // The same API through an exec credential plugin (as EKS, GKE and AKS kubeconfigs do): client-node's to run.
      const plugin = join(kubeDir, 'get-token');
      writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"built-cli-token-0123456789"}}'\n`, { mode: 0o755 });
      const viaExec = join(kubeDir, 'kubeconfig-exec');
      writeFileSync(viaExec, api.kubeconfig().replace(/    token: .*/, `    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${plugin}\n      interactiveMode: Never`));
      const inventory = unreachableInventory(await freePort());
      const noKube = { NODEDIAG_KUBECONFIG: '', KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', HOME: mkdtempSync(join(tmpdir(), 'nodediag-built-home-')) };
      const kubeChecks = (stdout: string) => (JSON.parse(stdout) as { checks: Array<{ id: string; status: string }> }).checks.filter((c) => c.id.startsWith('k8s-'));
      const allOk = ['k8s-node', 'k8s-pods', 'k8s-events'].map((id) => expect.objectContaining({ id, status: 'ok' }));

      const withApi = await runThreads(['diag', 'gpu-node-1', '--inventory', inventory, '--json'], { ...noKube, NODEDIAG_KUBECONFIG: kubeconfig });
      expect(withApi.status).toBe(3);
      expect(kubeChecks(withApi.stdout)).toEqual(allOk);
      expect(withApi.threads).toBe(1);

      const flagOnly = await runThreads(['diag', 'gpu-node-1', '--inventory', inventory, '--kubeconfig', kubeconfig, '--json'], noKube);
      expect(kubeChecks(flagOnly.stdout)).toEqual(allOk);
      expect(flagOnly.threads).toBe(1);

      const exec = await runThreads(['diag', 'gpu-node-1', '--inventory', inventory, '--json'], { ...noKube, NODEDIAG_KUBECONFIG: viaExec });
      expect(kubeChecks(exec.stdout)).toEqual(allOk);
      expect(exec.threads).toBe(2);
      expect(api.requests.filter((r) => r.path === '/api/v1/nodes/gpu-node-1').map((r) => (r.userAgent === 'nodediag' ? 'direct' : 'client-node'))).toEqual(['direct', 'direct', 'client-node']);

      const without = await runThreads(['diag', 'gpu-node-1', '--inventory', inventory, '--json'], noKube);
      expect(without.status).toBe(3);
      expect((JSON.parse(without.stdout) as { checks: Array<{ id: string; status: string }> }).checks.find((c) => c.id === 'k8s-node')?.status).toBe('skipped');
      expect(without.threads).toBe(1);

      // A fix's writes, as built: the terminal's client reads directly, then starts the library's thread for the cordon.
      const script = [
        `const { createKubeClientInWorker } = await import(${JSON.stringify(join(DIST, 'adapters', 'kube-in-worker.js'))});`,
        `const k = createKubeClientInWorker({ kubeconfigPath: process.argv[2], requestTimeoutMs: 5000 }).client;`,
        `const before = (await k.getNode('gpu-node-1')).unschedulable;`,
        `await k.setUnschedulable('gpu-node-1', true);`,
        `const after = (await k.getNode('gpu-node-1')).unschedulable;`,
        `console.log(JSON.stringify({ before, after }));`,
      ].join('\n');
      // From a file: a worker inherits the process's flags, and `--input-type` stops one.
      const scriptFile = join(kubeDir, 'cordon.mjs');
      writeFileSync(scriptFile, script);
      const from = api.requests.length;
      const wrote = await runThreads([scriptFile, kubeconfig], noKube, true);
      expect(JSON.parse(wrote.stdout)).toEqual({ before: false, after: true });
      expect(api.nodes.get('gpu-node-1')!.spec.unschedulable).toBe(true);
      expect(api.requests.slice(from).map((r) => `${r.method} ${r.userAgent === 'nodediag' ? 'direct' : 'client-node'}`)).toEqual(['GET direct', 'PATCH client-node', 'GET direct']);
      expect(wrote.threads).toBe(2);
    } finally {
      await api.stop();
    }
  });
});
