/** The vault's transfers, as the CLI, tests and benches use them. */
export { download, downloadPreview, type OpenedManifest, openManifest } from "./download.ts";
export {
  type FileSummary,
  listVault,
  openSummary,
  resolveObject,
  type VaultDeps,
} from "../../actors/peer/vault-list.ts";
export type { TransferDeps } from "./parts.ts";
export { upload } from "./upload.ts";
