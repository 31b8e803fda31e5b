import { fieldsOf, type FixOffer, type Incident, type IncidentState } from '../../src/incidents/incident.js';
import { isRefusal, transition, type IncidentEvent } from '../../src/incidents/transitions.js';

const NOW = Date.parse('2026-11-30T12:00:00Z');
const STATES: IncidentState[] = ['diagnosing', 'awaiting-approval', 'approved', 'running', 'fixed', 'failed', 'aborted', 'not-needed', 'rejected', 'expired', 'interrupted', 'closed'];
const storm = { nodes: ['a', 'b'], why: '2 of 4 nodes (50%) are unhealthy' };
const plan = { runbook: 'containerd-down', finding: 'containerd-down', node: 'n1', inputs: {}, hash: 'f'.repeat(64), title: 't', impact: 'i', stepTitles: ['s1', 's2'] } as unknown as FixOffer['plan'];
const outcome = (result: string) => ({ result, summary: 'done', steps: [], followUps: [], auditRange: null });

/** An incident in any state, with every field a state might hold (the machine takes what the state keeps). */
function incident(state: IncidentState, over: Record<string, unknown> = {}): Incident {
  return {
    id: 'inc-0123456789abcdef',
    version: 3,
    node: 'n1',
    channel: 'C1',
    messageKey: 'inc-0123456789abcdef:msg',
    threadKey: 'inc-0123456789abcdef:msg',
    requester: 'U0REQ',
    createdAt: '2026-11-30T11:59:00Z',
    state,
    plan,
    expiresAt: '2026-11-30T12:10:00Z',
    approvalsNeeded: 1,
    approvals: [],
    ...(['approved', 'running', 'fixed', 'failed', 'aborted', 'not-needed', 'interrupted'].includes(state) ? { approvedBy: 'U0APP', approvedAt: '2026-11-30T11:59:30Z' } : {}),
    ...(state === 'running' ? { progress: { step: 1, total: 2, title: 's1' } } : {}),
    ...(state === 'rejected' ? { rejectedBy: 'U0APP' } : {}),
    ...(['fixed', 'failed', 'aborted', 'not-needed'].includes(state) ? { outcome: outcome(state) } : {}),
    timeline: [],
    ...over,
  } as Incident;
}

/** One of each event (the approval is by a second person; expiry is asked after the window). */
const EVENTS: Record<IncidentEvent['type'], IncidentEvent> = {
  diagnosed: { type: 'diagnosed', result: { plan, expiresAt: '2026-11-30T12:15:00Z', summary: 'diagnosed: containerd-down' } },
  'storm-engaged': { type: 'storm-engaged', storm },
  approve: { type: 'approve', user: 'U0APP', runbook: 'containerd-down', planHash: 'ffffffffffff', storm: null },
  reject: { type: 'reject', user: 'U0APP' },
  expire: { type: 'expire' },
  queue: { type: 'queue', waitingFor: ['n2'] },
  'not-started': { type: 'not-started', why: 'paused' },
  start: { type: 'start', total: 2 },
  progress: { type: 'progress', step: 2, total: 2, title: 's2' },
  finish: { type: 'finish', outcome: outcome('fixed'), what: 'the fix ended: fixed' },
  'follow-up': { type: 'follow-up', id: 'inc-fedcba9876543210' },
  undeliverable: { type: 'undeliverable', code: 'not_in_channel' },
  interrupt: { type: 'interrupt' },
  alerts: { type: 'alerts', alerts: { k: { name: 'A', status: 'resolved', at: '2026-11-30T12:00:00Z' } }, what: 'alert A resolved' },
};

const TERMINAL = ['fixed', 'failed', 'aborted', 'not-needed', 'rejected', 'expired', 'interrupted', 'closed'] as const;

/** The state after each allowed (state, event); every pair not listed is refused. Written out, not derived from the code. */
const ALLOWED: Array<[IncidentState, IncidentEvent['type'], IncidentState]> = [
  ['diagnosing', 'diagnosed', 'awaiting-approval'],
  ['diagnosing', 'interrupt', 'closed'],
  ['diagnosing', 'undeliverable', 'diagnosing'],
  ['diagnosing', 'alerts', 'diagnosing'],
  ['awaiting-approval', 'storm-engaged', 'awaiting-approval'],
  ['awaiting-approval', 'approve', 'approved'],
  ['awaiting-approval', 'reject', 'rejected'],
  ['awaiting-approval', 'undeliverable', 'closed'],
  ['awaiting-approval', 'alerts', 'awaiting-approval'],
  ['approved', 'queue', 'approved'],
  ['approved', 'not-started', 'aborted'],
  ['approved', 'start', 'running'],
  ['approved', 'finish', 'fixed'],
  ['approved', 'interrupt', 'interrupted'],
  ['approved', 'undeliverable', 'approved'],
  ['approved', 'alerts', 'approved'],
  ['running', 'progress', 'running'],
  ['running', 'finish', 'fixed'],
  ['running', 'interrupt', 'interrupted'],
  ['running', 'undeliverable', 'running'],
  ['running', 'alerts', 'running'],
  ...TERMINAL.flatMap((s) => [
    [s, 'follow-up', s],
    [s, 'undeliverable', s],
    [s, 'alerts', s],
  ] as Array<[IncidentState, IncidentEvent['type'], IncidentState]>),
];

describe('the incident state machine', () => {
  const cases = STATES.flatMap((s) => (Object.keys(EVENTS) as Array<IncidentEvent['type']>).map((e) => [s, e] as const));

  it.each(cases)('%s + %s', (state, type) => {
    const before = incident(state);
    const frozen = JSON.stringify(before);
    const next = transition(before, EVENTS[type], NOW);
    expect(JSON.stringify(before)).toBe(frozen);
    const allowed = ALLOWED.find(([s, e]) => s === state && e === type);
    if (!allowed) {
      expect(isRefusal(next)).toBe(true);
      return;
    }
    expect(isRefusal(next)).toBe(false);
    expect((next as Incident).state).toBe(allowed[2]);
  });

  it('covers every state and every event', () => {
    expect(cases).toHaveLength(STATES.length * Object.keys(EVENTS).length);
  });

  it('a diagnosis without a plan, past the retry budget, or for a card Slack refused offers nothing', () => {
    const noPlan = transition(incident('diagnosing'), { type: 'diagnosed', result: { summary: 'healthy' } }, NOW) as Incident;
    expect(noPlan.state).toBe('closed');
    const spent = transition(incident('diagnosing'), { type: 'diagnosed', result: { plan, expiresAt: '2026-11-30T12:15:00Z', escalation: '2 fix runs on n1', summary: 's' } }, NOW) as Incident;
    expect([spent.state, fieldsOf(spent).escalation]).toEqual(['closed', '2 fix runs on n1']);
    const unseen = transition(incident('diagnosing', { undeliverable: 'not_in_channel' }), EVENTS.diagnosed, NOW) as Incident;
    expect(unseen.state).toBe('closed');
    const held = transition(incident('diagnosing'), { type: 'diagnosed', result: { plan, expiresAt: '2026-11-30T12:15:00Z', storm, summary: 's' } }, NOW) as Incident;
    expect([held.state, fieldsOf(held).approvalsNeeded, fieldsOf(held).storm]).toEqual(['awaiting-approval', 2, storm]);
  });

  it('in a storm, two different approvers: the first stays waiting, the same one again is refused, the second approves', () => {
    const held = incident('awaiting-approval', { storm, approvalsNeeded: 2 });
    const one = transition(held, { ...EVENTS.approve, user: 'U1' } as IncidentEvent, NOW) as Incident;
    expect([one.state, fieldsOf(one).approvals]).toEqual(['awaiting-approval', ['U1']]);
    expect(isRefusal(transition(one, { ...EVENTS.approve, user: 'U1' } as IncidentEvent, NOW))).toBe(true);
    const two = transition(one, { ...EVENTS.approve, user: 'U2' } as IncidentEvent, NOW) as Incident;
    expect([two.state, fieldsOf(two).approvedBy, fieldsOf(two).approvals]).toEqual(['approved', 'U2', ['U1', 'U2']]);
  });

  it('a storm that begins after the card was offered raises the approvals needed at the approval', () => {
    const one = transition(incident('awaiting-approval'), { ...EVENTS.approve, storm } as IncidentEvent, NOW) as Incident;
    expect([one.state, fieldsOf(one).approvalsNeeded, fieldsOf(one).storm]).toEqual(['awaiting-approval', 2, storm]);
  });

  it('an approval after the window is refused; expiry is refused before it', () => {
    const late = Date.parse('2026-11-30T12:10:00Z');
    expect(isRefusal(transition(incident('awaiting-approval'), EVENTS.approve, late))).toBe(true);
    expect(isRefusal(transition(incident('awaiting-approval'), EVENTS.expire, NOW))).toBe(true);
    expect((transition(incident('awaiting-approval'), EVENTS.expire, late) as Incident).state).toBe('expired');
  });

  it('says why a second click is refused, per state', () => {
    expect(transition(incident('running'), EVENTS.approve, NOW)).toEqual({ reason: 'This fix is already running.' });
    expect(transition(incident('rejected'), EVENTS.reject, NOW)).toEqual({ reason: 'This fix was rejected.' });
  });

  it('an interrupted run keeps the step the audit log says was in flight', () => {
    const next = transition(incident('running'), { type: 'interrupt', lastStep: { index: 2, title: 's2' } }, NOW) as Incident;
    expect([next.state, fieldsOf(next).progress]).toEqual(['interrupted', { step: 2, total: 2, title: 's2' }]);
  });

  it('a finished run stores its outcome and drops the progress', () => {
    const next = transition(incident('running'), { type: 'finish', outcome: outcome('failed'), what: 'x' }, NOW) as Incident;
    expect([next.state, fieldsOf(next).outcome?.summary, fieldsOf(next).progress]).toEqual(['failed', 'done', undefined]);
  });
});
