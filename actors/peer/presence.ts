/**
 * What a peer proves and receives while it is online. A peer never speaks to other users'
 * machines directly: it tells the servers it is online (with its session), and hands them
 * two public keys of its own, made for this run. Notifications are sealed to the first, so
 * only this peer opens them; previews it answers are signed with the second, so a server
 * believes a preview only from the peer that went online, not from whoever answered first.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { decodeMessage, encodeMessage } from "../../events/mod.ts";
import { type KeyPair, newKeyPair, openSealed, sealTo } from "../crypto/mod.ts";
import type { RandomSource } from "../ports.ts";

export interface PeerKeys {
  /** X25519: notifications are sealed to its public half. */
  readonly notes: KeyPair;
  /** Ed25519: previews are signed with its secret half. */
  readonly answers: { readonly secretKey: Uint8Array; readonly publicKey: Uint8Array };
}

export function newPeerKeys(random: RandomSource): PeerKeys {
  const secretKey = random.bytes(32);
  return { notes: newKeyPair(random), answers: { secretKey, publicKey: ed25519.getPublicKey(secretKey) } };
}

/** The bytes a preview answer's signature covers: who, which object, the server's nonce, the PNG. */
function previewProof(user: string, image: string, nonce: Uint8Array, png: Uint8Array): Uint8Array {
  return sha256(concatBytes(utf8ToBytes(`veil/v1/preview\0${user}\0${image}\0`), nonce, sha256(png)));
}

export function signPreview(
  keys: PeerKeys,
  answer: { user: string; image: string; nonce: Uint8Array; png: Uint8Array },
): Uint8Array {
  return ed25519.sign(previewProof(answer.user, answer.image, answer.nonce, answer.png), keys.answers.secretKey);
}

export function isPreviewSigned(
  answerKey: Uint8Array,
  answer: { user: string; image: string; nonce: Uint8Array; png: Uint8Array; signature: Uint8Array },
): boolean {
  try {
    return ed25519.verify(
      answer.signature,
      previewProof(answer.user, answer.image, answer.nonce, answer.png),
      answerKey,
    );
  } catch {
    return false;
  }
}

/** A notification for `user`, sealed to their peer's note key. */
export function sealNote(noteKey: Uint8Array, user: string, note: unknown, random: RandomSource): Uint8Array {
  return sealTo(noteKey, encodeMessage(note), "note", user, random).sealed;
}

/** Opens a sealed notification (an IntegrityError when it was not sealed to this peer). */
export function openNote(keys: PeerKeys, user: string, sealed: Uint8Array): unknown {
  return decodeMessage(openSealed(keys.notes.privateKey, sealed, "note", user).plaintext);
}
