/**
 * The server's side of account secrets. The cluster key (shared by every server, never in
 * the log) gives two subkeys: one seals what servers must read back (TOTP seeds, email
 * addresses, emailed codes), one keys the hashes of low-entropy codes (backup codes, emailed
 * codes), so a stolen log cannot be brute-forced for them offline.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { limits } from "../../../events/mod.ts";
import { deriveSubkey, type KeyPair, keyPairOf, openSecret, sealSecret } from "../../crypto/mod.ts";
import type { RandomSource } from "../../ports.ts";
import { toBase32 } from "./totp.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface ClusterSecrets {
  /** The X25519 key pair commands are sealed to (its public half is the cluster's to show). */
  readonly sealingKeys: KeyPair;
  /** A keyed hash of a constant: it names the cluster key without telling anything about it. */
  readonly fingerprint: Uint8Array;
  seal(purpose: string, user: string, secret: Uint8Array): Uint8Array;
  open(purpose: string, user: string, sealed: Uint8Array): Uint8Array;
  /** A keyed hash of `value` for one purpose and user. */
  mac(purpose: string, user: string, value: string): Uint8Array;
}

export function clusterSecrets(clusterKey: Uint8Array, random: RandomSource): ClusterSecrets {
  const sealKey = deriveSubkey(clusterKey, "cluster-seal");
  const macKey = deriveSubkey(clusterKey, "cluster-mac");
  return {
    sealingKeys: keyPairOf(deriveSubkey(clusterKey, "cluster-box")),
    fingerprint: clusterKeyFingerprint(clusterKey),
    seal: (purpose, user, secret) => sealSecret(sealKey, secret, `${purpose}:${user}`, random),
    open: (purpose, user, sealed) => openSecret(sealKey, sealed, `${purpose}:${user}`),
    mac: (purpose, user, value) => hmac(sha256, macKey, encoder.encode(`${purpose}:${user}:${value}`)),
  };
}

export function clusterKeyFingerprint(key: Uint8Array): Uint8Array {
  return hmac(sha256, key, encoder.encode("veil/v1/cluster-key-fingerprint")).slice(0, 16);
}

export const utf8 = (text: string) => encoder.encode(text);
export const fromUtf8 = (bytes: Uint8Array) => decoder.decode(bytes);

/** Session tokens: 256 random bits, base64url. Only their SHA-256 is ever stored. */
export function newToken(random: RandomSource): string {
  return toBase64Url(random.bytes(32));
}

export function tokenHash(token: string): Uint8Array {
  return sha256(encoder.encode(token));
}

export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Backup codes: 50 random bits each, written `abcde-fghij`; compared without case or dash. */
export function newBackupCodes(random: RandomSource): string[] {
  return Array.from({ length: limits.backupCodes }, () => {
    const code = toBase32(random.bytes(7)).slice(0, 10).toLowerCase();
    return `${code.slice(0, 5)}-${code.slice(5)}`;
  });
}

export function normaliseBackupCode(code: string): string {
  return code.toLowerCase().replace(/[^a-z2-7]/g, "");
}

export const backupCodePattern = /^[a-z2-7]{5}-?[a-z2-7]{5}$/i;
export const numericCodePattern = /^\d{6}$/;

/** A uniformly random 6-digit code (rejection sampling, so no digit is likelier). */
export function newNumericCode(random: RandomSource): string {
  const bound = 4_294_000_000; // The largest multiple of 10^6 below 2^32.
  for (;;) {
    const value = new DataView(random.bytes(4).buffer).getUint32(0);
    if (value < bound) return String(value % 1_000_000).padStart(6, "0");
  }
}
