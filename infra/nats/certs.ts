/**
 * A private certificate authority and a broker certificate signed by it, for a test
 * deployment of veil's broker: TLS without buying or asking for a certificate, where every
 * client is handed the CA file to pin.
 *
 * Built on `@peculiar/x509` over Web Crypto rather than hand-written ASN.1: the encoding
 * of names, extensions and serials is where hand-rolled certificates go subtly wrong (and
 * Go's verifier in nats-server is strict about it), and Web Crypto runs unchanged on Node
 * and Deno. The library resolves its parts through `tsyringe`, which needs a Reflect
 * metadata polyfill loaded before it; hence the first import.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { chmod, mkdir } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import type { Clock, RandomSource } from "../../actors/ports.ts";
import { ValidationError } from "../../events/mod.ts";
import { systemClock } from "../clock.ts";
import { exists, writeFileAtomic } from "../files.ts";
import { cryptoRandom } from "../random.ts";

export interface TestCertificateFiles {
  /** The CA's certificate: what clients and the other broker nodes trust. */
  readonly caFile: string;
  /** The CA's private key, kept to sign more broker certificates; never handed to the broker. */
  readonly caKeyFile: string;
  /** The broker's certificate, for client connections, routes and websockets alike. */
  readonly certFile: string;
  readonly keyFile: string;
}

export const certificateFileNames = {
  caFile: "ca.pem",
  caKeyFile: "ca-key.pem",
  certFile: "server.pem",
  keyFile: "server-key.pem",
} as const satisfies Record<keyof TestCertificateFiles, string>;

const dayMs = 24 * 60 * 60 * 1_000;
/** The longest validity browsers and Apple platforms accept for a server certificate. */
export const serverCertificateValidityDays = 825;
export const caCertificateValidityDays = 10 * 365;
/** Validity starts this long before now, so a machine whose clock is a little behind still accepts it. */
export const notBeforeBackdateMs = 60 * 60 * 1_000;
/** RFC 5280 allows serials of up to 20 bytes; 16 random ones make a collision out of reach. */
const serialBytes = 16;
/** Every name and address is one extension entry; a certificate that lists more is a mistake, not a deployment. */
export const certificateHostsMax = 64;
/** Always names the machine itself, so local tools and tests reach the broker over loopback. */
const loopbackHosts = ["127.0.0.1", "::1", "localhost"] as const;

/** ECDSA P-256: what Go's TLS stack (nats-server) and Node's both support, and small and fast to sign. */
const keyAlgorithm = { name: "ECDSA", namedCurve: "P-256" } as const;
const signingAlgorithm = { name: "ECDSA", hash: "SHA-256" } as const;

/**
 * Makes a CA and a broker certificate for `hosts` (host names and IP addresses the broker
 * is reached at, besides loopback) in `folder`, private keys mode 0600. Refuses to replace
 * any existing file unless `force`: a new CA silently invalidates every client that pinned
 * the old one.
 */
export async function makeTestCertificates(options: {
  folder: string;
  hosts: readonly string[];
  clock?: Clock;
  random?: RandomSource;
  force?: boolean;
}): Promise<TestCertificateFiles> {
  const hosts = subjectAltNameHosts(options.hosts);
  const files = certificateFiles(options.folder);
  if (!options.force) await refuseExisting(files);
  const random = options.random ?? cryptoRandom;
  const nowMs = (options.clock ?? systemClock).now();
  const notBefore = new Date(nowMs - notBeforeBackdateMs);

  const caKeys = await generateKeys();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(random),
    name: "CN=veil test CA, O=veil",
    notBefore,
    notAfter: new Date(nowMs + caCertificateValidityDays * dayMs),
    keys: caKeys,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const serverKeys = await generateKeys();
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(random),
    subject: "CN=veil broker, O=veil",
    issuer: ca.subject,
    notBefore,
    notAfter: new Date(nowMs + serverCertificateValidityDays * dayMs),
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      // clientAuth as well as serverAuth: a route dials the other node with this same
      // certificate, and nats-server verifies a route's certificate as a client's.
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((host): x509.JsonGeneralName => ({ type: isIP(host) ? "ip" : "dns", value: host })),
      ),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  await mkdir(options.folder, { recursive: true, mode: 0o700 });
  const force = options.force ?? false;
  await writeFileAtomic(files.caKeyFile, await privateKeyPem(caKeys.privateKey), { force });
  await writeFileAtomic(files.keyFile, await privateKeyPem(serverKeys.privateKey), { force });
  await writePublic(files.caFile, ca.toString("pem"), force);
  await writePublic(files.certFile, server.toString("pem"), force);
  return files;
}

export function certificateFiles(folder: string): TestCertificateFiles {
  return {
    caFile: join(folder, certificateFileNames.caFile),
    caKeyFile: join(folder, certificateFileNames.caKeyFile),
    certFile: join(folder, certificateFileNames.certFile),
    keyFile: join(folder, certificateFileNames.keyFile),
  };
}

/** Loopback and the given hosts, each once, every one a valid IP address or DNS name. */
export function subjectAltNameHosts(given: readonly string[]): string[] {
  const hosts = [...new Set([...loopbackHosts, ...given.map((host) => host.trim().toLowerCase())])];
  if (hosts.length > certificateHostsMax) {
    throw new ValidationError(`a certificate names at most ${certificateHostsMax} hosts, not ${hosts.length}`);
  }
  for (const host of hosts) {
    if (isIP(host) === 0 && !isDnsName(host)) {
      throw new ValidationError(`${JSON.stringify(host)} is neither an IP address nor a host name`);
    }
  }
  return hosts;
}

/** RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens. */
function isDnsName(host: string): boolean {
  return host.length <= 253 && host.split(".").every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label));
}

async function refuseExisting(files: TestCertificateFiles): Promise<void> {
  const present: string[] = [];
  for (const path of Object.values(files)) if (await exists(path)) present.push(path);
  // Checked before anything is written, so a refusal never leaves a CA beside a certificate it did not sign.
  if (present.length > 0) throw new ValidationError(`${present.join(", ")} exist; pass force to replace them`);
}

function generateKeys(): Promise<{ publicKey: CryptoKey; privateKey: CryptoKey }> {
  // Extractable, because the keys are written out as PEM for nats-server to load.
  return crypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"]);
}

/** A positive serial whose DER encoding is minimal: Go's parser rejects a negative or zero-padded one. */
function randomSerial(random: RandomSource): string {
  const bytes = random.bytes(serialBytes);
  if (bytes.length !== serialBytes) throw new Error(`random source gave ${bytes.length} bytes, not ${serialBytes}`);
  bytes[0] = (bytes[0]! & 0x7f) || 0x01;
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function privateKeyPem(key: CryptoKey): Promise<Uint8Array> {
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", key);
  return new TextEncoder().encode(x509.PemConverter.encode(pkcs8, "PRIVATE KEY") + "\n");
}

/** Certificates are public: readable by the other users of the machine that run clients. */
async function writePublic(path: string, pem: string, force: boolean): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(pem + "\n"), { force });
  await chmod(path, 0o644);
}
