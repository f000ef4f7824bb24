/**
 * Commands from this machine: one CommandClient per bus (one key pair, one learned clock
 * offset), on the system's clock and random source.
 */
import type { Bus } from "../actors/ports.ts";
import { type ClusterKeys, CommandClient, type CommandOptions, type CommandSender } from "../actors/peer/commands.ts";
import { systemClock } from "./clock.ts";
import { cryptoRandom } from "./random.ts";

export type { ClusterKeys, CommandSender } from "../actors/peer/commands.ts";

const clients = new WeakMap<Bus, CommandClient>();

export function commandClient(bus: Bus): CommandClient {
  let client = clients.get(bus);
  if (!client) clients.set(bus, client = new CommandClient(bus, systemClock, cryptoRandom));
  return client;
}

/** Sends a command sealed to the cluster and returns its value, or throws its typed error. */
export const sendCommand = (bus: Bus, name: string, data: unknown = {}, options: CommandOptions = {}) =>
  commandClient(bus).send(name, data, options);

/** The command sender of a bus, for code on the actor side that takes one. */
export const commandsOver = (bus: Bus): CommandSender => commandClient(bus).send;

export const fetchClusterKeys = (bus: Bus, timeoutMs?: number): Promise<ClusterKeys> =>
  commandClient(bus).fetchClusterKeys(timeoutMs);

export const useClusterKeys = (bus: Bus, keys: ClusterKeys): void => commandClient(bus).useClusterKeys(keys);
