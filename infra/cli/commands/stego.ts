import { readFile } from "node:fs/promises";
import process from "node:process";
import type { Command } from "commander";
import { deriveSubkey, localPassphraseSalt } from "../../../actors/crypto/mod.ts";
import { stealthBitsPerChannel } from "../../../actors/stego/mod.ts";
import { parseBits } from "../arguments.ts";
import { IntegrityError, limits, ValidationError } from "../../../events/mod.ts";
import { exists, writeFileAtomic } from "../../files.ts";
import { cryptoRandom } from "../../random.ts";
import { type CryptoActor, startCryptoActor, startStegoActor, type StegoActor } from "../../workers/actors.ts";
import { printLine, toJson } from "../format.ts";
import { readPassphrase } from "../prompt.ts";

const print = printLine;
/** Steps of slow work, on stderr and only for a person at a terminal. */
const step = (line: string) => process.stderr.isTTY && process.stderr.write(`${line}\n`);
const objectSaltBytes = 16;

async function readInput(path: string, what: string, bytesMax: number): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new ValidationError(`cannot read ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
  if (bytes.byteLength > bytesMax) throw new ValidationError(`${path} is over the ${bytesMax}-byte limit`);
  return bytes;
}

/** Refuses early, before any slow work, an output that exists (the final write checks again). */
async function checkOutput(path: string, force: boolean | undefined): Promise<void> {
  if (!force && (await exists(path))) throw new ValidationError(`${path} exists; add --force to replace it`);
}

/** Runs `work` with the crypto and stego actors, stopping them afterwards. */
async function withActors<T>(work: (crypto: CryptoActor, stego: StegoActor) => Promise<T>): Promise<T> {
  const crypto = startCryptoActor({ size: 1 });
  const stego = startStegoActor({ size: 1 });
  try {
    return await work(crypto, stego);
  } finally {
    await Promise.all([crypto.stop(), stego.stop()]);
  }
}

async function passphraseKeys(crypto: CryptoActor, fromStdin: boolean | undefined, confirm: boolean) {
  const passphrase = await readPassphrase({ fromStdin, confirm });
  step("deriving the key from the passphrase (scrypt, memory-hard on purpose)...");
  const master = await crypto.derivePasswordKey(passphrase, localPassphraseSalt);
  return { master, orderKey: deriveSubkey(master, "stego-order") };
}

export function registerStego(program: Command): void {
  const stego = program
    .command("stego")
    .description("hide files in PNG images and take them out again, on this machine (no cluster needed)");
  registerLocalPreview(stego);

  stego
    .command("capacity")
    .description("how many bytes a cover PNG holds")
    .argument("<cover.png>", "the cover")
    .option("--bits <n>", "bits per colour channel: 1 (default, least visible) to 4", "1")
    .option("--json", "print {width, height, bits, bytes, stealthBytes} as JSON")
    .action(async (cover: string, options: { bits: string; json?: boolean }) => {
      const bits = parseBits(options.bits);
      const png = await readInput(cover, "cover", limits.pngBytesMax);
      const result = await withActors((_, stegoActor) => stegoActor.capacity(png, bits));
      const stealthBytes = Math.floor((stealthBitsPerChannel * 3 * result.width * result.height) / 8);
      if (options.json) {
        print(toJson({ ...result, bits, stealthBytes }));
        return;
      }
      print(`${cover}: ${result.width} x ${result.height} pixels`);
      print(`holds ${result.bytes} bytes at ${bits} bit(s) per channel (${stealthBytes} with --stealth)`);
    });

  stego
    .command("embed")
    .description("encrypt a file and hide it in a PNG (a generated cover, or yours)")
    .argument("<file>", "the file to hide (any kind)")
    .requiredOption("-o, --output <out.png>", "where to write the PNG")
    .option("--cover <cover.png>", "hide it in this PNG instead of a generated cover")
    .option("--bits <n>", "bits per colour channel: 1 (default, least visible) to 4", "1")
    .option("--stealth", `keep to at most ${stealthBitsPerChannel} bits per channel (a larger cover)`)
    .option("--passphrase-stdin", "read the passphrase from the first line of stdin instead of a prompt")
    .option("--force", "replace the output file if it exists")
    .action(
      async (
        file: string,
        options: {
          output: string;
          cover?: string;
          bits: string;
          stealth?: boolean;
          passphraseStdin?: boolean;
          force?: boolean;
        },
      ) => {
        const bits = parseBits(options.bits);
        await checkOutput(options.output, options.force);
        const plaintext = await readInput(file, "file", limits.pngBytesMax);
        const cover = options.cover ? await readInput(options.cover, "cover", limits.pngBytesMax) : undefined;
        const result = await withActors(async (crypto, stegoActor) => {
          const { master, orderKey } = await passphraseKeys(crypto, options.passphraseStdin, true);
          const objectSalt = cryptoRandom.bytes(objectSaltBytes);
          step(`encrypting ${plaintext.byteLength} bytes...`);
          const sealed = await crypto.seal(
            deriveSubkey(master, "local-object", objectSalt),
            cryptoRandom.bytes(16),
            plaintext,
          );
          const payload = new Uint8Array(objectSaltBytes + sealed.byteLength);
          payload.set(objectSalt);
          payload.set(sealed, objectSaltBytes);
          step(options.cover ? "hiding it in your cover..." : "generating a cover and hiding it...");
          const coverSeed = new DataView(cryptoRandom.bytes(4).buffer).getUint32(0);
          return await stegoActor.embed({
            payload,
            stegoKey: orderKey,
            bits,
            stealth: options.stealth,
            cover,
            coverSeed,
          });
        });
        await writeFileAtomic(options.output, result.png, { force: options.force });
        print(
          `hid ${plaintext.byteLength} bytes of ${file} in ${options.output}: ${result.width} x ${result.height}, ` +
            `${result.png.byteLength} bytes, PSNR ${result.psnr.toFixed(1)} dB against the cover`,
        );
      },
    );

  stego
    .command("extract")
    .description("take a hidden file out of a PNG and decrypt it")
    .argument("<image.png>", "a PNG written by `veil stego embed`")
    .requiredOption("-o, --output <file>", "where to write the file")
    .option("--passphrase-stdin", "read the passphrase from the first line of stdin instead of a prompt")
    .option("--force", "replace the output file if it exists")
    .action(async (image: string, options: { output: string; passphraseStdin?: boolean; force?: boolean }) => {
      await checkOutput(options.output, options.force);
      const png = await readInput(image, "image", limits.pngBytesMax);
      const plaintext = await withActors(async (crypto, stegoActor) => {
        const { master, orderKey } = await passphraseKeys(crypto, options.passphraseStdin, false);
        step("looking for the hidden data...");
        let payload: Uint8Array;
        try {
          payload = await stegoActor.extract(png, orderKey);
        } catch (error) {
          if ((error as { code?: string }).code === "integrity") {
            throw new IntegrityError(
              `nothing hidden in ${image} opens with this passphrase (wrong passphrase, or the image was changed)`,
            );
          }
          throw error;
        }
        if (payload.byteLength < objectSaltBytes) throw new IntegrityError(`${image} holds no veil object`);
        const key = deriveSubkey(master, "local-object", payload.subarray(0, objectSaltBytes));
        step("decrypting...");
        return (await crypto.open(key, payload.subarray(objectSaltBytes))).plaintext;
      });
      await writeFileAtomic(options.output, plaintext, { force: options.force });
      print(`wrote ${plaintext.byteLength} bytes to ${options.output}`);
    });
}

/** `veil stego preview`: a thumbnail of a local image (`veil preview` shows one of the vault's). */
function registerLocalPreview(stego: Command): void {
  stego
    .command("preview")
    .description(
      `write a thumbnail of an image, fitting in ${limits.previewPixels} x ${limits.previewPixels} (aspect kept)`,
    )
    .argument("<image.png>", "the image")
    .requiredOption("-o, --output <thumb.png>", "where to write the thumbnail")
    .option("--force", "replace the output file if it exists")
    .action(async (image: string, options: { output: string; force?: boolean }) => {
      const png = await readInput(image, "image", limits.pngBytesMax);
      const thumbnail = await withActors((_, stegoActor) => stegoActor.preview(png));
      await writeFileAtomic(options.output, thumbnail, { force: options.force });
      print(`wrote the preview of ${image} to ${options.output}`);
    });
}
