/**
 * The client's side of the commands: each sealed to the cluster's key (learned from
 * `cluster.keys`, or pinned by the CLI) and its reply opened, checked and turned into a
 * value or a typed error. It reads this machine's clock and random source, so it lives here.
 */
import type { Bus } from "../actors/ports.ts";
import { CommandSealer } from "../actors/crypto/mod.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  clusterKeysCommand,
  clusterKeysReply,
  commandSubject,
  ForbiddenError,
  type Infer,
  limits,
  readReply,
} from "../events/mod.ts";
import { cryptoRandom } from "./random.ts";

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
