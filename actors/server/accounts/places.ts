/**
 * Where a session came from (the device's name, the client's address) is the user's
 * business: it enters the log sealed with the cluster key, bound to the user, and only a
 * server opens it, to show the user their own sessions or to mail them an alert. Failed
 * logins carry the address only as a keyed hash: enough to count failures per address,
 * nothing to read an address from (a stolen log cannot try the 2^32 IPv4 addresses without
 * the cluster key).
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { type ClusterSecrets, fromUtf8, utf8 } from "./secrets.ts";

export const sealDeviceName = (secrets: ClusterSecrets, user: string, name: string): Uint8Array =>
  secrets.seal("session-device", user, utf8(name));

export const sealAddress = (secrets: ClusterSecrets, user: string, address: string): Uint8Array =>
  secrets.seal("session-address", user, utf8(address));

/** The same for every user, so one address guessing many names is counted as one. */
export const addressHash = (secrets: ClusterSecrets, address: string): Uint8Array =>
  secrets.mac("login-address", "*", address);

export const addressHashHex = (secrets: ClusterSecrets, address: string): string =>
  bytesToHex(addressHash(secrets, address));

/** What a session or a notification records of its place: sealed, or in the clear from before sealing (v1). */
export interface RecordedPlace {
  readonly deviceSealed?: Uint8Array;
  readonly addressSealed?: Uint8Array;
  readonly deviceName?: string;
  readonly address?: string;
}

/**
 * The place opened for its owner. A value that does not open (sealed under another cluster
 * key, or damaged) shows as such rather than failing the whole listing.
 */
export function openPlace(
  secrets: ClusterSecrets,
  user: string,
  place: RecordedPlace,
): { deviceName: string; address?: string } {
  const open = (purpose: string, sealed: Uint8Array) => {
    try {
      return fromUtf8(secrets.open(purpose, user, sealed));
    } catch {
      return "(does not open)";
    }
  };
  const deviceName = place.deviceSealed ? open("session-device", place.deviceSealed) : place.deviceName ?? "";
  const address = place.addressSealed ? open("session-address", place.addressSealed) : place.address;
  return { deviceName, ...(address ? { address } : {}) };
}
