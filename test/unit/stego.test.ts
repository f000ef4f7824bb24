import { deflateSync } from "node:zlib";
import UPNG from "upng-js";
import { describe, expect, it } from "vitest";
import { openObject, sealObject } from "../../actors/crypto/mod.ts";
import {
  capacityBytes,
  coverSizeFor,
  crc32,
  crc32Portable,
  decodePng,
  embed,
  encodePng,
  extract,
  filteredBytes,
  generateCover,
  type Image,
  keyedOrder,
  pixelAt,
  previewOf,
  psnr,
  scaleForStealth,
  stealthBitsPerChannel,
} from "../../actors/stego/mod.ts";
import { IntegrityError, ValidationError } from "../../events/mod.ts";

const key = new Uint8Array(32).fill(7);
const cover = generateCover(1, 96, 64);
const bytesOf = (length: number) => Uint8Array.from({ length }, (_, index) => (index * 37 + 11) & 255);

/** A PNG file built by hand, for variants our encoder does not write (16-bit). */
function handmadePng(
  width: number,
  height: number,
  depth: 8 | 16,
  colourType: number,
  rows: Uint8Array[],
  interlaced = false,
  /** Each row's filter type (default None); rows are given unfiltered and filtered here. */
  filters: readonly number[] = [],
): Uint8Array {
  const crc = (bytes: Uint8Array) => {
    let value = 0xffffffff;
    for (const byte of bytes) {
      value ^= byte;
      for (let bit = 0; bit < 8; bit++) value = value & 1 ? 0xedb88320 ^ (value >>> 1) : value >>> 1;
    }
    return (value ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc(out.subarray(4, 8 + data.length)));
    return out;
  };
  const header = new Uint8Array(13);
  new DataView(header.buffer).setUint32(0, width);
  new DataView(header.buffer).setUint32(4, height);
  header[8] = depth;
  header[9] = colourType;
  header[12] = interlaced ? 1 : 0;
  const bpp = (depth / 8) * ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[colourType]!;
  const filtered = rows.map((row, y) => {
    const type = filters[y] ?? 0;
    const up = (i: number) => (y > 0 ? rows[y - 1]![i]! : 0);
    const left = (i: number) => (i >= bpp ? row[i - bpp]! : 0);
    const upLeft = (i: number) => (i >= bpp && y > 0 ? rows[y - 1]![i - bpp]! : 0);
    const paeth = (a: number, b: number, c: number) => {
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    };
    const predict = [
      () => 0,
      left,
      up,
      (i: number) => (left(i) + up(i)) >> 1,
      (i: number) => paeth(left(i), up(i), upLeft(i)),
    ][type]!;
    return Buffer.concat([Buffer.from([type]), Buffer.from(row.map((value, i) => (value - predict(i)) & 0xff))]);
  });
  const raw = Buffer.concat(filtered);
  return new Uint8Array(Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", new Uint8Array()),
  ]));
}

describe("embedding and extraction", () => {
  const capacity = capacityBytes(96 * 64, 1);
  it.each([0, 1, 100, capacity])("round-trips %i bytes at 1 bit per channel", (length) => {
    const payload = bytesOf(length);
    expect(extract(embed(cover, key, payload, 1), key)).toEqual(payload);
  });

  it.each([1, 2, 3, 4])("round-trips a full cover at %i bit(s) per channel, alpha untouched", (bits) => {
    const withAlpha: Image = { ...cover, rgba: cover.rgba.map((value, index) => ((index & 3) === 3 ? 200 : value)) };
    const payload = bytesOf(capacityBytes(96 * 64, bits));
    const stego = embed(withAlpha, key, payload, bits);
    expect(extract(stego, key)).toEqual(payload);
    for (let index = 3; index < stego.rgba.length; index += 4) expect(stego.rgba[index]).toBe(200);
  });

  it("refuses one byte over capacity, saying what fits", () => {
    expect(() => embed(cover, key, bytesOf(capacity + 1), 1)).toThrow(ValidationError);
    expect(() => embed(cover, key, bytesOf(capacity + 1), 1)).toThrow(new RegExp(`holds ${capacity}`));
    expect(() => embed(cover, key, bytesOf(1), 5)).toThrow(/bits must be 1, 2, 3 or 4/);
  });

  it("changes each channel by at most 1 at 1 bit (LSB matching), and stays above 50 dB PSNR", () => {
    const stego = embed(cover, key, bytesOf(capacity), 1);
    let changed = 0;
    for (let index = 0; index < stego.rgba.length; index++) {
      const delta = Math.abs(stego.rgba[index]! - cover.rgba[index]!);
      expect(delta).toBeLessThanOrEqual(1);
      if (delta) changed++;
    }
    expect(changed).toBeGreaterThan(0);
    expect(stego.squaredError).toBe(changed);
    expect(psnr(stego)).toBeGreaterThan(50);
  });

  it.each([2, 3, 4])("counts the squared change at %i bits per channel as it embeds", (bits) => {
    const stego = embed(cover, key, bytesOf(capacityBytes(96 * 64, bits)), bits);
    let squares = 0;
    for (let index = 0; index < stego.rgba.length; index++) squares += (stego.rgba[index]! - cover.rgba[index]!) ** 2;
    expect(squares).toBeGreaterThan(0);
    expect(stego.squaredError).toBe(squares);
  });

  it("handles channels at 0 and 255 at the edges of their range (they can only move inward)", () => {
    const extremes: Image = {
      width: 64,
      height: 64,
      hasAlpha: false,
      rgba: Uint8Array.from(
        { length: 64 * 64 * 4 },
        (_, index) => ((index & 3) === 3 ? 255 : (index >> 2) % 3 ? 255 : 0),
      ),
    };
    const payload = bytesOf(capacityBytes(64 * 64, 1));
    const stego = embed(extremes, key, payload, 1);
    expect(extract(stego, key)).toEqual(payload);
    for (let index = 0; index < stego.rgba.length; index++) {
      const before = extremes.rgba[index]!;
      const after = stego.rgba[index]!;
      expect(before === 0 ? after === 0 || after === 1 : after === 255 || after === 254).toBe(true);
    }
  });

  it("finds nothing with the wrong key, or in an image without a payload", () => {
    const stego = embed(cover, key, bytesOf(50), 1);
    expect(() => extract(stego, new Uint8Array(32).fill(8))).toThrow(IntegrityError);
    expect(() => extract(cover, key)).toThrow(/no veil payload found/);
  });

  it("scatters a small payload over the image in keyed order", () => {
    const large = generateCover(3, 320, 240);
    const stego = embed(large, key, bytesOf(40), 1);
    const rows = new Set<number>();
    for (let index = 0; index < stego.rgba.length; index++) {
      if (stego.rgba[index] !== large.rgba[index]) rows.add(Math.floor(index / 4 / 320));
    }
    // About five 32-pixel blocks at keyed places: several rows far apart, where a sequential
    // embedding of these 139 pixels would fill part of one 320-pixel row.
    expect(rows.size).toBeGreaterThanOrEqual(3);
    expect(Math.max(...rows) - Math.min(...rows)).toBeGreaterThan(20);
    const other = embed(large, new Uint8Array(32).fill(1), bytesOf(40), 1);
    expect(other.rgba).not.toEqual(stego.rgba);
  });
});

describe("with encryption: damage anywhere is detected", () => {
  it("a flipped bit where the header or the data is carried fails; the untouched image opens", async () => {
    const objectKey = new Uint8Array(32).fill(3);
    const sealed = await sealObject(objectKey, new Uint8Array(16), bytesOf(300), 1024);
    const stego = embed(cover, key, sealed, 1);
    expect((await openObject(objectKey, extract(stego, key))).plaintext).toEqual(bytesOf(300));
    const order = keyedOrder(key, 96 * 64);
    const flipped = (position: number) => {
      const damaged = { ...stego, rgba: stego.rgba.slice() };
      damaged.rgba[pixelAt(order, position) * 4 + 1]! ^= 1;
      return damaged;
    };
    // Position 5 is in the header (the first 32 pixels); 500 carries encrypted data.
    expect(() => extract(flipped(5), key)).toThrow(/no veil payload found/);
    await expect(openObject(objectKey, extract(flipped(500), key))).rejects.toBeInstanceOf(IntegrityError);
  });
});

describe("PNG", () => {
  it("computes chunk CRCs the same natively and in JavaScript, as PNG defines them", () => {
    expect(crc32(new TextEncoder().encode("IEND")).toString(16)).toBe("ae426082");
    const data = Uint8Array.from({ length: 100_003 }, (_, index) => (index * 7919 + 13) & 255);
    expect(crc32(data)).toBe(crc32Portable(data));
    expect(crc32(new Uint8Array())).toBe(crc32Portable(new Uint8Array()));
  });

  it("writes PNGs any decoder reads back exactly (RGB and RGBA)", async () => {
    for (
      const image of [cover, {
        ...cover,
        rgba: cover.rgba.map((v, i) => ((i & 3) === 3 ? i & 255 : v)),
        hasAlpha: true,
      }]
    ) {
      const png = await encodePng(image);
      const other = UPNG.decode(png.slice().buffer);
      expect(new Uint8Array(UPNG.toRGBA8(other)[0]!)).toEqual(image.rgba);
      expect(decodePng(png).rgba).toEqual(image.rgba);
    }
  });

  it("reads covers written with every row filter (None, Sub, Up, Average, Paeth), RGB and RGBA", () => {
    for (const [colourType, channels] of [[2, 3], [6, 4]] as const) {
      const width = 7;
      const rows = Array.from(
        { length: 10 },
        (_, y) => Uint8Array.from({ length: width * channels }, (_, i) => (y * 53 + i * 29 + ((y * i) % 7) * 31) & 255),
      );
      // Mixed filters, and Up on every row (as veil writes them: RGB has a path of its own).
      for (const filters of [[0, 1, 2, 3, 4, 4, 3, 2, 1, 0], rows.map(() => 2)]) {
        const png = handmadePng(width, rows.length, 8, colourType, rows, false, filters);
        const decoded = decodePng(png);
        const expected = new Uint8Array(UPNG.toRGBA8(UPNG.decode(png.slice().buffer))[0]!);
        expect(decoded.rgba).toEqual(expected);
        expect(decoded.hasAlpha).toBe(
          channels === 4 && rows.some((row) => row.some((value, i) => i % 4 === 3 && value !== 255)),
        );
        expect(decoded.rgba.subarray(0, 4)).toEqual(
          new Uint8Array([...rows[0]!.subarray(0, 3), channels === 4 ? rows[0]![3]! : 255]),
        );
      }
    }
  });

  it("reads grey, palette and 16-bit covers, normalised to 8-bit RGBA", () => {
    const opaqueGrey = Uint8Array.from({ length: 4 * 4 * 4 }, (_, index) => ((index & 3) === 3 ? 255 : 128));
    const grey = decodePng(new Uint8Array(UPNG.encode([opaqueGrey.buffer], 4, 4, 0)));
    expect(grey.rgba.subarray(0, 4)).toEqual(new Uint8Array([128, 128, 128, 255]));
    const opaque = Uint8Array.from({ length: 4 * 4 * 4 }, (_, index) => ((index & 3) === 3 ? 255 : 200));
    const palette = decodePng(new Uint8Array(UPNG.encode([opaque.buffer], 4, 4, 16)));
    expect(palette.rgba.subarray(0, 3)).toEqual(new Uint8Array([200, 200, 200]));
    const deep = handmadePng(2, 1, 16, 2, [
      new Uint8Array([0x12, 0x34, 0xab, 0xcd, 0xff, 0xff, 0, 0, 0x80, 0, 0x40, 0]),
    ]);
    expect(decodePng(deep).rgba).toEqual(new Uint8Array([0x12, 0xab, 0xff, 255, 0, 0x80, 0x40, 255]));
  });

  it("reads Adam7-interlaced covers", () => {
    const width = 13;
    const height = 11;
    const pixel = (x: number, y: number) => [(x * 19) & 255, (y * 23) & 255, (x * y) & 255];
    // The seven passes: start x, start y, step x, step y. Each pass's rows come unfiltered, in turn.
    const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
    const rows: Uint8Array[] = [];
    for (const [startX, startY, stepX, stepY] of passes) {
      for (let y = startY!; y < height; y += stepY!) {
        const row: number[] = [];
        for (let x = startX!; x < width; x += stepX!) row.push(...pixel(x, y));
        if (row.length > 0) rows.push(new Uint8Array(row));
      }
    }
    const decoded = decodePng(handmadePng(width, height, 8, 2, rows, true));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        expect([...decoded.rgba.subarray((y * width + x) * 4, (y * width + x) * 4 + 3)]).toEqual(pixel(x, y));
      }
    }
  });

  it("refuses a decompression bomb from its header, before decoding", () => {
    const bomb = handmadePng(100_000, 100_000, 8, 2, []);
    expect(() => decodePng(bomb)).toThrow(/claims 100000 x 100000 pixels, over the 100000000-pixel limit/);
  });

  it("refuses what is not a PNG, and a truncated one, with a clear error", async () => {
    expect(() => decodePng(new TextEncoder().encode("GIF89a, not a PNG at all, really"))).toThrow(/not a PNG file/);
    const png = await encodePng(cover);
    expect(() => decodePng(png.subarray(0, png.length / 2))).toThrow(/damaged or truncated/);
  });
});

describe("covers and previews", () => {
  it("generates the same cover from the same seed, and never a flat one", () => {
    expect(generateCover(5, 80, 60).rgba).toEqual(generateCover(5, 80, 60).rgba);
    expect(generateCover(6, 80, 60).rgba).not.toEqual(generateCover(5, 80, 60).rgba);
    const colours = new Set<number>();
    const { rgba } = generateCover(5, 80, 60);
    for (let index = 0; index < rgba.length; index += 4) {
      colours.add(rgba[index]! << 16 | rgba[index + 1]! << 8 | rgba[index + 2]!);
    }
    expect(colours.size).toBeGreaterThan(1_000);
  });

  it("draws a cover into a buffer it is given, and writes a PNG through given scratch, with the same result", async () => {
    const into = new Uint8Array(80 * 60 * 4).fill(7);
    const drawn = generateCover(5, 80, 60, into);
    expect(drawn.rgba).toBe(into);
    expect(drawn.rgba).toEqual(generateCover(5, 80, 60).rgba);
    expect(() => generateCover(5, 80, 60, new Uint8Array(80 * 60 * 4 - 4))).toThrow(/exactly its pixels/);
    const scratch = new Uint8Array(filteredBytes(drawn)).fill(9);
    expect(await encodePng(drawn, scratch)).toEqual(await encodePng(drawn));
    await expect(encodePng(drawn, new Uint8Array(10))).rejects.toThrow(/scratch/);
  });

  it("sizes a cover to fit a payload, and much larger for stealth", () => {
    for (const payloadBytes of [0, 1, 10_000, 1_000_000]) {
      const normal = coverSizeFor(payloadBytes, { bits: 2 });
      expect(capacityBytes(normal.width * normal.height, 2)).toBeGreaterThanOrEqual(payloadBytes);
      const stealth = coverSizeFor(payloadBytes, { bits: 1, stealth: true });
      expect(payloadBytes * 8).toBeLessThanOrEqual(stealthBitsPerChannel * 3 * stealth.width * stealth.height);
    }
  });

  it("scales a user's cover up for stealth only when it is too small, keeping its look", () => {
    const small = generateCover(4, 80, 60);
    expect(scaleForStealth(small, 10)).toBe(small);
    const scaled = scaleForStealth(small, 2_000);
    expect(2_000 * 8).toBeLessThanOrEqual(stealthBitsPerChannel * 3 * scaled.width * scaled.height);
    expect(scaled.width / scaled.height).toBeCloseTo(80 / 60, 1);
    // Scaled back down, it is the same picture (within interpolation's rounding).
    const back = previewOf(scaled, 80);
    let difference = 0;
    for (let index = 0; index < small.rgba.length; index++) {
      difference += Math.abs(back.rgba[index]! - small.rgba[index]!);
    }
    expect(difference / small.rgba.length).toBeLessThan(3);
  });

  it("previews fit in 128 x 128, keep the aspect, and average areas", () => {
    const preview = previewOf(generateCover(2, 400, 300));
    expect([preview.width, preview.height]).toEqual([128, 96]);
    // A fine black-and-white checkerboard averages to grey, not to aliased stripes.
    const checker: Image = {
      width: 256,
      height: 256,
      hasAlpha: false,
      rgba: Uint8Array.from({ length: 256 * 256 * 4 }, (_, index) => {
        const pixel = index >> 2;
        return (index & 3) === 3 ? 255 : ((pixel % 256) + (pixel >> 8)) % 2 ? 255 : 0;
      }),
    };
    const small = previewOf(checker);
    expect(small.width).toBe(128);
    for (let index = 0; index < small.rgba.length; index += 4) {
      expect(Math.abs(small.rgba[index]! - 128)).toBeLessThanOrEqual(1);
    }
  });
});
