/**
 * Discovery's previews. A running peer answers for the previews of its user's objects that
 * are shown (discoverable), opening each once with the account key and keeping it in
 * memory; `veil online` asks each online user's peer for theirs and writes them to a folder.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { safeFileName } from "../../actors/peer/vault.ts";
import { bytes, everyPage, limits, NotFoundError, onlineReply, vaultGetReply } from "../../events/mod.ts";
import { downloadPreview, type TransferDeps } from "../vault/mod.ts";
import { command } from "../../actors/peer/parts.ts";

/** What the peer answers with: the preview of one of its user's shown objects, or "not found". */
export function previewServer(deps: TransferDeps): (image: string) => Promise<Uint8Array> {
  const opened = new Map<string, Promise<Uint8Array>>();
  return async (image) => {
    const manifest = await command(deps, "vault.get", { ...deps.session, image })
      .then((reply) => vaultGetReply.parse(reply), () => undefined);
    // Not there, not shown, or without a preview: all look the same from outside.
    if (!manifest?.discoverable || !manifest.preview) throw new NotFoundError(`no preview of ${image} is shown`);
    if (!opened.has(image)) {
      opened.set(
        image,
        downloadPreview(deps, image).catch((error) => {
          opened.delete(image);
          throw error;
        }),
      );
    }
    return await opened.get(image)!;
  };
}

export interface OnlineUser {
  readonly user: string;
  readonly lastSeenAt: number;
  readonly images: readonly {
    image: string;
    /** The name its owner shows it under. */
    name: string;
    bytes: number;
    preview: boolean;
    /** Where its preview was written, and how large it is; absent when it has none or the peer did not answer. */
    previewPath?: string;
    previewBytes?: number;
    previewProblem?: string;
  }[];
}

const previewReply = bytes({ lengthMin: 8, lengthMax: limits.previewBytesMax });

/** Previews asked for at once: a page of users with many shown objects is not a burst of hundreds. */
const previewsInFlightMax = 8;

/**
 * Who is online (or only `of`), with their shown objects' previews written under
 * `folder/<user>/`: page by page, up to limits.onlineShownMax users (`more` says there were more).
 */
export async function discoverOnline(
  deps: Pick<TransferDeps, "send" | "session">,
  folder: string,
  options: { readonly of?: string } = {},
): Promise<{ users: OnlineUser[]; more: boolean }> {
  const pages = await everyPage(
    (after) =>
      command(deps, "peer.online", {
        ...deps.session,
        ...(options.of ? { of: options.of } : {}),
        ...(after ? { after } : {}),
      }).then((reply) => onlineReply.parse(reply)),
    Math.ceil(limits.onlineShownMax / limits.onlinePageMax),
  );
  const online = pages.flatMap((page) => page.users);
  const preview = boundedBy(previewsInFlightMax);
  const users = await Promise.all(online.map(async (peer) => ({
    ...peer,
    images: await Promise.all(
      peer.images.map((image) => image.preview ? preview(() => writePreview(deps, folder, peer.user, image)) : image),
    ),
  })));
  return { users, more: pages.at(-1)?.next !== undefined };
}

async function writePreview(
  deps: Pick<TransferDeps, "send" | "session">,
  folder: string,
  user: string,
  image: OnlineUser["images"][number],
): Promise<OnlineUser["images"][number]> {
  try {
    const png = previewReply.parse(
      await command(deps, "peer.preview", { ...deps.session, of: user, image: image.image }),
    );
    await mkdir(join(folder, user), { recursive: true, mode: 0o700 });
    const name = safeFileName(image.name).replace(/\.png$/i, "");
    const path = join(folder, user, `${image.image.slice(0, 8)}-${name}.png`);
    await writeFile(path, png, { mode: 0o600 });
    return { ...image, previewPath: path, previewBytes: png.byteLength };
  } catch (error) {
    return { ...image, previewProblem: (error as Error).message };
  }
}

/** Runs at most `max` of the works given to it at once, the rest in turn. */
function boundedBy(max: number): <T>(work: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (work) => {
    // A finished work hands its slot straight to the next waiting one.
    if (running < max) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
