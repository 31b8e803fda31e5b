/** Which cluster a request means: said, bound to the channel, or the only one that has the node — never guessed. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadClusterSpecs, resolveCluster, type ClusterIndex } from '../../src/clusters/clusters.js';
import { parseDiagText } from '../../src/slack/command-parse.js';

const a: ClusterIndex = { name: 'prod-a', nodes: new Set(['gpu-node-1', 'gpu-node-2']), channels: ['C0PRODA'] };
const b: ClusterIndex = { name: 'prod-b', nodes: new Set(['gpu-node-1', 'gpu-node-9']), channels: ['C0PRODB'] };
const both = [a, b];

describe('resolveCluster', () => {
  it('takes the cluster said with --cluster, and refuses one that does not exist, listing those that do', () => {
    expect(resolveCluster(both, { node: 'gpu-node-1', channel: 'C0OTHER', cluster: 'prod-b' })).toEqual({ cluster: 'prod-b' });
    expect(resolveCluster(both, { node: 'gpu-node-1', channel: 'C0PRODA', cluster: 'prod-b' })).toEqual({ cluster: 'prod-b' });
    expect(resolveCluster(both, { node: 'gpu-node-1', channel: 'C0OTHER', cluster: 'prod-c' })).toMatchObject({ reason: 'There is no cluster "prod-c".', hint: 'Clusters: prod-a, prod-b.' });
  });

  it('uses the channel\'s cluster, whatever the inventories say', () => {
    expect(resolveCluster(both, { node: 'gpu-node-1', channel: 'C0PRODA' })).toEqual({ cluster: 'prod-a' });
    expect(resolveCluster(both, { node: 'gpu-node-9', channel: 'C0PRODA' })).toEqual({ cluster: 'prod-a' });
  });

  it('elsewhere, takes the one cluster whose inventory has the node', () => {
    expect(resolveCluster(both, { node: 'gpu-node-2', channel: 'C0OTHER' })).toEqual({ cluster: 'prod-a' });
    expect(resolveCluster(both, { node: 'gpu-node-9', channel: 'C0OTHER' })).toEqual({ cluster: 'prod-b' });
  });

  it('never guesses between two clusters that both have the node', () => {
    const r = resolveCluster(both, { node: 'gpu-node-1', channel: 'C0OTHER' });
    expect(r).toMatchObject({ reason: '"gpu-node-1" is a node in 2 clusters: prod-a, prod-b.' });
    expect((r as { hint: string }).hint).toMatch(/--cluster prod-a/);
  });

  it('refuses a node no cluster has, and a selector in an unbound channel', () => {
    expect(resolveCluster(both, { node: 'gpu-node-5', channel: 'C0OTHER' })).toMatchObject({ reason: expect.stringMatching(/not in the inventory of any cluster/) });
    expect(resolveCluster(both, { channel: 'C0OTHER' })).toMatchObject({ reason: 'This channel is not bound to a cluster.' });
  });

  it('with one cluster, needs nothing said', () => {
    expect(resolveCluster([a], { node: 'anything', channel: 'C0OTHER' })).toEqual({ cluster: 'prod-a' });
  });
});

describe('the clusters file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodediag-clusters-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('reads clusters with paths relative to the file', () => {
    const specs = loadClusterSpecs(file('ok.yaml', 'clusters:\n  - { name: prod-a, inventory: a/inventory.yaml, kubeconfig: a/kubeconfig, context: admin@prod-a, channels: [C0PRODA] }\n  - { name: prod-b, inventory: /etc/b.yaml }\n'));
    expect(specs).toEqual([
      { name: 'prod-a', inventoryPath: join(dir, 'a', 'inventory.yaml'), kubeconfigPath: join(dir, 'a', 'kubeconfig'), context: 'admin@prod-a', channels: ['C0PRODA'] },
      { name: 'prod-b', inventoryPath: '/etc/b.yaml', channels: [] },
    ]);
  });

  it('refuses a duplicate name, a channel bound twice, a bad name and an unknown key, saying where', () => {
    expect(() => loadClusterSpecs(file('dup.yaml', 'clusters:\n  - { name: a, inventory: x }\n  - { name: a, inventory: y }\n'))).toThrow(/names the cluster "a" twice/);
    expect(() => loadClusterSpecs(file('chan.yaml', 'clusters:\n  - { name: a, inventory: x, channels: [C0SAME] }\n  - { name: b, inventory: y, channels: [C0SAME] }\n'))).toThrow(/C0SAME is bound to both "a" and "b"/);
    expect(() => loadClusterSpecs(file('name.yaml', 'clusters:\n  - { name: Prod_A, inventory: x }\n'))).toThrow(/clusters\.0\.name: a cluster name is a DNS label/);
    expect(() => loadClusterSpecs(file('key.yaml', 'clusters:\n  - { name: a, inventory: x, kubecontext: y }\n'))).toThrow(/invalid at clusters\.0/);
    expect(() => loadClusterSpecs(join(dir, 'missing.yaml'))).toThrow(/cannot read the clusters file .*ENOENT/);
  });
});

describe('/diag … --cluster', () => {
  it('names the cluster of a node or a selector, anywhere in the text', () => {
    expect(parseDiagText('gpu-node-1 --cluster prod-b')).toEqual({ kind: 'node', node: 'gpu-node-1', cluster: 'prod-b' });
    expect(parseDiagText('--cluster=Prod-B gpu-node-1')).toEqual({ kind: 'node', node: 'gpu-node-1', cluster: 'prod-b' });
    expect(parseDiagText('-l pool=gpu --cluster prod-a')).toEqual({ kind: 'fleet', selector: 'pool=gpu', cluster: 'prod-a' });
    expect(parseDiagText('gpu-node-1')).toEqual({ kind: 'node', node: 'gpu-node-1' });
  });

  it('refuses a missing or invalid cluster name, and --cluster with pause', () => {
    expect(parseDiagText('gpu-node-1 --cluster')).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/Which cluster/) });
    expect(parseDiagText('gpu-node-1 --cluster ../etc')).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/not a cluster name/) });
    expect(parseDiagText('gpu-node-1 --cluster "$(id)"')).toMatchObject({ kind: 'invalid' });
    expect(parseDiagText('pause 1h maintenance --cluster a')).toMatchObject({ kind: 'invalid', reason: '--cluster goes with a node or a selector.' });
  });
});
