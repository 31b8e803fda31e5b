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
    expect(own).toEqual({
      leases: ['create', 'delete', 'get', 'update'],
      nodeincidents: ['create', 'get', 'list', 'patch'],
      'nodeincidents/status': ['update'],
      nodediagrails: ['create', 'get', 'update'],
      nodediagmessages: ['create', 'delete', 'list', 'patch', 'watch'],
    });
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

  it('declare the NodediagMessage resource the shared outbox keeps queued Slack posts in', () => {
    const crd = docs.find((d) => d.kind === 'CustomResourceDefinition' && d.spec.names.kind === 'NodediagMessage');
    expect(crd.metadata.name).toBe('nodediagmessages.nodediag.io');
    expect(crd.spec.scope).toBe('Namespaced');
    const v = crd.spec.versions.find((x: { storage: boolean }) => x.storage);
    expect(v.schema.openAPIV3Schema.properties.spec.required).toEqual(['seq', 'op', 'attempts', 'notBefore']);
  });

  it('run three replicas on the shared store, spread over nodes, one at a time disrupted, each with its own volume', () => {
    const set = docs.find((d) => d.kind === 'StatefulSet');
    expect(docs.some((d) => d.kind === 'Deployment')).toBe(false);
    expect(set.spec.replicas).toBe(3);
    const labels = set.spec.template.metadata.labels;
    const term = set.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(term.topologyKey).toBe('kubernetes.io/hostname');
    expect(term.labelSelector.matchLabels).toEqual(labels);
    const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pdb.spec.maxUnavailable).toBe(1);
    const mounts = set.spec.template.spec.containers[0].volumeMounts.map((m: { name: string }) => m.name);
    expect(set.spec.volumeClaimTemplates.map((t: { metadata: { name: string } }) => t.metadata.name)).toEqual(['state']);
    expect(mounts).toContain('state');
    expect(docs.find((d) => d.kind === 'Service' && d.metadata.name === set.spec.serviceName).spec.clusterIP).toBe('None');
    const cm = docs.find((d) => d.kind === 'ConfigMap');
    expect(cm.data).toMatchObject({ NODEDIAG_STORE: 'kube', NODEDIAG_LOCK_BACKEND: 'lease' });
  });

  it('probe the bot\'s /healthz and /readyz and run it unprivileged', () => {
    const dep = docs.find((d) => d.kind === 'StatefulSet');
    const c = dep.spec.template.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.resources.limits).toBeDefined();
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
  });

  it('expose /metrics to Prometheus: a ServiceMonitor that selects the Service and scrapes its named port', () => {
    const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'nodediag');
    const sm = docs.find((d) => d.kind === 'ServiceMonitor');
    const dep = docs.find((d) => d.kind === 'StatefulSet');
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
    expect([...m.oauth_config.scopes.bot].sort()).toEqual(['channels:history', 'chat:write', 'chat:write.public', 'commands', 'groups:history', 'usergroups:read']);
  });
});
