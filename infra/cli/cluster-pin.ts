/**
 * Trust on first use: the first time a client reaches a cluster (by broker address), it
 * keeps the cluster's sealing key in `$VEIL_HOME/clusters.json`; from then on it seals only
 * to that key, and a cluster that shows another one is refused. So a broker that is later
 * misconfigured, or someone answering in the cluster's place, cannot make this client seal
 * its password-equivalents and tokens to a key of theirs.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Bus } from "../../actors/ports.ts";
import { AuthenticationError, object, string, ValidationError } from "../../events/mod.ts";
import { writeFileAtomic } from "../files.ts";
import { type ClusterKeys, fetchClusterKeys, useClusterKeys } from "../command-client.ts";

const hex = (length: number) => string({ lengthMin: length, lengthMax: length, pattern: /^[0-9a-f]+$/ });
const pin = object({ sealingKey: hex(64), fingerprint: hex(32) });

export const clusterPinsFileName = "clusters.json";

async function readPins(path: string): Promise<Record<string, { sealingKey: string; fingerprint: string }>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(parsed).map(([url, entry]) => [url, pin.parse(entry)]));
  } catch (error) {
    throw new ValidationError(`${path} is damaged (${(error as Error).message}); fix or remove it`);
  }
}

/** The cluster's keys at `url`, checked against (or pinned as) what this client saw first; the bus seals to them. */
export async function pinnedClusterKeys(bus: Bus, options: { home: string; url: string }): Promise<ClusterKeys> {
  const keys = await fetchClusterKeys(bus);
  const path = join(options.home, clusterPinsFileName);
  const pins = await readPins(path);
  const seen = { sealingKey: bytesToHex(keys.sealingKey), fingerprint: bytesToHex(keys.fingerprint) };
  const pinned = pins[options.url];
  if (!pinned) {
    await mkdir(options.home, { recursive: true, mode: 0o700 });
    const text = JSON.stringify({ ...pins, [options.url]: seen }, null, 2) + "\n";
    await writeFileAtomic(path, new TextEncoder().encode(text), { force: true });
  } else if (pinned.sealingKey !== seen.sealingKey) {
    throw new AuthenticationError(
      `the cluster at ${options.url} shows another key (${seen.fingerprint}) than the one this client met first ` +
        `(${pinned.fingerprint}): someone may be answering in its place. If its operator changed the cluster key on ` +
        `purpose, remove that entry from ${path}`,
    );
  }
  useClusterKeys(bus, keys);
  return keys;
}
