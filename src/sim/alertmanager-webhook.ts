/**
 * The body Alertmanager's webhook receiver posts for one firing alert on one
 * node (version 4 of its format), for the tests and the bench.
 */
export function firingAlertWebhook(node: string, alertname: string): string {
  const labels = { alertname, node, severity: 'critical' };
  return JSON.stringify({
    version: '4',
    groupKey: `{}:{alertname="${alertname}", node="${node}"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'nodediag',
    groupLabels: labels,
    commonLabels: labels,
    commonAnnotations: { summary: `${alertname} on ${node}` },
    externalURL: 'http://alertmanager.example:9093',
    alerts: [{ status: 'firing', labels, annotations: { summary: `${alertname} on ${node}` }, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: 'http://prometheus.example/graph', fingerprint: '' }],
  });
}
