/**
 * The owner's files, every page of `vault.list` in turn, oldest first, with their names
 * opened here: the servers hold them only sealed. A name given on the command line is
 * resolved to an id the same way, on this machine, since no server can read one.
 */
import type { CommandSender } from "./commands.ts";
import { metaOf } from "./meta.ts";
import { openObjectKeys } from "./vault.ts";
import {
  everyPage,
  imageIdPattern,
  IntegrityError,
  limits,
  NotFoundError,
  type StoredSummary,
  vaultListReply,
} from "../../events/mod.ts";

export interface FileSummary {
  readonly image: string;
  readonly name: string;
  readonly bytes: number;
  readonly type: string;
  readonly storedAt: number;
  readonly replicas: number;
  readonly chunks: number;
}

export interface VaultDeps {
  readonly send: CommandSender;
  readonly session: { readonly user: string; readonly token: string };
  readonly accountKey: Uint8Array;
}

/** A listing's entry with its name and type opened under the account key. */
export function openSummary(accountKey: Uint8Array, stored: StoredSummary): FileSummary {
  let meta;
  try {
    meta = metaOf(openObjectKeys(accountKey, stored.image, stored.keyWrapped), stored);
  } catch (cause) {
    throw new IntegrityError(`object ${stored.image} does not open with your key: ${(cause as Error).message}`, {
      cause,
    });
  }
  const { image, bytes, storedAt, replicas, chunks } = stored;
  return { image, name: meta.name, bytes, type: meta.type, storedAt, replicas, chunks };
}

export async function listVault(deps: VaultDeps): Promise<FileSummary[]> {
  const pages = await everyPage(async (after) =>
    vaultListReply.parse(
      await deps.send("vault.list", { ...deps.session, ...(after ? { after } : {}) }, {
        timeoutMs: limits.identityCommandTimeoutMs,
      }),
    )
  );
  return pages.flatMap((page) => page.files.map((stored) => openSummary(deps.accountKey, stored)));
}

/**
 * The id of `reference`: an id as it is, or the latest of the owner's files of that name
 * (as the vault always resolved names; a name that looks like an id is taken as one).
 */
export async function resolveObject(deps: VaultDeps, reference: string): Promise<string> {
  if (imageIdPattern.test(reference)) return reference;
  const named = (await listVault(deps)).filter((file) => file.name === reference);
  const latest = named.sort((a, b) => b.storedAt - a.storedAt)[0];
  if (!latest) throw new NotFoundError(`no object ${JSON.stringify(reference)} in your vault`);
  return latest.image;
}
