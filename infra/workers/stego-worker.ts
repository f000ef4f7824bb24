/** The stego actor's worker: PNG decoding and encoding, covers, embedding and extraction, previews. */
import { capacityBytes, decodePng } from "../../actors/stego/mod.ts";
import { findPart, hidePart, previewPng } from "../../actors/stego/work.ts";
import type { EmbedRequest } from "../../actors/ports.ts";
import { serveOperations } from "./serve.ts";

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
  embed: (input: EmbedRequest) => hidePart(input, reuse),
  extract: (input: { png: Uint8Array; stegoKey: Uint8Array }) => findPart(input.png, input.stegoKey),
  capacity: (input: { png: Uint8Array; bits: number }) => {
    const cover = decodePng(input.png);
    return { width: cover.width, height: cover.height, bytes: capacityBytes(cover.width * cover.height, input.bits) };
  },
  preview: (input: { png: Uint8Array }) => previewPng(input.png),
  // A preview decodes a whole PNG of the user's, up to the pixel limit: collected at once.
}, { after: ["preview"], budgeted: ["embed"] });
