/**
 * Message keys shared through the incident store: the replica that posts an
 * incident's card or an edited note records its Slack ts on the incident, so
 * that any replica can update the card or thread under it.
 */
import type { MessageDirectory } from './outbox.js';
import { ConflictError, type IncidentStore } from './store.js';

/** Keys other replicas may need: an incident's card and its edited notes. */
const SHARED_KEY = /^(inc-[0-9a-f]{16}):(?:msg|note:[\w.-]+)$/;

/** A {@link MessageDirectory} kept on the incidents themselves. */
export function incidentMessageDirectory(store: IncidentStore): MessageDirectory {
  return {
    async lookup(key) {
      const m = SHARED_KEY.exec(key);
      if (!m) return undefined;
      return (await store.get(m[1]!))?.messages?.[key];
    },
    async record(key, ts) {
      const m = SHARED_KEY.exec(key);
      if (!m) return;
      for (let attempt = 0; attempt < 8; attempt++) {
        const cur = await store.get(m[1]!);
        if (!cur || cur.messages?.[key] === ts) return;
        try {
          await store.put({ ...cur, messages: { ...cur.messages, [key]: ts }, version: cur.version + 1 });
          return;
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
      }
      throw new ConflictError(m[1]!);
    },
  };
}
