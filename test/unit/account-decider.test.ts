/** The account decider, given events / when a command / then events (or a typed refusal). */
import { describe, expect, it } from "vitest";
import {
  type AccountCommand,
  decide,
  type EventMaker,
  loginDelayMs,
  requireSession,
  type SecondFactorEvidence,
  type SessionGrant,
} from "../../actors/server/accounts/decider.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { limits, type LoginLane, type UserEvent, validateEvent, veilEvent } from "../../events/mod.ts";
import { evolveUser, type UserState } from "../../projections/users.ts";
import { origin } from "../support/events.ts";
import { bytes, kdf, registered as registeredEvent } from "../support/users.ts";
import { decider } from "../support/given-when-then.ts";

const t0 = 1_800_000_000_000;
const make: EventMaker = (type, data) => veilEvent(type, data as never, origin(t0)) as UserEvent;
const registered = (user = "alice", extra: { emailSealed?: Uint8Array } = {}) =>
  registeredEvent(user, { ...extra, at: t0 });

const sessionStarted = (session: string, options: { device?: number; totpStep?: number; at?: number } = {}) =>
  veilEvent("SessionStarted", {
    user: "alice",
    session,
    tokenHash: bytes(session.length),
    expiresAt: (options.at ?? t0) + 60_000,
    deviceHash: bytes(options.device ?? 9),
    deviceSealed: bytes(8, 60),
    newDevice: false,
    secondFactor: options.totpStep === undefined ? "none" : "totp",
    ...(options.totpStep === undefined ? {} : { totpStep: options.totpStep }),
  }, origin(options.at ?? t0)) as UserEvent;

/** The token hash `sessionStarted(session)` records, as commands carry it. */
const tokenOf = (session: string) => bytesToHex(bytes(session.length));
const as = (session: string) => ({ user: "alice", tokenHash: tokenOf(session) });

const failed = (at = t0, lane: LoginLane = "open") =>
  veilEvent("LoginFailed", { user: "alice", reason: "password", lane }, origin(at)) as UserEvent;
const lockedAt = (at: number, lane: LoginLane = "open") =>
  veilEvent("AccountLocked", {
    user: "alice",
    lane,
    until: at + limits.accountLockMs,
    failures: limits.loginFailuresLock,
  }, origin(at)) as UserEvent;
const totpEnabled = (step: number) =>
  make("TotpEnabled", {
    user: "alice",
    secretSealed: bytes(7, 60),
    backupCodeHashes: Array.from({ length: limits.backupCodes }, (_, index) => bytes(100 + index)),
    step,
  });

function login(overrides: Partial<Extract<AccountCommand, { type: "LogIn" }>> = {}): AccountCommand {
  return {
    type: "LogIn",
    user: "alice",
    passwordMatches: true,
    secondFactor: { kind: "none" },
    grant: {
      session: "s-new",
      tokenHash: bytes(42),
      expiresAt: t0 + 86_400_000,
      deviceHash: bytes(9),
      deviceSealed: bytes(8, 60),
    },
    deviceHashHex: "09".repeat(32),
    emailCode: { codeHash: bytes(11), codeSealed: bytes(12, 40), expiresAt: t0 + 600_000 },
    ...overrides,
  };
}

const given = decider<UserState | undefined, UserEvent, AccountCommand, number>({
  initial: undefined,
  evolve: evolveUser,
  decide: (command, state, now = t0) => decide(command, state, now, make),
});

describe("registering", () => {
  it("registers a free name", () => {
    given().when({ type: "Register", data: registered().data as never }).then(["UserRegistered"]);
  });

  it("refuses a taken name, also a deleted one", () => {
    given(registered()).when({ type: "Register", data: registered().data as never })
      .thenRefuses("conflict", /alice is taken/);
    given(registered(), make("UserDeleted", { user: "alice" }))
      .when({ type: "Register", data: registered().data as never })
      .thenRefuses("conflict", /taken/);
  });
});

describe("logging in", () => {
  it("starts a session on the right password; the first device is not called new", () => {
    given(registered()).when(login()).then(["SessionStarted"], ([event]) => {
      expect(event!.data).toMatchObject({ session: "s-new", newDevice: false, secondFactor: "none" });
    });
  });

  it("records where a session came from only sealed, and a failure's address only as its keyed hash", () => {
    const place = { deviceSealed: bytes(8, 60), addressSealed: bytes(6, 50), addressHash: bytes(5) };
    const from = (passwordMatches: boolean) =>
      login({ passwordMatches, grant: { ...(login() as { grant: SessionGrant }).grant, ...place } });
    given(registered()).when(from(true)).then(["SessionStarted"], ([event]) => {
      expect(event!.data).toMatchObject({ deviceSealed: place.deviceSealed, addressSealed: place.addressSealed });
      expect(event!.data).not.toHaveProperty("deviceName");
      expect(event!.data).not.toHaveProperty("address");
      expect(event!.data).not.toHaveProperty("addressHash");
    });
    const failure = decide(from(false), given(registered()).state, t0, make).events[0]!;
    expect(failure).toMatchObject({ type: "LoginFailed", data: { addressHash: place.addressHash } });
    expect(failure.data).not.toHaveProperty("address");
  });

  it("calls a device new once the user has logged in from another one", () => {
    given(registered(), sessionStarted("s1", { device: 8 })).when(login()).then(["SessionStarted"], ([event]) => {
      expect(event!.data).toMatchObject({ newDevice: true });
    });
  });

  it("records a wrong password and answers without saying whether the user exists", () => {
    given(registered()).when(login({ passwordMatches: false }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /^wrong username or password$/);
    given().when(login()).thenRefuses("unauthenticated", /^wrong username or password$/);
  });

  it("slows down after the free failures, doubling the wait", () => {
    expect([0, 1, 2, 3, 4, 5].map(loginDelayMs)).toEqual([0, 0, 0, 1_000, 2_000, 4_000]);
    expect(loginDelayMs(50)).toBe(limits.loginDelayMaxMs);
    const threeFailures = [registered(), failed(), failed(), failed()];
    given(...threeFailures).when(login(), t0 + 500).thenRefuses("busy", /try again in 1 s/);
    given(...threeFailures).when(login(), t0 + 1_000).then(["SessionStarted"]);
  });

  it("locks the account at the bound, and a success after the lock period clears it", () => {
    const failures = Array.from({ length: limits.loginFailuresLock - 1 }, () => failed());
    const nearlyLocked = [registered(), ...failures];
    const lockAt = t0 + limits.loginDelayMaxMs;
    given(...nearlyLocked).when(login({ passwordMatches: false }), lockAt)
      .thenRecordsAndRefuses(["AccountLocked"], "unauthenticated", /wrong username or password/);
    const locked = [...nearlyLocked, lockedAt(lockAt)];
    given(...locked).when(login(), lockAt + limits.accountLockMs - 1).thenRefuses("busy", /try again/);
    const after = given(...locked, sessionStarted("s2", { at: lockAt + limits.accountLockMs }));
    expect(after.state!.lanes.open).toEqual({ failures: 0, lockedUntil: null, lastFailureAt: null });
  });

  it("needs a TOTP code once TOTP is on, accepts a fresh one once, and refuses reuse", () => {
    const withTotp = [registered(), totpEnabled(100)];
    given(...withTotp).when(login()).thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /needs a TOTP code/);
    given(...withTotp).when(login({ secondFactor: { kind: "totp", step: null } }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /^wrong TOTP code$/);
    given(...withTotp).when(login({ secondFactor: { kind: "totp", step: 100 } }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /already used/);
    given(...withTotp).when(login({ secondFactor: { kind: "totp", step: 101 } })).then(["SessionStarted"], ([e]) => {
      expect(e!.data).toMatchObject({ secondFactor: "totp", totpStep: 101 });
    });
    given(...withTotp, sessionStarted("s1", { totpStep: 101 }))
      .when(login({ secondFactor: { kind: "totp", step: 101 } }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /already used/);
  });

  it("takes each backup code once", () => {
    const withTotp = [registered(), totpEnabled(100)];
    given(...withTotp).when(login({ secondFactor: { kind: "backup-code", index: 3 } })).then(
      ["SessionStarted"],
      ([e]) => {
        expect(e!.data).toMatchObject({ secondFactor: "backup-code", backupCode: 3 });
        expect(evolveUser(given(...withTotp).state, e!)!.totp!.backupCodeHashes[3]).toBeNull();
      },
    );
    const spent = veilEvent("SessionStarted", {
      ...(sessionStarted("s1").data as object),
      secondFactor: "backup-code",
      backupCode: 3,
    } as never, origin()) as UserEvent;
    const state = given(...withTotp, spent).state!;
    expect(state.totp!.backupCodeHashes.filter((hash) => hash === null)).toHaveLength(1);
    given(...withTotp, spent).when(login({ secondFactor: { kind: "backup-code", index: 3 } }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /already used backup code/);
  });

  it("emails a code to a user with an email and no TOTP, then takes it until it expires", () => {
    const withEmail = [registered("alice", { emailSealed: bytes(13, 40) })];
    given(...withEmail).when(login())
      .thenRecordsAndRefuses(["EmailCodeIssued"], "unauthenticated", /emailed to you/);
    const issued = make("EmailCodeIssued", {
      user: "alice",
      codeHash: bytes(11),
      codeSealed: bytes(12, 40),
      expiresAt: t0 + 600_000,
    });
    given(...withEmail, issued).when(login({ secondFactor: { kind: "email", matches: true } }))
      .then(["SessionStarted"], ([event]) => expect(event!.data).toMatchObject({ secondFactor: "email" }));
    given(...withEmail, issued).when(login({ secondFactor: { kind: "email", matches: false } }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /wrong emailed code/);
    given(...withEmail, issued).when(login({ secondFactor: { kind: "email", matches: true } }), t0 + 600_000)
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /expired/);
    // Spent by the login it let in: the same code does not work twice.
    const usedBy = veilEvent("SessionStarted", {
      ...(sessionStarted("s1").data as object),
      secondFactor: "email",
    } as never, origin()) as UserEvent;
    given(...withEmail, issued, usedBy).when(login({ secondFactor: { kind: "email", matches: true } }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /expired/);
  });

  it("sends a new emailed code at most once a minute", () => {
    const withEmail = [registered("alice", { emailSealed: bytes(13, 40) })];
    const issued = make("EmailCodeIssued", {
      user: "alice",
      codeHash: bytes(11),
      codeSealed: bytes(12, 40),
      expiresAt: t0 + limits.emailCodeTtlMs,
    });
    given(...withEmail, issued).when(login(), t0 + 1_000).thenRefuses("busy", /emailed less than a minute ago/);
    given(...withEmail, issued).when(login(), t0 + limits.emailCodeResendMs)
      .thenRecordsAndRefuses(["EmailCodeIssued"], "unauthenticated", /emailed to you/);
  });

  it("starts the count afresh once a lock has run out", () => {
    const until = t0 + limits.accountLockMs;
    const locked = [registered(), lockedAt(t0)];
    given(...locked).when(login({ passwordMatches: false }), until)
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /wrong username or password/);
    const after = given(...locked, failed(until)).state!;
    expect(after.lanes.open).toMatchObject({ failures: 1, lockedUntil: null });
  });
});

describe("lanes of failures", () => {
  // The user logged in from device 9 before; a stranger's login comes from elsewhere.
  const known = [registered(), sessionStarted("s1", { device: 9 })];
  const stranger = (passwordMatches = false) => login({ passwordMatches, deviceHashHex: "05".repeat(32) });
  const lane = (expected: LoginLane) => (events: readonly UserEvent[]) =>
    expect(events[0]!.data).toMatchObject({ lane: expected });

  it("counts a failure from a device the account logged in from in the trusted lane, any other in the open one", () => {
    given(...known).when(login({ passwordMatches: false }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /wrong username/, lane("trusted"));
    given(...known).when(stranger())
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /wrong username/, lane("open"));
    // The very first login has no known device: everything is open.
    given(registered()).when(login({ passwordMatches: false }))
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /wrong username/, lane("open"));
  });

  it("lets the user's own device in while strangers have the account locked", () => {
    const lockedByStranger = [...known, lockedAt(t0)];
    given(...lockedByStranger).when(stranger(true), t0 + 1).thenRefuses("busy", /too many failed logins/);
    given(...lockedByStranger).when(login(), t0 + 1).then(["SessionStarted"]);
  });

  it("keeps the open lane locked when the user logs in from a known device", () => {
    const after = given(...known, lockedAt(t0), sessionStarted("s2", { device: 9, at: t0 + 1 })).state!;
    expect(after.lanes.open.lockedUntil).toBe(t0 + limits.accountLockMs);
    given(...known, lockedAt(t0), sessionStarted("s2", { device: 9, at: t0 + 1 })).when(stranger(true), t0 + 2)
      .thenRefuses("busy", /too many failed logins/);
  });

  it("counts passwords and codes tried from a session in the trusted lane, which strangers cannot lock", () => {
    const change: AccountCommand = {
      type: "DeleteUser",
      ...as("s1"),
      passwordMatches: false,
      secondFactor: { kind: "none" },
    };
    given(...known).when(change)
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /password is wrong/, lane("trusted"));
    given(...known, lockedAt(t0)).when({ ...change, passwordMatches: true }, t0 + 1).then(["UserDeleted"]);
    given(...known, lockedAt(t0, "trusted")).when({ ...change, passwordMatches: true }, t0 + 1)
      .thenRefuses("busy", /too many failed logins/);
  });

  it("reads failures from before the lanes as the open lane's", () => {
    const old = validateEvent({ ...failed(), v: 2, data: { user: "alice", reason: "password" } }) as UserEvent;
    expect(old.data).toMatchObject({ lane: "open" });
    expect(evolveUser(given(...known).state, old)!.lanes).toMatchObject({
      open: { failures: 1 },
      trusted: { failures: 0 },
    });
  });
});

describe("sessions", () => {
  it("tells an expired session from an ended one", () => {
    const state = given(registered(), sessionStarted("s1")).state;
    const hash = "02".repeat(32);
    expect(requireSession(state, hash, t0).session).toBe("s1");
    // Its time (60 s) is not over until clocks could no longer disagree about it.
    expect(requireSession(state, hash, t0 + 60_000 + limits.clockSkewMaxMs - 1).session).toBe("s1");
    expect(() => requireSession(state, hash, t0 + 60_000 + limits.clockSkewMaxMs)).toThrow(/expired/);
    const ended = given(
      registered(),
      sessionStarted("s1"),
      make("SessionEnded", {
        user: "alice",
        session: "s1",
        reason: "logout",
      }),
    ).state;
    expect(() => requireSession(ended, hash, t0)).toThrow(/not logged in/);
  });

  it("logs out one session or all, and revokes only sessions that exist", () => {
    const two = [registered(), sessionStarted("s1"), sessionStarted("s22")];
    given(...two).when({ type: "LogOut", ...as("s1"), all: false }).then(["SessionEnded"], ([event]) => {
      expect(event!.data).toMatchObject({ session: "s1", reason: "logout" });
    });
    given(...two).when({ type: "LogOut", ...as("s1"), all: true }).then(["SessionsEnded"]);
    expect(Object.keys(given(...two, make("SessionsEnded", { user: "alice" })).state!.sessions)).toEqual([]);
    given(...two).when({ type: "RevokeSession", ...as("s1"), session: "nope" }).thenRefuses("not-found", /no session/);
    // Names an object already has are not sessions either.
    given(...two).when({ type: "RevokeSession", ...as("s1"), session: "constructor" })
      .thenRefuses("not-found", /no session/);
    given(...two).when({ type: "RevokeSession", ...as("s1"), session: "s22" }).then(["SessionEnded"]);
  });

  it("checks the session in the decision, so one ended meanwhile does not act", () => {
    const ended = [
      registered(),
      sessionStarted("s1"),
      make("SessionEnded", {
        user: "alice",
        session: "s1",
        reason: "revoked",
      }),
    ];
    given(...ended).when({ type: "LogOut", ...as("s1"), all: true }).thenRefuses("unauthenticated", /not logged in/);
    given(registered(), sessionStarted("s1"))
      .when({ type: "LogOut", ...as("s1"), all: false }, t0 + 60_000 + limits.clockSkewMaxMs)
      .thenRefuses("unauthenticated", /expired/);
  });

  it("keeps at most the bound of sessions, dropping the oldest", () => {
    const many = Array.from(
      { length: limits.sessionsPerUserMax + 1 },
      (_, index) => sessionStarted(`s${index}`, { at: t0 + index }),
    );
    const state = given(registered(), ...many).state!;
    expect(Object.keys(state.sessions)).toHaveLength(limits.sessionsPerUserMax);
    expect(state.sessions.s0).toBeUndefined();
  });
});

const none: SecondFactorEvidence = { kind: "none" };

/** Credentials a password change brings, each field filled from `seed` on. */
const newCredentials = (seed: number) => ({
  passwordSalt: bytes(seed, 16),
  passwordKdf: kdf,
  verifier: bytes(seed + 1),
  verifierSalt: bytes(seed + 2, 16),
  verifierKdf: kdf,
  accountKeyWrapped: bytes(seed + 3, 73),
  privateKeyWrapped: bytes(seed + 4, 73),
});

describe("credentials and factors", () => {
  it("a password change needs the current password and ends every other session", () => {
    const credentials = newCredentials(21);
    const two = [registered(), sessionStarted("s1"), sessionStarted("s22")];
    // A wrong guess through a stolen session counts like a failed login.
    given(...two).when({ type: "ChangePassword", ...as("s1"), passwordMatches: false, credentials, secondFactor: none })
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /current password is wrong/);
    // Guesses from a session (the trusted lane) slow the next ones down.
    given(...two, failed(t0, "trusted"), failed(t0, "trusted"), failed(t0, "trusted")).when({
      type: "ChangePassword",
      ...as("s1"),
      passwordMatches: true,
      credentials,
      secondFactor: none,
    }).thenRefuses("busy", /try again/);
    given(...two).when({ type: "ChangePassword", ...as("s1"), passwordMatches: true, credentials, secondFactor: none })
      .then(["PasswordChanged"], ([event]) => expect(event!.data).toMatchObject({ keptSession: "s1" }));
    const changed = given(...two, make("PasswordChanged", { user: "alice", ...credentials, keptSession: "s1" })).state!;
    expect(Object.keys(changed.sessions)).toEqual(["s1"]);
    expect(changed.credentials.verifier).toEqual(bytes(22));
  });

  it("TOTP is enabled with a matching code, once, and disabled with a fresh code", () => {
    const enable = (step: number | null, passwordMatches = true): AccountCommand => ({
      type: "EnableTotp",
      ...as("s1"),
      passwordMatches,
      step,
      secretSealed: bytes(7, 60),
      backupCodeHashes: Array.from({ length: limits.backupCodes }, () => bytes(1)),
    });
    const open = [registered(), sessionStarted("s1")];
    given(...open).when(enable(null)).thenRefuses("validation", /does not match/);
    // A stolen session without the password cannot put a second factor between the owner and the account.
    given(...open).when(enable(5, false)).thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /password/);
    given(...open).when(enable(5)).then(["TotpEnabled"]);
    given(...open, totpEnabled(5)).when(enable(6)).thenRefuses("conflict", /already on/);
    given(...open, totpEnabled(5))
      .when({ type: "DisableTotp", ...as("s1"), secondFactor: { kind: "totp", step: 5 } })
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /already used/);
    given(...open, totpEnabled(5))
      .when({ type: "DisableTotp", ...as("s1"), secondFactor: { kind: "totp", step: null } })
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /wrong TOTP code/);
    given(...open, totpEnabled(5))
      .when({ type: "DisableTotp", ...as("s1"), secondFactor: { kind: "totp", step: 6 } })
      .then(["TotpDisabled"]);
  });

  it("a password change or a deletion needs a fresh second factor when TOTP is on, and spends it", () => {
    const credentials = newCredentials(31);
    const open = [registered(), sessionStarted("s1"), totpEnabled(5)];
    const change = (secondFactor: SecondFactorEvidence): AccountCommand => ({
      type: "ChangePassword",
      ...as("s1"),
      passwordMatches: true,
      credentials,
      secondFactor,
    });
    // A stolen session and password are not enough.
    given(...open).when(change(none)).thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /needs a TOTP code/);
    given(...open).when(change({ kind: "totp", step: 5 })).thenRecordsAndRefuses(
      ["LoginFailed"],
      "unauthenticated",
      /already used/,
    );
    given(...open).when(change({ kind: "totp", step: 7 })).then(
      ["PasswordChanged"],
      ([event]) => expect(event!.data).toMatchObject({ totpStep: 7 }),
    );
    const changed = given(
      ...open,
      make("PasswordChanged", { user: "alice", ...credentials, keptSession: "s1", totpStep: 7 }),
    )
      .state!;
    expect(changed.totp?.lastStep).toBe(7);
    given(...open).when({ type: "DeleteUser", ...as("s1"), passwordMatches: true, secondFactor: none })
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /needs a TOTP code/);
    given(...open).when({
      type: "DeleteUser",
      ...as("s1"),
      passwordMatches: true,
      secondFactor: { kind: "backup-code", index: 0 },
    }).then(["UserDeleted"]);
  });

  it("deletes only with the password, and a deleted user can do nothing", () => {
    const open = [registered(), sessionStarted("s1")];
    given(...open).when({ type: "DeleteUser", ...as("s1"), passwordMatches: false, secondFactor: none })
      .thenRecordsAndRefuses(["LoginFailed"], "unauthenticated", /password is wrong/);
    given(...open).when({ type: "DeleteUser", ...as("s1"), passwordMatches: true, secondFactor: none })
      .then(["UserDeleted"]);
    const deleted = [...open, make("UserDeleted", { user: "alice" })];
    const credentials = registered().data as never;
    const commands: AccountCommand[] = [
      { type: "LogOut", ...as("s1"), all: false },
      { type: "RevokeSession", ...as("s1"), session: "s1" },
      { type: "ChangePassword", ...as("s1"), passwordMatches: true, credentials, secondFactor: none },
      { type: "DeleteUser", ...as("s1"), passwordMatches: true, secondFactor: none },
      {
        type: "EnableTotp",
        ...as("s1"),
        passwordMatches: true,
        step: 9,
        secretSealed: bytes(1, 40),
        backupCodeHashes: [],
      },
      { type: "DisableTotp", ...as("s1"), secondFactor: { kind: "totp", step: 9 } },
    ];
    for (const command of commands) given(...deleted).when(command).thenRefuses("unauthenticated", /not logged in/);
    given(...deleted).when(login()).thenRefuses("unauthenticated", /^wrong username or password$/);
  });
});
