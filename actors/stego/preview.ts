/**
 * Previews: any image scaled to fit in 128 x 128, aspect kept, each output pixel the average
 * of exactly the source area it covers (fractional edges weighted), so fine detail is not
 * aliased away. Colours are averaged weighted by alpha, so transparent pixels leave no fringe.
 */
import { limits } from "../../events/mod.ts";
import type { Image } from "./png.ts";

/** Weights of source positions for each output position when `from` is squeezed into `to`. */
function spans(from: number, to: number): { start: number; weights: Float32Array }[] {
  const scale = from / to;
  return Array.from({ length: to }, (_, index) => {
    const left = index * scale;
    const right = left + scale;
    const start = Math.floor(left);
    const end = Math.min(from, Math.ceil(right));
    const weights = Float32Array.from({ length: end - start }, (_, offset) => {
      const cellLeft = Math.max(left, start + offset);
      const cellRight = Math.min(right, start + offset + 1);
      return (cellRight - cellLeft) / scale;
    });
    return { start, weights };
  });
}

export function previewOf(image: Image, side: number = limits.previewPixels): Image {
  const scale = Math.min(1, side / Math.max(image.width, image.height));
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  const columns = spans(image.width, width);
  const rows = spans(image.height, height);
  // Horizontal pass into premultiplied floats, then vertical.
  const wide = new Float32Array(image.height * width * 4);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < width; x++) {
      const { start, weights } = columns[x]!;
      let r = 0, g = 0, b = 0, a = 0;
      for (let offset = 0; offset < weights.length; offset++) {
        const at = (y * image.width + start + offset) * 4;
        const alpha = image.rgba[at + 3]! * weights[offset]!;
        r += image.rgba[at]! * alpha;
        g += image.rgba[at + 1]! * alpha;
        b += image.rgba[at + 2]! * alpha;
        a += alpha;
      }
      const to = (y * width + x) * 4;
      wide[to] = r, wide[to + 1] = g, wide[to + 2] = b, wide[to + 3] = a;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const { start, weights } = rows[y]!;
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (let offset = 0; offset < weights.length; offset++) {
        const at = ((start + offset) * width + x) * 4;
        const weight = weights[offset]!;
        r += wide[at]! * weight;
        g += wide[at + 1]! * weight;
        b += wide[at + 2]! * weight;
        a += wide[at + 3]! * weight;
      }
      const to = (y * width + x) * 4;
      rgba[to] = a > 0 ? Math.round(r / a) : 0;
      rgba[to + 1] = a > 0 ? Math.round(g / a) : 0;
      rgba[to + 2] = a > 0 ? Math.round(b / a) : 0;
      rgba[to + 3] = Math.round(a);
    }
  }
  return { width, height, rgba, hasAlpha: image.hasAlpha };
}
