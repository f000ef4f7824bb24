/**
 * The account decider: `decide(command, state)` says which events a command produces and,
 * for a refusal that must still be recorded (a wrong password), the error to answer with.
 * It is pure: the server works out the evidence first (does the password's hash match,
 * which TOTP step does the code belong to) with its slow hashes and keys, and passes it in
 * with the time, so every rule below can be tested given events / when command / then events.
 */
import {
  AuthenticationError,
  BusyError,
  ConflictError,
  type Infer,
  limits,
  NotFoundError,
  type UserEvent,
  userEvents,
  ValidationError,
  type VeilError,
} from "../../../events/mod.ts";
import { type SessionRecord, type UserState } from "../../../projections/users.ts";

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
  readonly deviceName: string;
  readonly address?: string;
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
  | { readonly type: "LogOut"; readonly user: string; readonly session: string; readonly all: boolean }
  | { readonly type: "RevokeSession"; readonly user: string; readonly session: string }
  | {
    readonly type: "ChangePassword";
    readonly user: string;
    readonly session: string;
    readonly passwordMatches: boolean;
    readonly credentials: Omit<Data<"PasswordChanged">, "user" | "keptSession">;
  }
  | { readonly type: "DeleteUser"; readonly user: string; readonly passwordMatches: boolean }
  | {
    readonly type: "EnableTotp";
    readonly user: string;
    /** The step the confirming code matched under the new secret, or null. */
    readonly step: number | null;
    readonly secretSealed: Uint8Array;
    readonly backupCodeHashes: readonly Uint8Array[];
  }
  | { readonly type: "DisableTotp"; readonly user: string; readonly secondFactor: SecondFactorEvidence }
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
  if (waitMs > 0) {
    throw new BusyError(`too many failed logins; try again in ${Math.ceil(waitMs / 1_000)} s`);
  }
}

/** The open, unexpired session `session` of an active user, or the clear reason there is none. */
export function requireSession(state: UserState | undefined, tokenHashHex: string, now: number): SessionRecord {
  const session = state?.status === "active"
    ? Object.values(state.sessions).find((open) => open.tokenHash === tokenHashHex)
    : undefined;
  if (!session) throw new AuthenticationError("not logged in (the session was ended or revoked); run `veil login`");
  if (session.expiresAt <= now) throw new AuthenticationError("your session has expired; run `veil login` again");
  return session;
}

export function decide(command: AccountCommand, state: UserState | undefined, now: number, make: EventMaker): Decision {
  switch (command.type) {
    case "Register":
      if (state) throw new ConflictError(`the name ${command.data.user} is taken; choose another`);
      return { events: [make("UserRegistered", command.data)] };
    case "LogIn":
      return decideLogin(command, state, now, make);
    case "LogOut": {
      const user = active(state, command.user);
      if (command.all) return { events: [make("SessionsEnded", { user: user.user })] };
      return { events: [make("SessionEnded", { user: user.user, session: command.session, reason: "logout" })] };
    }
    case "RevokeSession": {
      const user = active(state, command.user);
      // Another user's session is "not found", exactly like one that never was.
      if (!user.sessions[command.session]) throw new NotFoundError(`no session ${command.session}`);
      return { events: [make("SessionEnded", { user: user.user, session: command.session, reason: "revoked" })] };
    }
    case "ChangePassword": {
      const user = active(state, command.user);
      if (!command.passwordMatches) throw new AuthenticationError("the current password is wrong");
      return {
        events: [make("PasswordChanged", { user: user.user, ...command.credentials, keptSession: command.session })],
      };
    }
    case "DeleteUser": {
      const user = active(state, command.user);
      if (!command.passwordMatches) throw new AuthenticationError("the password is wrong");
      return { events: [make("UserDeleted", { user: user.user })] };
    }
    case "EnableTotp": {
      const user = active(state, command.user);
      if (user.totp) throw new ConflictError("TOTP is already on; turn it off first to change it");
      if (command.step === null) {
        throw new ValidationError("the code does not match the new secret; check the authenticator's clock and retry");
      }
      return {
        events: [make("TotpEnabled", {
          user: user.user,
          secretSealed: command.secretSealed,
          backupCodeHashes: [...command.backupCodeHashes],
          step: command.step,
        })],
      };
    }
    case "DisableTotp": {
      const user = active(state, command.user);
      if (!user.totp) throw new ConflictError("TOTP is not on");
      const problem = secondFactorProblem(user, command.secondFactor, now, "needed");
      if (problem) {
        throw problem === "email-code-needed" ? new Error("programmer error: no emailed codes here") : problem;
      }
      return { events: [make("TotpDisabled", { user: user.user })] };
    }
    case "RecordNotificationSent":
      return { events: [make("NotificationSent", command.data)] };
    default:
      return assertNever(command);
  }
}

function active(state: UserState | undefined, user: string): UserState {
  if (state?.status !== "active") throw new AuthenticationError("not logged in; run `veil login`");
  if (state.user !== user) throw new Error("programmer error: decided against another user's state");
  return state;
}

function decideLogin(
  command: Extract<AccountCommand, { type: "LogIn" }>,
  state: UserState | undefined,
  now: number,
  make: EventMaker,
): Decision {
  if (state?.status !== "active") throw wrongCredentials();
  const user = state.user;
  if (state.lockedUntil !== null && state.lockedUntil > now) {
    throw new BusyError(`too many failed logins; try again in ${Math.ceil((state.lockedUntil - now) / 1_000)} s`);
  }
  checkThrottle(state.failures, state.lastFailureAt, now);
  const address = command.grant.address;
  const failed = (reason: "password" | "second-factor", rejection: VeilError): Decision => {
    const failures = state.failures + 1;
    if (failures >= limits.loginFailuresLock) {
      return { events: [make("AccountLocked", { user, until: now + limits.accountLockMs, failures })], rejection };
    }
    return { events: [make("LoginFailed", { user, reason, ...(address ? { address } : {}) })], rejection };
  };
  if (!command.passwordMatches) return failed("password", wrongCredentials());

  const problem = secondFactorProblem(state, command.secondFactor, now, "login");
  if (problem === "email-code-needed") {
    return {
      events: [make("EmailCodeIssued", { user, ...command.emailCode })],
      rejection: new AuthenticationError(
        "a one-time code was emailed to you; log in again with --otp CODE",
      ),
    };
  }
  if (problem) return failed("second-factor", problem);

  const evidence = command.secondFactor;
  const grant = command.grant;
  return {
    events: [make("SessionStarted", {
      user,
      session: grant.session,
      tokenHash: grant.tokenHash,
      expiresAt: grant.expiresAt,
      deviceHash: grant.deviceHash,
      deviceName: grant.deviceName,
      // The first login after registering is not from a "new" device; later unknown ones are.
      newDevice: state.devices.length > 0 && !state.devices.includes(command.deviceHashHex),
      ...(address ? { address } : {}),
      secondFactor: evidence.kind,
      ...(evidence.kind === "totp" && evidence.step !== null ? { totpStep: evidence.step } : {}),
      ...(evidence.kind === "backup-code" && evidence.index !== null ? { backupCode: evidence.index } : {}),
    })],
  };
}

/**
 * What is wrong with a second factor, if anything: an error to answer with, or the need to
 * email a code first. A user with TOTP needs a code or a backup code; a user with an email
 * and no TOTP gets an emailed code; everybody else needs nothing.
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
  return evidence.kind === "none"
    ? undefined
    : new ValidationError("this account has no second factor; leave out --otp");
}

function assertNever(value: never): never {
  throw new Error(`programmer error: unhandled ${JSON.stringify(value)}`);
}
