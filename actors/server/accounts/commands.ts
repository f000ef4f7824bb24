/**
 * The account commands a server serves on `veil.cmd.user.*`. Each one validates its payload,
 * reads the user's aggregate position (`readLast`), waits until the users projection has
 * applied it, works out the evidence (slow hashes in the crypto actor, TOTP steps with the
 * cluster key), lets the pure decider decide, and appends with the expected subject
 * sequence: a concurrent decision on the same user makes it reload and decide again. Any
 * server can serve them; the log orders the decisions.
 */
import { pastTime } from "../expiry.ts";
import { keyFingerprint } from "../../peer/grant.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Clock, EventLog, IdSource, Logger, RandomSource, WorkOptions } from "../../ports.ts";
import {
  type AccountCommand,
  checkAttemptAllowed,
  checkThrottle,
  decide,
  type EventMaker,
  failuresNow,
  type SecondFactorEvidence,
  wrongCredentials,
} from "./decider.ts";
import {
  backupCodePattern,
  type ClusterSecrets,
  fromUtf8,
  newBackupCodes,
  newNumericCode,
  newToken,
  normaliseBackupCode,
  numericCodePattern,
  tokenHash,
  utf8,
} from "./secrets.ts";
import { constantTimeEqual, matchTotp } from "./totp.ts";
import { addressHash, addressHashHex, openPlace, sealAddress, sealDeviceName } from "./places.ts";
import { passwordKdf, type ScryptParameters } from "../../crypto/mod.ts";
import {
  accountRequests,
  ConflictError,
  type Infer,
  limits,
  type LoginLane,
  userSubject,
  ValidationError,
  veilEvent,
} from "../../../events/mod.ts";
import {
  loginLaneOf,
  type SessionRecord,
  userOf,
  type UsersState,
  type UserState,
} from "../../../projections/users.ts";
import type { Projector } from "../projector.ts";
import { type CommandContext, type CommandHandler } from "../commands.ts";
import { decideAndAppend as decideAndAppendTo } from "../decide-and-append.ts";
import { InFlightGate, type Lane, MemoryRate, MemoryThrottle } from "./login-limits.ts";
import { userSessions } from "./sessions.ts";

/** scrypt over bytes, off the event loop; urgent work (a known device's login) goes first. */
export type SlowHash = (
  input: Uint8Array,
  salt: Uint8Array,
  parameters: ScryptParameters,
  options?: WorkOptions,
) => Promise<Uint8Array>;

export interface AccountDeps {
  readonly nodeId: string;
  readonly log: EventLog;
  readonly users: Projector<UsersState>;
  readonly clock: Clock;
  readonly ids: IdSource;
  readonly random: RandomSource;
  readonly secrets: ClusterSecrets;
  /** scrypt over bytes, off the event loop (the crypto actor). */
  readonly slowHash: SlowHash;
  readonly sessionTtlMs: number;
  readonly logger: Logger;
}

const requests = accountRequests;

/**
 * Where a user's machine connected from, as the broker says: it replaces whatever address
 * the request claims, so nobody dodges the per-address limits by claiming another one.
 * Only requests from inside the trusted account (tests, tools) keep the address they state.
 */
function brokerAddress(context: CommandContext): { address?: string } {
  return context.caller?.host ? { address: context.caller.host } : {};
}

export function accountCommands(deps: AccountDeps): Record<string, CommandHandler> {
  const { nodeId, log, users, clock, ids, random, secrets, sessionTtlMs, logger } = deps;
  const unknownNames = new MemoryThrottle();
  const knownDeviceLogins = new MemoryRate(limits.knownDeviceLoginsPerUserPerMinuteMax, 60_000);
  const gate = new InFlightGate();
  const server: Lane = ["server", limits.slowHashesInFlightMax];
  const knownDevices: Lane = ["known-devices", limits.knownDeviceHashesInFlightMax];
  const slowHash = (input: Uint8Array, salt: Uint8Array, parameters: ScryptParameters, lane = server) =>
    // A known device's hash goes ahead of those waiting for a worker, so a flood of logins for
    // unknown names or from new devices delays a returning user by at most the hashes running.
    gate.run([lane], () => deps.slowHash(input, salt, parameters, { urgent: lane === knownDevices }));
  // A verifier for names nobody holds, so a login for one costs the same slow hash as a real one.
  const decoy = { salt: random.bytes(16), verifier: random.bytes(32) };

  const make: EventMaker = (type, data) =>
    veilEvent(type, data as never, { id: ids.next(), at: clock.now(), by: nodeId }) as ReturnType<EventMaker>;

  const { current, session } = userSessions({ log, users, clock });

  /** The account's decide-and-append: decided by the account decider against the user's latest state. */
  async function decideAndAppend(
    user: string,
    build: (state: UserState | undefined) => AccountCommand | Promise<AccountCommand>,
  ): Promise<{ state: UserState | undefined; seq: number }> {
    const { seq } = await decideAndAppendTo({
      log,
      subject: userSubject(user),
      what: user,
      load: () => current(user),
      decide: async ({ state }) => decide(await build(state), state, clock.now(), make),
      applied: (seq) => users.waitFor(seq, limits.commandTimeoutMs),
    });
    return { state: userOf(users.state, user), seq };
  }

  async function passwordMatches(
    state: UserState | undefined,
    authHash: Uint8Array,
    lane: Lane = server,
  ): Promise<boolean> {
    const credentials = state?.status === "active" ? state.credentials : undefined;
    const computed = await slowHash(
      authHash,
      credentials?.verifierSalt ?? decoy.salt,
      credentials?.verifierKdf ?? passwordKdf,
      lane,
    );
    return constantTimeEqual(bytesToHex(computed), bytesToHex(credentials?.verifier ?? decoy.verifier)) &&
      credentials !== undefined;
  }

  function secondFactorEvidence(state: UserState, otp: string | undefined): SecondFactorEvidence {
    if (otp === undefined) return { kind: "none" };
    const now = clock.now();
    if (state.totp) {
      if (numericCodePattern.test(otp)) {
        const secret = secrets.open("totp", state.user, state.totp.secretSealed);
        return { kind: "totp", step: matchTotp(secret, otp, now) };
      }
      if (backupCodePattern.test(otp)) {
        const hash = bytesToHex(secrets.mac("backup-code", state.user, normaliseBackupCode(otp)));
        const index = state.totp.backupCodeHashes.findIndex((known) => known !== null && bytesToHex(known) === hash);
        return { kind: "backup-code", index: index < 0 ? null : index };
      }
      return { kind: "totp", step: null };
    }
    if (state.emailSealed) {
      const expected = state.emailCode ? bytesToHex(state.emailCode.codeHash) : "";
      return {
        kind: "email",
        matches: constantTimeEqual(bytesToHex(secrets.mac("email-code", state.user, otp)), expected),
      };
    }
    // No second factor: a code given anyway is ignored rather than held against the user.
    return { kind: "none" };
  }

  /** A password tried by a logged-in user: refused before the slow hash while its failures throttle it. */
  async function guess(state: UserState | undefined, authHash: Uint8Array): Promise<boolean> {
    if (state) checkAttemptAllowed(state.lanes.trusted, clock.now());
    return await passwordMatches(state, authHash);
  }

  /** Where a session came from, opened for its own user (and only ever answered to them). */
  const placeOf = (user: string, record: SessionRecord) => {
    const place = openPlace(secrets, user, record);
    return { device: place.deviceName, address: place.address ?? null };
  };

  const describeSessions = (state: UserState, mine: string) =>
    Object.values(state.sessions)
      .sort((a, b) => a.startedAt - b.startedAt)
      .map((open) => ({
        session: open.session,
        current: open.session === mine,
        // Sealed in the log; opened here for the sessions' own user only.
        ...placeOf(state.user, open),
        startedAt: open.startedAt,
        expiresAt: open.expiresAt,
        // As a command would find it.
        expired: pastTime(open.expiresAt, clock.now()),
        secondFactor: open.secondFactor,
      }));

  /**
   * Addresses the client states (the servers cannot see who sent a NATS message); one that
   * states none shares a bucket with every other that does not, so leaving it out is no way
   * around the limit.
   */
  const addressKey = (address: string | undefined) => `address:${address ?? "unstated"}`;

  function checkAddress(address: string | undefined, now: number): void {
    // Failures from this address: those the log recorded (known names) and those only memory holds (unknown ones).
    // The log counts them by the address's keyed hash; v1 events, by the address itself.
    const recorded = (key: string) =>
      Object.hasOwn(users.state.addresses, key) ? users.state.addresses[key] : undefined;
    const logged = address ? recorded(addressHashHex(secrets, address)) ?? recorded(address) : undefined;
    const remembered = unknownNames.get(addressKey(address));
    checkThrottle(
      (logged?.failures ?? 0) + (remembered ? failuresNow(remembered, now) : 0),
      Math.max(logged?.lastFailureAt ?? 0, remembered?.lastFailureAt ?? 0) || null,
      now,
    );
  }

  async function logIn(request: Infer<typeof requests.login>) {
    const now = clock.now();
    const token = newToken(random);
    const session = ids.next();
    const expiresAt = now + sessionTtlMs;
    const deviceHash = sha256(request.deviceId);
    // Retries after a conflict decide again, but the slow hash is worked out once per set of credentials.
    let checked: { verifier: Uint8Array; matches: boolean } | undefined;
    const { state } = await decideAndAppend(request.user, async (state) => {
      if (state?.status !== "active") {
        // Throttled, locked, hashed and answered exactly like a real name with a wrong password.
        checkAddress(request.address, now);
        unknownNames.check(`user:${request.user}`, now);
        await passwordMatches(undefined, request.authHash);
        // Counted from when the hash failed, as the log counts a real name's failure: a slow
        // hash must not use up the delay the failure earns.
        const failedAt = clock.now();
        unknownNames.fail(`user:${request.user}`, failedAt);
        unknownNames.fail(addressKey(request.address), failedAt);
        throw wrongCredentials();
      }
      // Before the slow hash: a throttled or locked lane costs nothing to refuse. A device
      // this account logged in from before counts and hashes in a lane of its own.
      // The address's failures slow down only the open lane: many people share an address
      // (a home, an office, a carrier's NAT), and a stranger's failures must not lock a
      // returning user's device out.
      const lane = loginLaneOf(state, bytesToHex(deviceHash));
      if (lane === "open") checkAddress(request.address, now);
      checkAttemptAllowed(state.lanes[lane], now);
      if (checked?.verifier !== state.credentials.verifier) {
        checked = {
          verifier: state.credentials.verifier,
          matches: await passwordMatches(state, request.authHash, lane === "trusted" ? knownDevices : server),
        };
      }
      const code = newNumericCode(random);
      return {
        type: "LogIn",
        user: request.user,
        passwordMatches: checked.matches,
        secondFactor: secondFactorEvidence(state, request.otp),
        grant: {
          session,
          tokenHash: tokenHash(token),
          expiresAt,
          deviceHash,
          deviceSealed: sealDeviceName(secrets, request.user, request.deviceName),
          ...(request.address
            ? {
              addressSealed: sealAddress(secrets, request.user, request.address),
              addressHash: addressHash(secrets, request.address),
            }
            : {}),
        },
        deviceHashHex: bytesToHex(deviceHash),
        emailCode: {
          codeHash: secrets.mac("email-code", request.user, code),
          codeSealed: secrets.seal("email-code", request.user, utf8(code)),
          expiresAt: now + limits.emailCodeTtlMs,
        },
      };
    });
    logger.info("user logged in", { user: request.user, session });
    return {
      user: request.user,
      token,
      session,
      expiresAt,
      accountKeyWrapped: state!.credentials.accountKeyWrapped,
      privateKeyWrapped: state!.credentials.privateKeyWrapped,
      publicKey: state!.publicKey,
    };
  }

  /** Per user and lane, so a stranger's logins for a name never fill the slots of its own devices. */
  const perUser = (user: string, lane: LoginLane): Lane => [
    `user:${lane}:${user}`,
    lane === "trusted" ? limits.knownDeviceLoginsInFlightPerUserMax : limits.loginsInFlightPerUserMax,
  ];
  const perAddress = (address: string | undefined): Lane => [
    addressKey(address),
    limits.loginsInFlightPerAddressMax,
  ];
  const tokenHashOf = (request: { token: string }) => bytesToHex(tokenHash(request.token));

  return {
    /** The salt and KDF of a user's password; a made-up but stable one for names nobody holds. */
    "user.prelogin": async (data) => {
      const { user } = requests.prelogin.parse(data);
      const { state } = await current(user);
      if (state?.status === "active") {
        return { passwordSalt: state.credentials.passwordSalt, passwordKdf: state.credentials.passwordKdf };
      }
      return { passwordSalt: secrets.mac("decoy-salt", user, "").slice(0, 16), passwordKdf };
    },

    "user.register": (data, context) => {
      const request = { ...requests.register.parse(data), ...brokerAddress(context) };
      return gate.run([perAddress(request.address)], async () => {
        // A taken name is refused before the slow hash, so probing names costs the server nothing.
        if ((await current(request.user)).state) {
          throw new ConflictError(`the name ${request.user} is taken; choose another`);
        }
        const verifierSalt = random.bytes(16);
        const verifier = await slowHash(request.authHash, verifierSalt, passwordKdf);
        await decideAndAppend(request.user, () => ({
          type: "Register",
          data: {
            user: request.user,
            passwordSalt: request.passwordSalt,
            passwordKdf: request.passwordKdf,
            verifier,
            verifierSalt,
            verifierKdf: passwordKdf,
            accountKeyWrapped: request.accountKeyWrapped,
            privateKeyWrapped: request.privateKeyWrapped,
            publicKey: request.publicKey,
            ...(request.email ? { emailSealed: secrets.seal("email", request.user, utf8(request.email)) } : {}),
          },
        }));
        logger.info("user registered", { user: request.user });
        return { user: request.user };
      });
    },

    "user.login": (data, context) => {
      const request = { ...requests.login.parse(data), ...brokerAddress(context) };
      // The slots are chosen from the projection as it stands (logIn decides on the latest
      // state): a known device's login waits on nothing a stranger can fill, neither its
      // address's slots nor those of logins from new devices; its own rate bounds how much
      // of the known devices' lane one account can hold.
      const state = userOf(users.state, request.user);
      const lane = state?.status === "active" ? loginLaneOf(state, bytesToHex(sha256(request.deviceId))) : "open";
      if (lane === "trusted") {
        knownDeviceLogins.take(request.user, clock.now());
        return gate.run([perUser(request.user, lane)], () => logIn(request));
      }
      return gate.run([perUser(request.user, lane), perAddress(request.address)], () => logIn(request));
    },

    "user.whoami": async (data) => {
      const { state, session: mine } = await session(requests.session.parse(data));
      return {
        user: state.user,
        session: mine.session,
        expiresAt: mine.expiresAt,
        previousLoginAt: state.previousLoginAt,
        registeredAt: state.registeredAt,
        totp: state.totp !== null,
        email: state.emailSealed !== undefined,
        sessions: Object.keys(state.sessions).length,
        ...placeOf(state.user, mine),
        keyFingerprint: keyFingerprint(state.publicKey),
      };
    },

    /** The wrapped account keys, for a client that must re-wrap them (a password change). */
    "user.keys": async (data) => {
      const { state } = await session(requests.session.parse(data));
      return {
        passwordSalt: state.credentials.passwordSalt,
        passwordKdf: state.credentials.passwordKdf,
        accountKeyWrapped: state.credentials.accountKeyWrapped,
        privateKeyWrapped: state.credentials.privateKeyWrapped,
        publicKey: state.publicKey,
      };
    },

    "user.sessions": async (data) => {
      const { state, session: mine } = await session(requests.session.parse(data));
      return { sessions: describeSessions(state, mine.session) };
    },

    "user.logout": async (data) => {
      const request = requests.logout.parse(data);
      const { session: mine } = await session(request);
      const all = request.all === true;
      await decideAndAppend(
        request.user,
        () => ({ type: "LogOut", user: request.user, tokenHash: tokenHashOf(request), all }),
      );
      return { ended: all ? "all" : mine.session };
    },

    "user.revoke": async (data) => {
      const request = requests.revoke.parse(data);
      await session(request);
      await decideAndAppend(request.user, () => ({
        type: "RevokeSession",
        user: request.user,
        tokenHash: tokenHashOf(request),
        session: request.session,
      }));
      return { revoked: request.session };
    },

    "user.passwd": async (data) => {
      const request = requests.passwd.parse(data);
      await session(request);
      return await gate.run([perUser(request.user, "trusted")], async () => {
        const verifierSalt = random.bytes(16);
        const verifier = await slowHash(request.next.authHash, verifierSalt, passwordKdf);
        await decideAndAppend(request.user, async (state) => ({
          type: "ChangePassword",
          user: request.user,
          tokenHash: tokenHashOf(request),
          passwordMatches: await guess(state, request.authHash),
          secondFactor: state ? secondFactorEvidence(state, request.otp) : { kind: "none" },
          credentials: {
            passwordSalt: request.next.passwordSalt,
            passwordKdf: request.next.passwordKdf,
            verifier,
            verifierSalt,
            verifierKdf: passwordKdf,
            accountKeyWrapped: request.next.accountKeyWrapped,
            privateKeyWrapped: request.next.privateKeyWrapped,
          },
        }));
        return { changed: true };
      });
    },

    "user.delete": async (data) => {
      const request = requests.delete.parse(data);
      await session(request);
      await gate.run([perUser(request.user, "trusted")], () =>
        decideAndAppend(request.user, async (state) => ({
          type: "DeleteUser",
          user: request.user,
          tokenHash: tokenHashOf(request),
          passwordMatches: await guess(state, request.authHash),
          secondFactor: state ? secondFactorEvidence(state, request.otp) : { kind: "none" },
        })));
      logger.info("user deleted", { user: request.user });
      return { deleted: request.user };
    },

    "user.otp.enable": async (data) => {
      const request = requests.otpEnable.parse(data);
      await session(request);
      if (!numericCodePattern.test(request.code)) throw new ValidationError("a TOTP code is 6 digits");
      const backupCodes = newBackupCodes(random);
      await gate.run([perUser(request.user, "trusted")], () =>
        decideAndAppend(request.user, async (state) => ({
          type: "EnableTotp",
          user: request.user,
          tokenHash: tokenHashOf(request),
          passwordMatches: await guess(state, request.authHash),
          step: matchTotp(request.secret, request.code, clock.now()),
          secretSealed: secrets.seal("totp", request.user, request.secret),
          backupCodeHashes: backupCodes.map((backup) =>
            secrets.mac("backup-code", request.user, normaliseBackupCode(backup))
          ),
        })));
      return { backupCodes };
    },

    "user.otp.disable": async (data) => {
      const request = requests.otpDisable.parse(data);
      await session(request);
      await decideAndAppend(request.user, (state) => ({
        type: "DisableTotp",
        user: request.user,
        tokenHash: tokenHashOf(request),
        secondFactor: state ? secondFactorEvidence(state, request.otp) : { kind: "none" },
      }));
      return { totp: false };
    },

    "user.otp.status": async (data) => {
      const { state } = await session(requests.session.parse(data));
      return {
        totp: state.totp !== null,
        backupCodesLeft: state.totp?.backupCodeHashes.filter((hash) => hash !== null).length ?? 0,
        emailCodes: state.totp === null && state.emailSealed !== undefined,
      };
    },
  };
}

/** The email address of a user, opened for the mailer. */
export function userEmail(secrets: ClusterSecrets, state: UserState): string | undefined {
  return state.emailSealed ? fromUtf8(secrets.open("email", state.user, state.emailSealed)) : undefined;
}
