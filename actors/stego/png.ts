/**
 * PNG in and out. 8-bit RGB and RGBA PNGs without interlacing (what veil writes, and most
 * photos) are read here with native inflate: 272 ms against upng-js's 644 ms for an 11 MP
 * cover, and 100 ms when every row uses the Up filter, as veil's do. Any other PNG a user gives (16 bits, grey, palette, interlaced) is read with
 * upng-js. All come out as 8-bit RGBA. Before a single pixel is allocated, the header's size
 * is checked against the pixel limit, so a file claiming 100000 x 100000 pixels is refused,
 * not decompressed. Writing uses a simple row filter (Up) and native zlib
 * with Huffman coding only: the images veil writes carry data in their low bits, noise to
 * any compressor, so LZ77's match-finding is wasted work. On a 12 MP image that measured
 * 60 MP/s and 7% smaller than zlib level 1 with matching (30 MP/s), against 8 MP/s for the
 * web-standard CompressionStream (fixed at level 6) and about 2 MP/s for upng-js's encoder.
 */
import { Buffer } from "node:buffer";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import UPNG from "upng-js";
import { limits, ValidationError } from "../../events/mod.ts";
import { littleEndian } from "./words.ts";

export interface Image {
  readonly width: number;
  readonly height: number;
  /** 8-bit RGBA, row by row. */
  readonly rgba: Uint8Array;
  /** False when every pixel is opaque: then the PNG is written as RGB, a quarter smaller. */
  readonly hasAlpha: boolean;
}

const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from the IHDR chunk, checked against the pixel limit. */
export function readPngSize(bytes: Uint8Array): { width: number; height: number } {
  if (bytes.byteLength < 33 || !signature.every((byte, index) => bytes[index] === byte)) {
    throw new ValidationError("not a PNG file (no PNG signature)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") throw new ValidationError("not a PNG file (no IHDR)");
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  if (width === 0 || height === 0) throw new ValidationError("the PNG has no pixels");
  if (width * height > limits.imagePixelsMax) {
    throw new ValidationError(
      `the PNG claims ${width} x ${height} pixels, over the ${limits.imagePixelsMax}-pixel limit`,
    );
  }
  return { width, height };
}

/** The Paeth predictor (PNG spec, filter type 4). */
function paeth(left: number, up: number, upLeft: number): number {
  const estimate = left + up - upLeft;
  const toLeft = Math.abs(estimate - left);
  const toUp = Math.abs(estimate - up);
  const toUpLeft = Math.abs(estimate - upLeft);
  if (toLeft <= toUp && toLeft <= toUpLeft) return left;
  return toUp <= toUpLeft ? up : upLeft;
}

/** Whether every row of `raw` (rows of `rowBytes`, filter type first) uses the Up filter, as veil writes them. */
function everyRowUp(raw: Uint8Array, rowBytes: number, height: number): boolean {
  for (let y = 0; y < height; y++) if (raw[y * rowBytes] !== 2) return false;
  return true;
}

/**
 * Up-filtered RGB rows back to opaque RGBA, a pixel at a time: each pixel is added to the one
 * above in one 32-bit operation (SWAR, no carry between bytes), written as one word, and
 * read back as the next row's "above". What every part's cover needs on download: 3x
 * faster than a byte at a time through a line buffer (7 ms a MB of payload, against 22).
 * Little-endian only.
 */
function unfilterUpRgbWords(raw: Uint8Array, width: number, height: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  const pixels = new Uint32Array(rgba.buffer);
  for (let y = 0, at = 0; y < height; y++) {
    let input = y * (width * 3 + 1) + 1;
    for (const end = at + width; at < end; at++, input += 3) {
      const word = raw[input]! | (raw[input + 1]! << 8) | (raw[input + 2]! << 16);
      // The row above the first is all zero, and opaque: its alpha makes every pixel's 255.
      const above = y === 0 ? 0xff000000 : pixels[at - width]!;
      pixels[at] = ((word & 0x7f7f7f7f) + (above & 0x7f7f7f7f)) ^ ((word ^ above) & 0x80808080);
    }
  }
  return rgba;
}

/**
 * 8-bit RGB or RGBA, not interlaced (what veil writes, and what most photos are): the
 * chunks read here, inflated natively (bounded by the size the header implies, so a bomb
 * stops there) and unfiltered in one pass, at several times upng-js's speed. Anything else
 * (palettes, grey, 16 bits, interlacing) returns undefined and goes to upng-js.
 */
function decodeTrueColour(bytes: Uint8Array, width: number, height: number): Image | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [depth, colour, , , interlace] = bytes.subarray(24, 29);
  if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0) return undefined;
  const channels = colour === 6 ? 4 : 3;
  const stride = width * channels;
  const idat: Uint8Array[] = [];
  for (let offset = 8; offset + 12 <= bytes.byteLength;) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    if (offset + 12 + length > bytes.byteLength) throw new ValidationError("the PNG is damaged or truncated");
    if (type === "IDAT") idat.push(bytes.subarray(offset + 8, offset + 8 + length));
    if (type === "IEND") break;
    offset += 12 + length;
  }
  const expected = height * (stride + 1);
  let raw: Uint8Array;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: expected });
  } catch (cause) {
    throw new ValidationError(`the PNG is damaged or truncated: ${(cause as Error).message}`, { cause });
  }
  if (raw.byteLength !== expected) {
    throw new ValidationError("the PNG is damaged or truncated: its pixel data does not match its size");
  }
  if (channels === 3 && littleEndian && everyRowUp(raw, stride + 1, height)) {
    return { width, height, rgba: unfilterUpRgbWords(raw, width, height), hasAlpha: false };
  }
  const rgba = new Uint8Array(width * height * 4);
  const line = new Uint8Array(stride);
  const previous = new Uint8Array(stride);
  let hasAlpha = false;
  for (let y = 0; y < height; y++) {
    const start = y * (stride + 1);
    const filter = raw[start]!;
    const input = raw.subarray(start + 1, start + 1 + stride);
    switch (filter) {
      case 0:
        line.set(input);
        break;
      case 1:
        for (let i = 0; i < stride; i++) line[i] = input[i]! + (i >= channels ? line[i - channels]! : 0);
        break;
      case 2:
        for (let i = 0; i < stride; i++) line[i] = input[i]! + previous[i]!;
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          line[i] = input[i]! + (((i >= channels ? line[i - channels]! : 0) + previous[i]!) >> 1);
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const left = i >= channels ? line[i - channels]! : 0;
          const upLeft = i >= channels ? previous[i - channels]! : 0;
          line[i] = input[i]! + paeth(left, previous[i]!, upLeft);
        }
        break;
      default:
        throw new ValidationError(`the PNG is damaged: row ${y} has filter type ${filter}`);
    }
    const out = y * width * 4;
    if (channels === 4) {
      rgba.set(line, out);
      for (let i = 3; !hasAlpha && i < stride; i += 4) hasAlpha = line[i] !== 255;
    } else {
      for (let x = 0, i = 0, o = out; x < width; x++, i += 3, o += 4) {
        rgba[o] = line[i]!;
        rgba[o + 1] = line[i + 1]!;
        rgba[o + 2] = line[i + 2]!;
        rgba[o + 3] = 255;
      }
    }
    previous.set(line);
  }
  return { width, height, rgba, hasAlpha };
}

export function decodePng(bytes: Uint8Array): Image {
  if (bytes.byteLength > limits.pngBytesMax) {
    throw new ValidationError(`the PNG is ${bytes.byteLength} bytes, over the ${limits.pngBytesMax}-byte limit`);
  }
  const { width, height } = readPngSize(bytes);
  const fast = decodeTrueColour(bytes, width, height);
  if (fast) return fast;
  let decoded: ReturnType<typeof UPNG.decode>;
  let rgba: Uint8Array;
  try {
    decoded = UPNG.decode(bytes.slice().buffer);
    rgba = new Uint8Array(UPNG.toRGBA8(decoded)[0]!);
  } catch (cause) {
    throw new ValidationError(`the PNG is damaged or truncated: ${(cause as Error).message}`, { cause });
  }
  if (decoded.width !== width || decoded.height !== height || rgba.byteLength !== width * height * 4) {
    throw new ValidationError("the PNG is damaged or truncated: its pixel data does not match its size");
  }
  let hasAlpha = false;
  for (let index = 3; index < rgba.byteLength; index += 4) {
    if (rgba[index] !== 255) {
      hasAlpha = true;
      break;
    }
  }
  return { width, height, rgba, hasAlpha };
}

const crcTable = Uint32Array.from({ length: 256 }, (_, byte) => {
  let crc = byte;
  for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  return crc >>> 0;
});

/** CRC-32 in JavaScript: for runtimes without the native one (Node before 20.15). */
export function crc32Portable(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let index = 0; index < bytes.byteLength; index++) crc = crcTable[(crc ^ bytes[index]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/**
 * The CRC of a PNG chunk. Native where the runtime has it (Node >= 20.15, Deno): on a part's
 * 15 MB IDAT the JavaScript loop took 150 ms, a third of the encoding.
 */
export function crc32(bytes: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(bytes) >>> 0 : crc32Portable(bytes);
}

/** Writes a PNG chunk (length, type, data, CRC of type and data) at `offset`; returns where it ends. */
function writeChunk(into: Uint8Array, offset: number, type: string, data: Uint8Array): number {
  const view = new DataView(into.buffer, into.byteOffset + offset);
  view.setUint32(0, data.byteLength);
  for (let index = 0; index < 4; index++) into[offset + 4 + index] = type.charCodeAt(index);
  into.set(data, offset + 8);
  view.setUint32(8 + data.byteLength, crc32(into.subarray(offset + 4, offset + 8 + data.byteLength)));
  return offset + 12 + data.byteLength;
}

const deflateAsync = promisify(zlib.deflate);

/**
 * zlib-wrapped deflate, as PNG wants it; async, so it runs in the native thread pool. Output
 * comes back in pieces of half the input (what a cover at 1 bit per channel deflates to), up
 * to 4 MiB, not the default 16 KiB: each piece is a trip between the thread pool and
 * JavaScript, and on a part's cover those trips took a third as long as the compression.
 * memLevel 9 flushes Huffman blocks a quarter as often: 10% faster again.
 */
async function compress(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await deflateAsync(bytes, {
      level: 1,
      memLevel: 9,
      strategy: zlib.constants.Z_HUFFMAN_ONLY,
      chunkSize: Math.min(4 << 20, Math.max(64 << 10, Math.ceil(bytes.byteLength / 2))),
    }),
  );
}

/**
 * The Up filter of opaque RGBA into RGB rows, a pixel at a time: the four channels are
 * subtracted in one 32-bit operation (SWAR: each byte's borrow is kept from its neighbour),
 * 1.5x faster than a byte at a time. Little-endian only.
 */
function filterUpRgbWords(rgba: Uint8Array, width: number, height: number, filtered: Uint8Array): void {
  const pixels = new Uint32Array(rgba.buffer, rgba.byteOffset, width * height);
  for (let y = 0, out = 0; y < height; y++) {
    filtered[out++] = 2;
    for (let at = y * width, end = at + width; at < end; at++, out += 3) {
      const word = pixels[at]!;
      const above = y === 0 ? 0 : pixels[at - width]!;
      const difference = ((word | 0x80808080) - (above & 0x7f7f7f7f)) ^ ((word ^ ~above) & 0x80808080);
      filtered[out] = difference;
      filtered[out + 1] = difference >>> 8;
      filtered[out + 2] = difference >>> 16;
    }
  }
}

/** The Up filter a byte at a time: RGBA kept whole, or RGB on big-endian machines. */
function filterUpBytes(rgba: Uint8Array, width: number, height: number, channels: number, filtered: Uint8Array): void {
  const rowBytes = width * 4;
  for (let y = 0, out = 0; y < height; y++) {
    filtered[out++] = 2;
    for (let at = y * rowBytes, end = at + rowBytes; at < end; at += 4) {
      for (let channel = 0; channel < channels; channel++) {
        filtered[out++] = (rgba[at + channel]! - (y === 0 ? 0 : rgba[at + channel - rowBytes]!)) & 0xff;
      }
    }
  }
}

/** The bytes `encodePng` filters `image` into before compressing it. */
export function filteredBytes(image: Image): number {
  return image.height * (image.width * (image.hasAlpha ? 4 : 3) + 1);
}

/**
 * Writes 8-bit RGBA (or RGB when the image has no transparency) with the Up filter on every
 * row. `scratch`, of `filteredBytes(image)` bytes, is where the rows are filtered (free again
 * once the PNG is written), instead of a new buffer.
 */
export async function encodePng(image: Image, scratch?: Uint8Array): Promise<Uint8Array> {
  const { width, height, rgba, hasAlpha } = image;
  const channels = hasAlpha ? 4 : 3;
  if (scratch && scratch.byteLength !== filteredBytes(image)) {
    throw new ValidationError("the scratch is not the right size");
  }
  const filtered = scratch ?? new Uint8Array(filteredBytes(image));
  if (!hasAlpha && littleEndian && rgba.byteOffset % 4 === 0) filterUpRgbWords(rgba, width, height, filtered);
  else filterUpBytes(rgba, width, height, channels, filtered);
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = hasAlpha ? 6 : 2; // RGBA or RGB
  const data = await compress(filtered);
  // Written once, in place: the compressed data is most of a part's PNG, and copying it twice showed.
  const png = new Uint8Array(signature.byteLength + 3 * 12 + header.byteLength + data.byteLength);
  png.set(signature);
  let offset = writeChunk(png, signature.byteLength, "IHDR", header);
  offset = writeChunk(png, offset, "IDAT", data);
  writeChunk(png, offset, "IEND", new Uint8Array());
  return png;
}
