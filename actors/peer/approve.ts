/**
 * Approving a request, on the owner's machine: the object is opened in memory (a grant's
 * object is bounded, limits.grantObjectBytesMax), sealed again under a fresh grant key (split
 * in two shares) and stored in the vault as the grant's copy, and the grant is issued with
 * share A sealed to the recipient and share B handed to the cluster. The original's keys
 * never leave this machine, and its plaintext is never written anywhere.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { grantObjectKeys, keyFingerprint, newGrantShares, sealShareTo, shareAContext } from "./grant.ts";
import {
  type GrantReply,
  grantReply,
  limits,
  publicKeyReply,
  requestReply,
  ValidationError,
} from "../../events/mod.ts";
import { download } from "./download.ts";
import { memorySink, memorySource } from "./memory-files.ts";
import { command, type TransferDeps } from "./parts.ts";
import { upload } from "./upload.ts";

export async function approve(
  deps: TransferDeps,
  requestId: string,
  options: { views: number; expiresAt: number },
): Promise<GrantReply & { recipientKey: string }> {
  const { session, random } = deps;
  if (!Number.isInteger(options.views) || options.views < 1 || options.views > limits.grantViewsMax) {
    throw new ValidationError(`views must be a whole number from 1 to ${limits.grantViewsMax}, got ${options.views}`);
  }
  if (!(options.expiresAt > deps.clock.now())) throw new ValidationError("a grant must expire in the future");
  const request = requestReply.parse(await command(deps, "request.show", { ...session, request: requestId }));
  if (request.owner !== session.user) {
    throw new ValidationError(`request ${requestId} is yours to wait on, not to approve`);
  }
  if (request.status !== "pending") throw new ValidationError(`request ${requestId} is ${request.status} already`);
  const { publicKey } = publicKeyReply.parse(await command(deps, "user.publicKey", { ...session, of: request.from }));
  const grant = bytesToHex(random.bytes(16));
  const parties = { grant, owner: session.user, recipient: request.from };
  const { shareA, shareB } = newGrantShares(random);
  const keys = grantObjectKeys(parties, shareA, shareB);
  let stored = false;
  let opened: Uint8Array | undefined;
  try {
    const { manifest, sink } = await download(deps, request.image, (manifest) => {
      if (manifest.bytes > limits.grantObjectBytesMax) {
        throw new ValidationError(
          `${manifest.name} is over the ${limits.grantObjectBytesMax}-byte limit for grants (a view opens it in memory)`,
        );
      }
      return Promise.resolve(memorySink(manifest.bytes));
    });
    opened = sink.bytes;
    await upload(deps, { source: memorySource(opened), name: manifest.name, type: manifest.type }, {
      replicas: manifest.replicas,
      // The copy is hidden as the owner chose for the original.
      bits: manifest.bitsPerChannel,
      copyFor: { grant, keys },
    });
    stored = true;
    const issued = grantReply.parse(
      await command(deps, "grant.issue", {
        ...session,
        request: requestId,
        grant,
        views: options.views,
        expiresAt: options.expiresAt,
        image: keys.image,
        shareA: sealShareTo(publicKey, shareA, shareAContext(parties), random),
        shareB,
      }),
    );
    // What the grant is sealed to, for the owner to compare with the recipient's own fingerprint.
    return { ...issued, recipientKey: keyFingerprint(publicKey) };
  } catch (error) {
    // A copy no grant was recorded for is of no use: remove it, so its chunks are collected.
    if (stored) await command(deps, "vault.remove", { ...session, image: keys.image }).catch(() => {});
    throw error;
  } finally {
    shareB.fill(0);
    opened?.fill(0);
  }
}
