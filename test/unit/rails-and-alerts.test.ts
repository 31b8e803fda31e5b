import { alertKey, channelOfAlert, nodeOfAlert } from '../../src/alerts/alertmanager.js';
import { authorized } from '../../src/alerts/intake.js';
import { DEFAULT_NODE_LABELS } from '../../src/config.js';
import { budgetRefusal, parseDuration, stormNow, type LedgerEvent, type RailsConfig } from '../../src/rails/gates.js';

const MIN = 60_000;
const cfg: RailsConfig = { maxConcurrentFixes: 1, stormUnhealthyShare: 0.3, stormMinNodes: 2, stormIncidents: 10, stormWindowMs: 10 * MIN, retryBudget: 2, retryWindowMs: 24 * 60 * MIN };
const scope = (n: number) => new Set(Array.from({ length: n }, (_, i) => `n${i}`));
const ev = (node: string, kind: LedgerEvent['kind'], minutesAgo: number, now: number): LedgerEvent => ({ node, kind, at: now - minutesAgo * MIN });

describe('storm gate', () => {
  const now = 1_000 * MIN;
  it('engages above the unhealthy share, counting each node by its latest word inside the window', () => {
    const events = [ev('n0', 'unhealthy', 5, now), ev('n1', 'unhealthy', 4, now), ev('n2', 'unhealthy', 3, now), ev('n2', 'healthy', 1, now), ev('n3', 'unhealthy', 30, now)];
    // n0, n1 unhealthy now (2 of 6 = 33%); n2 recovered; n3 is outside the window.
    expect(stormNow(events, scope(6), now, cfg)).toMatchObject({ nodes: ['n0', 'n1'], why: expect.stringMatching(/^2 of 6 nodes \(33%\)/) });
    expect(stormNow(events, scope(7), now, cfg)).toBeNull();
  });

  it('one broken node in a small cluster is an incident, not a storm; names outside the inventory do not count', () => {
    expect(stormNow([ev('n0', 'unhealthy', 1, now)], scope(2), now, cfg)).toBeNull();
    expect(stormNow([ev('n0', 'unhealthy', 1, now), ev('ghost-1', 'unhealthy', 1, now), ev('ghost-2', 'unhealthy', 1, now)], scope(4), now, cfg)).toBeNull();
  });

  it('engages when more incidents opened in the window than allowed, however big the fleet', () => {
    const opened = Array.from({ length: 11 }, (_, i) => ev(`n${i}`, 'incident-opened', 2, now));
    expect(stormNow(opened, scope(1000), now, cfg)).toMatchObject({ why: '11 incidents opened in the last 10 min, above 10' });
    expect(stormNow(opened.slice(1), scope(1000), now, cfg)).toBeNull();
  });
});

describe('retry budget', () => {
  const now = 10_000 * MIN;
  it('refuses once the node had its runs inside the window; older runs do not count', () => {
    const runs = [ev('n0', 'fix-run', 60 * 25, now), ev('n0', 'fix-run', 60, now)];
    expect(budgetRefusal(runs, 'n0', now, cfg)).toBeNull();
    expect(budgetRefusal([...runs, ev('n0', 'fix-run', 5, now)], 'n0', now, cfg)).toMatch(/^2 fix runs on n0 in the last 24 h \(the budget is 2\)/);
    expect(budgetRefusal([...runs, ev('n0', 'fix-run', 5, now)], 'n1', now, cfg)).toBeNull();
  });
});

describe('pause durations', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 30 * MIN],
    ['2h', 120 * MIN],
    ['7d', 7 * 24 * 60 * MIN],
  ])('%s → %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['30s', '8d', '0m', 'forever', '1.5h', '-1h', ''])('%s is refused', (text) => expect(parseDuration(text)).toBeNull());
});

describe('alert routing', () => {
  const routing = { nodeLabels: DEFAULT_NODE_LABELS, channelByReceiver: { 'gpu-team': 'C0GPU' }, defaultChannel: 'C0DEFAULT', channelLabel: 'slack_channel' };
  it('finds the node by the first label present; instance loses its port (IPv6 too)', () => {
    expect(nodeOfAlert({ labels: { node: 'GPU-Node-7', instance: 'x:9100' } }, routing)).toBe('gpu-node-7');
    expect(nodeOfAlert({ labels: { instance: 'gpu-node-7.example.com:9100' } }, routing)).toBe('gpu-node-7.example.com');
    expect(nodeOfAlert({ labels: { instance: '[fd00::7]:9100' } }, routing)).toBe('fd00::7');
    expect(nodeOfAlert({ labels: { alertname: 'Watchdog' } }, routing)).toBeNull();
  });
  it('picks the channel by label (a channel id only), then receiver, then the default', () => {
    expect(channelOfAlert({ labels: { slack_channel: 'C0LABEL' } }, 'gpu-team', routing)).toBe('C0LABEL');
    expect(channelOfAlert({ labels: { slack_channel: '#general' } }, 'gpu-team', routing)).toBe('C0GPU');
    expect(channelOfAlert({ labels: {} }, 'other', routing)).toBe('C0DEFAULT');
  });
  it('keys an alert by its fingerprint, else by its sorted labels', () => {
    expect(alertKey({ labels: { a: '1' }, fingerprint: '0123456789abcdef' })).toBe('0123456789abcdef');
    expect(alertKey({ labels: { b: '2', a: '1' } })).toBe(alertKey({ labels: { a: '1', b: '2' } }));
  });
});

describe('webhook credentials', () => {
  it('accepts exactly the configured bearer token or basic user:password', () => {
    expect(authorized('Bearer t0k', { token: 't0k' })).toBe(true);
    expect(authorized('bearer t0k', { token: 't0k' })).toBe(true);
    expect(authorized('Bearer t0k2', { token: 't0k' })).toBe(false);
    expect(authorized(`Basic ${Buffer.from('am:pw:with:colons').toString('base64')}`, { basicAuth: 'am:pw:with:colons' })).toBe(true);
    expect(authorized(`Basic ${Buffer.from('am:nope').toString('base64')}`, { basicAuth: 'am:pw' })).toBe(false);
    expect(authorized('Bearer pw', { basicAuth: 'am:pw' })).toBe(false);
    expect(authorized(undefined, { token: 't0k' })).toBe(false);
  });
});
