/** TOTP against RFC 6238's own vectors, the client's zero-knowledge keys, and the rules for names and passwords. */
import { describe, expect, it } from "vitest";
import { deriveSubkey } from "../../actors/crypto/mod.ts";
import {
  authHash,
  newAccountKeys,
  normaliseUsername,
  openAccountKeys,
  passwordProblem,
  sealCredentials,
} from "../../actors/peer/account.ts";
import { clusterSecrets, newBackupCodes, newNumericCode, newToken } from "../../actors/server/accounts/secrets.ts";
import { fromBase32, hotp, matchTotp, otpauthUri, toBase32, totp } from "../../actors/server/accounts/totp.ts";
import { cryptoRandom } from "../../infra/random.ts";

const rfcSeed = new TextEncoder().encode("12345678901234567890");

describe("TOTP (RFC 6238)", () => {
  it("matches the SHA-1 test vectors of Appendix B", () => {
    const vectors: [number, string][] = [
      [59, "94287082"],
      [1_111_111_109, "07081804"],
      [1_111_111_111, "14050471"],
      [1_234_567_890, "89005924"],
      [2_000_000_000, "69279037"],
      [20_000_000_000, "65353130"],
    ];
    for (const [seconds, code] of vectors) expect(totp(rfcSeed, seconds * 1_000, 8)).toBe(code);
  });

  it("matches RFC 4226's HOTP values, truncated to 6 digits", () => {
    expect([0, 1, 2, 9].map((counter) => hotp(rfcSeed, counter))).toEqual(["755224", "287082", "359152", "520489"]);
  });

  it("accepts one step either side, and names the step it matched", () => {
    const now = 1_000_000 * 30_000 + 12_000;
    const step = 1_000_000;
    expect(matchTotp(rfcSeed, totp(rfcSeed, now), now)).toBe(step);
    expect(matchTotp(rfcSeed, totp(rfcSeed, now - 30_000), now)).toBe(step - 1);
    expect(matchTotp(rfcSeed, totp(rfcSeed, now + 30_000), now)).toBe(step + 1);
    expect(matchTotp(rfcSeed, totp(rfcSeed, now - 60_000), now)).toBeNull();
  });

  it("writes secrets in base32 for apps, and an otpauth URI", () => {
    expect(toBase32(rfcSeed)).toBe("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    expect(fromBase32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq")).toEqual(rfcSeed);
    const uri = new URL(otpauthUri("veil", "alice", rfcSeed));
    expect(uri.protocol).toBe("otpauth:");
    expect(uri.searchParams.get("secret")).toBe(toBase32(rfcSeed));
    expect(uri.searchParams.get("period")).toBe("30");
    expect(() => fromBase32("not-base32!")).toThrow(/not base32/);
  });
});

describe("the client's keys", () => {
  it("wraps the account keys under the password, and only that password opens them", () => {
    const keys = newAccountKeys(cryptoRandom);
    const master = cryptoRandom.bytes(32);
    const kdf = { N: 1024, r: 8, p: 1 };
    const sealed = sealCredentials({
      user: "alice",
      master,
      passwordSalt: cryptoRandom.bytes(16),
      passwordKdf: kdf,
      keys,
      random: cryptoRandom,
    });
    const opened = openAccountKeys({ user: "alice", master, ...sealed, publicKey: keys.publicKey });
    expect(opened.accountKey).toEqual(keys.accountKey);
    expect(opened.privateKey).toEqual(keys.privateKey);
    expect(() =>
      openAccountKeys({ user: "alice", master: cryptoRandom.bytes(32), ...sealed, publicKey: keys.publicKey })
    )
      .toThrow(/does not open/);
    // Bound to the user: the same wrapped keys do not open as another user's.
    expect(() => openAccountKeys({ user: "mallory", master, ...sealed, publicKey: keys.publicKey })).toThrow(
      /does not open/,
    );
    // What is sent to log in is neither the master key nor a key that unwraps anything.
    expect(sealed.authHash).toEqual(authHash(master));
    expect(sealed.authHash).not.toEqual(master);
    expect(sealed.authHash).not.toEqual(deriveSubkey(master, "account-key"));
  });

  it("refuses weak passwords with the reason", () => {
    expect(passwordProblem("short", "alice")).toMatch(/at least 10/);
    expect(passwordProblem("aaaaaaaaaaaa", "alice")).toMatch(/4 different/);
    expect(passwordProblem("my alice password", "alice")).toMatch(/username/);
    expect(passwordProblem("password123", "alice")).toMatch(/most common/);
    expect(passwordProblem("tab\there-is-bad", "alice")).toMatch(/control/);
    expect(passwordProblem("x".repeat(257) + "abcd", "alice")).toMatch(/at most 256/);
    expect(passwordProblem("correct horse battery", "alice")).toBeUndefined();
  });

  it("takes ASCII usernames only, folded to lowercase", () => {
    expect(normaliseUsername("Alice")).toBe("alice");
    for (const bad of ["", "ab", "../etc", "al ice", "аlice", "a\u0000b", "1alice", "x".repeat(33), "al.ice", "a>b"]) {
      expect(() => normaliseUsername(bad), bad).toThrow(/a username is 3 to 32/);
    }
  });
});

describe("the server's secrets", () => {
  it("seals under the cluster key, bound to purpose and user", () => {
    const secrets = clusterSecrets(cryptoRandom.bytes(32), cryptoRandom);
    const sealed = secrets.seal("totp", "alice", rfcSeed);
    expect(secrets.open("totp", "alice", sealed)).toEqual(rfcSeed);
    expect(() => secrets.open("totp", "bob", sealed)).toThrow(/does not open/);
    expect(() => clusterSecrets(cryptoRandom.bytes(32), cryptoRandom).open("totp", "alice", sealed)).toThrow(
      /does not open/,
    );
    expect(secrets.mac("backup-code", "alice", "x")).not.toEqual(secrets.mac("backup-code", "bob", "x"));
  });

  it("makes 256-bit tokens, ten distinct backup codes and 6-digit codes", () => {
    expect(newToken(cryptoRandom)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const codes = newBackupCodes(cryptoRandom);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[a-z2-7]{5}-[a-z2-7]{5}$/);
    for (let index = 0; index < 50; index++) expect(newNumericCode(cryptoRandom)).toMatch(/^\d{6}$/);
  });
});
