/** What the account commands answer, checked by the client before it trusts a field. */
import { limits } from "../limits.ts";
import { array, boolean, bytes, type Infer, integer, nullable, object, oneOf, optional, string } from "../schema.ts";
import { clientAddress, deviceName, scryptParameters, secondFactors, username } from "../user.ts";

const time = integer({ min: 0 });

/** The fields every command on behalf of a logged-in user carries. */
export const authenticated = {
  user: username,
  token: string({ lengthMin: 43, lengthMax: 43, pattern: /^[A-Za-z0-9_-]+$/ }),
};
const sessionId = string({ lengthMin: 1, lengthMax: 64, pattern: /^[A-Za-z0-9-]+$/ });
const wrappedKey = bytes({ lengthMin: 1, lengthMax: 256 });
const address = nullable(string({ lengthMin: 1, lengthMax: 256 }));

/** `user.prelogin`: what the client derives its keys with (a decoy for a name nobody has). */
export const preloginReply = object({
  passwordSalt: bytes({ lengthMin: 16, lengthMax: 64 }),
  passwordKdf: scryptParameters,
});

/** `user.login`: the session, and the account's keys wrapped under the password's. */
export const loginReply = object({
  user: username,
  token: string({ lengthMin: 43, lengthMax: 43, pattern: /^[A-Za-z0-9_-]+$/ }),
  session: sessionId,
  expiresAt: time,
  accountKeyWrapped: wrappedKey,
  privateKeyWrapped: wrappedKey,
  publicKey: bytes({ lengthMin: 32, lengthMax: 32 }),
});
export type LoginReply = Infer<typeof loginReply>;

/** `user.keys`: the wrapped keys again, for a client that re-wraps them (a password change). */
export const keysReply = object({
  passwordSalt: bytes({ lengthMin: 16, lengthMax: 64 }),
  passwordKdf: scryptParameters,
  accountKeyWrapped: wrappedKey,
  privateKeyWrapped: wrappedKey,
  publicKey: bytes({ lengthMin: 32, lengthMax: 32 }),
});

export const whoamiReply = object({
  user: username,
  session: sessionId,
  expiresAt: time,
  previousLoginAt: nullable(time),
  registeredAt: time,
  totp: boolean(),
  email: boolean(),
  sessions: integer({ min: 0 }),
  device: deviceName,
  address,
  keyFingerprint: string({ lengthMin: 1, lengthMax: 64 }),
});

export const sessionsReply = object({
  sessions: array(
    object({
      session: sessionId,
      current: boolean(),
      device: deviceName,
      address,
      startedAt: time,
      expiresAt: time,
      expired: boolean(),
      secondFactor: oneOf(secondFactors),
    }),
    { lengthMax: limits.sessionsPerUserMax },
  ),
});

export const otpEnableReply = object({
  backupCodes: array(string({ lengthMin: 1, lengthMax: 32 }), { lengthMax: 32 }),
});
export const otpStatusReply = object({ totp: boolean(), backupCodesLeft: integer({ min: 0 }), emailCodes: boolean() });

const hash32 = bytes({ lengthMin: 32, lengthMax: 32 });
const code = string({ lengthMin: 1, lengthMax: 16 });
const clientCredentials = {
  passwordSalt: bytes({ lengthMin: 16, lengthMax: 64 }),
  passwordKdf: scryptParameters,
  authHash: hash32,
  accountKeyWrapped: bytes({ lengthMin: 1, lengthMax: 256 }),
  privateKeyWrapped: bytes({ lengthMin: 1, lengthMax: 256 }),
};
/** A plain addr-spec: no display names, commas or brackets that a mailer could read as more recipients. */
const email = string({
  lengthMin: 3,
  lengthMax: limits.emailLengthMax,
  pattern: /^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$/,
});

/** What the account commands take: hashes, wrapped keys and sealed credentials, never a password. */
export const accountRequests = {
  prelogin: object({ user: username }),
  register: object({
    user: username,
    ...clientCredentials,
    publicKey: hash32,
    email: optional(email),
    address: optional(clientAddress),
  }),
  login: object({
    user: username,
    authHash: hash32,
    otp: optional(code),
    deviceId: hash32,
    deviceName,
    address: optional(clientAddress),
  }),
  session: object(authenticated),
  logout: object({ ...authenticated, all: optional(boolean()) }),
  revoke: object({ ...authenticated, session: string({ lengthMin: 1, lengthMax: 64, pattern: /^[A-Za-z0-9-]+$/ }) }),
  /** With TOTP on, both need a fresh code or a backup code too. */
  passwd: object({ ...authenticated, authHash: hash32, next: object(clientCredentials), otp: optional(code) }),
  delete: object({ ...authenticated, authHash: hash32, otp: optional(code) }),
  otpEnable: object({ ...authenticated, authHash: hash32, secret: bytes({ lengthMin: 16, lengthMax: 64 }), code }),
  otpDisable: object({ ...authenticated, otp: code }),
};
