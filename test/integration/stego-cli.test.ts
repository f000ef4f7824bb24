/** `veil stego` (with `veil stego preview`) as a person uses it: real command, real files. */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { capacityBytes, decodePng, encodePng, generateCover } from "../../actors/stego/mod.ts";
import { runVeil } from "../support/cli.ts";

let folder = "";
const at = (name: string) => join(folder, name);
const passphrase = (text: string) => new TextEncoder().encode(`${text}\n`);
const secret = Uint8Array.from({ length: 5_000 }, (_, index) => (index * 131 + 7) & 255);

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-stego-"));
  await writeFile(at("secret.bin"), secret);
  await writeFile(at("cover.png"), await encodePng(generateCover(9, 200, 150)));
  await writeFile(at("small.png"), await encodePng(generateCover(9, 40, 30)));
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

const exists = (path: string) => stat(path).then(() => true, () => false);

describe("veil stego", () => {
  it("hides a file in a generated cover and takes it out again", async () => {
    const embedded = await runVeil(["stego", "embed", at("secret.bin"), "-o", at("out.png"), "--passphrase-stdin"], {
      stdin: passphrase("correct horse"),
    });
    expect(embedded.code).toBe(0);
    expect(embedded.stdout).toMatch(/hid 5000 bytes of .*: \d+ x \d+, \d+ bytes, PSNR \d+\.\d dB against the cover/);
    expect(decodePng(new Uint8Array(await readFile(at("out.png")))).width).toBeGreaterThan(0);
    const extracted = await runVeil(["stego", "extract", at("out.png"), "-o", at("back.bin"), "--passphrase-stdin"], {
      stdin: passphrase("correct horse"),
    });
    expect(extracted.code).toBe(0);
    expect(new Uint8Array(await readFile(at("back.bin")))).toEqual(secret);
  });

  it("uses the user's cover at the bits asked for, and reports its capacity", async () => {
    const capacity = await runVeil(["stego", "capacity", at("cover.png"), "--bits", "2", "--json"]);
    expect(JSON.parse(capacity.stdout)).toMatchObject({
      width: 200,
      height: 150,
      bits: 2,
      bytes: capacityBytes(200 * 150, 2),
    });
    const ran = await runVeil(
      [
        "stego",
        "embed",
        at("secret.bin"),
        "-o",
        at("covered.png"),
        "--cover",
        at("cover.png"),
        "--bits",
        "2",
        "--passphrase-stdin",
      ],
      { stdin: passphrase("p") },
    );
    expect(ran.code).toBe(0);
    const image = decodePng(new Uint8Array(await readFile(at("covered.png"))));
    expect([image.width, image.height]).toEqual([200, 150]);
  });

  it("says a wrong passphrase clearly, exits non-zero and writes nothing", async () => {
    const ran = await runVeil(["stego", "extract", at("out.png"), "-o", at("wrong.bin"), "--passphrase-stdin"], {
      stdin: passphrase("incorrect horse"),
    });
    expect(ran.code).toBe(8);
    expect(ran.stderr).toMatch(/nothing hidden in .* opens with this passphrase/);
    expect(await exists(at("wrong.bin"))).toBe(false);
  });

  it("does not overwrite a file without --force", async () => {
    await writeFile(at("keep.bin"), "precious");
    const ran = await runVeil(["stego", "extract", at("out.png"), "-o", at("keep.bin"), "--passphrase-stdin"], {
      stdin: passphrase("correct horse"),
    });
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(/exists; add --force/);
    expect(await readFile(at("keep.bin"), "utf8")).toBe("precious");
  });

  it.each([
    ["a cover that is not a PNG", ["--cover", "secret.bin"], /not a PNG file/],
    ["a payload larger than the cover", ["--cover", "small.png"], /do not fit this 40 x 30 cover/],
  ])("refuses %s with a clear message and no output", async (_, extra, message) => {
    const args = extra.map((value) => (value.endsWith(".png") || value.endsWith(".bin") ? at(value) : value));
    const ran = await runVeil([
      "stego",
      "embed",
      at("secret.bin"),
      "-o",
      at("never.png"),
      "--passphrase-stdin",
      ...args,
    ], {
      stdin: passphrase("p"),
    });
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(message);
    expect(await exists(at("never.png"))).toBe(false);
  });

  it("with --stealth, scales a cover too small for the stealth rate up, and the file still comes back", async () => {
    const ran = await runVeil(
      [
        "stego",
        "embed",
        at("secret.bin"),
        "-o",
        at("stealth.png"),
        "--cover",
        at("cover.png"),
        "--stealth",
        "--passphrase-stdin",
      ],
      { stdin: passphrase("quiet") },
    );
    expect(ran.code).toBe(0);
    const image = decodePng(new Uint8Array(await readFile(at("stealth.png"))));
    // 5,000 bytes plus envelope at 0.1 bits per channel need about 134k pixels: 200 x 150 grows.
    expect(image.width * image.height * 3 * 0.1).toBeGreaterThanOrEqual(5_000 * 8);
    expect(image.width / image.height).toBeCloseTo(200 / 150, 1);
    const back = await runVeil(["stego", "extract", at("stealth.png"), "-o", at("stealth.bin"), "--passphrase-stdin"], {
      stdin: passphrase("quiet"),
    });
    expect(back.code).toBe(0);
    expect(new Uint8Array(await readFile(at("stealth.bin")))).toEqual(secret);
  });

  it("refuses a truncated PNG and a decompression bomb before decoding", async () => {
    const png = await readFile(at("cover.png"));
    await writeFile(at("truncated.png"), png.subarray(0, png.length - 200));
    const truncated = await runVeil(["stego", "capacity", at("truncated.png")]);
    expect(truncated.code).toBe(2);
    expect(truncated.stderr).toMatch(/damaged or truncated/);
    const bomb = Buffer.from(png);
    bomb.writeUInt32BE(100_000, 16);
    bomb.writeUInt32BE(100_000, 20);
    await writeFile(at("bomb.png"), bomb);
    const refused = await runVeil(["stego", "capacity", at("bomb.png")]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/claims 100000 x 100000 pixels/);
  });

  it("works the same on Deno", async () => {
    const ran = await runVeil(["stego", "extract", at("out.png"), "-o", at("deno.bin"), "--passphrase-stdin"], {
      stdin: passphrase("correct horse"),
      runtime: "deno",
    });
    expect(ran.code).toBe(0);
    expect(new Uint8Array(await readFile(at("deno.bin")))).toEqual(secret);
  });

  it("answers on Deno with an empty cache too, where its workers are slow to load", async () => {
    // A task posted before a worker listened was lost on Deno: the first run on a machine hung.
    const cache = await mkdtemp(join(tmpdir(), "veil-deno-cache-"));
    try {
      const ran = await runVeil(["stego", "capacity", at("cover.png")], { env: { DENO_DIR: cache }, runtime: "deno" });
      expect(ran.stderr).toBe("");
      expect(ran.stdout).toMatch(/holds \d+ bytes at 1 bit/);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});

describe("veil stego preview", () => {
  it("writes a thumbnail that fits in 128 x 128 with the aspect kept", async () => {
    const ran = await runVeil(["stego", "preview", at("cover.png"), "-o", at("thumb.png")]);
    expect(ran.code).toBe(0);
    const thumb = decodePng(new Uint8Array(await readFile(at("thumb.png"))));
    expect([thumb.width, thumb.height]).toEqual([128, 96]);
  });
});
