/**
 * What the stego actor does with a part, as plain functions: its worker runs them off the
 * event loop (infra/workers/stego-worker.ts), the simulator runs them inline.
 */
import type { EmbedRequest } from "../ports.ts";
import { decodePng, encodePng, filteredBytes } from "./png.ts";
import { coverSizeFor, generateCover, scaleForStealth } from "./cover.ts";
import { embed, extract } from "./embed.ts";
import { psnr } from "./quality.ts";
import { previewOf } from "./preview.ts";

/** Buffers a caller keeps from one part to the next, so a part's cover and rows are not garbage each time. */
export type Reuse = (name: "cover" | "filtered", bytes: number) => Uint8Array | undefined;

const fresh: Reuse = () => undefined;

/** Hides `payload` in the given cover PNG, or in a generated one sized to fit; returns the PNG and its PSNR. */
export async function hidePart(input: EmbedRequest, reuse: Reuse = fresh) {
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
  // The cover is this caller's own (made or decoded here): it is embedded in place.
  const stego = embed(cover, input.stegoKey, input.payload, bits, { inPlace: true });
  const png = await encodePng(stego, reuse("filtered", filteredBytes(stego)));
  return { png, psnr: psnr(stego), width: stego.width, height: stego.height };
}

export const findPart = (png: Uint8Array, stegoKey: Uint8Array) => extract(decodePng(png), stegoKey);

export const previewPng = (png: Uint8Array) => encodePng(previewOf(decodePng(png)));
