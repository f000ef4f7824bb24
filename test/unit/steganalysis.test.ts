/**
 * Steganalysis: plain LSB replacement is caught by the chi-square attack and RS analysis;
 * veil's LSB matching on the same cover with the same payload scores like an untouched
 * image, and at --stealth it stays within the clean cover's noise.
 */
import { describe, expect, it } from "vitest";
import { capacityBytes, embed, generateCover, stealthBitsPerChannel } from "../../actors/stego/mod.ts";
import { chiSquareEmbeddingProbability, lsbReplace, rsEmbeddingRate } from "../support/steganalysis.ts";

const width = 320;
const height = 240;

function randomBytes(length: number, seed: number): Uint8Array {
  let state = seed >>> 0 || 1;
  return Uint8Array.from({ length }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state >>> 24;
  });
}

describe.each([1, 2, 3, 4])("steganalysis on cover %i", (seed) => {
  const cover = generateCover(seed, width, height);
  const key = new Uint8Array(32).fill(seed);
  const full = capacityBytes(width * height, 1);
  const veil = (bytes: number) => embed(cover, key, randomBytes(bytes, seed), 1);
  const stealthBytes = Math.floor((stealthBitsPerChannel * 3 * width * height) / 8);

  it("chi-square flags plain LSB replacement and not veil's output", () => {
    expect(chiSquareEmbeddingProbability(cover)).toBeLessThan(0.01);
    expect(chiSquareEmbeddingProbability(lsbReplace(cover, 1, seed))).toBeGreaterThan(0.95);
    expect(chiSquareEmbeddingProbability(veil(full))).toBeLessThan(0.01);
    expect(chiSquareEmbeddingProbability(veil(stealthBytes))).toBeLessThan(0.01);
  });

  it("RS analysis measures plain replacement's payload, and sees next to nothing in veil's", () => {
    const clean = rsEmbeddingRate(cover);
    expect(Math.abs(clean)).toBeLessThan(0.05);
    expect(rsEmbeddingRate(lsbReplace(cover, 0.5, seed))).toBeGreaterThan(0.35);
    // RS loses accuracy near a full payload (its quadratic degenerates), but still flags it.
    expect(rsEmbeddingRate(lsbReplace(cover, 1, seed))).toBeGreaterThan(0.5);
    expect(Math.abs(rsEmbeddingRate(veil(full >> 1)))).toBeLessThan(0.1);
    expect(Math.abs(rsEmbeddingRate(veil(full)))).toBeLessThan(0.1);
    // At --stealth rates, within the clean cover's own noise.
    expect(Math.abs(rsEmbeddingRate(veil(stealthBytes)) - clean)).toBeLessThan(0.05);
  });
});
