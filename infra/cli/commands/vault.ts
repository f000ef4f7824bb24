/**
 * The vault from the command line: upload, download, ls, stat, rm. Files are sealed and
 * hidden on this machine with the account key unlocked at login; the cluster sees only
 * cover PNGs cut into chunks. Progress goes to stderr, only for a person at a terminal.
 */
import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import process from "node:process";
import type { Command } from "commander";
import { safeFileName } from "../../../actors/peer/vault.ts";
import { AuthenticationError, limits, storedSummary, ValidationError } from "../../../events/mod.ts";
import { cryptoRandom } from "../../random.ts";
import type { Bus } from "../../../actors/ports.ts";
import { commandsOver } from "../../command-client.ts";
import {
  download,
  downloadPreview,
  listVault,
  onThisMachine,
  openManifest,
  openSummary,
  resolveObject,
  type TransferDeps,
  upload,
  type VaultDeps,
} from "../../vault/mod.ts";
import { exists, writeFileAtomic } from "../../files.ts";
import { startCryptoActor, startStegoActor } from "../../workers/actors.ts";
import { cliLogger } from "../client.ts";
import { formatBytes, printLine, toJson } from "../format.ts";
import { table } from "../render.ts";
import { call, profileOption, withSession } from "../session.ts";
import { parseBits } from "../arguments.ts";
import { loadConfig } from "../../config.ts";

const print = printLine;
const iso = (ms: number) => new Date(ms).toISOString();

const types: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".txt": "text/plain",
  ".pdf": "application/pdf",
};

/** A progress line on a terminal, shown once a transfer has run for a second. */
function progress(what: string) {
  const started = Date.now();
  if (!process.stderr.isTTY) return { update: () => {}, end: () => {} };
  let shown = false;
  return {
    update(done: number, total: number) {
      if (Date.now() - started < 1_000) return;
      shown = true;
      const percent = total === 0 ? 100 : Math.floor((100 * done) / total);
      const bar = "#".repeat(Math.floor(percent / 5)).padEnd(20, ".");
      process.stderr.write(`\r${what} [${bar}] ${percent}% of ${formatBytes(total)}`);
    },
    end: () => shown && process.stderr.write("\n"),
  };
}

const accountKeyOf = (stored: { accountKey?: string }): Uint8Array => {
  if (!stored.accountKey) throw new AuthenticationError("log in again to unlock your vault on this machine");
  return new Uint8Array(Buffer.from(stored.accountKey, "base64url"));
};

/**
 * Runs work with the session and the unlocked account key, without the workers: enough to
 * open the names of one's files (sealed in the log) and to resolve a name to an id.
 */
export function withOwnKeys<T>(
  options: { profile?: string },
  work: (deps: VaultDeps & { readonly bus: Bus }) => Promise<T>,
): Promise<T> {
  return withSession(
    options,
    ({ bus, session, stored }) => work({ bus, send: commandsOver(bus), session, accountKey: accountKeyOf(stored) }),
  );
}

/** Runs work with the session, the unlocked account keys and the crypto and stego actors. */
export function withVault<T>(
  options: { profile?: string },
  work: (deps: TransferDeps & { privateKey?: Uint8Array }) => Promise<T>,
): Promise<T> {
  return withSession(options, async ({ bus, session, stored }) => {
    const accountKey = accountKeyOf(stored);
    const crypto = startCryptoActor();
    const stego = startStegoActor();
    try {
      return await work({
        bus,
        send: commandsOver(bus),
        crypto,
        stego,
        ...onThisMachine,
        random: cryptoRandom,
        session,
        accountKey,
        ...(stored.privateKey ? { privateKey: new Uint8Array(Buffer.from(stored.privateKey, "base64url")) } : {}),
        logger: cliLogger(loadConfig()),
      });
    } finally {
      await Promise.all([crypto.stop(), stego.stop()]);
    }
  });
}

async function readCover(path: string): Promise<Uint8Array> {
  try {
    const bytes = new Uint8Array(await readFile(path));
    if (bytes.byteLength > limits.pngBytesMax) {
      throw new ValidationError(`${path} is over the ${limits.pngBytesMax}-byte limit`);
    }
    return bytes;
  } catch (cause) {
    if (cause instanceof ValidationError) throw cause;
    throw new ValidationError(`cannot read the cover ${path}: ${(cause as Error).message}`, { cause });
  }
}

function parseReplicas(text: string): number {
  const replicas = Number(text);
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > limits.replicasMax) {
    throw new ValidationError(`--replicas must be a whole number from 1 to ${limits.replicasMax}, got ${text}`);
  }
  return replicas;
}

export function registerVault(program: Command): void {
  program
    .command("upload")
    .description("encrypt files on this machine, hide them in cover PNGs and store them with replicas")
    .argument("<file...>", "the files (any kind)")
    .option("--replicas <n>", "copies of every chunk, on distinct storage nodes", "2")
    .option("--cover <cover.png>", "hide the file in this PNG of yours (files up to 4 MiB) instead of a generated one")
    .option(
      "--bits <n>",
      "bits hidden per colour channel: 1 (default, least visible) to 4 (a quarter of the covers, faster, noisier)",
      "1",
    )
    .option("--discoverable", "show it (its preview, for images) to users who find you online")
    .option("--json", "print what was stored as JSON, one object per file")
    .addOption(profileOption())
    .action(
      async (
        files: string[],
        options: {
          replicas: string;
          cover?: string;
          bits: string;
          discoverable?: boolean;
          json?: boolean;
          profile?: string;
        },
      ) => {
        const replicas = parseReplicas(options.replicas);
        const bits = parseBits(options.bits);
        const cover = options.cover ? await readCover(options.cover) : undefined;
        await withVault(options, async (deps) => {
          for (const path of files) {
            const name = basename(path);
            const bar = progress(`uploading ${name}`);
            const stored = await upload({ ...deps, onProgress: bar.update }, {
              path,
              name,
              type: types[extname(name).toLowerCase()] ?? "application/octet-stream",
            }, { replicas, cover, bits }).finally(bar.end);
            if (options.discoverable) {
              // Shown under its own name: public from now on, by the owner's choice.
              await call(deps.bus, "vault.discoverable", {
                ...deps.session,
                image: stored.image,
                discoverable: true,
                name: stored.name,
              });
            }
            if (options.json) print(toJson({ ...stored, ...(options.discoverable ? { discoverable: true } : {}) }));
            else {print(
                `stored ${name} as ${stored.image} (${
                  formatBytes(stored.bytes)
                }, ${stored.chunks} chunks x ${replicas})${options.discoverable ? ", discoverable" : ""}`,
              );}
          }
        });
      },
    );

  program
    .command("download")
    .description("fetch a file from the vault, check it and write it here (or to -o)")
    .argument("<id|name>", "the object's id, or its name")
    .option("-o, --output <path>", "where to write it (default: its stored name, in this folder)")
    .option("--force", "replace the file if it exists")
    .addOption(profileOption())
    .action(async (reference: string, options: { output?: string; force?: boolean; profile?: string }) => {
      await withVault(options, async (deps) => {
        const bar = progress(`downloading ${reference}`);
        const { manifest, output } = await download({ ...deps, onProgress: bar.update }, reference, {
          output: (manifest) => resolve(options.output ?? join(".", safeFileName(manifest.name))),
          force: options.force,
        }).finally(bar.end);
        print(`wrote ${manifest.name} (${formatBytes(manifest.bytes)}) to ${output}`);
      });
    });

  program
    .command("preview")
    .description(`write the ${limits.previewPixels} x ${limits.previewPixels} preview of an image in your vault`)
    .argument("<id|name>", "the object's id, or its name")
    .requiredOption("-o, --output <thumb.png>", "where to write the preview")
    .option("--force", "replace the file if it exists")
    .addOption(profileOption())
    .action(async (reference: string, options: { output: string; force?: boolean; profile?: string }) => {
      if (!options.force && (await exists(options.output))) {
        throw new ValidationError(`${options.output} exists; add --force to replace it`);
      }
      await withVault(options, async (deps) => {
        const png = await downloadPreview(deps, reference);
        await writeFileAtomic(options.output, png, { force: options.force });
        print(`wrote the preview of ${reference} to ${options.output}`);
      });
    });

  program
    .command("ls")
    .description("list your files")
    .option("--json", "print the list as JSON")
    .addOption(profileOption())
    .action(async (options: { json?: boolean; profile?: string }) => {
      await withOwnKeys(options, async (deps) => {
        const list = await listVault(deps);
        if (options.json) return void print(toJson(list));
        if (list.length === 0) return void print("no files yet; add some with `veil upload <file>`");
        const rows = list.map((
          item,
        ) => [item.image, item.name, formatBytes(item.bytes), item.type, iso(item.storedAt)]);
        for (const line of table([["ID", "NAME", "SIZE", "TYPE", "STORED"], ...rows])) print(line);
      });
    });

  program
    .command("stat")
    .description("one file: size, type, replicas and the nodes holding its chunks")
    .argument("<id|name>", "the object's id, or its name")
    .option("--json", "print it as JSON")
    .addOption(profileOption())
    .action(async (reference: string, options: { json?: boolean; profile?: string }) => {
      await withOwnKeys(options, async (deps) => {
        const { manifest } = await openManifest(deps, reference);
        const chunks = manifest.parts.flatMap((part) => part.chunks);
        const perNode: Record<string, number> = {};
        for (const chunk of chunks) for (const node of chunk.nodes) perNode[node] = (perNode[node] ?? 0) + 1;
        const view = {
          image: manifest.image,
          name: manifest.name,
          bytes: manifest.bytes,
          type: manifest.type,
          storedAt: manifest.storedAt,
          replicas: manifest.replicas,
          bitsPerChannel: manifest.bitsPerChannel ?? 1,
          parts: manifest.parts.length,
          chunks: chunks.length,
          storedBytes: chunks.reduce((sum, chunk) => sum + chunk.bytes, 0) * manifest.replicas,
          chunksPerNode: perNode,
          preview: manifest.preview !== undefined,
        };
        if (options.json) return void print(toJson(view));
        print(`${view.name} (${view.image})`);
        print(
          `size ${formatBytes(view.bytes)}, ${view.type}, stored ${iso(view.storedAt)}${
            view.preview ? ", preview" : ""
          }`,
        );
        print(
          `${view.parts} part(s) hidden at ${view.bitsPerChannel} bit(s) per channel, ${view.chunks} chunks, ${view.replicas} replicas: ${
            formatBytes(view.storedBytes)
          } on disk`,
        );
        for (const [node, count] of Object.entries(perNode).sort()) print(`  ${node}: ${count} chunks`);
      });
    });

  program
    .command("rm")
    .description("remove a file from your vault")
    .argument("<id|name>", "the object's id, or its name")
    .addOption(profileOption())
    .action(async (reference: string, options: { profile?: string }) => {
      await withOwnKeys(options, async (deps) => {
        const image = await resolveObject(deps, reference);
        const removed = storedSummary.parse(await call(deps.bus, "vault.remove", { ...deps.session, image }));
        // A grant's stray copy (removed by id) is sealed under its grant's keys, not the account's: it goes by its id.
        const name = (() => {
          try {
            return openSummary(deps.accountKey, removed).name;
          } catch {
            return image;
          }
        })();
        print(`removed ${name} (${image}); garbage collection frees its chunks`);
      });
    });
}
