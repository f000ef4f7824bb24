/**
 * Accounts: registration, credentials, sessions, second factors and login failures, all on
 * the user's own subject `veil.evt.user.<name>`. No secret is ever in these events: the
 * server keeps a slow hash of a hash the client derived from the password, the account
 * keys only wrapped by a key the password gives, token and code hashes, and the secrets
 * it must read (the TOTP seed, the email address, an emailed code) sealed with the
 * cluster key. Where a session came from is private too: since v2 the device name and the
 * client address are sealed with the cluster key (the servers open them for the session's
 * owner), and failed logins carry only a keyed hash of the address, enough to throttle it.
 */
import { defineEvents, type EventsOf } from "./envelope.ts";
import { limits } from "./limits.ts";
import { array, boolean, bytes, integer, object, oneOf, optional, string } from "./schema.ts";

/** Lowercase ASCII only, so no two names look alike (no unicode confusables, no case twins). */
export const usernamePattern = /^[a-z][a-z0-9_-]*$/;

export const username = string({
  lengthMin: limits.usernameLengthMin,
  lengthMax: limits.usernameLengthMax,
  pattern: usernamePattern,
});

const sessionId = string({ lengthMin: 1, lengthMax: 64, pattern: /^[A-Za-z0-9-]+$/ });
const hash = bytes({ lengthMin: 32, lengthMax: 32 });
const salt = bytes({ lengthMin: 16, lengthMax: 64 });
const wrappedKey = bytes({ lengthMin: 1, lengthMax: 256 });
const sealedSecret = bytes({ lengthMin: 1, lengthMax: limits.sealedSecretBytesMax });
const time = integer({ min: 0 });
/** Stored beside what it derived, so the cost can be raised for new passwords later. */
export const scryptParameters = object({
  N: integer({ min: 2 ** 10, max: 2 ** 22 }),
  r: integer({ min: 1, max: 32 }),
  p: integer({ min: 1, max: 16 }),
});
/** A device's name as people see it: printable characters only, so no terminal escape reaches a listing or a mail. */
export const deviceName = string({ lengthMax: limits.deviceNameLengthMax, pattern: /^[^\p{C}]*$/u });
/** A client's address as its connection reports it (an IP), for per-address throttling. */
export const clientAddress = string({ lengthMin: 1, lengthMax: 64, pattern: /^[0-9A-Fa-f.:]+$/ });

/** What the cluster keeps to let a user log in from any machine; replaced as a whole on a password change. */
const credentials = {
  /** The salt of the client's password KDF, handed to whoever logs in. */
  passwordSalt: salt,
  passwordKdf: scryptParameters,
  /** scrypt(authentication hash, verifierSalt): the authentication hash itself is never stored. */
  verifier: hash,
  verifierSalt: salt,
  verifierKdf: scryptParameters,
  /** The random account key and the X25519 private key, wrapped by keys only the password gives. */
  accountKeyWrapped: wrappedKey,
  privateKeyWrapped: wrappedKey,
};

export const secondFactors = ["none", "totp", "backup-code", "email"] as const;
export const sessionEndReasons = ["logout", "revoked"] as const;
export const loginFailureReasons = ["password", "second-factor"] as const;
/**
 * Where a failure counts. `trusted`: a login from a device the account logged in from
 * before, or a password or code tried from an open session. `open`: everything else. Each
 * lane locks on its own, so someone who knows only a user's name can lock the open lane,
 * never the user's own devices out.
 */
export const loginLanes = ["open", "trusted"] as const;
/** Older failures were counted in one lane, the one strangers reach. */
const inOpenLane = (data: unknown) => ({ ...(data as object), lane: "open" });

export const userEvents = defineEvents({
  UserRegistered: {
    version: 1,
    data: object({
      user: username,
      ...credentials,
      publicKey: bytes({ lengthMin: 32, lengthMax: 32 }),
      emailSealed: optional(sealedSecret),
    }),
  },
  /** New credentials; every session but the one that changed it ends. */
  PasswordChanged: {
    version: 1,
    data: object({
      user: username,
      ...credentials,
      keptSession: sessionId,
      /** The second factor it was confirmed with, spent like a login's (absent: none was set, or before one was asked). */
      totpStep: optional(integer({ min: 0 })),
      backupCode: optional(integer({ min: 0, max: limits.backupCodes - 1 })),
    }),
  },
  /** The name stays taken, so nobody can step into a former user's identity. */
  UserDeleted: { version: 1, data: object({ user: username }) },
  /** v1 had `deviceName` and `address` in the clear; they are read as they are (v2 writes only the sealed ones). */
  SessionStarted: {
    version: 2,
    upcasters: { 1: (data: unknown) => data },
    data: object({
      user: username,
      session: sessionId,
      /** SHA-256 of the 256-bit token; the token only ever travels to its client. */
      tokenHash: hash,
      expiresAt: time,
      /** SHA-256 of the client's device id, to notice logins from new devices. */
      deviceHash: hash,
      /** The device's name, sealed with the cluster key (`session-device:<user>`). */
      deviceSealed: optional(sealedSecret),
      newDevice: boolean(),
      /** The client's address, sealed with the cluster key (`session-address:<user>`). */
      addressSealed: optional(sealedSecret),
      /** v1 only: in the clear. */
      deviceName: optional(deviceName),
      address: optional(clientAddress),
      secondFactor: oneOf(secondFactors),
      /** The TOTP step or backup code spent, so neither is accepted again. */
      totpStep: optional(integer({ min: 0 })),
      backupCode: optional(integer({ min: 0, max: limits.backupCodes - 1 })),
    }),
  },
  SessionEnded: { version: 1, data: object({ user: username, session: sessionId, reason: oneOf(sessionEndReasons) }) },
  /** `logout --all`: every session ends (but `except`, when given). */
  SessionsEnded: { version: 1, data: object({ user: username, except: optional(sessionId) }) },
  /**
   * `addressHash` (v2): a keyed hash of the address, so failures per address count; v1 had
   * the address itself. `lane` (v3): where the failure counts.
   */
  LoginFailed: {
    version: 3,
    upcasters: { 1: (data: unknown) => data, 2: inOpenLane },
    data: object({
      user: username,
      reason: oneOf(loginFailureReasons),
      lane: oneOf(loginLanes),
      addressHash: optional(hash),
      address: optional(clientAddress),
    }),
  },
  /** A lane locked (see `loginLanes`); `lane` since v3. */
  AccountLocked: {
    version: 3,
    upcasters: { 1: (data: unknown) => data, 2: inOpenLane },
    data: object({
      user: username,
      lane: oneOf(loginLanes),
      until: time,
      failures: integer({ min: 1 }),
      addressHash: optional(hash),
      address: optional(clientAddress),
    }),
  },
  TotpEnabled: {
    version: 1,
    data: object({
      user: username,
      secretSealed: sealedSecret,
      /** Keyed hashes of the single-use backup codes. */
      backupCodeHashes: array(hash, { lengthMin: limits.backupCodes, lengthMax: limits.backupCodes }),
      /** The step of the code that confirmed it: spent. */
      step: integer({ min: 0 }),
    }),
  },
  TotpDisabled: { version: 1, data: object({ user: username }) },
  /** An emailed second-factor code: its keyed hash to check, and the code sealed for the mailer. */
  EmailCodeIssued: {
    version: 1,
    data: object({ user: username, codeHash: hash, codeSealed: sealedSecret, expiresAt: time }),
  },
  /** The mailer delivered the notification raised by event `notification`. */
  NotificationSent: {
    version: 1,
    data: object({
      user: username,
      notification: string({ lengthMin: 1, lengthMax: limits.actorIdLengthMax }),
      transport: oneOf(["smtp", "file"]),
    }),
  },
});

export type UserEvent = EventsOf<typeof userEvents>;
export type SecondFactor = (typeof secondFactors)[number];
export type LoginLane = (typeof loginLanes)[number];
