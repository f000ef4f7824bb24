/** The real random source: the platform's CSPRNG (Web Crypto), in pieces it allows. */
import type { RandomSource } from "../actors/ports.ts";

const requestBytesMax = 65_536;

export const cryptoRandom: RandomSource = {
  bytes(length) {
    const bytes = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += requestBytesMax) {
      crypto.getRandomValues(bytes.subarray(offset, Math.min(length, offset + requestBytesMax)));
    }
    return bytes;
  },
};
