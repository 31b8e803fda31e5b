import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { unsupportedNode } from '../../src/cli.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

describe('the Node.js version nodediag needs', () => {
  it.each([
    ['v20.20.2', false],
    ['v22.18.0', false],
    ['v22.19.0', true],
    ['v24.21.0', true],
    ['v26.0.0', true],
  ])('%s is %s', (version, ok) => {
    const problem = unsupportedNode(version);
    if (ok) expect(problem).toBeNull();
    else expect(problem).toMatch(new RegExp(`^nodediag needs Node\\.js 22\\.19 or later; this is Node\\.js ${version.replace(/\./g, '\\.')}\\.\\nInstall Node\\.js 24`));
  });

  // The machine's own Node (Debian's /usr/bin/node is 20 here): the real executable, not the function.
  const system = '/usr/bin/node';
  const old = existsSync(system) && unsupportedNode(execFileSync(system, ['--version'], { encoding: 'utf8' }).trim()) !== null;
  (old ? it : it.skip)('on an old Node.js the executable says what it needs and exits 2, before loading anything else', () => {
    const r = spawnSync(system, [CLI, 'diag', 'gpu-node-7'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^nodediag needs Node\.js 22\.19 or later; this is Node\.js v20\./);
    expect(r.stderr).not.toMatch(/SyntaxError|enableCompileCache|bind/);
  });
});
