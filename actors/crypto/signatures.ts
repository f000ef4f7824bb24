/** Ed25519 in portable JavaScript (noble): what the simulator and tools use, and the default. */
import { ed25519 } from "@noble/curves/ed25519.js";
import type { Signatures } from "../ports.ts";

export const portableSignatures: Signatures = {
  publicKeyOf: (secretKey) => ed25519.getPublicKey(secretKey),
  sign: (message, secretKey) => ed25519.sign(message, secretKey),
  verify(signature, message, publicKey) {
    try {
      return ed25519.verify(signature, message, publicKey);
    } catch {
      // Not a curve point, or not 64 bytes: as invalid as a wrong signature.
      return false;
    }
  },
};
