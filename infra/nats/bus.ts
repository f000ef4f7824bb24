/**
 * The message bus on core NATS: msgpack bodies, queue groups, request-reply. A malformed
 * body is logged and dropped, never handed to an actor.
 */
import {
  type NatsConnection,
  NoRespondersError,
  RequestError,
  TimeoutError as NatsTimeoutError,
} from "@nats-io/nats-core";
import type { Bus, Caller, Logger } from "../../actors/ports.ts";
import { decodeMessage, encodeMessage, EventDecodeError, TimeoutError, UnavailableError } from "../../events/mod.ts";

/** The header a broker writes on requests that crossed from another account with `share: true`. */
const requestInfoHeader = "Nats-Request-Info";

/** The broker's word on where a request came from; an unreadable header counts as from outside. */
function callerOf(info: string | undefined): Caller | undefined {
  if (!info) return undefined;
  try {
    const parsed = JSON.parse(info) as { acc?: unknown; host?: unknown };
    return {
      account: typeof parsed.acc === "string" ? parsed.acc : "unknown",
      ...(typeof parsed.host === "string" ? { host: parsed.host } : {}),
    };
  } catch {
    return { account: "unknown" };
  }
}

export function natsBus(nc: NatsConnection, logger: Logger): Bus {
  return {
    publish(subject, data) {
      nc.publish(subject, encodeMessage(data));
    },
    subscribe(subject, handler, options = {}) {
      const subscription = nc.subscribe(subject, {
        queue: options.queue,
        callback: (error, message) => {
          if (error) return logger.warn("subscription ended", { subject, error: error.message });
          let data: unknown;
          try {
            data = decodeMessage(message.data);
          } catch (decodeError) {
            if (!(decodeError instanceof EventDecodeError)) throw decodeError;
            return logger.warn("dropped malformed message", { subject: message.subject, code: decodeError.code });
          }
          const caller = callerOf(message.headers?.get(requestInfoHeader));
          handler({
            subject: message.subject,
            data,
            ...(caller ? { caller } : {}),
            expectsReply: Boolean(message.reply),
            respond: (reply) => {
              if (!message.reply) return;
              try {
                message.respond(encodeMessage(reply));
              } catch (respondError) {
                // Too large for the broker, or the connection is closing: say so if possible, never throw at the caller.
                logger.warn("a reply could not be sent", { subject, reason: (respondError as Error).message });
                try {
                  message.respond(encodeMessage({
                    ok: false,
                    error: { code: "unavailable", message: "the reply could not be sent (too large?)" },
                  }));
                } catch {
                  // Nothing more can be said on this connection.
                }
              }
            },
          });
        },
      });
      return { unsubscribe: () => subscription.unsubscribe() };
    },
    async request(subject, data, options) {
      try {
        if (options.accept) return await firstAccepted(nc, subject, data, options.timeoutMs, options.accept);
        const reply = await nc.request(subject, encodeMessage(data), { timeout: options.timeoutMs });
        return decodeMessage(reply.data);
      } catch (error) {
        if (error instanceof NatsTimeoutError) {
          throw new TimeoutError(`no reply on ${subject} within ${options.timeoutMs} ms`, { cause: error });
        }
        if (error instanceof NoRespondersError || (error instanceof RequestError && error.isNoResponders())) {
          throw new UnavailableError(`nobody serves ${subject}`, { cause: error });
        }
        throw error;
      }
    },
  };
}

/** Reads every reply until one is accepted or the time is up (see `Bus.request`). */
async function firstAccepted(
  nc: NatsConnection,
  subject: string,
  data: unknown,
  timeoutMs: number,
  accept: (reply: unknown) => boolean,
): Promise<unknown> {
  let last: { reply: unknown } | undefined;
  const replies = await nc.requestMany(subject, encodeMessage(data), { strategy: "timer", maxWait: timeoutMs });
  for await (const message of replies) {
    let reply: unknown;
    try {
      reply = decodeMessage(message.data);
    } catch (decodeError) {
      if (!(decodeError instanceof EventDecodeError)) throw decodeError;
      continue;
    }
    if (accept(reply)) return reply;
    last = { reply };
  }
  if (last) return last.reply;
  throw new NatsTimeoutError();
}
