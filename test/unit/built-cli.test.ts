/**
 * The CLI as `npm run build` leaves it: it starts from its bundle
 * (scripts/bundle.mjs), not from the modules tsc wrote, and says the same.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIAG_HELP } from '../../src/cli/diag-command.js';

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
    const server = createServer();
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
    await new Promise((r) => server.close(r));
    const dir = mkdtempSync(join(tmpdir(), 'nodediag-built-down-'));
    const inventory = join(dir, 'inventory.yaml');
    expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]).status).toBe(0);
    writeFileSync(inventory, `nodes:\n  - name: gpu-node-1\n    host: 127.0.0.1\n    port: ${port}\n    privateKeyPath: ${join(dir, 'key')}\n    hostKey: "SHA256:${'A'.repeat(43)}"\n`);
    const r = runRecorded(['diag', 'gpu-node-1', '--inventory', inventory], { NODEDIAG_KUBECONFIG: '', KUBECONFIG: '' });
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/UNREACHABLE over SSH/);
    const refused = r.stdout.split('\n').filter((l) => /connection refused/.test(l));
    // The connection error itself, then one line for the checks it stopped.
    expect(refused).toHaveLength(2);
    expect(refused[1]).toMatch(/node-layout, .*containerd-config, .*security-denials skipped: not run: /);
    expect(r.stdout).toMatch(/k8s-node, k8s-pods, k8s-events skipped: no Kubernetes access/);
  });
});
