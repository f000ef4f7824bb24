/**
 * Generated covers: deterministic from a seed, natural-looking (smooth colour fields from
 * three octaves of value noise, blended between a few seeded colours, plus fine grain), and
 * never flat. Sized to fit a payload: at `bits` per channel, or at no more than 0.1 bits per
 * channel with `stealth`, where heavy embedding would otherwise be detectable.
 */
import { limits, ValidationError } from "../../events/mod.ts";
import { capacityBytes } from "./embed.ts";
import type { Image } from "./png.ts";

/** Embedding rate (bits per colour channel) that stealth stays under. */
export const stealthBitsPerChannel = 0.1;
const minimumSide = 64;

function seeded(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4_294_967_296;
  };
}

/** A width x height (4:3) cover big enough for `payloadBytes`. */
export function coverSizeFor(
  payloadBytes: number,
  options: { bits: number; stealth?: boolean },
): { width: number; height: number } {
  const bitsPerChannel = options.stealth ? stealthBitsPerChannel : options.bits;
  let pixels = Math.ceil((payloadBytes * 8) / (3 * bitsPerChannel)) + 64;
  for (;;) {
    const width = Math.max(minimumSide, Math.ceil(Math.sqrt((pixels * 4) / 3)));
    const height = Math.max(minimumSide, Math.ceil(pixels / width));
    if (width * height > limits.imagePixelsMax) {
      throw new ValidationError(`${payloadBytes} bytes need a cover over the ${limits.imagePixelsMax}-pixel limit`);
    }
    const fits = options.stealth
      ? payloadBytes * 8 <= stealthBitsPerChannel * 3 * width * height
      : capacityBytes(width * height, options.bits) >= payloadBytes;
    if (fits) return { width, height };
    pixels = Math.ceil(pixels * 1.05);
  }
}

/** A coarse random grid, sampled with bilinear interpolation: a smooth field in [0, 1). */
function valueNoise(random: () => number, cellsX: number, cellsY: number) {
  const grid = Float32Array.from({ length: (cellsX + 1) * (cellsY + 1) }, random);
  return (u: number, v: number) => {
    const x = u * cellsX;
    const y = v * cellsY;
    const x0 = Math.min(cellsX - 1, x | 0);
    const y0 = Math.min(cellsY - 1, y | 0);
    const fx = x - x0;
    const fy = y - y0;
    const row = y0 * (cellsX + 1);
    const top = grid[row + x0]! * (1 - fx) + grid[row + x0 + 1]! * fx;
    const bottom = grid[row + cellsX + 1 + x0]! * (1 - fx) + grid[row + cellsX + 2 + x0]! * fx;
    return top * (1 - fy) + bottom * fy;
  };
}

export function generateCover(seed: number, width: number, height: number): Image {
  if (width * height > limits.imagePixelsMax) throw new ValidationError("the cover would exceed the pixel limit");
  const random = seeded(seed);
  const colours = Array.from({ length: 3 }, () => [40 + random() * 180, 40 + random() * 180, 40 + random() * 180]);
  const broad = valueNoise(random, 3, 3);
  const middle = valueNoise(random, 12, 9);
  // The fine field is sampled at every pixel: its grid is read inline, with what depends only
  // on the row worked out once per row (the same arithmetic as valueNoise, so the same cover).
  const fineCellsX = 48;
  const fineCellsY = 36;
  const fineGrid = Float32Array.from({ length: (fineCellsX + 1) * (fineCellsY + 1) }, random);
  const rgba = new Uint8Array(width * height * 4);
  let grainState = (seed * 2654435761) >>> 0 || 1;
  let blend = 0;
  let shadeBase = 0;
  let red = 0;
  let green = 0;
  let blue = 0;
  for (let y = 0; y < height; y++) {
    const v = y / height;
    const fineY = v * fineCellsY;
    const fineY0 = Math.min(fineCellsY - 1, fineY | 0);
    const fineFy = fineY - fineY0;
    const fineRow = fineY0 * (fineCellsX + 1);
    for (let x = 0; x < width; x++) {
      const u = x / width;
      // The broad fields change imperceptibly from one pixel to the next: sample them every 4.
      if ((x & 3) === 0) {
        blend = broad(u, v);
        shadeBase = 0.75 + 0.35 * middle(u, v);
        // The blended colour depends on the broad field alone: it changes when that does.
        const from = blend < 0.5 ? colours[0]! : colours[1]!;
        const to = blend < 0.5 ? colours[1]! : colours[2]!;
        const t = blend < 0.5 ? blend * 2 : blend * 2 - 1;
        red = from[0]! * (1 - t) + to[0]! * t;
        green = from[1]! * (1 - t) + to[1]! * t;
        blue = from[2]! * (1 - t) + to[2]! * t;
      }
      const fineX = u * fineCellsX;
      const fineX0 = Math.min(fineCellsX - 1, fineX | 0);
      const fineFx = fineX - fineX0;
      const top = fineGrid[fineRow + fineX0]! * (1 - fineFx) + fineGrid[fineRow + fineX0 + 1]! * fineFx;
      const bottom = fineGrid[fineRow + fineCellsX + 1 + fineX0]! * (1 - fineFx) +
        fineGrid[fineRow + fineCellsX + 2 + fineX0]! * fineFx;
      const shade = shadeBase + 0.15 * (top * (1 - fineFy) + bottom * fineFy);
      grainState ^= grainState << 13;
      grainState ^= grainState >>> 17;
      grainState ^= grainState << 5;
      const grain = ((grainState >>> 0) / 4_294_967_296 - 0.5) * 6;
      const at = (y * width + x) * 4;
      const r = red * shade + grain;
      const g = green * shade + grain;
      const b = blue * shade + grain;
      rgba[at] = r < 0 ? 0 : r > 255 ? 255 : r;
      rgba[at + 1] = g < 0 ? 0 : g > 255 ? 255 : g;
      rgba[at + 2] = b < 0 ? 0 : b > 255 ? 255 : b;
      rgba[at + 3] = 255;
    }
  }
  return { width, height, rgba, hasAlpha: false };
}

/**
 * The user's cover, scaled up (bilinear) by the smallest factor that keeps `payloadBytes`
 * within stealth's rate; the cover itself when it already does. Scaling only adds smooth
 * interpolated pixels, so the result still looks like the user's picture.
 */
export function scaleForStealth(cover: Image, payloadBytes: number): Image {
  const channelsNeeded = (payloadBytes * 8) / stealthBitsPerChannel + 64 * 3;
  const factor = Math.sqrt(channelsNeeded / (3 * cover.width * cover.height));
  if (factor <= 1) return cover;
  const width = Math.ceil(cover.width * factor);
  const height = Math.ceil(cover.height * factor);
  if (width * height > limits.imagePixelsMax) {
    throw new ValidationError(`--stealth would need this cover scaled past the ${limits.imagePixelsMax}-pixel limit`);
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const sourceY = Math.min(cover.height - 1, ((y + 0.5) * cover.height) / height - 0.5);
    const y0 = Math.max(0, Math.floor(sourceY));
    const y1 = Math.min(cover.height - 1, y0 + 1);
    const fy = Math.max(0, sourceY - y0);
    for (let x = 0; x < width; x++) {
      const sourceX = Math.min(cover.width - 1, ((x + 0.5) * cover.width) / width - 0.5);
      const x0 = Math.max(0, Math.floor(sourceX));
      const x1 = Math.min(cover.width - 1, x0 + 1);
      const fx = Math.max(0, sourceX - x0);
      for (let channel = 0; channel < 4; channel++) {
        const at = (row: number, column: number) => cover.rgba[(row * cover.width + column) * 4 + channel]!;
        const top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
        const bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
        rgba[(y * width + x) * 4 + channel] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { width, height, rgba, hasAlpha: cover.hasAlpha };
}
