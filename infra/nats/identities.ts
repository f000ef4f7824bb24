/**
 * Who may connect to veil's broker, and as what. Servers, storage nodes and operators are
 * NATS nkey users: the broker holds only their public keys and checks a signed challenge,
 * so no secret crosses the wire when they connect. Users' machines are one password user,
 * `client`; the broker can admit anonymous connections as that user (the default: a user's
 * machine needs only the address), or require the password.
 *
 * The seeds and the client password are generated once into `<data>/broker/identities.json`
 * (mode 0600), next to the broker config made from them. Processes on other machines get a
 * copy of that file, or only their own identity, through VEIL_CREDS.
 */
import { link, mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { type Authenticator, nkeyAuthenticator, usernamePasswordAuthenticator } from "@nats-io/nats-core";
import { bytesToHex } from "@noble/hashes/utils.js";
import { object, optional, string, ValidationError } from "../../events/mod.ts";
import { cryptoRandom } from "../random.ts";
import { toBase64Url } from "../../actors/server/accounts/secrets.ts";

/** The kinds of process that connect to the broker; each has its own rights. */
export const identityKinds = ["server", "storage", "operator", "client"] as const;
export type IdentityKind = (typeof identityKinds)[number];

/** The trusted kinds, which live in the broker's trusted account and connect with an nkey. */
export type TrustedKind = Exclude<IdentityKind, "client">;
export const trustedKinds = ["server", "storage", "operator"] as const satisfies readonly TrustedKind[];

/** The user name of the clients' one password user (the anonymous connections' identity). */
export const clientUser = "client";

const seed = string({ lengthMin: 58, lengthMax: 58, pattern: /^SU[A-Z2-7]{56}$/ });
const identitiesFile = object({
  server: optional(object({ seed })),
  storage: optional(object({ seed })),
  operator: optional(object({ seed })),
  client: optional(object({ password: string({ lengthMin: 16, lengthMax: 128, pattern: /^[A-Za-z0-9_-]+$/ }) })),
});

export type Identities = ReturnType<typeof identitiesFile.parse>;

/** The public half of each identity: what the broker config holds. */
export interface PublicIdentities {
  readonly server: string;
  readonly storage: string;
  readonly operator: string;
  readonly clientPassword: string;
}

export const identitiesFileName = "identities.json";

export function identitiesPath(dataFolder: string): string {
  return join(dataFolder, "broker", identitiesFileName);
}

function generate(): Required<Identities> {
  const newSeed = () => ({ seed: new TextDecoder().decode(createUser().getSeed()) });
  return {
    server: newSeed(),
    storage: newSeed(),
    operator: newSeed(),
    client: { password: toBase64Url(cryptoRandom.bytes(24)) },
  };
}

/** Reads an identities file; a file that is not one is a clear error, never a silent regeneration. */
export async function readIdentities(path: string): Promise<Identities> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new ValidationError(`no broker identities at ${path}`, { cause: error });
    }
    throw error;
  }
  try {
    return identitiesFile.parse(JSON.parse(text));
  } catch (error) {
    throw new ValidationError(`${path} is not a veil identities file: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The data folder's identities, generated on first use. Written whole to a temp file and
 * linked into place, so two launchers starting at once agree on one set.
 */
export async function loadOrCreateIdentities(dataFolder: string): Promise<Required<Identities>> {
  const path = identitiesPath(dataFolder);
  await createOnce(path, () => JSON.stringify(generate(), null, 2) + "\n");
  return complete(await readIdentities(path), path);
}

/**
 * The password broker nodes of one cluster authenticate their routes with: without one,
 * anyone who reaches a route port joins as a broker and sees every account. Only broker
 * nodes need it; it lives beside the identities, generated on first use.
 */
export async function loadOrCreateRoutePassword(dataFolder: string): Promise<string> {
  const path = join(dataFolder, "broker", "route-password");
  await createOnce(path, () => toBase64Url(cryptoRandom.bytes(24)) + "\n");
  const password = (await readFile(path, "utf8")).trim();
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(password)) throw new ValidationError(`${path} does not hold a route password`);
  return password;
}

/** A private file made whole or not at all: a temp file linked into place, so concurrent makers agree on one. */
async function createOnce(path: string, text: () => string): Promise<void> {
  try {
    if ((await stat(path)).mode & 0o077) {
      throw new ValidationError(`${path} is readable by others; chmod 600 it (it holds the broker's credentials)`);
    }
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.${bytesToHex(cryptoRandom.bytes(4))}.partial`;
  const file = await open(temporary, "wx", 0o600);
  try {
    await file.writeFile(text());
    await file.sync();
    await file.close();
    await link(temporary, path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
  } finally {
    await rm(temporary, { force: true });
  }
}

function complete(identities: Identities, path: string): Required<Identities> {
  const missing = identityKinds.filter((kind) => !identities[kind]);
  if (missing.length > 0) {
    throw new ValidationError(`${path} lacks the identities ${missing.join(", ")}; the broker config needs all`);
  }
  return identities as Required<Identities>;
}

export function publicIdentities(identities: Required<Identities>): PublicIdentities {
  const publicKey = (kind: TrustedKind) => fromSeed(new TextEncoder().encode(identities[kind].seed)).getPublicKey();
  return {
    server: publicKey("server"),
    storage: publicKey("storage"),
    operator: publicKey("operator"),
    clientPassword: identities.client.password,
  };
}

/**
 * How a process of `kind` proves who it is: its nkey, or the client password when it has
 * one. A client without one connects anonymously (undefined), which a veil broker admits
 * with the client's rights unless its operator requires the password.
 */
export function authenticatorFor(identities: Identities, kind: IdentityKind): Authenticator | undefined {
  if (kind === "client") {
    return identities.client ? usernamePasswordAuthenticator(clientUser, identities.client.password) : undefined;
  }
  const entry = identities[kind];
  if (!entry) {
    throw new ValidationError(`the broker identities hold no ${kind} identity; copy it from the data folder`);
  }
  return nkeyAuthenticator(new TextEncoder().encode(entry.seed));
}

/**
 * The identities a process finds: those VEIL_CREDS names, else the data folder's. A user's
 * machine usually has neither, and connects anonymously as a client.
 */
export async function findIdentities(options: { credsPath?: string; dataFolder: string }): Promise<Identities> {
  if (options.credsPath) return await readIdentities(options.credsPath);
  try {
    return await readIdentities(identitiesPath(options.dataFolder));
  } catch (error) {
    if (error instanceof ValidationError && /^no broker identities/.test(error.message)) return {};
    throw error;
  }
}
