/**
 * A user's machine in the simulator: the CLI's own actor-side code (the command client that
 * seals commands, upload, download, approve, view) on a bus in the clients' account, with
 * the real crypto and stego run inline instead of in worker threads. Only the password's
 * slow derivation is left out: the simulator checks the protocol, not the cost of a password.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { openObject, passwordKdf, sealObject } from "../../actors/crypto/mod.ts";
import { authHash, newAccountKeys, openAccountKeys, sealCredentials } from "../../actors/peer/account.ts";
import { approve } from "../../actors/peer/approve.ts";
import { CommandClient, type CommandSender } from "../../actors/peer/commands.ts";
import { download } from "../../actors/peer/download.ts";
import { memorySink, memorySource } from "../../actors/peer/memory-files.ts";
import type { TransferDeps } from "../../actors/peer/parts.ts";
import { upload } from "../../actors/peer/upload.ts";
import type { FileSummary } from "../../actors/peer/vault-list.ts";
import { openGrant } from "../../actors/peer/view.ts";
import type { Clock, Digests, IncrementalHash, RandomSource, SealWork, StegoWork, Timers } from "../../actors/ports.ts";
import { findPart, hidePart, previewPng } from "../../actors/stego/work.ts";
import { limits, loginReply } from "../../events/mod.ts";
import { silentLogger } from "../support/logger.ts";
import type { SimNetwork } from "./network.ts";
import type { RealWork } from "./real-work.ts";

/** The real crypto and stego code, inline; what finishes in the thread pool goes through `work`. */
const inlineSealing = (work: RealWork): SealWork => ({
  seal: (key, objectId, plaintext) => work.run(() => sealObject(key, objectId, plaintext)),
  open: (key, sealed) => work.run(() => openObject(key, sealed)),
});
const inlineStego = (work: RealWork): StegoWork => ({
  embed: (input) => work.run(() => hidePart(input)),
  extract: (png, key) => Promise.resolve(findPart(png, key)),
  preview: (png) => work.run(() => previewPng(png)),
});
const incremental = (hash: ReturnType<typeof sha256.create>): IncrementalHash => ({
  update: (bytes) => void hash.update(bytes),
  digest: () => hash.digest(),
});
/** Noble's hashes: synchronous, so no thread-pool job decides when a step ends. */
export const syncChunkHash = (bytes: Uint8Array) => Promise.resolve(bytesToHex(sha256(bytes)));
const nobleDigests: Digests = {
  sha256: () => incremental(sha256.create()),
  hmacSha256: (key) => incremental(hmac.create(sha256, key) as unknown as ReturnType<typeof sha256.create>),
  chunkHash: syncChunkHash,
};

export interface PeerDeps {
  readonly network: SimNetwork;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: RandomSource;
  readonly work: RealWork;
  /** Where a broken promise seen from this machine is written (a session ended before its time). */
  readonly violations: string[];
  /** The true time, to judge the session's end by. */
  readonly trueNow: () => number;
}

export class SimPeer {
  readonly deps: TransferDeps & { readonly privateKey: Uint8Array };

  private constructor(deps: TransferDeps & { readonly privateKey: Uint8Array }) {
    this.deps = deps;
  }

  get user(): string {
    return this.deps.session.user;
  }

  /** Registers `user` and logs in, as `veil register` and `veil login` do. */
  static async join(
    { network, clock, timers, random, work, violations, trueNow }: PeerDeps,
    user: string,
  ): Promise<SimPeer> {
    const bus = network.bus(`peer-${user}`, { account: "clients", host: `10.0.0.${user.length}` });
    const client = new CommandClient(bus, clock, random);
    const send = (name: string, data: unknown) =>
      client.send(name, data, { timeoutMs: limits.identityCommandTimeoutMs });
    const keys = newAccountKeys(random);
    const master = random.bytes(32);
    const passwordSalt = random.bytes(16);
    const credentials = sealCredentials({ user, master, passwordSalt, passwordKdf, keys, random });
    await send("user.register", { user, ...credentials, publicKey: keys.publicKey });
    const deviceId = random.bytes(32);
    const logIn = async () =>
      loginReply.parse(
        await send("user.login", { user, authHash: authHash(master), deviceId, deviceName: "simulated machine" }),
      );
    const login = await logIn();
    const opened = openAccountKeys({ ...login, user, master });
    // The session as the commands carry it: renewed in place when it ends, as `veil login` would.
    const session = { user, token: login.token };
    let expiresAt = login.expiresAt;
    let renewing: Promise<void> | undefined;
    const renew = () =>
      renewing ??= logIn().then((next) => {
        session.token = next.token;
        expiresAt = next.expiresAt;
      }).finally(() => (renewing = undefined));
    const sendInSession: CommandSender = async (name, data, options) => {
      // The session this command went out under: a renewal by a concurrent command moves on from it.
      const token = session.token;
      const endsAt = expiresAt;
      try {
        return await client.send(name, data, options);
      } catch (error) {
        if (!/session has expired/.test((error as Error).message)) throw error;
        if (trueNow() < endsAt) {
          violations.push(`${user}'s session was refused as expired ${endsAt - trueNow()} ms before its time`);
        }
        if (session.token === token) await renew();
        const again = { ...(data as Record<string, unknown>), token: session.token };
        return await client.send(name, again, options);
      }
    };
    return new SimPeer({
      bus,
      send: sendInSession,
      crypto: inlineSealing(work),
      stego: inlineStego(work),
      random,
      clock,
      timers,
      digests: nobleDigests,
      session,
      accountKey: opened.accountKey,
      privateKey: opened.privateKey,
      logger: silentLogger,
    });
  }

  upload(name: string, bytes: Uint8Array, replicas: number): Promise<FileSummary> {
    return upload(this.deps, { source: memorySource(bytes), name, type: "application/octet-stream" }, { replicas });
  }

  async download(image: string): Promise<Uint8Array> {
    const { sink } = await download(this.deps, image, (manifest) => Promise.resolve(memorySink(manifest.bytes)));
    return sink.bytes;
  }

  remove(image: string): Promise<unknown> {
    return this.deps.send("vault.remove", { ...this.deps.session, image });
  }

  show(image: string, name: string): Promise<unknown> {
    return this.deps.send("vault.discoverable", { ...this.deps.session, image, discoverable: true, name });
  }

  async ask(owner: string, image: string): Promise<string> {
    const asked = await this.deps.send("request.create", { ...this.deps.session, owner, image }) as { request: string };
    return asked.request;
  }

  async approve(request: string, views: number, expiresAt: number): Promise<string> {
    const issued = await approve(this.deps, request, { views, expiresAt }) as { grant: string };
    return issued.grant;
  }

  view(grant: string) {
    return openGrant(this.deps, grant);
  }
}
