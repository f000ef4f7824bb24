/** The owner's files, every page of `vault.list` in turn, oldest first. */
import type { Bus } from "../../actors/ports.ts";
import { limits } from "../../events/mod.ts";
import type { summary } from "../server/vault.ts";
import { command } from "./parts.ts";

export type FileSummary = ReturnType<typeof summary>;

export async function listVault(
  bus: Bus,
  session: { readonly user: string; readonly token: string },
): Promise<FileSummary[]> {
  const files: FileSummary[] = [];
  let after: string | undefined;
  for (let page = 0;; page++) {
    const reply = await command(bus, "vault.list", { ...session, ...(after ? { after } : {}) }) as {
      files: FileSummary[];
      next?: string;
    };
    files.push(...reply.files);
    // Bounded like everything else: a listing longer than any vault can hold is a fault, not a loop.
    if (!reply.next || page >= limits.objectsPerUserPagesMax) return files;
    after = reply.next;
  }
}
