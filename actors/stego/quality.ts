/** How far an image moved from its cover: peak signal-to-noise ratio over the colour channels, in dB. */
import type { Embedded } from "./embed.ts";

export function psnr(image: Embedded): number {
  const meanSquare = image.squaredError / (image.width * image.height * 3);
  return meanSquare === 0 ? Infinity : 10 * Math.log10((255 * 255) / meanSquare);
}
