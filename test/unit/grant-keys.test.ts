/** Grant keys: two shares make the copy's key; each share opens only for its recipient and context. */
import { x25519 } from "@noble/curves/ed25519.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { describe, expect, it } from "vitest";
import {
  grantCopyId,
  grantObjectKeys,
  newGrantShares,
  openShare,
  sealShareTo,
  shareAContext,
  shareBContext,
} from "../../actors/peer/grant.ts";
import { cryptoRandom } from "../../infra/random.ts";

const parties = { grant: "2".repeat(32), owner: "olga", recipient: "rita" };
const rita = cryptoRandom.bytes(32);
const tom = cryptoRandom.bytes(32);

describe("grant keys", () => {
  it("opens a share only with the recipient's key and the context it was sealed under", () => {
    const { shareA } = newGrantShares(cryptoRandom);
    const sealed = sealShareTo(x25519.getPublicKey(rita), shareA, shareAContext(parties), cryptoRandom);
    expect(openShare(rita, sealed, shareAContext(parties))).toEqual(shareA);
    expect(() => openShare(tom, sealed, shareAContext(parties))).toThrow(/does not open/);
    expect(() => openShare(rita, sealed, shareBContext(parties, "3".repeat(32)))).toThrow(/does not open/);
    const damaged = sealed.slice();
    damaged[damaged.length - 1]! ^= 1;
    expect(() => openShare(rita, damaged, shareAContext(parties))).toThrow(/does not open/);
  });

  it("needs both shares, and binds the copy to its grant, owner and recipient", () => {
    const { shareA, shareB } = newGrantShares(cryptoRandom);
    const keys = grantObjectKeys(parties, shareA, shareB);
    expect(keys.image).toBe(grantCopyId(parties));
    expect(grantObjectKeys(parties, shareA, shareB).dataKey).toEqual(keys.dataKey);
    expect(bytesToHex(grantObjectKeys(parties, shareA, cryptoRandom.bytes(32)).dataKey)).not.toBe(
      bytesToHex(keys.dataKey),
    );
    const moved = grantObjectKeys({ ...parties, recipient: "tom" }, shareA, shareB);
    expect(moved.image).not.toBe(keys.image);
    expect(bytesToHex(moved.dataKey)).not.toBe(bytesToHex(keys.dataKey));
  });
});
