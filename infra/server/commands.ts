/**
 * Commands clients send on `veil.cmd.<name>`. All servers serve them in one queue group, so
 * NATS spreads the load; a command only the leader may answer is forwarded by whichever
 * server got it to `veil.lead.<name>`, which only the leader serves. Replies are msgpack
 * `{ok: true, value}` or `{ok: false, error: {code, message}}`.
 *
 * Every command but `cluster.keys` (which hands out the cluster's public keys) is sealed to
 * the cluster's key, and its reply sealed for the one who asked (see sealed-command.ts).
 */
import type { Bus, Caller, Clock, Logger, RandomSource, Subscription } from "../../actors/ports.ts";
import {
  CommandOpener,
  CommandSealer,
  type KeyPair,
  RefusedCommand,
  type ReplayWindow,
} from "../../actors/crypto/mod.ts";
import { cryptoRandom } from "../random.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  clusterKeysReply,
  type ErrorCode,
  errorFromCode,
  ForbiddenError,
  type Infer,
  limits,
  object,
  string,
  UnavailableError,
  VeilError,
} from "../../events/mod.ts";

export type CommandReply =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string } };

/** What a handler knows of a request besides its body. */
export interface CommandContext {
  /** The broker's word on who sent it: set for users' machines, absent inside the trusted account. */
  readonly caller?: Caller;
}

export type CommandHandler = (data: unknown, context: CommandContext) => unknown;

export const commandQueue = "veil-servers";
/** The one command sent in the clear: how a client learns the key the others are sealed to. */
export const clusterKeysCommand = "cluster.keys";
export const commandSubject = (name: string) => `veil.cmd.${name}`;
export const leaderCommandSubject = (name: string) => `veil.lead.${name}`;

/** The reply for a failure: a typed error keeps its code; anything else is the server's own failure. */
export function failureReply(error: unknown): CommandReply {
  if (error instanceof VeilError) return { ok: false, error: { code: error.code, message: error.message } };
  return { ok: false, error: { code: "unavailable", message: `the server failed: ${(error as Error).message}` } };
}

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
  return bus.subscribe("veil.cmd.>", (message) => {
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
  return bus.subscribe("veil.lead.>", (message) => {
    const name = message.subject.slice("veil.lead.".length);
    const handler = commands[name];
    if (!handler) {
      return message.respond({ ok: false, error: { code: "not-found", message: `unknown leader command ${name}` } });
    }
    void track(answer(handler, message.data, {})).then((reply) => message.respond(reply));
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

/** The cluster's public keys, as `cluster.keys` answers, and how far this machine's clock is from the cluster's. */
export type ClusterKeys = Infer<typeof clusterKeysReply> & { readonly clockOffsetMs: number };

/** Asks any server for the cluster's public keys (in the clear: they are public) and its time. */
export async function fetchClusterKeys(bus: Bus, timeoutMs: number = limits.commandTimeoutMs): Promise<ClusterKeys> {
  const subject = commandSubject(clusterKeysCommand);
  const asked = Date.now();
  const keys = clusterKeysReply.parse(readReply(await bus.request(subject, {}, { timeoutMs }), subject));
  // The answer was made about halfway through the round trip.
  return { ...keys, clockOffsetMs: Math.round(keys.now - (asked + Date.now()) / 2) };
}

/**
 * What each bus seals with: the cluster's keys, fetched at its first command or set by
 * whoever checked them against a pin (the CLI), and the bus's own sealer (one key pair for
 * all its commands). A failed fetch is forgotten, so the next command asks again.
 */
interface Sealing {
  readonly keys: ClusterKeys;
  readonly sealer: CommandSealer;
}

const sealings = new WeakMap<Bus, Promise<Sealing>>();
const sealingOf = (keys: ClusterKeys): Sealing => ({ keys, sealer: new CommandSealer(keys.sealingKey, cryptoRandom) });

export function useClusterKeys(bus: Bus, keys: ClusterKeys): void {
  sealings.set(bus, Promise.resolve(sealingOf(keys)));
}

function sealingFor(bus: Bus, timeoutMs: number): Promise<Sealing> {
  let sealing = sealings.get(bus);
  if (!sealing) {
    sealing = fetchClusterKeys(bus, timeoutMs).then(sealingOf);
    sealings.set(bus, sealing);
    sealing.catch(() => sealings.delete(bus));
  }
  return sealing;
}

/** The client side: sends a command sealed to the cluster and returns its value, or throws its typed error. */
export async function sendCommand(
  bus: Bus,
  name: string,
  data: unknown = {},
  options: { timeoutMs?: number } = {},
): Promise<unknown> {
  const subject = commandSubject(name);
  const timeoutMs = options.timeoutMs ?? limits.commandTimeoutMs;
  if (name === clusterKeysCommand) return readReply(await bus.request(subject, data, { timeoutMs }), subject);
  const attempt = async () => {
    const { keys, sealer } = await sealingFor(bus, timeoutMs);
    const sealed = sealer.seal({ name, data }, Date.now() + keys.clockOffsetMs);
    return readReply(sealed.openReply(await bus.request(subject, sealed.body, { timeoutMs })), subject);
  };
  try {
    return await attempt();
  } catch (error) {
    // Refused unopened because the clocks drifted apart: nothing was done, so learn the time again and retry once.
    if (!(error instanceof ForbiddenError && staleTime.test(error.message))) throw error;
    const keys = await fetchClusterKeys(bus, timeoutMs);
    const pinned = (await sealings.get(bus))?.keys;
    if (pinned && bytesToHex(pinned.sealingKey) !== bytesToHex(keys.sealingKey)) throw error;
    useClusterKeys(bus, keys);
    return await attempt();
  }
}

/** How `ReplayWindow` says a request's time is outside the window. */
const staleTime = /sealed at a time more than/;
