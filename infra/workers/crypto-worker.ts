/** The crypto actor's worker: sealing, opening and password derivation, off the event loop. */
import { derivePasswordKey, openObject, type ScryptParameters, sealObject, slowHash } from "../../actors/crypto/mod.ts";
import { serveOperations } from "./serve.ts";

serveOperations({
  seal: (input: { key: Uint8Array; objectId: Uint8Array; plaintext: Uint8Array; segmentBytes?: number }) =>
    sealObject(input.key, input.objectId, input.plaintext, input.segmentBytes),
  open: (input: { key: Uint8Array; sealed: Uint8Array }) => openObject(input.key, input.sealed),
  derivePasswordKey: (input: { password: string; salt: Uint8Array; parameters?: ScryptParameters }) =>
    derivePasswordKey(input.password, input.salt, input.parameters),
  slowHash: (input: { bytes: Uint8Array; salt: Uint8Array; parameters?: ScryptParameters }) =>
    slowHash(input.bytes, input.salt, input.parameters),
  // scrypt at veil's strength works in 128 MiB.
}, { after: ["derivePasswordKey", "slowHash"], budgeted: ["seal"] });
