/**
 * Commands sealed to the cluster. A client seals each command (its name, its data, a fresh
 * nonce and its clock) to the cluster's public key; the reply is sealed under the key only
 * the client and the cluster can derive from that seal. So a login's authentication hash, a
 * session token, an approval's share or a code never crosses the broker readable, even when
 * someone can see the traffic, and an answer opens only for the one who asked. A captured
 * request replayed later is refused: servers accept each nonce once, within a window of time.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  AuthenticationError,
  BusyError,
  bytes,
  decodeMessage,
  encodeMessage,
  ForbiddenError,
  integer,
  IntegrityError,
  limits,
  object,
  string,
  ValidationError,
} from "../../events/mod.ts";
import type { RandomSource } from "../ports.ts";
import { openSealed, sealTo } from "./box.ts";
import { openSecret, sealSecret } from "./keys.ts";

/** What crosses the wire for a sealed command, and for its reply. */
export const sealedBody = object({ sealed: bytes({ lengthMin: 1, lengthMax: limits.brokerPayloadBytesMax }) });

const inside = object({
  name: string({ lengthMin: 1, lengthMax: 64 }),
  nonce: bytes({ lengthMin: 16, lengthMax: 16 }),
  at: integer({ min: 0 }),
});

export interface SealedCommand {
  readonly body: { readonly sealed: Uint8Array };
  /** Opens the reply to this command; a reply sealed to anyone else is an IntegrityError. */
  openReply(reply: unknown): unknown;
}

export function sealCommand(
  clusterPublicKey: Uint8Array,
  command: { name: string; data: unknown },
  options: { random: RandomSource; now: number },
): SealedCommand {
  const plaintext = encodeMessage({
    name: command.name,
    data: command.data,
    nonce: options.random.bytes(16),
    at: options.now,
  });
  const { sealed, replyKey } = sealTo(clusterPublicKey, plaintext, "command", command.name, options.random);
  return {
    body: { sealed },
    openReply(reply) {
      // A server that could not open the request cannot seal its refusal: only refusals come plain.
      if ((reply as { ok?: unknown } | null)?.ok === false) return reply;
      let body: { sealed: Uint8Array };
      try {
        body = sealedBody.parse(reply);
      } catch {
        throw new IntegrityError(`the reply to ${command.name} was not sealed: it did not come from the cluster`);
      }
      try {
        return decodeMessage(openSecret(replyKey, body.sealed, `reply:${command.name}`), limits.brokerPayloadBytesMax);
      } catch (cause) {
        throw new IntegrityError(`the reply to ${command.name} does not open: it was not sealed for this request`, {
          cause,
        });
      }
    },
  };
}

export interface OpenedCommand {
  readonly data: unknown;
  /** The reply, sealed for the client that asked. */
  sealReply(reply: unknown): { readonly sealed: Uint8Array };
}

/**
 * Opens a sealed command that arrived on `name`'s subject: a bad seal, a name that is not
 * the subject's, a time outside the window or a nonce seen before are refused.
 */
export function openCommand(
  clusterPrivateKey: Uint8Array,
  name: string,
  body: unknown,
  options: { replays: ReplayWindow; now: number; random: RandomSource },
): OpenedCommand {
  let sealed: Uint8Array;
  try {
    ({ sealed } = sealedBody.parse(body));
  } catch {
    throw new AuthenticationError(`${name} must be sealed to the cluster's key (this client is too old, or forged)`);
  }
  let opened: { plaintext: Uint8Array; replyKey: Uint8Array };
  try {
    opened = openSealed(clusterPrivateKey, sealed, "command", name);
  } catch (cause) {
    throw new IntegrityError(
      `the sealed ${name} request does not open: sealed to another cluster's key, or damaged`,
      { cause },
    );
  }
  const message = decodeMessage(opened.plaintext, limits.brokerPayloadBytesMax) as Record<string, unknown>;
  const head = inside.parse(message);
  if (head.name !== name) throw new ValidationError(`a sealed ${head.name} request arrived as ${name}`);
  options.replays.admit(head.nonce, head.at, options.now);
  return {
    data: message.data,
    sealReply: (reply) => ({
      sealed: sealSecret(opened.replyKey, encodeMessage(reply), `reply:${name}`, options.random),
    }),
  };
}

/**
 * The nonces a server has accepted, each kept until its request is too old to be accepted
 * anyway. Bounded: past its size, new requests are refused (busy) rather than old ones forgotten.
 */
export class ReplayWindow {
  readonly #seen = new Map<string, number>();

  constructor(
    readonly windowMs: number = limits.commandClockSkewMs,
    readonly entriesMax: number = limits.replayWindowMax,
  ) {}

  admit(nonce: Uint8Array, at: number, now: number): void {
    if (Math.abs(now - at) > this.windowMs) {
      throw new ForbiddenError(
        `the request was sealed at a time more than ${this.windowMs / 1_000} s from the cluster's: ` +
          "a replay, or this machine's clock is wrong",
      );
    }
    this.#forgetBefore(now - this.windowMs);
    const key = bytesToHex(nonce);
    if (this.#seen.has(key)) throw new ForbiddenError("the request was seen before: a replay is refused");
    if (this.#seen.size >= this.entriesMax) throw new BusyError("too many requests at once; retry in a moment");
    this.#seen.set(key, at);
  }

  /**
   * Entries are kept in arrival order, which is nearly the order of their times (clients'
   * clocks differ a little): forgetting stops at the first one still young, so an admit costs
   * what it forgets, not the window's size. A straggler behind it is forgotten a little late.
   */
  #forgetBefore(oldest: number): void {
    for (const [key, at] of this.#seen) {
      if (at >= oldest) return;
      this.#seen.delete(key);
    }
  }
}
