/** Files written whole or not at all: a temp file beside the target, fsync, then rename. */
import { randomBytes } from "node:crypto";
import { open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ValidationError } from "../events/mod.ts";

export async function exists(path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false);
}

export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: { force?: boolean } = {},
): Promise<void> {
  if (!options.force && (await exists(path))) {
    throw new ValidationError(`${path} exists; add --force to replace it`);
  }
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.partial`);
  const file = await open(temporary, "wx", 0o600);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await file.close();
  await rename(temporary, path);
}
