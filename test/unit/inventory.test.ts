import { InventoryError, UnknownNodeError } from '../../src/errors.js';
import { parseInventory, resolveAccess } from '../../src/inventory/inventory.js';

const FP = 'SHA256:bjoCKnGotzT/g0MgG6bsQ51Ee4GSw+rEARqAlbdEPrc';
const good = `defaults: { user: root, port: 22, privateKeyPath: ./keys/id_ed25519, sudo: false }
nodes:
  - name: gpu-node-1
    host: 10.0.0.11
    hostKey: "${FP}"
  - name: gpu-node-2
    port: 2222
    user: nodediag
    sudo: true
    knownHostsPath: ./known_hosts
`;

describe('inventory', () => {
  it('reads the documented example and resolves paths against the inventory file', () => {
    const inv = parseInventory(good, '/etc/nodediag/inventory.yaml');
    const a = resolveAccess(inv, 'gpu-node-1');
    expect(a.target).toMatchObject({ host: '10.0.0.11', port: 22, user: 'root', privateKeyPath: '/etc/nodediag/keys/id_ed25519' });
    expect(a.target.hostKey).toEqual({ kind: 'fingerprints', fingerprints: [FP] });
    // Nothing pinned: the paths are discovered on the node.
    expect(a.overrides).toEqual({});
  });

  it('uses the Kubernetes InternalIP when the inventory gives no host', () => {
    const inv = parseInventory(good, '/etc/nodediag/inventory.yaml');
    const node = { name: 'gpu-node-2', labels: {}, unschedulable: false, conditions: [], taints: [], addresses: [{ type: 'InternalIP', address: '10.0.0.12' }] };
    const a = resolveAccess(inv, 'gpu-node-2', node);
    expect(a.target).toMatchObject({ host: '10.0.0.12', port: 2222, user: 'nodediag' });
    expect(a.sudo).toBe(true);
    expect(a.target.hostKey).toEqual({ kind: 'known-hosts', path: '/etc/nodediag/known_hosts' });
  });

  it('names the field and line of a bad value', () => {
    const bad = good.replace('port: 2222', 'port: 70000');
    expect(() => parseInventory(bad, 'inv.yaml')).toThrow(/inv\.yaml:7: nodes\[1\]\.port: .*65535/);
  });

  it('refuses a node without a pinned host key: there is no accept-anything default', () => {
    const bad = `defaults: { privateKeyPath: ./k }\nnodes:\n  - name: n1\n    host: 10.0.0.1\n`;
    expect(() => parseInventory(bad, 'inv.yaml')).toThrow(/inv\.yaml:3: nodes\[0\] \(n1\): no pinned host key/);
  });

  it.each([
    ['a duplicate node', `${good}  - name: gpu-node-1\n    hostKey: "${FP}"\n`, /duplicate node "gpu-node-1"/],
    ['path traversal in a key path', good.replace('./keys/id_ed25519', '../../etc/shadow'), /must not contain "\.\." segments/],
    ['a node name with shell metacharacters', good.replace('gpu-node-1', '"a;reboot"'), /valid Kubernetes node name/],
    ['a host that is not a host', good.replace('10.0.0.11', '"10.0.0.11; id"'), /host name or an IP/],
    ['an unknown key (typo)', good.replace('hostKey:', 'hostkey:'), /unrecognized key/i],
    ['a malformed fingerprint', good.replace(FP, 'MD5:aa:bb'), /SHA256 fingerprint/],
    ['broken YAML', 'nodes: [\n  - name: x\n', /not valid YAML/],
  ])('refuses %s with a clear error', (_what, text, why) => {
    expect(() => parseInventory(text, 'inv.yaml')).toThrow(InventoryError);
    expect(() => parseInventory(text, 'inv.yaml')).toThrow(why);
  });

  it('suggests close names for an unknown node', () => {
    const inv = parseInventory(good, 'inv.yaml');
    expect(() => resolveAccess(inv, 'gpu-node-3')).toThrow(UnknownNodeError);
    expect(() => resolveAccess(inv, 'gpu-node-3')).toThrow(/did you mean "gpu-node-1", "gpu-node-2"/);
  });
});
