/**
 * Downloads on the owner's machine. Each chunk comes from any replica that returns it
 * intact, falling back to the next on a timeout, an error or a hash mismatch; parts come
 * back in parallel and are written in file order; the file is renamed into place only once
 * it is whole and matches its content hash. Replicas found damaged are reported for repair.
 */
import { metaOf, type ObjectMeta } from "./meta.ts";
import { checkLayout, type ObjectKeys, openObjectKeys, partBytesOf, previewPartIndex } from "./vault.ts";
import type { FileSink } from "../ports.ts";
import { IntegrityError, limits, NotFoundError, vaultGetReply } from "../../events/mod.ts";
import type { ImageManifest } from "../../projections/images.ts";
import { resolveObject, type VaultDeps } from "./vault-list.ts";
import { command, contentHasher, eachLimited, readPart, reportDamaged, ticketsOf, type TransferDeps } from "./parts.ts";
import { bytesToHex } from "@noble/hashes/utils.js";

/** A manifest with its name and type opened on this machine. */
export type OpenedManifest = ImageManifest & ObjectMeta;

/** One's own object by id or name, its keys unwrapped and its name and type opened. */
export async function openManifest(
  deps: VaultDeps,
  reference: string,
): Promise<{ manifest: OpenedManifest; keys: ObjectKeys; tickets: ReturnType<typeof ticketsOf> }> {
  const image = await resolveObject(deps, reference);
  const stored = vaultGetReply.parse(await command(deps, "vault.get", { ...deps.session, image }));
  const keys = openObjectKeys(deps.accountKey, stored.image, stored.keyWrapped);
  // Get tickets for its chunks come with it: only the owner gets them.
  return { manifest: { ...stored, ...metaOf(keys, stored) }, keys, tickets: ticketsOf(stored) };
}

/**
 * Fetches one's own object into `sink`, which the caller makes once it has seen the opened
 * manifest (a file named after it, a buffer); the sink is committed only when the whole came
 * back and matches its content hash, and discarded otherwise.
 */
export async function download<Sink extends FileSink>(
  deps: TransferDeps,
  reference: string,
  sinkFor: (manifest: OpenedManifest) => Promise<Sink>,
): Promise<{ manifest: OpenedManifest; sink: Sink }> {
  const { manifest, keys, tickets } = await openManifest(deps, reference);
  const partBytes = partBytesOf(manifest);
  checkLayout(manifest);
  const sink = await sinkFor(manifest);
  try {
    const contentHash = contentHasher(deps.digests, keys, manifest.legacy !== undefined);
    let done = 0;
    // Replicas found damaged or missing, reported once the file is safe, so repair can put them back.
    const damaged: { hash: string; node: string }[] = [];
    // Parts come back in parallel; each is written (and hashed) in file order: part i waits its turn.
    const turns = manifest.parts.map(() => {
      let resolve = () => {};
      const promise = new Promise<void>((done) => (resolve = done));
      return { promise, resolve };
    });
    turns[0]?.resolve();
    // A part that fails ends the download: every lane waiting for its turn is let go, and stops.
    let failed = false;
    await eachLimited(manifest.parts, limits.partsInFlight, async (part, index) => {
      try {
        const plaintext = await readPart(deps, keys, part, index, tickets, damaged);
        if (plaintext.byteLength !== Math.min(partBytes, manifest.bytes - index * partBytes)) {
          throw new IntegrityError(`part ${index} of ${manifest.name} has the wrong size`);
        }
        await turns[index]!.promise;
        if (failed) return;
        contentHash.update(plaintext);
        await sink.write(plaintext, index * partBytes);
        done += plaintext.byteLength;
        deps.onProgress?.(done, manifest.bytes);
        turns[index + 1]?.resolve();
      } catch (error) {
        failed = true;
        for (const turn of turns) turn.resolve();
        throw error;
      }
    });
    if (done !== manifest.bytes || bytesToHex(contentHash.digest()) !== bytesToHex(manifest.contentHash)) {
      throw new IntegrityError(`${manifest.name} did not come back as it was stored (size or content hash differs)`);
    }
    await sink.commit();
    await reportDamaged(deps, manifest.image, damaged);
    return { manifest, sink };
  } catch (error) {
    await sink.discard();
    throw error;
  }
}

/** Fetches and opens an object's preview (images only). */
export async function downloadPreview(deps: TransferDeps, reference: string): Promise<Uint8Array> {
  const { manifest, keys, tickets } = await openManifest(deps, reference);
  if (!manifest.preview) throw new NotFoundError(`${manifest.name} has no preview (only PNG images get one)`);
  const damaged: { hash: string; node: string }[] = [];
  const png = await readPart(deps, keys, manifest.preview, previewPartIndex, tickets, damaged);
  await reportDamaged(deps, manifest.image, damaged);
  return png;
}
