/** Where a view the CLI opened goes: a file the user names, or a private temp file. */
import { mkdtemp, open as openFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { safeFileName } from "../../actors/peer/vault.ts";
import { ValidationError } from "../../events/mod.ts";

/** Writes what a view opened: to `output` (never over an existing file), or a private temp file. */
export async function writeView(name: string, plaintext: Uint8Array, output?: string): Promise<string> {
  const path = output ?? join(await mkdtemp(join(tmpdir(), "veil-view-")), safeFileName(name));
  const file = await openFile(path, "wx", 0o600).catch((error: NodeJS.ErrnoException) => {
    throw new ValidationError(
      error.code === "EEXIST" ? `${path} exists; choose another -o` : `cannot write ${path}: ${error.message}`,
    );
  });
  try {
    await file.writeFile(plaintext);
    await file.sync();
  } finally {
    await file.close();
  }
  return path;
}
