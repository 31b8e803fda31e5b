/**
 * The Slack Web API adapter (@slack/web-api). Retries are the outbox's job,
 * so the client is told not to retry and to reject rate-limited calls
 * (by default it would pause its whole queue and retry for about 30 minutes,
 * with no request timeout); errors become {@link ChatError}s.
 */
import { ErrorCode, WebClient, LogLevel, type WebAPICallError } from '@slack/web-api';
import { ChatError, type ChatMessage, type ChatPort } from '../ports.js';

/** Slack error codes worth retrying. */
const TRANSIENT = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited']);

function toChatError(err: unknown): ChatError {
  const e = err as WebAPICallError & { retryAfter?: number; data?: { error?: string }; statusCode?: number };
  if (e.code === ErrorCode.RateLimitedError) return new ChatError('rate-limited', 'ratelimited', (e.retryAfter ?? 1) * 1000);
  if (e.code === ErrorCode.PlatformError) {
    const code = e.data?.error ?? 'unknown_error';
    return new ChatError(TRANSIENT.has(code) ? 'transient' : 'permanent', code);
  }
  if (e.code === ErrorCode.HTTPError) return new ChatError('transient', `http_${e.statusCode ?? 'error'}`);
  return new ChatError('transient', 'network_error');
}

/** Options of the Slack adapter. */
export interface SlackChatOptions {
  /** Web API base URL (GovSlack, or a test emulator); Slack's own by default. */
  apiUrl?: string;
  timeoutMs?: number;
}

/** Builds the WebClient with nodediag's retry policy (also used for Bolt's own client). */
export function slackClientOptions(opts: SlackChatOptions) {
  return {
    ...(opts.apiUrl ? { slackApiUrl: opts.apiUrl.endsWith('/') ? opts.apiUrl : `${opts.apiUrl}/` } : {}),
    timeout: opts.timeoutMs ?? 10_000,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
  };
}

/**
 * Whether a response_url may be called: Slack's own hooks over HTTPS, or the
 * host of a configured API URL (GovSlack, an emulator). Anything else is
 * refused, so a stored URL can never make the bot call elsewhere.
 */
export function isSlackResponseUrl(url: string, apiUrl?: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'https:' && /(^|\.)(slack\.com|slack-gov\.com)$/.test(u.hostname)) return true;
  return apiUrl !== undefined && u.origin === new URL(apiUrl).origin;
}

/** The metadata event type of the bot's posts, carrying the outbox key. */
export const MESSAGE_EVENT = 'nodediag_message';

export function createSlackChat(token: string, opts: SlackChatOptions = {}): ChatPort {
  const client = new WebClient(token, slackClientOptions(opts));
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw toChatError(err);
    }
  };
  const body = (m: ChatMessage) => ({ text: m.text, ...(m.blocks ? { blocks: m.blocks as never } : {}) });
  return {
    async post(channel, message, threadTs, key) {
      const r = await call(() =>
        client.chat.postMessage({
          channel,
          ...body(message),
          ...(threadTs ? { thread_ts: threadTs } : {}),
          ...(key ? { metadata: { event_type: MESSAGE_EVENT, event_payload: { key } } } : {}),
          unfurl_links: false,
          unfurl_media: false,
        }),
      );
      return { ts: String(r.ts) };
    },
    async findPosted(channel, key, threadTs, sinceMs) {
      // A minute of slack on both clocks; the post looked for was sent moments before its sender stopped.
      const oldest = String(Math.max(0, sinceMs - 60_000) / 1000);
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const r = threadTs
          ? await call(() => client.conversations.replies({ channel, ts: threadTs, oldest, include_all_metadata: true, limit: 200, ...(cursor ? { cursor } : {}) }))
          : await call(() => client.conversations.history({ channel, oldest, include_all_metadata: true, limit: 200, ...(cursor ? { cursor } : {}) }));
        const hit = (r.messages ?? []).find((m) => m.metadata?.event_type === MESSAGE_EVENT && (m.metadata.event_payload as { key?: string } | undefined)?.key === key);
        if (hit?.ts) return hit.ts;
        cursor = r.response_metadata?.next_cursor || undefined;
        if (!cursor) return undefined;
      }
      return undefined;
    },
    async update(channel, ts, message) {
      await call(() => client.chat.update({ channel, ts, ...body(message) }));
    },
    async postEphemeral(channel, user, message, threadTs) {
      await call(() => client.chat.postEphemeral({ channel, user, ...body(message), ...(threadTs ? { thread_ts: threadTs } : {}) }));
    },
    async openView(triggerId, view) {
      await call(() => client.views.open({ trigger_id: triggerId, view: view as never }));
    },
    async groupMembers(groupId) {
      const r = await call(() => client.usergroups.users.list({ usergroup: groupId }));
      return (r.users ?? []) as string[];
    },
    async respond(responseUrl, message) {
      if (!isSlackResponseUrl(responseUrl, opts.apiUrl)) throw new ChatError('permanent', 'bad_response_url');
      let res: Response;
      try {
        res = await fetch(responseUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, ...body(message) }),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        });
      } catch {
        throw new ChatError('transient', 'network_error');
      }
      // Slack answers 404 once a response_url has expired (30 minutes) or been used 5 times.
      if (!res.ok) throw new ChatError(res.status >= 500 || res.status === 429 ? 'transient' : 'permanent', `http_${res.status}`);
    },
  };
}
