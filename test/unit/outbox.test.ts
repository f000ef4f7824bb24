/** The outbox projection, given events / then the notifications waiting; and what the mails say. */
import { describe, expect, it } from "vitest";
import { composeMail } from "../../actors/mailer/messages.ts";
import { type LoginLane, type VeilEvent, veilEvent } from "../../events/mod.ts";
import { fold, outboxProjection } from "../../projections/mod.ts";
import { origin } from "../support/events.ts";
import { bytes, registered as registeredEvent } from "../support/users.ts";

const registered = (user: string, email: boolean) => registeredEvent(user, email ? { emailSealed: bytes(7, 40) } : {});
const login = (user: string, newDevice: boolean) =>
  veilEvent("SessionStarted", {
    user,
    session: `s-${user}`,
    tokenHash: bytes(8),
    expiresAt: 2e12,
    deviceHash: bytes(9),
    deviceName: "phone",
    newDevice,
    address: "192.0.2.1",
    secondFactor: "none",
  }, origin());
const given = (...events: VeilEvent[]) => fold(outboxProjection, events);

describe("the outbox", () => {
  it("raises a notification for a new device and a lock, only for users with an email", () => {
    const lock = veilEvent(
      "AccountLocked",
      { user: "alice", lane: "open", until: 1_800_000_900_000, failures: 20 },
      origin(),
    );
    const newDevice = login("alice", true);
    const state = given(
      registered("alice", true),
      registered("bob", false),
      login("alice", false),
      newDevice,
      lock,
      login("bob", true),
    );
    expect(Object.values(state.pending).map((item) => [item.user, item.kind])).toEqual([
      ["alice", "new-device"],
      ["alice", "account-locked"],
    ]);
    expect(state.pending[newDevice.id]).toMatchObject({ deviceName: "phone", address: "192.0.2.1" });
  });

  it("carries a new device's sealed name and address for the mailer to open (v2 sessions)", () => {
    const sealed = veilEvent("SessionStarted", {
      user: "alice",
      session: "s-sealed",
      tokenHash: bytes(8),
      expiresAt: 2e12,
      deviceHash: bytes(9),
      deviceSealed: bytes(12, 60),
      addressSealed: bytes(13, 50),
      newDevice: true,
      secondFactor: "none",
    }, origin());
    const pending = given(registered("alice", true), sealed).pending[sealed.id]!;
    expect(pending).toMatchObject({ kind: "new-device", deviceSealed: bytes(12, 60), addressSealed: bytes(13, 50) });
    expect(pending.deviceName).toBeUndefined();
    expect(pending.address).toBeUndefined();
  });

  it("takes a notification out once sent, and forgets a deleted user's", () => {
    const code = veilEvent("EmailCodeIssued", {
      user: "alice",
      codeHash: bytes(10),
      codeSealed: bytes(11, 40),
      expiresAt: 2e12,
    }, origin());
    const sent = veilEvent("NotificationSent", { user: "alice", notification: code.id, transport: "smtp" }, origin());
    expect(given(registered("alice", true), code).pending[code.id]?.codeSealed).toEqual(bytes(11, 40));
    expect(given(registered("alice", true), code, sent).pending).toEqual({});
    const deleted = veilEvent("UserDeleted", { user: "alice" }, origin());
    expect(given(registered("alice", true), login("alice", false), login("alice", true), deleted)).toEqual({
      reachable: {},
      pending: {},
    });
  });

  it("writes plain mails that say what happened and what to do", () => {
    const base = { id: "e1", user: "alice", at: 1_800_000_000_000 };
    expect(composeMail({ ...base, kind: "email-code" }, "a@example.test", "123456").text).toMatch(/code is 123456/);
    const alert = composeMail({ ...base, kind: "new-device", deviceName: "phone", address: "192.0.2.1" }, "a@x.test");
    expect(alert.subject).toMatch(/new device/);
    expect(alert.text).toMatch(/phone \(address 192\.0\.2\.1\)[\s\S]*veil passwd/);
    const locked = (lane: LoginLane) =>
      composeMail({ ...base, kind: "account-locked", lockedUntil: 1_800_000_900_000, lane }, "a@x.test").text;
    expect(locked("open")).toMatch(/not logged in from before are refused until 2027-01-15T08:15:00.000Z/);
    expect(locked("open")).toMatch(/Devices you logged in from before can still log in/);
    expect(locked("trusted")).toMatch(/logins to your account are refused until 2027-01-15T08:15:00.000Z/);
  });
});
