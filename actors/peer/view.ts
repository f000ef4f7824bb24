/**
 * Viewing a grant, on the recipient's machine: the cluster spends one view and releases its
 * share sealed to this user for this view; with share A (sealed to this user in the log) it
 * gives the copy's keys. The copy is fetched, opened and checked in memory (the CLI writes it
 * only where the user says, or to a private temp file). Share B is never stored.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { grantObjectKeys, openShare, shareAContext, shareBContext } from "./grant.ts";
import { contentHashOf, metaOf } from "./meta.ts";
import { checkLayout, partBytesOf } from "./vault.ts";
import { IntegrityError, limits, viewReply } from "../../events/mod.ts";
import { command, eachLimited, readPart, ticketsOf, type TransferDeps } from "./parts.ts";

export interface ViewDeps
  extends Pick<TransferDeps, "bus" | "send" | "crypto" | "stego" | "digests" | "random" | "session" | "logger"> {
  readonly privateKey: Uint8Array;
}

/** Spends one view and opens the copy in memory. */
export async function openGrant(deps: ViewDeps, grant: string) {
  const view = bytesToHex(deps.random.bytes(16));
  const reply = viewReply.parse(await command(deps, "grant.view", { ...deps.session, grant, view }));
  const parties = { grant, owner: reply.owner, recipient: deps.session.user };
  const shareA = openShare(deps.privateKey, reply.shareA, shareAContext(parties));
  const shareB = openShare(deps.privateKey, reply.shareB, shareBContext(parties, view));
  const keys = grantObjectKeys(parties, shareA, shareB);
  shareB.fill(0);
  if (keys.image !== reply.copy.image) throw new IntegrityError(`grant ${grant} names a copy that is not its own`);
  if (reply.copy.bytes > limits.grantObjectBytesMax) throw new IntegrityError(`grant ${grant}'s copy is too large`);
  checkLayout(reply.copy);
  // Get tickets for the copy's chunks, good for this view's download only (they expire soon after).
  const tickets = ticketsOf(reply);
  // The name the owner gave the object, which only the copy's keys open: the servers know only the shown one.
  const meta = metaOf(keys, reply.copy);
  const plaintext = new Uint8Array(reply.copy.bytes);
  const partBytes = partBytesOf(reply.copy);
  await eachLimited(reply.copy.parts, limits.partsInFlight, async (part, index) => {
    const bytes = await readPart(deps, keys, part, index, tickets, []);
    if (index * partBytes + bytes.byteLength > plaintext.byteLength) {
      throw new IntegrityError(`part ${index} of grant ${grant}'s copy is too large`);
    }
    plaintext.set(bytes, index * partBytes);
  });
  const expected = bytesToHex(reply.copy.contentHash);
  if (bytesToHex(contentHashOf(keys, plaintext, reply.copy.legacy !== undefined)) !== expected) {
    throw new IntegrityError(`grant ${grant}'s copy did not come back as it was stored`);
  }
  return { name: meta.name, type: meta.type, viewsLeft: reply.viewsLeft, expiresAt: reply.expiresAt, plaintext };
}
