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
import { CommandClient } from "../../actors/peer/commands.ts";
import { download } from "../../actors/peer/download.ts";
import { memorySink, memorySource } from "../../actors/peer/memory-files.ts";
import type { TransferDeps } from "../../actors/peer/parts.ts";
import { upload } from "../../actors/peer/upload.ts";
import type { FileSummary } from "../../actors/peer/vault-list.ts";
import { openGrant } from "../../actors/peer/view.ts";
import type { Clock, Digests, IncrementalHash, RandomSource, SealWork, StegoWork, Timers } from "../../actors/ports.ts";
import { findPart, hidePart, previewPng } from "../../actors/stego/work.ts";
import { limits } from "../../events/mod.ts";
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
  static async join({ network, clock, timers, random, work }: PeerDeps, user: string): Promise<SimPeer> {
    const bus = network.bus(`peer-${user}`, { account: "clients", host: `10.0.0.${user.length}` });
    const client = new CommandClient(bus, clock, random);
    const send = (name: string, data: unknown) =>
      client.send(name, data, { timeoutMs: limits.identityCommandTimeoutMs });
    const keys = newAccountKeys(random);
    const master = random.bytes(32);
    const passwordSalt = random.bytes(16);
    const credentials = sealCredentials({ user, master, passwordSalt, passwordKdf, keys, random });
    await send("user.register", { user, ...credentials, publicKey: keys.publicKey });
    const login = await send("user.login", {
      user,
      authHash: authHash(master),
      deviceId: random.bytes(32),
      deviceName: "simulated machine",
    }) as { token: string; accountKeyWrapped: Uint8Array; privateKeyWrapped: Uint8Array; publicKey: Uint8Array };
    const opened = openAccountKeys({ user, master, ...login });
    return new SimPeer({
      bus,
      send: client.send,
      crypto: inlineSealing(work),
      stego: inlineStego(work),
      random,
      clock,
      timers,
      digests: nobleDigests,
      session: { user, token: login.token },
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
