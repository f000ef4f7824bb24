/** Where sessions come from: sealed with the cluster key for their user, opened only by a server holding it. */
import { bytesToHex } from "@noble/hashes/utils.js";
import { describe, expect, it } from "vitest";
import { addressHash, openPlace, sealAddress, sealDeviceName } from "../../actors/server/accounts/places.ts";
import { clusterSecrets } from "../../actors/server/accounts/secrets.ts";
import { decodeEvent, encodeMessage, veilEvent } from "../../events/mod.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { fold, usersProjection } from "../../projections/mod.ts";
import { origin } from "../support/events.ts";
import { registered } from "../support/users.ts";

const secrets = clusterSecrets(cryptoRandom.bytes(32), cryptoRandom);
const text = (value: string) => new TextEncoder().encode(value);

describe("a session's place", () => {
  it("opens for its own user, and shows no name or address in the sealed bytes", () => {
    const deviceSealed = sealDeviceName(secrets, "alice", "alice's laptop (linux)");
    const addressSealed = sealAddress(secrets, "alice", "203.0.113.7");
    expect(openPlace(secrets, "alice", { deviceSealed, addressSealed })).toEqual({
      deviceName: "alice's laptop (linux)",
      address: "203.0.113.7",
    });
    expect(bytesToHex(deviceSealed)).not.toContain(bytesToHex(text("laptop")));
    expect(bytesToHex(addressSealed)).not.toContain(bytesToHex(text("203.0.113.7")));
    // Moved to another user's session, or read with another cluster's key, it does not open.
    expect(openPlace(secrets, "bob", { deviceSealed })).toEqual({ deviceName: "(does not open)" });
    const other = clusterSecrets(cryptoRandom.bytes(32), cryptoRandom);
    expect(openPlace(other, "alice", { deviceSealed, addressSealed })).toEqual({
      deviceName: "(does not open)",
      address: "(does not open)",
    });
  });

  it("takes a session from before sealing (v1) as it was recorded", () => {
    expect(openPlace(secrets, "alice", { deviceName: "old phone", address: "192.0.2.1" })).toEqual({
      deviceName: "old phone",
      address: "192.0.2.1",
    });
    expect(openPlace(secrets, "alice", { deviceName: "old phone" })).toEqual({ deviceName: "old phone" });
  });

  it("hashes an address the same for every user, keyed: another cluster key gives another hash", () => {
    expect(bytesToHex(addressHash(secrets, "203.0.113.7"))).toBe(bytesToHex(addressHash(secrets, "203.0.113.7")));
    expect(bytesToHex(addressHash(secrets, "203.0.113.7"))).not.toBe(bytesToHex(addressHash(secrets, "203.0.113.8")));
    const other = clusterSecrets(cryptoRandom.bytes(32), cryptoRandom);
    expect(bytesToHex(addressHash(other, "203.0.113.7"))).not.toBe(bytesToHex(addressHash(secrets, "203.0.113.7")));
  });
});

describe("the users projection, for places", () => {
  const failed = (data: Record<string, unknown>, at: number) =>
    veilEvent("LoginFailed", { user: "alice", reason: "password", lane: "open", ...data } as never, origin(at));

  it("counts failures per address by its keyed hash, and a v1 event's by the address it had in the clear", () => {
    const hash = addressHash(secrets, "203.0.113.7");
    const state = fold(usersProjection, [
      registered("alice"),
      failed({ addressHash: hash }, 1_800_000_000_000),
      failed({ addressHash: hash }, 1_800_000_001_000),
      decodeEvent(encodeMessage({
        type: "LoginFailed",
        v: 1,
        id: "old-1",
        at: 1_800_000_002_000,
        by: "server-1",
        data: { user: "alice", reason: "password", address: "192.0.2.1" },
      })),
    ]);
    expect(state.addresses).toEqual({
      [bytesToHex(hash)]: { failures: 2, lastFailureAt: 1_800_000_001_000 },
      "192.0.2.1": { failures: 1, lastFailureAt: 1_800_000_002_000 },
    });
    expect(JSON.stringify(state)).not.toContain("203.0.113.7");
  });

  it("reads a v1 session's device and address as they were, and keeps a v2 session's sealed", () => {
    const v1 = decodeEvent(encodeMessage({
      type: "SessionStarted",
      v: 1,
      id: "old-2",
      at: 1_800_000_000_000,
      by: "server-1",
      data: {
        user: "alice",
        session: "s-old",
        tokenHash: new Uint8Array(32),
        expiresAt: 1_900_000_000_000,
        deviceHash: new Uint8Array(32).fill(1),
        deviceName: "old phone",
        newDevice: false,
        address: "192.0.2.1",
        secondFactor: "none",
      },
    }));
    expect(v1.v).toBe(2);
    const deviceSealed = sealDeviceName(secrets, "alice", "new laptop");
    const v2 = veilEvent("SessionStarted", {
      user: "alice",
      session: "s-new",
      tokenHash: new Uint8Array(32).fill(2),
      expiresAt: 1_900_000_000_000,
      deviceHash: new Uint8Array(32).fill(3),
      deviceSealed,
      newDevice: true,
      secondFactor: "none",
    }, origin(1_800_000_001_000));
    const sessions = fold(usersProjection, [registered("alice"), v1, v2]).users.alice!.sessions;
    expect(openPlace(secrets, "alice", sessions["s-old"]!)).toEqual({ deviceName: "old phone", address: "192.0.2.1" });
    expect(sessions["s-new"]).toMatchObject({ deviceSealed });
    expect(sessions["s-new"]).not.toHaveProperty("deviceName");
    expect(openPlace(secrets, "alice", sessions["s-new"]!)).toEqual({ deviceName: "new laptop" });
  });
});
