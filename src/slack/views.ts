/** The incident views in Slack's Block Kit (see incidents/views.ts). */
import type { IncidentViews } from '../incidents/views.js';
import { incidentMessage } from './blocks/incident-message.js';
import { fleetMessage, undeliverableMessage } from './blocks/replies.js';
import { approvalModal, decisionMessage, dryRunMessage, requestedMessage, stepFinishedMessage, stepStartedMessage, summaryMessage } from './blocks/thread-messages.js';

export const slackViews: IncidentViews = {
  card: (inc, pause) => incidentMessage(inc, { pause }),
  requested: requestedMessage,
  decision: decisionMessage,
  dryRun: dryRunMessage,
  approvalDialog: approvalModal,
  stepStarted: stepStartedMessage,
  stepFinished: stepFinishedMessage,
  summary: summaryMessage,
  fleet: fleetMessage,
  undeliverable: undeliverableMessage,
  paused: (by, until, reason) => ({
    text: `:double_vertical_bar: <@${by}> paused every nodediag fix until ${until.slice(0, 16).replace('T', ' ')} UTC: ${reason}. Diagnoses go on; approvals wait. \`/diag resume\` ends it.`,
  }),
  resumed: (by, pausedBy, reason) => ({ text: `:arrow_forward: <@${by}> resumed nodediag fixes (paused by <@${pausedBy}>: ${reason}).` }),
};
