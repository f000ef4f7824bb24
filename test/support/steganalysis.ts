/**
 * Two classic detectors of LSB replacement, for testing that veil's LSB matching escapes
 * them. Both read the colour channels of an image in sequential (raster) order.
 *
 * - Chi-square attack (Westfeld & Pfitzmann, 1999): replacement equalises the counts of each
 *   pair of values (2k, 2k+1). Returns the probability that the histogram is so equalised,
 *   close to 1 for replacement, close to 0 for untouched images.
 * - RS analysis (Fridrich, Goljan & Du, 2001): counts regular and singular groups of four
 *   pixels under LSB flipping (F1) and its shifted twin (F-1), on the image and on the image
 *   with every LSB flipped, and solves for the embedding rate. About the payload's share of
 *   the channels for replacement; near the clean image's value otherwise.
 */
import type { Image } from "../../actors/stego/mod.ts";

/** The colour channels as three planes (all red in raster order, then green, then blue). */
function colourSamples(image: Image): Uint8Array {
  const pixels = image.rgba.length / 4;
  const samples = new Uint8Array(pixels * 3);
  for (let pixel = 0; pixel < pixels; pixel++) {
    samples[pixel] = image.rgba[pixel * 4]!;
    samples[pixels + pixel] = image.rgba[pixel * 4 + 1]!;
    samples[2 * pixels + pixel] = image.rgba[pixel * 4 + 2]!;
  }
  return samples;
}

/** Standard normal upper tail, by Abramowitz & Stegun 7.1.26. */
function upperTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) *
      Math.exp(-x * x);
  return z >= 0 ? (1 - erf) / 2 : (1 + erf) / 2;
}

export function chiSquareEmbeddingProbability(image: Image): number {
  const histogram = new Float64Array(256);
  for (const value of colourSamples(image)) histogram[value]!++;
  let chi = 0;
  let pairs = 0;
  for (let k = 0; k < 128; k++) {
    const expected = (histogram[2 * k]! + histogram[2 * k + 1]!) / 2;
    if (expected < 5) continue; // too few to say anything
    chi += (histogram[2 * k]! - expected) ** 2 / expected;
    pairs++;
  }
  const freedom = pairs - 1;
  // P(chi-square with `freedom` degrees >= chi), by the Wilson-Hilferty approximation.
  const z = (Math.cbrt(chi / freedom) - (1 - 2 / (9 * freedom))) / Math.sqrt(2 / (9 * freedom));
  return upperTail(z);
}

const flip = (value: number) => value ^ 1;
const shiftedFlip = (value: number) => ((value + 1) ^ 1) - 1;
const variation = (group: readonly number[]) =>
  Math.abs(group[1]! - group[0]!) + Math.abs(group[2]! - group[1]!) + Math.abs(group[3]! - group[2]!);

/**
 * Fractions of regular and singular groups under the mask [0, 1, 1, 0] with `change`; a group
 * is four neighbouring pixels of one channel (widths are multiples of four in the tests).
 */
function regularSingular(samples: Uint8Array, change: (value: number) => number): [number, number] {
  let regular = 0;
  let singular = 0;
  let groups = 0;
  for (let at = 0; at + 4 <= samples.length; at += 4) {
    const group = [samples[at]!, samples[at + 1]!, samples[at + 2]!, samples[at + 3]!];
    const changed = [group[0]!, change(group[1]!), change(group[2]!), group[3]!];
    const before = variation(group);
    const after = variation(changed);
    if (after > before) regular++;
    else if (after < before) singular++;
    groups++;
  }
  return [regular / groups, singular / groups];
}

export function rsEmbeddingRate(image: Image): number {
  const samples = colourSamples(image);
  const flipped = samples.map(flip);
  const [rm, sm] = regularSingular(samples, flip);
  const [rmn, smn] = regularSingular(samples, shiftedFlip);
  const [rm1, sm1] = regularSingular(flipped, flip);
  const [rmn1, smn1] = regularSingular(flipped, shiftedFlip);
  const d0 = rm - sm;
  const d1 = rm1 - sm1;
  const dn0 = rmn - smn;
  const dn1 = rmn1 - smn1;
  const a = 2 * (d1 + d0);
  const b = dn0 - dn1 - d1 - 3 * d0;
  const c = d0 - dn0;
  const discriminant = Math.max(0, b * b - 4 * a * c);
  const roots = [(-b + Math.sqrt(discriminant)) / (2 * a), (-b - Math.sqrt(discriminant)) / (2 * a)];
  const x = roots.reduce((best, root) => (Math.abs(root) < Math.abs(best) ? root : best));
  return x / (x - 0.5);
}

/** Plain LSB replacement at the same positions veil would use (sequential channels), for comparison. */
export function lsbReplace(cover: Image, fraction: number, seed: number): Image {
  const rgba = cover.rgba.slice();
  let state = seed | 1;
  const channels = (rgba.length / 4) * 3;
  for (let channel = 0; channel < channels * fraction; channel++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const at = Math.floor(channel / 3) * 4 + (channel % 3);
    rgba[at] = (rgba[at]! & 0xfe) | (state & 1);
  }
  return { ...cover, rgba };
}
