/** How far an image moved from its cover: peak signal-to-noise ratio over the colour channels, in dB. */
import type { Image } from "./png.ts";

export function psnr(cover: Image, changed: Image): number {
  let squares = 0;
  for (let index = 0; index < cover.rgba.byteLength; index++) {
    if ((index & 3) === 3) continue;
    const difference = cover.rgba[index]! - changed.rgba[index]!;
    squares += difference * difference;
  }
  const meanSquare = squares / ((cover.rgba.byteLength / 4) * 3);
  return meanSquare === 0 ? Infinity : 10 * Math.log10((255 * 255) / meanSquare);
}
