/**
 * The client's side of the commands: each sealed to the cluster's key (learned from
 * `cluster.keys` at the first command, or set by whoever checked it against a pin, as the
 * CLI does) and its reply opened, checked and turned into a value or a typed error. One
 * sealer (one key pair) serves all of a client's commands. The clock and randomness are
 * given, so the simulator's peers send exactly what real ones do.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { CommandSealer } from "../crypto/mod.ts";
import type { Bus, Clock, RandomSource } from "../ports.ts";
import {
  clusterKeysCommand,
  clusterKeysReply,
  commandSubject,
  ForbiddenError,
  type Infer,
  limits,
  readReply,
  UnavailableError,
} from "../../events/mod.ts";

/** The cluster's public keys, as `cluster.keys` answers, and how far this machine's clock is from the cluster's. */
export type ClusterKeys = Infer<typeof clusterKeysReply> & { readonly clockOffsetMs: number };

export interface CommandOptions {
  readonly timeoutMs?: number;
}

/** Sends one command to the cluster; returns its value, or throws its typed error. */
export type CommandSender = (name: string, data?: unknown, options?: CommandOptions) => Promise<unknown>;

interface Sealing {
  readonly keys: ClusterKeys;
  readonly sealer: CommandSealer;
}

/** How `ReplayWindow` says a request's time is outside the window. */
const staleTime = /sealed at a time more than/;

export class CommandClient {
  /** The keys and sealer in use; a failed fetch is forgotten, so the next command asks again. */
  #sealing: Promise<Sealing> | undefined;

  constructor(readonly bus: Bus, readonly clock: Clock, readonly random: RandomSource) {}

  /** Asks any server for the cluster's public keys (in the clear: they are public) and its time. */
  async fetchClusterKeys(timeoutMs: number = limits.commandTimeoutMs): Promise<ClusterKeys> {
    const subject = commandSubject(clusterKeysCommand);
    const asked = this.clock.now();
    const keys = clusterKeysReply.parse(readReply(await this.bus.request(subject, {}, { timeoutMs }), subject));
    // The answer was made about halfway through the round trip.
    return { ...keys, clockOffsetMs: Math.round(keys.now - (asked + this.clock.now()) / 2) };
  }

  /** Seals every command from now on to these keys (already checked against a pin). */
  useClusterKeys(keys: ClusterKeys): void {
    this.#sealing = Promise.resolve(this.#sealingOf(keys));
  }

  readonly send: CommandSender = async (name, data = {}, options = {}) => {
    const subject = commandSubject(name);
    const timeoutMs = options.timeoutMs ?? limits.commandTimeoutMs;
    if (name === clusterKeysCommand) return readReply(await this.bus.request(subject, data, { timeoutMs }), subject);
    // Whether the last attempt's refusal came before any server opened the request.
    let unopened = false;
    const attempt = async () => {
      unopened = true;
      const { keys, sealer } = await this.#sealingFor(timeoutMs);
      const sealed = sealer.seal({ name, data }, this.clock.now() + keys.clockOffsetMs);
      const reply = await this.bus.request(subject, sealed.body, { timeoutMs });
      // Only a server that could not open the request answers in the clear.
      unopened = (reply as { ok?: unknown } | null)?.ok === false;
      return readReply(sealed.openReply(reply), subject);
    };
    try {
      return await attempt();
    } catch (error) {
      // Refused unopened by a server that cannot decide now (its clock is off, say): nothing was
      // done, and the queue group likely gives the retry to another server.
      if (error instanceof UnavailableError && unopened) return await attempt();
      // Refused unopened because the clocks drifted apart: nothing was done, so learn the time again and retry once.
      if (!(error instanceof ForbiddenError && staleTime.test(error.message))) throw error;
      const keys = await this.fetchClusterKeys(timeoutMs);
      const pinned = (await this.#sealing)?.keys;
      if (pinned && bytesToHex(pinned.sealingKey) !== bytesToHex(keys.sealingKey)) throw error;
      this.useClusterKeys(keys);
      return await attempt();
    }
  };

  #sealingOf(keys: ClusterKeys): Sealing {
    return { keys, sealer: new CommandSealer(keys.sealingKey, this.random) };
  }

  #sealingFor(timeoutMs: number): Promise<Sealing> {
    if (!this.#sealing) {
      const sealing = this.fetchClusterKeys(timeoutMs).then((keys) => this.#sealingOf(keys));
      this.#sealing = sealing;
      sealing.catch(() => {
        if (this.#sealing === sealing) this.#sealing = undefined;
      });
    }
    return this.#sealing;
  }
}
