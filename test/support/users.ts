/** Builders for account events in unit tests: fixed bytes, test origins. */
import { type UserEvent, veilEvent } from "../../events/mod.ts";
import { origin } from "./events.ts";

export const bytes = (fill: number, length = 32) => new Uint8Array(length).fill(fill);
export const kdf = { N: 2 ** 17, r: 8, p: 1 };

/** `UserRegistered` with made-up credentials (and, when asked, a sealed email). */
export const registered = (user = "alice", options: { emailSealed?: Uint8Array; at?: number } = {}) =>
  veilEvent("UserRegistered", {
    user,
    passwordSalt: bytes(1, 16),
    passwordKdf: kdf,
    verifier: bytes(2),
    verifierSalt: bytes(3, 16),
    verifierKdf: kdf,
    accountKeyWrapped: bytes(4, 73),
    privateKeyWrapped: bytes(5, 73),
    publicKey: bytes(6),
    ...(options.emailSealed ? { emailSealed: options.emailSealed } : {}),
  }, origin(options.at)) as UserEvent;
