import { describe, expect, it } from "vitest";
import { bytesToHex } from "@noble/hashes/utils.js";
import { cryptoRandom } from "../../infra/random.ts";

describe("the real random source", () => {
  it("hands out every pooled byte once: no two nonces repeat across pool refills", () => {
    const seen = new Set<string>();
    // 16-byte nonces past several 4 KiB pools; a reused or zeroed slice would repeat.
    for (let index = 0; index < 2_000; index++) seen.add(bytesToHex(cryptoRandom.bytes(16)));
    expect(seen.size).toBe(2_000);
  });

  it("gives each caller its own buffer, so zeroing a key touches no one else's bytes", () => {
    const first = cryptoRandom.bytes(32);
    const kept = first.slice();
    cryptoRandom.bytes(32).fill(0);
    expect(first).toEqual(kept);
    expect(first.buffer.byteLength).toBe(32);
  });

  it("fills requests of every size, past what one CSPRNG call allows", () => {
    for (const length of [0, 1, 255, 256, 4_097, 65_537]) {
      const bytes = cryptoRandom.bytes(length);
      expect(bytes.byteLength).toBe(length);
      // 64 bytes of zeros from a CSPRNG would be a broken fill, not chance.
      if (length >= 256) expect(bytes.subarray(length - 64).some((byte) => byte !== 0)).toBe(true);
    }
  });
});
