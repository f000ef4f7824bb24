/**
 * The account decider: `decide(command, state)` says which events a command produces and,
 * for a refusal that must still be recorded (a wrong password), the error to answer with.
 * It is pure: the server works out the evidence first (does the password's hash match,
 * which TOTP step does the code belong to) with its slow hashes and keys, and passes it in
 * with the time, so every rule below can be tested given events / when command / then events.
 */
import { pastTime } from "../expiry.ts";
import {
  AuthenticationError,
  BusyError,
  ConflictError,
  type Infer,
  limits,
  type LoginLane,
  NotFoundError,
  type UserEvent,
  userEvents,
  ValidationError,
  type VeilError,
} from "../../../events/mod.ts";
import { type FailureCount, loginLaneOf, type SessionRecord, type UserState } from "../../../projections/users.ts";

type Data<Type extends UserEvent["type"]> = Infer<(typeof userEvents)[Type]["data"]>;

/** What the server established about a login's second factor before deciding. */
export type SecondFactorEvidence =
  | { readonly kind: "none" }
  /** `step` is the step the code matched, or null when it matched none in the window. */
  | { readonly kind: "totp"; readonly step: number | null }
  /** `index` is the unspent backup code it matched, or null. */
  | { readonly kind: "backup-code"; readonly index: number | null }
  | { readonly kind: "email"; readonly matches: boolean };

export interface SessionGrant {
  readonly session: string;
  readonly tokenHash: Uint8Array;
  readonly expiresAt: number;
  readonly deviceHash: Uint8Array;
  /** The device's name and the client's address, sealed with the cluster key by the server. */
  readonly deviceSealed: Uint8Array;
  readonly addressSealed?: Uint8Array;
  /** The address's keyed hash: what failures from it are counted by. */
  readonly addressHash?: Uint8Array;
}

/** Commands on behalf of a logged-in user carry the hash of their token: the session is checked in the decision. */
interface Authenticated {
  readonly user: string;
  /** Hex SHA-256 of the session token. */
  readonly tokenHash: string;
}

export type AccountCommand =
  | { readonly type: "Register"; readonly data: Data<"UserRegistered"> }
  | {
    readonly type: "LogIn";
    readonly user: string;
    readonly passwordMatches: boolean;
    readonly secondFactor: SecondFactorEvidence;
    readonly grant: SessionGrant;
    readonly deviceHashHex: string;
    /** An email code ready to issue, should this login need one. */
    readonly emailCode: Omit<Data<"EmailCodeIssued">, "user">;
  }
  | Authenticated & { readonly type: "LogOut"; readonly all: boolean }
  | Authenticated & { readonly type: "RevokeSession"; readonly session: string }
  | Authenticated & {
    readonly type: "ChangePassword";
    readonly passwordMatches: boolean;
    /** A fresh second factor, when the account has one: a stolen session and password are not enough. */
    readonly secondFactor: SecondFactorEvidence;
    readonly credentials: Omit<Data<"PasswordChanged">, "user" | "keptSession">;
  }
  | Authenticated & {
    readonly type: "DeleteUser";
    readonly passwordMatches: boolean;
    readonly secondFactor: SecondFactorEvidence;
  }
  | Authenticated & {
    readonly type: "EnableTotp";
    /** Turning a second factor on needs the password too, so a stolen session cannot lock its owner out. */
    readonly passwordMatches: boolean;
    /** The step the confirming code matched under the new secret, or null. */
    readonly step: number | null;
    readonly secretSealed: Uint8Array;
    readonly backupCodeHashes: readonly Uint8Array[];
  }
  | Authenticated & { readonly type: "DisableTotp"; readonly secondFactor: SecondFactorEvidence }
  | { readonly type: "RecordNotificationSent"; readonly data: Data<"NotificationSent"> };

export interface Decision {
  readonly events: readonly UserEvent[];
  /** Answered after the events are appended: a refusal the log must remember. */
  readonly rejection?: VeilError;
}

/** Builds an event of this aggregate with the origin the caller supplies. */
export type EventMaker = <Type extends UserEvent["type"]>(type: Type, data: Data<Type>) => UserEvent;

/** The one answer for a failed login, whatever failed, so it never tells whether a user exists. */
export const wrongCredentials = () => new AuthenticationError("wrong username or password");

/** How long after its last failure an account (or address) with `failures` in a row must wait. */
export function loginDelayMs(failures: number): number {
  if (failures < limits.loginFailuresFree) return 0;
  return Math.min(limits.loginDelayFirstMs * 2 ** (failures - limits.loginFailuresFree), limits.loginDelayMaxMs);
}

/** Refuses an attempt made too soon after failures, without recording anything (a flood leaves no trace). */
export function checkThrottle(failures: number, lastFailureAt: number | null, now: number): void {
  if (lastFailureAt === null) return;
  const waitMs = lastFailureAt + loginDelayMs(failures) - now;
  if (waitMs > 0) throw tooManyFailures(waitMs);
}

const tooManyFailures = (waitMs: number) =>
  new BusyError(`too many failed logins; try again in ${Math.ceil(waitMs / 1_000)} s`);

export type { FailureCount };

/** Failures that still count: a lock that has run out starts the count afresh. */
export function failuresNow(count: FailureCount, now: number): number {
  return count.lockedUntil !== null && count.lockedUntil <= now ? 0 : count.failures;
}

/**
 * Whether a password may be tried now: not while locked, not before the delay the failures
 * earned. Checked before the slow hash runs, so a throttled attempt costs nothing and
 * answers as fast for a real name as for a made-up one.
 */
export function checkAttemptAllowed(count: FailureCount, now: number): void {
  if (count.lockedUntil !== null && count.lockedUntil > now) throw tooManyFailures(count.lockedUntil - now);
  checkThrottle(failuresNow(count, now), count.lastFailureAt, now);
}

/** The count after one more failure: locked when it reaches the bound. */
export function countFailure(count: FailureCount, now: number): FailureCount {
  const failures = failuresNow(count, now) + 1;
  return {
    failures,
    lastFailureAt: now,
    lockedUntil: failures >= limits.loginFailuresLock ? now + limits.accountLockMs : null,
  };
}

/** The open, unexpired session of an active user holding this token hash, or the clear reason there is none. */
export function requireSession(state: UserState | undefined, tokenHashHex: string, now: number): SessionRecord {
  const session = state?.status === "active"
    ? Object.values(state.sessions).find((open) => open.tokenHash === tokenHashHex)
    : undefined;
  if (!session) throw new AuthenticationError("not logged in (the session was ended or revoked); run `veil login`");
  if (pastTime(session.expiresAt, now)) {
    throw new AuthenticationError("your session has expired; run `veil login` again");
  }
  return session;
}

export function decide(command: AccountCommand, state: UserState | undefined, now: number, make: EventMaker): Decision {
  switch (command.type) {
    case "Register":
      if (state) throw new ConflictError(`the name ${command.data.user} is taken; choose another`);
      return { events: [make("UserRegistered", command.data)] };
    case "LogIn":
      return decideLogin(command, state, now, make);
    case "RecordNotificationSent":
      return { events: [make("NotificationSent", command.data)] };
    default:
      return decideAuthenticated(command, state, now, make);
  }
}

function decideAuthenticated(
  command: Exclude<AccountCommand, { type: "Register" | "LogIn" | "RecordNotificationSent" }>,
  state: UserState | undefined,
  now: number,
  make: EventMaker,
): Decision {
  // Checked here, in the decision, so a session ended while the evidence was worked out counts as ended.
  const session = requireSession(state, command.tokenHash, now);
  const user = state!;
  if (user.user !== command.user) throw new Error("programmer error: decided against another user's state");
  const name = user.user;
  switch (command.type) {
    case "LogOut":
      if (command.all) return { events: [make("SessionsEnded", { user: name })] };
      return { events: [make("SessionEnded", { user: name, session: session.session, reason: "logout" })] };
    case "RevokeSession":
      // Another user's session is "not found", exactly like one that never was.
      if (!Object.hasOwn(user.sessions, command.session)) throw new NotFoundError(`no session ${command.session}`);
      return { events: [make("SessionEnded", { user: name, session: command.session, reason: "revoked" })] };
    case "ChangePassword":
      checkAttemptAllowed(user.lanes.trusted, now);
      if (!command.passwordMatches) {
        return recordFailure(
          user,
          fromSession("password"),
          new AuthenticationError("the current password is wrong"),
          now,
          make,
        );
      }
      {
        const problem = freshSecondFactorProblem(user, command.secondFactor, now);
        if (problem) return recordFailure(user, fromSession("second-factor"), problem, now, make);
      }
      return {
        events: [make("PasswordChanged", {
          user: name,
          ...command.credentials,
          keptSession: session.session,
          ...spent(command.secondFactor),
        })],
      };
    case "DeleteUser":
      checkAttemptAllowed(user.lanes.trusted, now);
      if (!command.passwordMatches) {
        return recordFailure(
          user,
          fromSession("password"),
          new AuthenticationError("the password is wrong"),
          now,
          make,
        );
      }
      {
        const problem = freshSecondFactorProblem(user, command.secondFactor, now);
        if (problem) return recordFailure(user, fromSession("second-factor"), problem, now, make);
      }
      return { events: [make("UserDeleted", { user: name })] };
    case "EnableTotp":
      if (user.totp) throw new ConflictError("TOTP is already on; turn it off first to change it");
      checkAttemptAllowed(user.lanes.trusted, now);
      if (!command.passwordMatches) {
        return recordFailure(
          user,
          fromSession("password"),
          new AuthenticationError("the password is wrong"),
          now,
          make,
        );
      }
      if (command.step === null) {
        throw new ValidationError("the code does not match the new secret; check the authenticator's clock and retry");
      }
      return {
        events: [make("TotpEnabled", {
          user: name,
          secretSealed: command.secretSealed,
          backupCodeHashes: [...command.backupCodeHashes],
          step: command.step,
        })],
      };
    case "DisableTotp": {
      if (!user.totp) throw new ConflictError("TOTP is not on");
      checkAttemptAllowed(user.lanes.trusted, now);
      const problem = secondFactorProblem(user, command.secondFactor, now, "needed");
      if (problem === "email-code-needed") throw new Error("programmer error: no emailed codes here");
      // A wrong code counts like a failed login: a stolen session cannot guess its way past TOTP.
      if (problem) return recordFailure(user, fromSession("second-factor"), problem, now, make);
      return { events: [make("TotpDisabled", { user: name })] };
    }
    default:
      return assertNever(command);
  }
}

/** What is wrong with the second factor a sensitive change needs (TOTP or a backup code, when the account has TOTP). */
function freshSecondFactorProblem(
  state: UserState,
  evidence: SecondFactorEvidence,
  now: number,
): VeilError | undefined {
  const problem = secondFactorProblem(state, evidence, now, "needed");
  if (problem === "email-code-needed") throw new Error("programmer error: no emailed codes here");
  return problem;
}

/** The second factor a decision used up, to record with it. */
function spent(evidence: SecondFactorEvidence): { totpStep?: number; backupCode?: number } {
  if (evidence.kind === "totp" && evidence.step !== null) return { totpStep: evidence.step };
  if (evidence.kind === "backup-code" && evidence.index !== null) return { backupCode: evidence.index };
  return {};
}

/** What failed, in which lane, and from which address (a keyed hash), when it came through a login. */
interface Failure {
  readonly reason: Data<"LoginFailed">["reason"];
  readonly lane: LoginLane;
  readonly addressHash?: Uint8Array;
}

/** A password or code tried from an open session: whoever holds one logged in before, so it counts as trusted. */
const fromSession = (reason: Failure["reason"]): Failure => ({ reason, lane: "trusted" });

/** Records a failed attempt (locking its lane when it reaches the bound) and answers with `rejection`. */
function recordFailure(
  state: UserState,
  failure: Failure,
  rejection: VeilError,
  now: number,
  make: EventMaker,
): Decision {
  const user = state.user;
  const { reason, lane, addressHash } = failure;
  const next = countFailure(state.lanes[lane], now);
  const where = addressHash ? { addressHash } : {};
  if (next.lockedUntil !== null) {
    return {
      events: [make("AccountLocked", { user, lane, until: next.lockedUntil, failures: next.failures, ...where })],
      rejection,
    };
  }
  return { events: [make("LoginFailed", { user, reason, lane, ...where })], rejection };
}

function decideLogin(
  command: Extract<AccountCommand, { type: "LogIn" }>,
  state: UserState | undefined,
  now: number,
  make: EventMaker,
): Decision {
  if (state?.status !== "active") throw wrongCredentials();
  const user = state.user;
  // A device the account logged in from before has a lane of its own: strangers cannot lock it.
  const lane = loginLaneOf(state, command.deviceHashHex);
  checkAttemptAllowed(state.lanes[lane], now);
  const failure = (reason: Failure["reason"]): Failure => ({
    reason,
    lane,
    ...(command.grant.addressHash ? { addressHash: command.grant.addressHash } : {}),
  });
  if (!command.passwordMatches) return recordFailure(state, failure("password"), wrongCredentials(), now, make);

  const problem = secondFactorProblem(state, command.secondFactor, now, "login");
  if (problem === "email-code-needed") {
    const code = state.emailCode;
    const resendAt = code ? code.expiresAt - limits.emailCodeTtlMs + limits.emailCodeResendMs : 0;
    if (code && code.expiresAt > now && resendAt > now) {
      throw new BusyError(
        `a code was emailed less than a minute ago; log in with --otp CODE, or ask for a new one in ${
          Math.ceil((resendAt - now) / 1_000)
        } s`,
      );
    }
    return {
      events: [make("EmailCodeIssued", { user, ...command.emailCode })],
      rejection: new AuthenticationError(
        "a one-time code was emailed to you; log in again with --otp CODE",
      ),
    };
  }
  if (problem) return recordFailure(state, failure("second-factor"), problem, now, make);

  const evidence = command.secondFactor;
  const grant = command.grant;
  return {
    events: [make("SessionStarted", {
      user,
      session: grant.session,
      tokenHash: grant.tokenHash,
      expiresAt: grant.expiresAt,
      deviceHash: grant.deviceHash,
      deviceSealed: grant.deviceSealed,
      // The first login after registering is not from a "new" device; later unknown ones are.
      newDevice: state.devices.length > 0 && !state.devices.includes(command.deviceHashHex),
      ...(grant.addressSealed ? { addressSealed: grant.addressSealed } : {}),
      secondFactor: evidence.kind,
      ...(evidence.kind === "totp" && evidence.step !== null ? { totpStep: evidence.step } : {}),
      ...(evidence.kind === "backup-code" && evidence.index !== null ? { backupCode: evidence.index } : {}),
    })],
  };
}

/**
 * What is wrong with a second factor, if anything: an error to answer with, or the need to
 * email a code first. A user with TOTP needs a code or a backup code; a user with an email
 * and no TOTP gets an emailed code; everybody else needs nothing (a code given anyway is ignored).
 */
function secondFactorProblem(
  state: UserState,
  evidence: SecondFactorEvidence,
  now: number,
  purpose: "login" | "needed",
): VeilError | "email-code-needed" | undefined {
  if (state.totp) {
    switch (evidence.kind) {
      case "none":
        return new AuthenticationError("this account needs a TOTP code: add --otp CODE (or a backup code)");
      case "totp":
        if (evidence.step === null) return new AuthenticationError("wrong TOTP code");
        if (evidence.step <= state.totp.lastStep) {
          return new AuthenticationError("this TOTP code was already used; wait for the next one");
        }
        return undefined;
      case "backup-code":
        return evidence.index === null || state.totp.backupCodeHashes[evidence.index] === null
          ? new AuthenticationError("wrong or already used backup code")
          : undefined;
      case "email":
        return new AuthenticationError("this account uses TOTP, not emailed codes");
      default:
        return assertNever(evidence);
    }
  }
  if (purpose === "login" && state.emailSealed) {
    if (evidence.kind !== "email") return "email-code-needed";
    const code = state.emailCode;
    if (!code || code.expiresAt <= now) return new AuthenticationError("the emailed code has expired; log in again");
    return evidence.matches ? undefined : new AuthenticationError("wrong emailed code");
  }
  return undefined;
}

function assertNever(value: never): never {
  throw new Error(`programmer error: unhandled ${JSON.stringify(value)}`);
}
