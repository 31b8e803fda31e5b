/** The deployment files agree with the code. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { ENV_KEYS } from '../../src/config.js';

const root = join(process.cwd());
const k8sDir = join(root, 'manifests', 'kubernetes');
const docs = readdirSync(k8sDir).flatMap((f) => parseAllDocuments(readFileSync(join(k8sDir, f), 'utf8')).map((d) => d.toJS()));

describe('deployment files', () => {
  it('parse as YAML', () => {
    expect(docs.length).toBeGreaterThan(8);
    expect(docs.every((d) => d && d.kind && d.apiVersion)).toBe(true);
  });

  it('grant exactly the Kubernetes verbs the adapter uses', () => {
    const role = docs.find((d) => d.kind === 'ClusterRole');
    const rules = Object.fromEntries(role.rules.map((r: { resources: string[]; verbs: string[] }) => [r.resources[0], [...r.verbs].sort()]));
    expect(rules).toEqual({ nodes: ['get', 'list', 'patch', 'watch'], pods: ['delete', 'list'], 'pods/eviction': ['create'], events: ['list'] });
    const leases = docs.find((d) => d.kind === 'Role');
    expect(leases.rules[0]).toMatchObject({ apiGroups: ['coordination.k8s.io'], resources: ['leases'] });
    const own = Object.fromEntries(leases.rules.map((r: { resources: string[]; verbs: string[] }) => [r.resources[0], [...r.verbs].sort()]));
    expect(own).toMatchObject({ nodeincidents: ['create', 'get', 'list', 'patch'], 'nodeincidents/status': ['update'], nodediagrails: ['create', 'get', 'update'] });
  });

  it('declare the NodeIncident resource the kube store writes, with its status subresource and columns', () => {
    const crd = docs.find((d) => d.kind === 'CustomResourceDefinition' && d.spec.names.kind === 'NodeIncident');
    expect(crd.metadata.name).toBe('nodeincidents.nodediag.io');
    expect(crd.spec.scope).toBe('Namespaced');
    const v = crd.spec.versions.find((x: { storage: boolean }) => x.storage);
    expect(v.subresources).toEqual({ status: {} });
    expect(v.additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual(['Node', 'Finding', 'State', 'Requester', 'Approver', 'Cluster', 'Age']);
  });

  it('declare the NodediagRails resource the replicas share the pause and the rails events in', () => {
    const crd = docs.find((d) => d.kind === 'CustomResourceDefinition' && d.spec.names.kind === 'NodediagRails');
    expect(crd.metadata.name).toBe('nodediagrails.nodediag.io');
    expect(crd.spec.scope).toBe('Namespaced');
    const v = crd.spec.versions.find((x: { storage: boolean }) => x.storage);
    expect(v.schema.openAPIV3Schema.properties.spec.properties.events.items.properties.kind.enum).toEqual(['incident-opened', 'unhealthy', 'healthy', 'fix-run']);
  });

  it('probe the bot\'s /healthz and /readyz and run it unprivileged', () => {
    const dep = docs.find((d) => d.kind === 'Deployment');
    const c = dep.spec.template.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.resources.limits).toBeDefined();
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
  });

  it('expose /metrics to Prometheus: a ServiceMonitor that selects the Service and scrapes its named port', () => {
    const svc = docs.find((d) => d.kind === 'Service');
    const sm = docs.find((d) => d.kind === 'ServiceMonitor');
    const dep = docs.find((d) => d.kind === 'Deployment');
    expect(sm.spec.selector.matchLabels).toEqual(svc.metadata.labels);
    const port = sm.spec.endpoints[0].port;
    expect(svc.spec.ports.map((p: { name: string }) => p.name)).toContain(port);
    expect(sm.spec.endpoints[0].path).toBe('/metrics');
    expect(dep.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name)).toContain(svc.spec.ports[0].targetPort);
  });

  it('only set variables the code reads, and .env.example documents every one', () => {
    const cm = docs.find((d) => d.kind === 'ConfigMap');
    for (const key of Object.keys(cm.data).filter((k) => k === k.toUpperCase())) expect(ENV_KEYS).toContain(key);
    const example = readFileSync(join(root, '.env.example'), 'utf8');
    for (const key of ENV_KEYS) expect(example).toMatch(new RegExp(`^${key}=`, 'm'));
  });

  it('declare /diag, interactivity and the scopes the bot uses in the Slack app manifest', () => {
    const m = parse(readFileSync(join(root, 'manifests', 'slack-app.yaml'), 'utf8'));
    expect(m.features.slash_commands[0].command).toBe('/diag');
    expect(m.settings.interactivity.is_enabled).toBe(true);
    expect(m.settings.socket_mode_enabled).toBe(true);
    expect([...m.oauth_config.scopes.bot].sort()).toEqual(['chat:write', 'chat:write.public', 'commands', 'usergroups:read']);
  });
});
