/**
 * Commands clients send on `veil.cmd.<name>`. All servers serve them in one queue group, so
 * NATS spreads the load; a command only the leader may answer is forwarded by whichever
 * server got it to `veil.lead.<name>`, which only the leader serves. Replies are msgpack
 * `{ok: true, value}` or `{ok: false, error: {code, message}}`.
 */
import type { Bus, Logger, Subscription } from "../../actors/ports.ts";
import {
  type ErrorCode,
  errorFromCode,
  limits,
  object,
  string,
  UnavailableError,
  VeilError,
} from "../../events/mod.ts";

export type CommandReply =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string } };

export type CommandHandler = (data: unknown) => unknown;

export const commandQueue = "veil-servers";
export const commandSubject = (name: string) => `veil.cmd.${name}`;
export const leaderCommandSubject = (name: string) => `veil.lead.${name}`;

/** The reply for a failure: a typed error keeps its code; anything else is the server's own failure. */
export function failureReply(error: unknown): CommandReply {
  if (error instanceof VeilError) return { ok: false, error: { code: error.code, message: error.message } };
  return { ok: false, error: { code: "unavailable", message: `the server failed: ${(error as Error).message}` } };
}

async function answer(handler: CommandHandler, data: unknown): Promise<CommandReply> {
  try {
    return { ok: true, value: await handler(data) };
  } catch (error) {
    return failureReply(error);
  }
}

/** Serves `veil.cmd.>`: local commands directly, leader-only ones by forwarding to the leader. */
export function serveCommands(options: {
  bus: Bus;
  logger: Logger;
  commands: Readonly<Record<string, CommandHandler>>;
  leaderCommands: ReadonlySet<string>;
  /** Counts work in progress, for heartbeats. */
  track: <T>(work: Promise<T>) => Promise<T>;
}): Subscription {
  const { bus, logger, commands, leaderCommands, track } = options;
  return bus.subscribe("veil.cmd.>", (message) => {
    const name = message.subject.slice("veil.cmd.".length);
    const forward: CommandHandler = (data) =>
      bus.request(leaderCommandSubject(name), data, { timeoutMs: limits.commandTimeoutMs })
        .then((reply) => readReply(reply, leaderCommandSubject(name)));
    const handler = leaderCommands.has(name) ? forward : commands[name];
    if (!handler) {
      logger.debug("unknown command", { subject: message.subject });
      return message.respond({ ok: false, error: { code: "not-found", message: `unknown command ${name}` } });
    }
    void track(answer(handler, message.data)).then((reply) => message.respond(reply));
  }, { queue: commandQueue });
}

/** Serves `veil.lead.>` while this node leads. */
export function serveLeaderCommands(options: {
  bus: Bus;
  commands: Readonly<Record<string, CommandHandler>>;
  track: <T>(work: Promise<T>) => Promise<T>;
}): Subscription {
  const { bus, commands, track } = options;
  return bus.subscribe("veil.lead.>", (message) => {
    const name = message.subject.slice("veil.lead.".length);
    const handler = commands[name];
    if (!handler) {
      return message.respond({ ok: false, error: { code: "not-found", message: `unknown leader command ${name}` } });
    }
    void track(answer(handler, message.data)).then((reply) => message.respond(reply));
  }, { queue: "veil-leader" });
}

const failure = object({ code: string({ lengthMin: 1, lengthMax: 64 }), message: string({ lengthMax: 4_096 }) });

/** A reply as it came off the wire: checked before anything trusts it. */
export function readReply(reply: unknown, subject: string): unknown {
  const typed = reply as Partial<CommandReply> | null;
  if (typed?.ok === true) return typed.value;
  let error: { code: string; message: string } | undefined;
  try {
    if (typed?.ok === false) error = failure.parse(typed.error);
  } catch {
    // Falls through to the malformed-reply error below.
  }
  if (error) throw errorFromCode(error.code as ErrorCode, error.message);
  throw new UnavailableError(`${subject} answered with a malformed reply`);
}

/** The client side: sends a command and returns its value, or throws its typed error. */
export async function sendCommand(
  bus: Bus,
  name: string,
  data: unknown = {},
  options: { timeoutMs?: number } = {},
): Promise<unknown> {
  const subject = commandSubject(name);
  const timeoutMs = options.timeoutMs ?? limits.commandTimeoutMs;
  return readReply(await bus.request(subject, data, { timeoutMs }), subject);
}
