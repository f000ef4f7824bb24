/**
 * Ed25519 through the platform's own crypto (OpenSSL under Node, Deno's node:crypto): the
 * same signatures as the portable implementation, at about a twentieth of the cost (a
 * ticket's check 65-130 µs instead of 1.2 ms), which matters because every chunk put and
 * placement signs or checks one. Keys are turned into key objects once and remembered (a
 * few: a server signs with one key, a node checks with one).
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import type { Signatures } from "../actors/ports.ts";

/** PKCS #8 for an Ed25519 seed: this prefix, then the 32 bytes. */
const pkcs8Prefix = Buffer.from("302e020100300506032b657004220420", "hex");
/** SubjectPublicKeyInfo for an Ed25519 public key: this prefix, then the 32 bytes. */
const spkiPrefix = Buffer.from("302a300506032b6570032100", "hex");
const keysRemembered = 8;

function remembered(make: (bytes: Uint8Array) => KeyObject) {
  const keys = new Map<string, KeyObject>();
  return (bytes: Uint8Array): KeyObject => {
    const id = Buffer.from(bytes).toString("hex");
    let key = keys.get(id);
    if (!key) {
      key = make(bytes);
      keys.set(id, key);
      if (keys.size > keysRemembered) keys.delete(keys.keys().next().value!);
    }
    return key;
  };
}

const privateKeyOf = remembered((seed) =>
  createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: "der", type: "pkcs8" })
);
const publicKeyObjectOf = remembered((publicKey) =>
  createPublicKey({ key: Buffer.concat([spkiPrefix, publicKey]), format: "der", type: "spki" })
);

export const nativeSignatures: Signatures = {
  publicKeyOf(secretKey) {
    const der = createPublicKey(privateKeyOf(secretKey)).export({ format: "der", type: "spki" });
    return new Uint8Array(der.subarray(spkiPrefix.byteLength));
  },
  sign: (message, secretKey) => new Uint8Array(sign(null, message, privateKeyOf(secretKey))),
  verify(signature, message, publicKey) {
    if (signature.byteLength !== 64 || publicKey.byteLength !== 32) return false;
    try {
      return verify(null, message, publicKeyObjectOf(publicKey), signature);
    } catch {
      // Not a point on the curve: as invalid as a wrong signature.
      return false;
    }
  },
};
