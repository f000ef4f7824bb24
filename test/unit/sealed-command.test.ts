import { describe, expect, it } from "vitest";
import {
  CommandOpener,
  CommandSealer,
  keyPairOf,
  newKeyPair,
  openCommand,
  openSealed,
  RefusedCommand,
  ReplayWindow,
  sealCommand,
  sealTo,
} from "../../actors/crypto/mod.ts";
import { BusyError, ForbiddenError, IntegrityError, ValidationError } from "../../events/mod.ts";
import { seededRandom } from "../sim/random.ts";

const seeded = (seed: number) => {
  const random = seededRandom(seed);
  return { bytes: (length: number) => Uint8Array.from({ length }, () => random.between(0, 255)) };
};
const random = seeded(7);
const cluster = keyPairOf(random.bytes(32));
const now = 1_800_000_000_000;
const login = { name: "user.login", data: { user: "alice", authHash: new Uint8Array(32).fill(9) } };

function caught(work: () => unknown): Error {
  try {
    work();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a refusal");
}

describe("sealed commands", () => {
  it("opens for the cluster, and its reply opens only for the client that asked", () => {
    const sealed = sealCommand(cluster.publicKey, login, { random, now });
    const opened = openCommand(cluster.privateKey, "user.login", sealed.body, {
      replays: new ReplayWindow(),
      now,
      random,
    });
    expect(opened.data).toEqual(login.data);
    const reply = opened.sealReply({ ok: true, value: { token: "secret-token" } });
    expect(sealed.openReply(reply)).toEqual({ ok: true, value: { token: "secret-token" } });
    // Another client's request gets another reply key: this reply does not open for it.
    const other = sealCommand(cluster.publicKey, login, { random, now });
    expect(caught(() => other.openReply(reply))).toBeInstanceOf(IntegrityError);
  });

  it("keeps what it carries unreadable on the wire", () => {
    const sealed = sealCommand(cluster.publicKey, login, { random, now });
    const wire = Buffer.from(sealed.body.sealed);
    expect(wire.includes(Buffer.from("alice"))).toBe(false);
    expect(wire.includes(Buffer.from(login.data.authHash))).toBe(false);
  });

  it("refuses a replay, an old request, another cluster's seal, a damaged seal and a renamed one", () => {
    const replays = new ReplayWindow(120_000);
    const sealed = sealCommand(cluster.publicKey, login, { random, now });
    openCommand(cluster.privateKey, "user.login", sealed.body, { replays, now, random });
    const replayed = caught(() => openCommand(cluster.privateKey, "user.login", sealed.body, { replays, now, random }));
    expect(replayed).toBeInstanceOf(RefusedCommand);
    expect((replayed as RefusedCommand).reason).toBeInstanceOf(ForbiddenError);
    expect(replayed.message).toMatch(/seen before: a replay/);
    // The refusal goes back sealed for the one who asked: no one else can forge it.
    const refusal = { ok: false, error: { code: "forbidden", message: replayed.message } };
    expect(sealed.openReply((replayed as RefusedCommand).sealReply(refusal))).toEqual(refusal);

    const old = sealCommand(cluster.publicKey, login, { random, now: now - 200_000 });
    expect(caught(() => openCommand(cluster.privateKey, "user.login", old.body, { replays, now, random })).message)
      .toMatch(/more than 120 s from the cluster's/);

    const elsewhere = sealCommand(newKeyPair(random).publicKey, login, { random, now });
    expect(caught(() => openCommand(cluster.privateKey, "user.login", elsewhere.body, { replays, now, random })))
      .toBeInstanceOf(IntegrityError);

    const damaged = sealCommand(cluster.publicKey, login, { random, now });
    damaged.body.sealed[damaged.body.sealed.length - 1]! ^= 1;
    expect(caught(() => openCommand(cluster.privateKey, "user.login", damaged.body, { replays, now, random })).message)
      .toMatch(/does not open/);

    // Sealed as one command, sent as another: the name is bound into the seal.
    const renamed = sealCommand(cluster.publicKey, login, { random, now });
    expect(caught(() => openCommand(cluster.privateKey, "user.delete", renamed.body, { replays, now, random })))
      .toBeInstanceOf(IntegrityError);

    expect(caught(() => openCommand(cluster.privateKey, "user.login", login.data, { replays, now, random })).message)
      .toMatch(/must be sealed/);
  });

  it("refuses a reply that is not sealed, unless it is a refusal", () => {
    const sealed = sealCommand(cluster.publicKey, login, { random, now });
    expect(caught(() => sealed.openReply({ ok: true, value: { token: "forged" } })).message).toMatch(/not sealed/);
    const refusal = { ok: false, error: { code: "integrity", message: "does not open" } };
    expect(sealed.openReply(refusal)).toEqual(refusal);
  });
});

describe("a client's sealer, used for many commands", () => {
  it("binds each reply to its own request, so replies cannot be swapped", () => {
    const sealer = new CommandSealer(cluster.publicKey, random);
    const opener = new CommandOpener(cluster.privateKey, new ReplayWindow());
    const first = sealer.seal(login, now);
    const second = sealer.seal(login, now);
    const firstReply = opener.open("user.login", first.body, { now, random }).sealReply({ ok: true, value: 1 });
    const secondReply = opener.open("user.login", second.body, { now, random }).sealReply({ ok: true, value: 2 });
    expect(first.openReply(firstReply)).toEqual({ ok: true, value: 1 });
    expect(second.openReply(secondReply)).toEqual({ ok: true, value: 2 });
    expect(caught(() => first.openReply(secondReply))).toBeInstanceOf(IntegrityError);
  });

  it("is remembered by the server up to its bound, and opens again after being forgotten", () => {
    const opener = new CommandOpener(cluster.privateKey, new ReplayWindow(), 2);
    const sealers = [0, 1, 2].map(() => new CommandSealer(cluster.publicKey, random));
    for (const sealer of [...sealers, ...sealers]) {
      expect(opener.open("user.login", sealer.seal(login, now).body, { now, random }).data).toEqual(login.data);
    }
  });
});

describe("the replay window", () => {
  it("forgets nonces once their requests are too old anyway, and stays bounded", () => {
    const window = new ReplayWindow(1_000, 3);
    const nonce = (n: number) => new Uint8Array(16).fill(n);
    window.admit(nonce(1), now, now);
    window.admit(nonce(2), now, now);
    window.admit(nonce(3), now, now);
    expect(caught(() => window.admit(nonce(4), now, now)).message).toMatch(/too many requests/);
    // Later, the first three are past the window: forgotten, so there is room again.
    window.admit(nonce(4), now + 1_500, now + 1_500);
    window.admit(nonce(1), now + 1_500, now + 1_500);
    expect(caught(() => window.admit(nonce(1), now + 1_500, now + 1_600))).toBeInstanceOf(ForbiddenError);
    expect(window.size).toBe(2);
  });

  it("refuses requests dated ahead of its clock past a short margin", () => {
    const window = new ReplayWindow(120_000, 10, { futureMs: 10_000 });
    expect(caught(() => window.admit(new Uint8Array(16), now + 11_000, now)).message).toMatch(/more than 10 s/);
    window.admit(new Uint8Array(16), now + 9_000, now);
  });

  it("forgets by the time requests were sealed at: one dated ahead holds back no one behind it", () => {
    const window = new ReplayWindow(1_000, 3);
    const nonce = (n: number) => new Uint8Array(16).fill(n);
    // Arrived first, dated as far ahead as the margin allows: still young when the others are old.
    window.admit(nonce(1), now + 900, now);
    window.admit(nonce(2), now, now);
    window.admit(nonce(3), now, now);
    window.admit(nonce(4), now + 1_500, now + 1_500);
    window.admit(nonce(5), now + 1_500, now + 1_500);
    expect(caught(() => window.admit(nonce(1), now + 1_500, now + 1_500)).message).toMatch(/seen before/);
    expect(window.size).toBe(3);
  });

  it("gives one address a share only, so a flood from one machine refuses no one else", () => {
    const window = new ReplayWindow(120_000, 10, { perSourceMax: 2 });
    const nonce = (n: number) => new Uint8Array(16).fill(n);
    window.admit(nonce(1), now, now, "203.0.113.7");
    window.admit(nonce(2), now, now, "203.0.113.7");
    const refused = caught(() => window.admit(nonce(3), now, now, "203.0.113.7"));
    expect(refused).toBeInstanceOf(BusyError);
    expect(refused.message).toMatch(/from this address/);
    window.admit(nonce(3), now, now, "198.51.100.2");
    // Once its requests are past the window, the address has its share back.
    window.admit(nonce(4), now + 121_000, now + 121_000, "203.0.113.7");
  });
});

describe("sealing to a public key", () => {
  it("opens with the private key and the same context only", () => {
    const recipient = newKeyPair(random);
    const { sealed, replyKey } = sealTo(recipient.publicKey, new Uint8Array([1, 2, 3]), "note", "alice", random);
    const opened = openSealed(recipient.privateKey, sealed, "note", "alice");
    expect([...opened.plaintext]).toEqual([1, 2, 3]);
    expect(opened.replyKey).toEqual(replyKey);
    expect(caught(() => openSealed(recipient.privateKey, sealed, "note", "bob"))).toBeInstanceOf(IntegrityError);
    expect(caught(() => openSealed(newKeyPair(random).privateKey, sealed, "note", "alice")))
      .toBeInstanceOf(IntegrityError);
    expect(caught(() => openSealed(recipient.privateKey, sealed.subarray(0, 10), "note", "alice")))
      .toBeInstanceOf(ValidationError);
  });
});
