/**
 * The client's side of an account: zero-knowledge login. The password never leaves this
 * machine. scrypt (salt from the cluster) turns it into a master key; HKDF turns the master
 * key into an authentication hash (the only thing sent, and the server stores only a slow
 * hash of it) and into the keys that wrap the account key and the X25519 private key. So a
 * user can log in from any machine, and a password change re-wraps the same keys.
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { limits, usernamePattern, ValidationError } from "../../events/mod.ts";
import { deriveSubkey, keyBytes, type ScryptParameters, unwrapKey, wrapKey } from "../crypto/mod.ts";
import type { RandomSource } from "../ports.ts";

export const passwordSaltBytes = 16;

/** What the client sends to register or to change its password: no password, no key in the clear. */
export interface ClientCredentials {
  readonly passwordSalt: Uint8Array;
  readonly passwordKdf: ScryptParameters;
  readonly authHash: Uint8Array;
  readonly accountKeyWrapped: Uint8Array;
  readonly privateKeyWrapped: Uint8Array;
}

export interface AccountKeys {
  /** Wraps the user's object keys (the vault). */
  readonly accountKey: Uint8Array;
  /** X25519, for grants sealed to this user (sharing). */
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A short list of the passwords tried first by every attacker; a real deployment may extend it. */
const commonPasswords = new Set([
  "password",
  "password1",
  "password12",
  "password123",
  "1234567890",
  "12345678910",
  "qwertyuiop",
  "1q2w3e4r5t",
  "letmein123",
  "iloveyou12",
  "administrator",
  "welcome123",
  "0987654321",
  "abcdefghij",
  "passw0rd123",
]);

/**
 * The password policy (NIST SP 800-63B: length over composition rules). Checked here
 * because only the client ever sees the password.
 */
export function passwordProblem(password: string, user: string): string | undefined {
  const normalised = password.normalize("NFKC");
  const length = [...normalised].length;
  if (length < limits.passwordLengthMin) return `a password needs at least ${limits.passwordLengthMin} characters`;
  if (length > limits.passwordLengthMax) return `a password has at most ${limits.passwordLengthMax} characters`;
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(normalised)) return "a password cannot contain control characters";
  if (new Set(normalised).size < 4) return "a password needs at least 4 different characters";
  const lower = normalised.toLowerCase();
  if (lower.includes(user.toLowerCase())) return "a password cannot contain the username";
  if (commonPasswords.has(lower)) return "that password is among the most common ones; choose another";
  return undefined;
}

export function newAccountKeys(random: RandomSource): AccountKeys {
  const accountKey = random.bytes(keyBytes);
  const privateKey = random.bytes(keyBytes);
  return { accountKey, privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

/** The authentication hash: what the server checks, never the master key itself. */
export function authHash(master: Uint8Array): Uint8Array {
  return deriveSubkey(master, "auth");
}

export function sealCredentials(options: {
  user: string;
  master: Uint8Array;
  passwordSalt: Uint8Array;
  passwordKdf: ScryptParameters;
  keys: AccountKeys;
  random: RandomSource;
}): ClientCredentials {
  const { user, master, passwordSalt, passwordKdf, keys, random } = options;
  return {
    passwordSalt,
    passwordKdf,
    authHash: authHash(master),
    accountKeyWrapped: wrapKey(deriveSubkey(master, "account-key"), keys.accountKey, `account-key:${user}`, random),
    privateKeyWrapped: wrapKey(deriveSubkey(master, "private-key"), keys.privateKey, `private-key:${user}`, random),
  };
}

/** Unwraps the account keys with the master key; a wrong password fails here with an IntegrityError. */
export function openAccountKeys(options: {
  user: string;
  master: Uint8Array;
  accountKeyWrapped: Uint8Array;
  privateKeyWrapped: Uint8Array;
  publicKey: Uint8Array;
}): AccountKeys {
  const { user, master } = options;
  const accountKey = unwrapKey(deriveSubkey(master, "account-key"), options.accountKeyWrapped, `account-key:${user}`);
  const privateKey = unwrapKey(deriveSubkey(master, "private-key"), options.privateKeyWrapped, `private-key:${user}`);
  const publicKey = x25519.getPublicKey(privateKey);
  if (!publicKey.every((byte, index) => byte === options.publicKey[index])) {
    throw new ValidationError("the cluster's public key does not match this account's private key");
  }
  return { accountKey, privateKey, publicKey };
}

/** Usernames: ASCII letters are folded to lowercase; anything else must already be a-z 0-9 _ -. */
export function normaliseUsername(input: string): string {
  const user = input.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
  if (
    user.length < limits.usernameLengthMin || user.length > limits.usernameLengthMax ||
    !usernamePattern.test(user)
  ) {
    throw new ValidationError(
      `a username is ${limits.usernameLengthMin} to ${limits.usernameLengthMax} characters of a-z, 0-9, _ and -, ` +
        `starting with a letter (no spaces, dots, slashes or look-alike letters); got ${
          JSON.stringify(input.slice(0, 40))
        }`,
    );
  }
  return user;
}
