/**
 * Serving the commands clients send on `veil.cmd.<name>`. All servers serve them in one
 * queue group, so NATS spreads the load; a command only the leader may answer is forwarded
 * by whichever server got it to `veil.lead.<name>`, which only the leader serves.
 *
 * Every command but `cluster.keys` (which hands out the cluster's public keys) is sealed to
 * the cluster's key, and its reply sealed for the one who asked (see sealed-command.ts).
 */
import type { Bus, Caller, Clock, Logger, RandomSource, Subscription } from "../ports.ts";
import { CommandOpener, type KeyPair, RefusedCommand, type ReplayWindow } from "../crypto/mod.ts";
import {
  clusterKeysCommand,
  commandQueue,
  type CommandReply,
  commandSubjectsAll,
  failureReply,
  leaderCommandQueue,
  leaderCommandSubject,
  leaderCommandSubjectsAll,
  limits,
  readReply,
} from "../../events/mod.ts";

/** What a handler knows of a request besides its body. */
export interface CommandContext {
  /** The broker's word on who sent it: set for users' machines, absent inside the trusted account. */
  readonly caller?: Caller;
}

export type CommandHandler = (data: unknown, context: CommandContext) => unknown;

async function answer(handler: CommandHandler, data: unknown, context: CommandContext): Promise<CommandReply> {
  try {
    return { ok: true, value: await handler(data, context) };
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
  /** Commands only the trusted account may send (operators, storage nodes), never a user's machine. */
  trustedCommands?: ReadonlySet<string>;
  /** The cluster's sealing key pair, and the nonces seen (shared by the servers of one process). */
  sealing: {
    readonly keys: KeyPair;
    readonly replays: ReplayWindow;
    readonly clock: Clock;
    readonly random: RandomSource;
  };
  /** Counts work in progress, for heartbeats. */
  track: <T>(work: Promise<T>) => Promise<T>;
}): Subscription {
  const { bus, logger, commands, leaderCommands, track, trustedCommands = new Set(), sealing } = options;
  const opener = new CommandOpener(sealing.keys.privateKey, sealing.replays);
  return bus.subscribe(commandSubjectsAll, (message) => {
    // A command is a request: one published with nowhere to answer is a flood, not a user, and
    // must not take a place in the replay window.
    if (!message.expectsReply) return;
    const name = message.subject.slice("veil.cmd.".length);
    const forward: CommandHandler = (data) =>
      bus.request(leaderCommandSubject(name), data, { timeoutMs: limits.commandTimeoutMs })
        .then((reply) => readReply(reply, leaderCommandSubject(name)));
    const handler = leaderCommands.has(name) ? forward : commands[name];
    if (!handler) {
      logger.debug("unknown command", { subject: message.subject });
      return message.respond({ ok: false, error: { code: "not-found", message: `unknown command ${name}` } });
    }
    if (message.caller && trustedCommands.has(name)) {
      return message.respond({
        ok: false,
        error: { code: "forbidden", message: `${name} is for the cluster's operators, not for users' machines` },
      });
    }
    const context = message.caller ? { caller: message.caller } : {};
    if (name === clusterKeysCommand) {
      return void track(answer(handler, message.data, context)).then((reply) => message.respond(reply));
    }
    let opened;
    try {
      // Each address (or the trusted account) has its share of the replay window.
      const source = message.caller ? message.caller.host ?? message.caller.account : undefined;
      opened = opener.open(name, message.data, { now: sealing.clock.now(), random: sealing.random, source });
    } catch (error) {
      // Nothing was done. Refused after opening, the refusal is sealed for the one who asked;
      // a request that does not open cannot be answered for anyone.
      if (error instanceof RefusedCommand) return message.respond(error.sealReply(failureReply(error.reason)));
      return message.respond(failureReply(error));
    }
    void track(answer(handler, opened.data, context)).then((reply) => message.respond(opened.sealReply(reply)));
  }, { queue: commandQueue });
}

/** Serves `veil.lead.>` while this node leads. */
export function serveLeaderCommands(options: {
  bus: Bus;
  commands: Readonly<Record<string, CommandHandler>>;
  track: <T>(work: Promise<T>) => Promise<T>;
}): Subscription {
  const { bus, commands, track } = options;
  return bus.subscribe(leaderCommandSubjectsAll, (message) => {
    const name = message.subject.slice("veil.lead.".length);
    const handler = commands[name];
    if (!handler) {
      return message.respond({ ok: false, error: { code: "not-found", message: `unknown leader command ${name}` } });
    }
    void track(answer(handler, message.data, {})).then((reply) => message.respond(reply));
  }, { queue: leaderCommandQueue });
}
