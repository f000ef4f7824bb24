/**
 * Discovery's previews. A running peer answers for the previews of its user's objects that
 * are shown (discoverable), opening each once with the account key and keeping it in
 * memory; `veil online` asks each online user's peer for theirs and writes them to a folder.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { safeFileName } from "../../actors/peer/vault.ts";
import { bytes, limits, NotFoundError } from "../../events/mod.ts";
import type { ImageManifest } from "../../projections/images.ts";
import { downloadPreview, type TransferDeps } from "../vault/mod.ts";
import { command } from "../vault/parts.ts";

/** What the peer answers with: the preview of one of its user's shown objects, or "not found". */
export function previewServer(deps: TransferDeps): (image: string) => Promise<Uint8Array> {
  const opened = new Map<string, Promise<Uint8Array>>();
  return async (image) => {
    const manifest = await command(deps.bus, "vault.get", { ...deps.session, image }).catch(() => undefined) as
      | ImageManifest
      | undefined;
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

/** Who is online, with their shown objects' previews written under `folder/<user>/`. */
export async function discoverOnline(
  deps: Pick<TransferDeps, "bus" | "session">,
  folder: string,
): Promise<OnlineUser[]> {
  const online = await command(deps.bus, "peer.online", deps.session) as OnlineUser[];
  return await Promise.all(online.map(async (peer) => ({
    ...peer,
    images: await Promise.all(peer.images.map(async (image) => {
      if (!image.preview) return image;
      try {
        const png = previewReply.parse(
          await command(deps.bus, "peer.preview", { ...deps.session, of: peer.user, image: image.image }),
        );
        await mkdir(join(folder, peer.user), { recursive: true, mode: 0o700 });
        const name = safeFileName(image.name).replace(/\.png$/i, "");
        const path = join(folder, peer.user, `${image.image.slice(0, 8)}-${name}.png`);
        await writeFile(path, png, { mode: 0o600 });
        return { ...image, previewPath: path, previewBytes: png.byteLength };
      } catch (error) {
        return { ...image, previewProblem: (error as Error).message };
      }
    })),
  })));
}
