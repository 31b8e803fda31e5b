import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalogs } from '../../src/catalog/load.js';
import { privilegedCommands, sudoersFile } from '../../src/runbooks/sudoers.js';

const catalogs = loadCatalogs();

describe('nodediag sudoers', () => {
  it('is accepted by the real visudo', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nodediag-sudoers-')), 'nodediag');
    writeFileSync(file, sudoersFile(catalogs, 'nodediag'), { mode: 0o440 });
    expect(execFileSync('visudo', ['-cf', file], { encoding: 'utf8' })).toMatch(/parsed OK/);
  });

  it('allows every privileged command of the catalogs, at both usual places for the container tools', () => {
    const specs = privilegedCommands(catalogs);
    for (const name of ['crictl', 'ctr', 'containerd']) {
      const debian = specs.filter((s) => s.startsWith(`/usr/bin/${name} `)).map((s) => s.slice(`/usr/bin/${name}`.length));
      const local = specs.filter((s) => s.startsWith(`/usr/local/bin/${name} `)).map((s) => s.slice(`/usr/local/bin/${name}`.length));
      expect(debian.length).toBeGreaterThan(0);
      expect(local).toEqual(debian);
    }
    expect(specs).toContain('/usr/bin/systemctl restart containerd');
    // Paths come from the node's layout: any absolute path, never a relative one or an option.
    expect(specs).toContain('/usr/bin/rmdir ^/[^ ]+$');
  });

  it('grants no shell, no editor and no wildcard command', () => {
    const specs = privilegedCommands(catalogs);
    for (const s of specs) {
      expect(s).toMatch(/^\/usr\/(?:local\/)?s?bin\/[a-z0-9]+ /);
      expect(s).not.toMatch(/^\S*\/(?:sh|bash|env|vi|vim|nano|su|sudo|python3?|perl) /);
      expect(s).not.toMatch(/^\S+ \*|ALL/);
    }
    expect(specs.filter((s) => s.startsWith('/usr/bin/kill '))).toEqual(['/usr/bin/kill ^-KILL [1-9][0-9]*$']);
    // The config is replaced only from a private temporary file, by install and an atomic mv.
    expect(specs.filter((s) => / \/[^ ]*\/config\.toml|tee .*containerd/.test(s) && /tee /.test(s))).toEqual([]);
  });

  it('refuses a user name that would change the rule', () => {
    expect(() => sudoersFile(catalogs, 'nodediag ALL=(ALL) NOPASSWD: ALL #')).toThrow(/not a valid user name/);
  });
});
