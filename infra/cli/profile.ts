/**
 * What the client keeps between commands, in VEIL_HOME (default ~/.config/veil): one file
 * per profile with the session (user, token, expiry) and the account key unwrapped at login
 * (so uploads and downloads need no password until the session ends), a device id (random,
 * so the cluster can tell a new device), and a TOTP secret waiting to be confirmed. Every
 * file is mode 0600 in a 0700 folder, and the file goes at logout. Several users on one
 * machine use several profiles or VEIL_HOMEs.
 */
import { Buffer } from "node:buffer";
import { chmod, mkdir, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { AuthenticationError, integer, object, optional, string, username, ValidationError } from "../../events/mod.ts";
import { writeFileAtomic } from "../files.ts";
import { cryptoRandom } from "../random.ts";

export interface StoredSession {
  readonly user: string;
  readonly token: string;
  readonly session: string;
  readonly expiresAt: number;
  /** base64url of the account key, which wraps every object's data key. */
  readonly accountKey?: string;
  /** base64url of the X25519 private key, which opens the shares of grants made to this user. */
  readonly privateKey?: string;
}

const storedSession = object({
  user: username,
  token: string({ lengthMin: 1, lengthMax: 64 }),
  session: string({ lengthMin: 1, lengthMax: 64 }),
  expiresAt: integer({ min: 0 }),
  pendingTotpSecret: optional(string({ lengthMax: 128 })),
  accountKey: optional(string({ lengthMin: 43, lengthMax: 43, pattern: /^[A-Za-z0-9_-]+$/ })),
  privateKey: optional(string({ lengthMin: 43, lengthMax: 43, pattern: /^[A-Za-z0-9_-]+$/ })),
});

const profilePattern = /^[A-Za-z0-9_-]{1,32}$/;

export function profileName(name: string | undefined): string {
  const profile = name ?? process.env.VEIL_PROFILE ?? "default";
  if (!profilePattern.test(profile)) {
    throw new ValidationError(`a profile name is 1 to 32 of A-Z a-z 0-9 _ -, got ${JSON.stringify(profile)}`);
  }
  return profile;
}

export class Profile {
  constructor(readonly home: string, readonly name: string) {}

  get #sessionPath() {
    return join(this.home, "profiles", `${this.name}.json`);
  }

  async #folder(): Promise<void> {
    await mkdir(join(this.home, "profiles"), { recursive: true, mode: 0o700 });
    await chmod(this.home, 0o700);
  }

  async load(): Promise<(StoredSession & { pendingTotpSecret?: string }) | undefined> {
    let text: string;
    try {
      text = await readFile(this.#sessionPath, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    try {
      return storedSession.parse(JSON.parse(text));
    } catch {
      throw new ValidationError(`${this.#sessionPath} is damaged; remove it and log in again`);
    }
  }

  /** The session, or a clear "not logged in". */
  async session(): Promise<StoredSession & { pendingTotpSecret?: string }> {
    const stored = await this.load();
    if (!stored) {
      throw new AuthenticationError(
        `not logged in${this.name === "default" ? "" : ` (profile ${this.name})`}; run \`veil login <user>\``,
      );
    }
    return stored;
  }

  async save(session: StoredSession & { pendingTotpSecret?: string }): Promise<void> {
    await this.#folder();
    await writeFileAtomic(this.#sessionPath, new TextEncoder().encode(JSON.stringify(session) + "\n"), { force: true });
  }

  async forget(): Promise<void> {
    await rm(this.#sessionPath, { force: true });
  }

  /** This machine's device id (created once) and a name for it people recognise. */
  async device(): Promise<{ id: Uint8Array; name: string }> {
    const path = join(this.home, "device");
    let id: Uint8Array | undefined;
    try {
      const text = (await readFile(path, "utf8")).trim();
      if (/^[0-9a-f]{64}$/.test(text)) id = new Uint8Array(Buffer.from(text, "hex"));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    if (!id) {
      await this.#folder();
      id = cryptoRandom.bytes(32);
      await writeFileAtomic(path, new TextEncoder().encode(Buffer.from(id).toString("hex") + "\n"), { force: true });
    }
    return { id, name: `${hostname().slice(0, 40)} (${process.platform})` };
  }
}
