/**
 * Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, 30-second steps,
 * 6 digits, which is what every authenticator app speaks. SHA-1 is fine here: HOTP relies
 * on HMAC's pseudo-randomness, not on collision resistance.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { limits, ValidationError } from "../../../events/mod.ts";

/** RFC 4226 section 5.3: the dynamically truncated HMAC of the counter, as `digits` decimal digits. */
export function hotp(secret: Uint8Array, counter: number, digits: number = limits.totpDigits): string {
  const message = new Uint8Array(8);
  new DataView(message.buffer).setBigUint64(0, BigInt(counter));
  const mac = hmac(sha1, secret, message);
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

export function totpStep(now: number): number {
  return Math.floor(now / limits.totpStepMs);
}

export function totp(secret: Uint8Array, now: number, digits: number = limits.totpDigits): string {
  return hotp(secret, totpStep(now), digits);
}

/** The step in the window around `now` whose code is `code`, or null. Every step is checked, so timing says nothing. */
export function matchTotp(secret: Uint8Array, code: string, now: number): number | null {
  const current = totpStep(now);
  let matched: number | null = null;
  for (let step = current - limits.totpWindowSteps; step <= current + limits.totpWindowSteps; step++) {
    if (constantTimeEqual(hotp(secret, step), code) && matched === null) matched = step;
  }
  return matched;
}

export function constantTimeEqual(a: string, b: string): boolean {
  let difference = a.length ^ b.length;
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    difference |= (a.charCodeAt(index) | 0) ^ (b.charCodeAt(index) | 0);
  }
  return difference === 0;
}

const base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding, as authenticator apps expect secrets. */
export function toBase32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += base32Alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += base32Alphabet[(value << (5 - bits)) & 31];
  return out;
}

export function fromBase32(text: string): Uint8Array {
  const clean = text.replace(/[\s=]/g, "").toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const character of clean) {
    const index = base32Alphabet.indexOf(character);
    if (index < 0) throw new ValidationError(`not base32: ${JSON.stringify(character)}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

/** The URI authenticator apps read (as text or a QR code). */
export function otpauthUri(issuer: string, user: string, secret: Uint8Array): string {
  const label = encodeURIComponent(`${issuer}:${user}`);
  const parameters = new URLSearchParams({
    secret: toBase32(secret),
    issuer,
    algorithm: "SHA1",
    digits: String(limits.totpDigits),
    period: String(limits.totpStepMs / 1_000),
  });
  return `otpauth://totp/${label}?${parameters}`;
}
