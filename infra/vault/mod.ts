/**
 * The vault's transfers on this machine, as the CLI, tests and benches use them: the actor
 * side's upload and download (actors/peer/) over files, the system's timers and native hashes.
 */
import { download as downloadInto, type OpenedManifest } from "../../actors/peer/download.ts";
import type { TransferDeps } from "../../actors/peer/parts.ts";
import { upload as uploadFrom } from "../../actors/peer/upload.ts";
import type { FileSummary } from "../../actors/peer/vault-list.ts";
import { systemClock, systemTimers } from "../clock.ts";
import { nativeDigests } from "../digests.ts";
import { openFileSink, openFileSource } from "./files.ts";

export { downloadPreview, type OpenedManifest, openManifest } from "../../actors/peer/download.ts";
export {
  type FileSummary,
  listVault,
  openSummary,
  resolveObject,
  type VaultDeps,
} from "../../actors/peer/vault-list.ts";
export type { TransferDeps } from "../../actors/peer/parts.ts";

/** What a transfer takes from this machine: its clock and timers and its native hashes. */
export const onThisMachine = { clock: systemClock, timers: systemTimers, digests: nativeDigests } as const;

/** Uploads the file at `path`, stored under `name` and `type`. */
export async function upload(
  deps: TransferDeps,
  file: { path: string; name: string; type: string },
  options: Parameters<typeof uploadFrom>[2],
): Promise<FileSummary> {
  const source = await openFileSource(file.path);
  try {
    return await uploadFrom(deps, { source, name: file.name, type: file.type }, options);
  } finally {
    await source.close();
  }
}

/** Downloads one's own object to the file `output` names (given the opened manifest). */
export async function download(
  deps: TransferDeps,
  reference: string,
  options: { output: (manifest: OpenedManifest) => string; force?: boolean },
): Promise<{ manifest: OpenedManifest; output: string }> {
  const { manifest, sink } = await downloadInto(
    deps,
    reference,
    (manifest) => openFileSink(options.output(manifest), options.force),
  );
  return { manifest, output: sink.path };
}
