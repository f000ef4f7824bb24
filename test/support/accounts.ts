/**
 * An account client for tests, doing exactly what the CLI does (zero-knowledge keys on
 * this side, only hashes and wrapped keys sent) but in this process, so tests can run
 * many logins without starting a process each.
 */
import {
  authHash,
  newAccountKeys,
  openAccountKeys,
  passwordSaltBytes,
  sealCredentials,
} from "../../actors/peer/account.ts";
import { passwordKdf, type ScryptParameters } from "../../actors/crypto/mod.ts";
import type { Bus } from "../../actors/ports.ts";
import { limits } from "../../events/mod.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { commandsOver, sendCommand } from "../../infra/command-client.ts";
import { onThisMachine, type TransferDeps } from "../../infra/vault/mod.ts";
import type { CryptoActor, StegoActor } from "../../infra/workers/actors.ts";
import { silentLogger } from "./logger.ts";

export interface LoginReply {
  readonly token: string;
  readonly session: string;
  readonly expiresAt: number;
  readonly accountKeyWrapped: Uint8Array;
  readonly privateKeyWrapped: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function accountClient(bus: Bus, crypto: CryptoActor) {
  // scrypt is slow on purpose; the same password and salt give the same key, so it is kept.
  const masters = new Map<string, Promise<Uint8Array>>();
  const master = (password: string, salt: Uint8Array, kdf: ScryptParameters) => {
    const key = `${password}\u0000${Array.from(salt).join(",")}`;
    if (!masters.has(key)) masters.set(key, crypto.derivePasswordKey(password, salt, kdf));
    return masters.get(key)!;
  };
  const call = <T>(name: string, data: unknown) =>
    sendCommand(bus, name, data, { timeoutMs: limits.identityCommandTimeoutMs }) as Promise<T>;
  const deviceId = cryptoRandom.bytes(32);

  return {
    call,
    async register(user: string, password: string, email?: string) {
      const passwordSalt = cryptoRandom.bytes(passwordSaltBytes);
      const keys = newAccountKeys(cryptoRandom);
      const masterKey = await master(password, passwordSalt, passwordKdf);
      const credentials = sealCredentials({
        user,
        master: masterKey,
        passwordSalt,
        passwordKdf,
        keys,
        random: cryptoRandom,
      });
      await call("user.register", { user, ...credentials, publicKey: keys.publicKey, ...(email ? { email } : {}) });
      return { keys, master: masterKey };
    },
    async authHashFor(user: string, password: string): Promise<Uint8Array> {
      const salt = await call<{ passwordSalt: Uint8Array; passwordKdf: ScryptParameters }>("user.prelogin", { user });
      return authHash(await master(password, salt.passwordSalt, salt.passwordKdf));
    },
    async login(
      user: string,
      password: string,
      options: { otp?: string; device?: Uint8Array; address?: string; authHash?: Uint8Array } = {},
    ): Promise<LoginReply> {
      const salt = await call<{ passwordSalt: Uint8Array; passwordKdf: ScryptParameters }>("user.prelogin", { user });
      const masterKey = await master(password, salt.passwordSalt, salt.passwordKdf);
      const reply = await call<LoginReply>("user.login", {
        user,
        authHash: options.authHash ?? authHash(masterKey),
        ...(options.otp ? { otp: options.otp } : {}),
        deviceId: options.device ?? deviceId,
        deviceName: "test device",
        ...(options.address ? { address: options.address } : {}),
      });
      openAccountKeys({ user, master: masterKey, ...reply });
      return reply;
    },
  };
}

/**
 * A registered, logged-in user with what vault transfers and grant views need: the session
 * and the keys its login unlocked, over the given bus and actors.
 */
export async function vaultUser(
  bus: Bus,
  actors: { crypto: CryptoActor; stego: StegoActor },
  user: string,
  password: string,
): Promise<TransferDeps & { privateKey: Uint8Array }> {
  const client = accountClient(bus, actors.crypto);
  const { keys } = await client.register(user, password);
  const { token } = await client.login(user, password);
  return {
    bus,
    send: commandsOver(bus),
    ...actors,
    ...onThisMachine,
    random: cryptoRandom,
    session: { user, token },
    accountKey: keys.accountKey,
    privateKey: keys.privateKey,
    logger: silentLogger,
  };
}
