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
import { x25519 } from "@noble/curves/ed25519.js";
import { newKeyPair } from "./box.ts";
import { deriveSubkey, keyBytes, openSecret, sealSecret } from "./keys.ts";

/** What crosses the wire for a sealed command, and for its reply. */
export const sealedBody = object({ sealed: bytes({ lengthMin: 1, lengthMax: limits.brokerPayloadBytesMax }) });

const inside = object({
  name: string({ lengthMin: 1, lengthMax: 64 }),
  nonce: bytes({ lengthMin: 16, lengthMax: 16 }),
  at: integer({ min: 0 }),
});

export interface SealedCommand {
  readonly body: { readonly sealed: Uint8Array };
  /** Opens the reply to this command; a reply sealed to anyone else, or for another request, is an IntegrityError. */
  openReply(reply: unknown): unknown;
}

/** The keys one client's key pair shares with the cluster: one for requests, one for replies. */
interface SharedKeys {
  readonly requestKey: Uint8Array;
  readonly replyKey: Uint8Array;
}

function sharedKeys(shared: Uint8Array, clientPublicKey: Uint8Array): SharedKeys {
  return {
    requestKey: deriveSubkey(shared, "command", clientPublicKey),
    replyKey: deriveSubkey(shared, "box-reply", clientPublicKey),
  };
}

/** A reply opens only for the request it answers: the request's nonce is bound into it. */
const replyContext = (name: string, nonce: Uint8Array) => `reply:${name}:${bytesToHex(nonce)}`;

/**
 * The client's side. One key pair per client (a process, a connection) for all its
 * commands: the key agreement with the cluster is done once, and each command is sealed
 * under the shared key with a fresh random nonce (XChaCha20's 192-bit nonces make that safe).
 * What a captured request could be used for is bounded by the replay window, not the key.
 */
export class CommandSealer {
  readonly #publicKey: Uint8Array;
  readonly #keys: SharedKeys;

  constructor(clusterPublicKey: Uint8Array, readonly random: RandomSource) {
    if (clusterPublicKey.byteLength !== keyBytes) throw new ValidationError("public keys are 32 bytes");
    const own = newKeyPair(random);
    this.#publicKey = own.publicKey;
    this.#keys = sharedKeys(x25519.getSharedSecret(own.privateKey, clusterPublicKey), own.publicKey);
  }

  seal(command: { name: string; data: unknown }, now: number): SealedCommand {
    const nonce = this.random.bytes(16);
    const body = sealSecret(
      this.#keys.requestKey,
      encodeMessage({ name: command.name, data: command.data, nonce, at: now }),
      `box:${command.name}`,
      this.random,
    );
    const sealed = new Uint8Array(keyBytes + body.byteLength);
    sealed.set(this.#publicKey, 0);
    sealed.set(body, keyBytes);
    const replyKey = this.#keys.replyKey;
    return {
      body: { sealed },
      openReply(reply) {
        // A server that could not open the request cannot seal its refusal: only refusals come
        // plain. They are trusted because the broker lets no other client publish into this
        // client's inbox (the adversary suite tries).
        if ((reply as { ok?: unknown } | null)?.ok === false) return reply;
        let answer: { sealed: Uint8Array };
        try {
          answer = sealedBody.parse(reply);
        } catch {
          throw new IntegrityError(`the reply to ${command.name} was not sealed: it did not come from the cluster`);
        }
        try {
          return decodeMessage(
            openSecret(replyKey, answer.sealed, replyContext(command.name, nonce)),
            limits.brokerPayloadBytesMax,
          );
        } catch (cause) {
          throw new IntegrityError(`the reply to ${command.name} does not open: it was not sealed for this request`, {
            cause,
          });
        }
      },
    };
  }
}

/** Seals one command with a key pair of its own (a client that sends only one). */
export function sealCommand(
  clusterPublicKey: Uint8Array,
  command: { name: string; data: unknown },
  options: { random: RandomSource; now: number },
): SealedCommand {
  return new CommandSealer(clusterPublicKey, options.random).seal(command, options.now);
}

export interface OpenedCommand {
  readonly data: unknown;
  /** The reply, sealed for the client that asked, for this request only. */
  sealReply(reply: unknown): { readonly sealed: Uint8Array };
}

/**
 * The server's side: opens sealed commands with the cluster's private key, remembering the
 * keys it shares with each recent client (bounded), so a busy client costs one key
 * agreement, not one per command.
 */
export class CommandOpener {
  readonly #clients = new Map<string, SharedKeys>();

  constructor(
    readonly clusterPrivateKey: Uint8Array,
    readonly replays: ReplayWindow,
    readonly clientsMax: number = limits.sealingClientsCachedMax,
  ) {}

  /**
   * Opens a sealed command that arrived on `name`'s subject: a bad seal, a name that is not
   * the subject's, a time outside the window or a nonce seen before are refused.
   */
  open(name: string, body: unknown, options: { now: number; random: RandomSource; source?: string }): OpenedCommand {
    let sealed: Uint8Array;
    try {
      ({ sealed } = sealedBody.parse(body));
    } catch {
      throw new AuthenticationError(`${name} must be sealed to the cluster's key (this client is too old, or forged)`);
    }
    if (sealed.byteLength <= keyBytes) throw new ValidationError("a sealed command is too short");
    const keys = this.#keysFor(sealed.subarray(0, keyBytes));
    let plaintext: Uint8Array;
    try {
      plaintext = openSecret(keys.requestKey, sealed.subarray(keyBytes), `box:${name}`);
    } catch (cause) {
      throw new IntegrityError(
        `the sealed ${name} request does not open: sealed to another cluster's key, or damaged`,
        { cause },
      );
    }
    const message = decodeMessage(plaintext, limits.brokerPayloadBytesMax) as Record<string, unknown>;
    const head = inside.parse(message);
    const sealReply = (reply: unknown) => ({
      sealed: sealSecret(keys.replyKey, encodeMessage(reply), replyContext(name, head.nonce), options.random),
    });
    try {
      if (head.name !== name) throw new ValidationError(`a sealed ${head.name} request arrived as ${name}`);
      this.replays.admit(head.nonce, head.at, options.now, options.source);
    } catch (error) {
      throw new RefusedCommand(error as Error, sealReply);
    }
    return { data: message.data, sealReply };
  }

  #keysFor(clientPublicKey: Uint8Array): SharedKeys {
    const id = bytesToHex(clientPublicKey);
    const known = this.#clients.get(id);
    if (known) {
      // Most recently used last, so the first entry is the one to forget.
      this.#clients.delete(id);
      this.#clients.set(id, known);
      return known;
    }
    let shared: Uint8Array;
    try {
      shared = x25519.getSharedSecret(this.clusterPrivateKey, clientPublicKey);
    } catch (cause) {
      throw new IntegrityError("the sealed request does not open: not a public key", { cause });
    }
    const keys = sharedKeys(shared, clientPublicKey);
    this.#clients.set(id, keys);
    if (this.#clients.size > this.clientsMax) this.#clients.delete(this.#clients.keys().next().value!);
    return keys;
  }
}

/**
 * A sealed command that opened but is refused (a replay, a time outside the window, too
 * many at once): the refusal can be sealed for the one who asked, so no one else on the
 * broker can forge it. Only a request that does not open at all is refused in the clear.
 */
export class RefusedCommand extends Error {
  constructor(readonly reason: Error, readonly sealReply: (reply: unknown) => { readonly sealed: Uint8Array }) {
    super(reason.message, { cause: reason });
    this.name = "RefusedCommand";
  }
}

/** Opens one sealed command (tests and tools; servers keep a CommandOpener). */
export function openCommand(
  clusterPrivateKey: Uint8Array,
  name: string,
  body: unknown,
  options: { replays: ReplayWindow; now: number; random: RandomSource },
): OpenedCommand {
  return new CommandOpener(clusterPrivateKey, options.replays).open(name, body, options);
}

/**
 * The nonces a server has accepted, each kept until its request is too old to be accepted
 * anyway. Bounded twice: past its size new requests are refused (busy) rather than old ones
 * forgotten, and one source (an address, or the trusted account) may hold only a share, so
 * a flood from one machine cannot refuse everyone else. Nonces are kept in slices of time
 * and a slice is forgotten whole once it is past the window: forgetting follows the time a
 * request was sealed at, not the order requests came in, so one request dated far ahead
 * cannot hold back the forgetting of those behind it.
 */
export class ReplayWindow {
  readonly #seen = new Map<string, { readonly slice: number; readonly source: string }>();
  readonly #slices = new Map<number, string[]>();
  readonly #perSource = new Map<string, number>();
  readonly #sliceMs: number;
  readonly futureMs: number;
  readonly perSourceMax: number;

  constructor(
    readonly windowMs: number = limits.commandClockSkewMs,
    readonly entriesMax: number = limits.replayWindowMax,
    options: { futureMs?: number; perSourceMax?: number } = {},
  ) {
    this.perSourceMax = options.perSourceMax ?? limits.replayWindowPerSourceMax;
    this.futureMs = Math.min(windowMs, options.futureMs ?? limits.commandFutureSkewMs);
    // About 128 slices over the window: few enough to look at each on every admit.
    this.#sliceMs = Math.max(1, Math.ceil(windowMs / 128));
  }

  admit(nonce: Uint8Array, at: number, now: number, source = "cluster"): void {
    if (at < now - this.windowMs || at > now + this.futureMs) {
      const limit = at < now ? this.windowMs : this.futureMs;
      throw new ForbiddenError(
        `the request was sealed at a time more than ${limit / 1_000} s from the cluster's: ` +
          "a replay, or this machine's clock is wrong",
      );
    }
    this.#forgetBefore(now - this.windowMs);
    const key = bytesToHex(nonce);
    if (this.#seen.has(key)) throw new ForbiddenError("the request was seen before: a replay is refused");
    if (this.#seen.size >= this.entriesMax) throw new BusyError("too many requests at once; retry in a moment");
    const held = this.#perSource.get(source) ?? 0;
    if (held >= this.perSourceMax) {
      throw new BusyError("too many requests from this address at once; retry in a moment");
    }
    const slice = Math.floor(at / this.#sliceMs);
    this.#seen.set(key, { slice, source });
    this.#perSource.set(source, held + 1);
    const keys = this.#slices.get(slice);
    if (keys) keys.push(key);
    else this.#slices.set(slice, [key]);
  }

  /** Nonces held now (for tests and health). */
  get size(): number {
    return this.#seen.size;
  }

  /** Forgets every slice wholly older than `oldest`; a slice it cuts through is kept a little longer. */
  #forgetBefore(oldest: number): void {
    const first = Math.floor(oldest / this.#sliceMs);
    for (const [slice, keys] of this.#slices) {
      if (slice >= first) continue;
      for (const key of keys) {
        const entry = this.#seen.get(key)!;
        this.#seen.delete(key);
        const held = this.#perSource.get(entry.source)! - 1;
        if (held === 0) this.#perSource.delete(entry.source);
        else this.#perSource.set(entry.source, held);
      }
      this.#slices.delete(slice);
    }
  }
}
