/**
 * The cluster key: 32 random bytes every server shares and nothing else holds. It seals the
 * secrets servers must read back (TOTP seeds, email addresses) before they enter the log,
 * so the log alone never reveals them. It comes from VEIL_CLUSTER_KEY, or from
 * `<data>/cluster.key`, which the first server to start creates with mode 0600.
 */
import { Buffer } from "node:buffer";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ValidationError } from "../events/mod.ts";
import { writeFileAtomic } from "./files.ts";
import { cryptoRandom } from "./random.ts";
import type { Config } from "./config.ts";
import type { Logger } from "../actors/ports.ts";

export const clusterKeyFileName = "cluster.key";

export function parseClusterKey(text: string, where: string): Uint8Array {
  const trimmed = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, "hex")
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)
    ? Buffer.from(trimmed, "base64")
    : undefined;
  if (!bytes || bytes.byteLength !== 32) {
    throw new ValidationError(`${where} must hold 32 bytes as 64 hex digits or base64`);
  }
  return new Uint8Array(bytes);
}

export async function loadClusterKey(config: Config, logger: Logger): Promise<Uint8Array> {
  if (config.clusterKeyText) return parseClusterKey(config.clusterKeyText, "VEIL_CLUSTER_KEY");
  const path = join(config.dataFolder, clusterKeyFileName);
  try {
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) logger.warn("the cluster key file is readable by others; chmod 600 it", { path });
    return parseClusterKey(await readFile(path, "utf8"), path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(config.dataFolder, { recursive: true });
  const key = cryptoRandom.bytes(32);
  try {
    await writeFileAtomic(path, new TextEncoder().encode(Buffer.from(key).toString("hex") + "\n"));
    logger.info("created the cluster key (mode 0600); every server of this cluster needs the same one", { path });
    return key;
  } catch (error) {
    // Another server in this data folder created it first: use that one.
    if (error instanceof ValidationError) return parseClusterKey(await readFile(path, "utf8"), path);
    throw error;
  }
}
