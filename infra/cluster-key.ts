/**
 * The cluster key: 32 random bytes every server shares and nothing else holds. It seals the
 * secrets servers must read back (TOTP seeds, email addresses) before they enter the log,
 * so the log alone never reveals them. It comes from VEIL_CLUSTER_KEY, or from
 * `<data>/cluster.key`, which the first server to start creates with mode 0600.
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { link, mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import { type EventOrigin, ValidationError } from "../events/mod.ts";
import { recordClusterKey } from "../actors/server/cluster-key.ts";
import { cryptoRandom } from "./random.ts";
import { clusterSecrets } from "../actors/server/accounts/secrets.ts";
import type { Config } from "./config.ts";
import type { EventLog, Logger } from "../actors/ports.ts";

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
  // Written whole to a temp file, then linked into place: link fails if the name exists, so two
  // servers starting at once cannot both create a key; the loser reads the winner's.
  const temporary = `${path}.${process.pid}.${bytesToHex(cryptoRandom.bytes(4))}.partial`;
  const file = await open(temporary, "wx", 0o600);
  try {
    await file.writeFile(bytesToHex(cryptoRandom.bytes(32)) + "\n");
    await file.sync();
    await file.close();
    await link(temporary, path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
  } finally {
    await rm(temporary, { force: true });
  }
  logger.info("using the cluster key file (mode 0600); every server of this cluster needs the same key", { path });
  return parseClusterKey(await readFile(path, "utf8"), path);
}

/**
 * Records the key's fingerprint and public sealing key if the cluster has none yet, and
 * otherwise checks this key is the cluster's (actors/server/cluster-key.ts decides).
 */
export async function checkClusterKey(log: EventLog, key: Uint8Array, origin: () => EventOrigin): Promise<void> {
  const { fingerprint, sealingKeys } = clusterSecrets(key, cryptoRandom);
  await recordClusterKey(log, { fingerprint, sealingKey: sealingKeys.publicKey }, origin);
}
