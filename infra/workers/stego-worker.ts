/** The stego actor's worker: PNG decoding and encoding, covers, embedding and extraction, previews. */
import {
  capacityBytes,
  coverSizeFor,
  decodePng,
  embed,
  encodePng,
  extract,
  filteredBytes,
  generateCover,
  previewOf,
  psnr,
  scaleForStealth,
} from "../../actors/stego/mod.ts";
import { serveOperations } from "./serve.ts";

/** What the stego actor's `embed` takes: a payload, the order key, and a cover to use or make. */
export interface EmbedRequest {
  readonly payload: Uint8Array;
  readonly stegoKey: Uint8Array;
  readonly bits: number;
  readonly stealth?: boolean;
  /** The user's cover PNG; without it, a generated cover sized to fit. */
  readonly cover?: Uint8Array;
  readonly coverSeed?: number;
}

/**
 * Buffers this worker keeps from one task to the next (it runs one at a time): a part's cover
 * and its filtered rows, 5 MB together, would otherwise be garbage after every part. Only
 * sizes up to a part's are kept; a larger image (a user's own cover) gets buffers of its own.
 */
const kept = { cover: new Uint8Array(0), filtered: new Uint8Array(0) };
const keptBytesMax = 8 << 20;

function reuse(name: keyof typeof kept, bytes: number): Uint8Array | undefined {
  if (bytes > keptBytesMax) return undefined;
  if (kept[name].byteLength < bytes) kept[name] = new Uint8Array(bytes);
  return kept[name].subarray(0, bytes);
}

serveOperations({
  /** Hides `payload` in the given cover PNG, or in a generated one sized to fit; returns the PNG and its PSNR. */
  embed: async (input: EmbedRequest) => {
    const bits = input.stealth ? 1 : input.bits;
    let cover;
    if (input.cover) {
      cover = decodePng(input.cover);
      // Stealth keeps to its rate by scaling a cover that is too small for it.
      if (input.stealth) cover = scaleForStealth(cover, input.payload.byteLength);
    } else {
      const { width, height } = coverSizeFor(input.payload.byteLength, { bits, stealth: input.stealth });
      cover = generateCover(input.coverSeed ?? 1, width, height, reuse("cover", width * height * 4));
    }
    // The cover is this worker's own (made or decoded here): it is embedded in place.
    const stego = embed(cover, input.stegoKey, input.payload, bits, { inPlace: true });
    const png = await encodePng(stego, reuse("filtered", filteredBytes(stego)));
    return { png, psnr: psnr(stego), width: stego.width, height: stego.height };
  },
  extract: (input: { png: Uint8Array; stegoKey: Uint8Array }) => extract(decodePng(input.png), input.stegoKey),
  capacity: (input: { png: Uint8Array; bits: number }) => {
    const cover = decodePng(input.png);
    return { width: cover.width, height: cover.height, bytes: capacityBytes(cover.width * cover.height, input.bits) };
  },
  preview: (input: { png: Uint8Array }) => encodePng(previewOf(decodePng(input.png))),
  // A preview decodes a whole PNG of the user's, up to the pixel limit: collected at once.
}, { after: ["preview"], budgeted: ["embed"] });
