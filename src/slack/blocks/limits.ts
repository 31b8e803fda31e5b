/**
 * Slack's Block Kit limits, and helpers that keep every message inside them:
 * long evidence and output are cut with a note, never rejected by Slack.
 * Pure.
 */

/** Limits from Slack's Block Kit reference. */
export const LIMITS = {
  blocksPerMessage: 50,
  blocksPerModal: 100,
  sectionText: 3000,
  sectionFields: 10,
  fieldText: 2000,
  headerText: 150,
  contextElements: 10,
  contextText: 2000,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  actionId: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  modalTitle: 24,
  modalButton: 24,
  privateMetadata: 3000,
  callbackId: 255,
  /** The fallback `text` of a message is cut by Slack beyond this. */
  messageText: 4000,
} as const;

/** Escapes text for mrkdwn (Slack treats &, < and > specially). */
export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Cuts text to a length, saying so. */
export function clip(text: string, max: number, note = '… (cut)'): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - note.length))}${note}`;
}

/** A fenced code block whose content is cut so the whole fits in `max`. */
export function code(text: string, max: number = LIMITS.sectionText): string {
  const body = esc(text.replace(/```/g, "'''")) || ' ';
  const note = '\n… (cut: see the audit log for the full output)';
  const room = max - 8;
  return `\`\`\`${body.length <= room ? body : `${body.slice(0, room - note.length)}${note}`}\`\`\``;
}

export type Block = Record<string, unknown>;

export function section(text: string): Block {
  return { type: 'section', text: { type: 'mrkdwn', text: clip(text, LIMITS.sectionText) } };
}

export function header(text: string): Block {
  return { type: 'header', text: { type: 'plain_text', text: clip(text, LIMITS.headerText), emoji: true } };
}

export function context(...texts: string[]): Block {
  return { type: 'context', elements: texts.slice(0, LIMITS.contextElements).map((t) => ({ type: 'mrkdwn', text: clip(t, LIMITS.contextText) })) };
}

export function divider(): Block {
  return { type: 'divider' };
}

/** Keeps a message within the block limit: the tail is replaced by a note. */
export function fitBlocks(blocks: Block[], max: number = LIMITS.blocksPerMessage): Block[] {
  if (blocks.length <= max) return blocks;
  const actions = blocks.filter((b) => b.type === 'actions').slice(-1);
  const kept = blocks.filter((b) => b.type !== 'actions').slice(0, max - 1 - actions.length);
  return [...kept, context(`… ${blocks.length - kept.length - actions.length} more block(s) cut to stay within Slack's limits`), ...actions];
}

/** Every limit a message (or modal) breaks; empty when it is valid. Used by tests and as a guard. */
export function limitProblems(message: { text?: string; blocks?: unknown[] }, kind: 'message' | 'modal' = 'message'): string[] {
  const p: string[] = [];
  const blocks = (message.blocks ?? []) as Block[];
  const maxBlocks = kind === 'modal' ? LIMITS.blocksPerModal : LIMITS.blocksPerMessage;
  if (blocks.length > maxBlocks) p.push(`${blocks.length} blocks > ${maxBlocks}`);
  if ((message.text ?? '').length > LIMITS.messageText) p.push(`text ${message.text!.length} > ${LIMITS.messageText}`);
  const textOf = (t: unknown) => ((t as { text?: string })?.text ?? '').length;
  blocks.forEach((b, i) => {
    const at = `blocks[${i}] (${String(b.type)})`;
    if (b.type === 'section') {
      if (textOf(b.text) > LIMITS.sectionText) p.push(`${at}: text ${textOf(b.text)} > ${LIMITS.sectionText}`);
      const fields = (b.fields as unknown[]) ?? [];
      if (fields.length > LIMITS.sectionFields) p.push(`${at}: ${fields.length} fields`);
      for (const f of fields) if (textOf(f) > LIMITS.fieldText) p.push(`${at}: field ${textOf(f)} > ${LIMITS.fieldText}`);
      if (!b.text && fields.length === 0) p.push(`${at}: empty section`);
    }
    if (b.type === 'header' && textOf(b.text) > LIMITS.headerText) p.push(`${at}: ${textOf(b.text)} > ${LIMITS.headerText}`);
    if (b.type === 'context') {
      const els = (b.elements as unknown[]) ?? [];
      if (els.length === 0 || els.length > LIMITS.contextElements) p.push(`${at}: ${els.length} elements`);
      for (const e of els) if (textOf(e) > LIMITS.contextText) p.push(`${at}: element ${textOf(e)} > ${LIMITS.contextText}`);
    }
    if (b.type === 'actions') {
      const els = (b.elements as Array<Record<string, unknown>>) ?? [];
      if (els.length === 0 || els.length > LIMITS.actionsElements) p.push(`${at}: ${els.length} elements`);
      for (const e of els) {
        if (textOf(e.text) > LIMITS.buttonText) p.push(`${at}: button text > ${LIMITS.buttonText}`);
        if (String(e.value ?? '').length > LIMITS.buttonValue) p.push(`${at}: button value > ${LIMITS.buttonValue}`);
        if (String(e.action_id ?? '').length > LIMITS.actionId) p.push(`${at}: action_id > ${LIMITS.actionId}`);
        const c = e.confirm as Record<string, unknown> | undefined;
        if (c && (textOf(c.title) > LIMITS.confirmTitle || textOf(c.text) > LIMITS.confirmText || textOf(c.confirm) > LIMITS.confirmButton || textOf(c.deny) > LIMITS.confirmButton)) {
          p.push(`${at}: confirm dialog over limits`);
        }
      }
    }
  });
  return p;
}
