/**
 * Generated covers, sized to fit a payload: at `bits` per channel, or at no more than 0.1 bits per
 * channel with `stealth`, where heavy embedding would otherwise be detectable.
 */
import { limits, ValidationError } from "../../events/mod.ts";
import { capacityBytes } from "./embed.ts";
import type { Image } from "./png.ts";
import { littleEndian } from "./words.ts";

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

// Where R, G, B and A sit in a pixel read as one 32-bit word.
const [redShift, greenShift, blueShift, alphaShift] = littleEndian ? [0, 8, 16, 24] : [24, 16, 8, 0];
const eachColour = (1 << redShift) + (1 << greenShift) + (1 << blueShift);

/** Pixels between two samples of the fields. */
const run = 8;

/**
 * A natural-looking cover: smooth colour fields from three octaves of value noise, blended
 * between a few seeded colours, plus fine grain. Deterministic from its seed, and never flat.
 *
 * Built for speed, as every generated part pays for it (13 ms per MB of payload, against 34
 * for sampling every field at every pixel): the fields are sampled at the ends of runs of 8
 * pixels and each channel follows a straight line in between (the finest field's cells are
 * some 20 pixels wide); the channels stay inside 29..242 with their grain, so none needs
 * clamping; and each pixel is one 32-bit write.
 */
export function generateCover(
  seed: number,
  width: number,
  height: number,
  /** Where to draw it (every byte is written), instead of a new buffer: `width * height * 4` bytes, 4-aligned. */
  into?: Uint8Array,
): Image {
  if (width * height > limits.imagePixelsMax) throw new ValidationError("the cover would exceed the pixel limit");
  if (into && (into.byteLength !== width * height * 4 || into.byteOffset % 4 !== 0)) {
    throw new ValidationError("a cover's buffer must hold exactly its pixels, 4-aligned");
  }
  const random = seeded(seed);
  // Colours in 40..200 and shades in 0.8..1.2 keep every channel in 32..240; the grain adds -3..+2.
  const colours = Array.from({ length: 3 }, () => [40 + random() * 160, 40 + random() * 160, 40 + random() * 160]);
  const broad = valueNoise(random, 3, 3);
  const middle = valueNoise(random, 12, 9);
  const fine = valueNoise(random, 48, 36);
  const rgba = into ?? new Uint8Array(width * height * 4);
  const pixels = new Uint32Array(rgba.buffer, rgba.byteOffset, width * height);
  const runs = Math.ceil(width / run);
  // Each channel at the runs' ends; pixels in between are on the straight line joining them.
  const reds = new Float64Array(runs + 1);
  const greens = new Float64Array(runs + 1);
  const blues = new Float64Array(runs + 1);
  let grainState = (seed * 2654435761) >>> 0 || 1;
  for (let y = 0; y < height; y++) {
    const v = y / height;
    for (let index = 0; index <= runs; index++) {
      const u = Math.min(width, index * run) / width;
      const shade = 0.8 + 0.3 * middle(u, v) + 0.1 * fine(u, v);
      const blend = broad(u, v);
      const from = blend < 0.5 ? colours[0]! : colours[1]!;
      const to = blend < 0.5 ? colours[1]! : colours[2]!;
      const t = blend < 0.5 ? blend * 2 : blend * 2 - 1;
      reds[index] = (from[0]! * (1 - t) + to[0]! * t) * shade;
      greens[index] = (from[1]! * (1 - t) + to[1]! * t) * shade;
      blues[index] = (from[2]! * (1 - t) + to[2]! * t) * shade;
    }
    const rowEnd = (y + 1) * width;
    for (let index = 0, at = y * width; index < runs; index++) {
      let red = reds[index]!;
      let green = greens[index]!;
      let blue = blues[index]!;
      const redStep = (reds[index + 1]! - red) / run;
      const greenStep = (greens[index + 1]! - green) / run;
      const blueStep = (blues[index + 1]! - blue) / run;
      // One xorshift step gives the grain of the whole run: 4 bits a pixel.
      grainState ^= grainState << 13;
      grainState ^= grainState >>> 17;
      grainState ^= grainState << 5;
      let grains = grainState;
      for (const end = Math.min(at + run, rowEnd); at < end; at++, grains >>>= 4) {
        const grain = ((grains & 15) * 6) >>> 4; // 0..5, uniform enough for grain
        pixels[at] = ((red << redShift) | (green << greenShift) | (blue << blueShift)) + (grain - 3) * eachColour +
          (255 << alphaShift);
        red += redStep;
        green += greenStep;
        blue += blueStep;
      }
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
