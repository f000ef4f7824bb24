/**
 * The trust boundary, tried as a hostile user's machine would: Mallory has an ordinary
 * account and connects to the broker the way `veil` does on a user's machine (anonymously,
 * so with the client's rights), on a broker started with the config and identities `veil
 * up` generates. Each attack must fail with nothing changed: the log, the projections, the
 * chunks and the streams are checked after it, and what she could overhear is searched for
 * every secret that crossed the broker meanwhile.
 */
import { Buffer } from "node:buffer";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createUser } from "@nats-io/nkeys";
import { type NatsConnection, nkeyAuthenticator, usernamePasswordAuthenticator } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandSealer, ReplayWindow } from "../../actors/crypto/mod.ts";
import { encodePng, generateCover, readPngSize } from "../../actors/stego/mod.ts";
import {
  AuthenticationError,
  decodeMessage,
  encodeEvent,
  encodeMessage,
  grantSubject,
  heartbeatSubject,
  leaderSubject,
  limits,
  nodeSubject,
  userSubject,
  veilEvent,
} from "../../events/mod.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { connectNats } from "../../infra/nats/connection.ts";
import { eventStreamName } from "../../infra/nats/streams.ts";
import { hostPeer } from "../../infra/peer/host.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { sendCommand } from "../../infra/command-client.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import { approve } from "../../actors/peer/approve.ts";
import { previewServer } from "../../infra/sharing/previews.ts";
import { openGrant, type ViewDeps } from "../../actors/peer/view.ts";
import { storeRequest } from "../../actors/storage-node/client.ts";
import type { HostedStorageNode } from "../../infra/storage/host.ts";
import { type TransferDeps, upload } from "../../infra/vault/mod.ts";
import { type CryptoActor, startCryptoActor, startStegoActor, type StegoActor } from "../../infra/workers/actors.ts";
import { chunksOf, type ImageManifest } from "../../projections/mod.ts";
import { accountClient, vaultUser } from "../support/accounts.ts";
import { origin, waitForEvent } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";
import { hostTestServer, hostTestStorageNode } from "../support/servers.ts";

const nats = useNatsServer();
const storageIds = ["adv-store-1", "adv-store-2"];
let folder: string;
let server: HostedServer;
let crypto: CryptoActor;
let stego: StegoActor;
const nodes: HostedStorageNode[] = [];
const people: Record<string, TransferDeps & ViewDeps> = {};
const passwords: Record<string, string> = {};
/** Mallory's own connection: what a user's machine gets (anonymous, so the client's rights). */
let mallory: NatsConnection;
/** Everything Mallory could overhear on the subjects a client may subscribe to. */
const overheard: Uint8Array[] = [];
let photo: ImageManifest;
/** The server's replay window, to see what a flood takes of it: smaller than a real one, so a flood is quick. */
const replays = new ReplayWindow(undefined, 20_000, { perSourceMax: 20_000 });

const serverBus = () => natsBus(nats.nc, silentLogger);
const clientBus = () => natsBus(nats.client, silentLogger);
const call = (user: string, name: string, data: Record<string, unknown> = {}) =>
  sendCommand(clientBus(), name, { ...people[user]!.session, ...data });

/** Round trips on both connections: whatever the broker would deliver has been delivered. */
async function settled() {
  await mallory.flush().catch(() => {});
  await nats.nc.flush();
}

/** Each user's share of the storage nodes here: far more than the tests store, far less than the nodes hold. */
const userQuotaBytes = 64 * 1024 ** 2;

/** The log's last sequence, to show an attack appended nothing. */
const lastSeq = () => nats.log.lastSeq();

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-test-adversary-"));
  crypto = startCryptoActor({ size: 2 });
  stego = startStegoActor({ size: 1 });
  server = await hostTestServer(nats, {
    nodeId: "adv-server",
    identity: { slowHash: crypto.slowHash, replays },
    userQuotaBytes,
  });
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected", { timeoutMs: 10_000, what: "a leader" });
  for (const nodeId of storageIds) {
    nodes.push(hostTestStorageNode(nats, { nodeId, folder: join(folder, "storage"), capacityBytes: 1024 ** 3 }));
  }
  await Promise.all(nodes.map((node) => node.ready));
  for (const node of storageIds) await waitForHeartbeat(nats.nc, node, (beat) => beat.state === "ready", 5_000);

  // Mallory listens from the start, on every subject a user's machine may subscribe to.
  mallory = await connectNats(nats.url, { name: "mallory" });
  for (const subject of ["_INBOX.>", "veil.note.>", "veil.peer.>"]) {
    mallory.subscribe(subject, {
      callback: (error, message) => void (error ? undefined : overheard.push(message.data)),
    });
  }
  await mallory.flush();

  for (const user of ["alice", "bob", "mallory"]) {
    passwords[user] = `the password of ${user}, long enough`;
    people[user] = await vaultUser(clientBus(), { crypto, stego }, user, passwords[user]!);
  }
  const png = await encodePng(generateCover(5, 200, 150));
  await writeFile(join(folder, "photo.png"), png);
  const stored = await upload(
    people.alice!,
    { path: join(folder, "photo.png"), name: "photo.png", type: "image/png" },
    {
      replicas: 2,
    },
  );
  await call("alice", "vault.discoverable", { image: stored.image, discoverable: true, name: "photo.png" });
  photo = await call("alice", "vault.get", { image: stored.image }) as ImageManifest;
}, 120_000);

afterAll(async () => {
  await mallory?.close();
  for (const node of nodes) node.actor.send({ type: "STOP" });
  await Promise.all(nodes.map((node) => node.done));
  server?.actor.send({ type: "STOP" });
  await server?.done;
  await Promise.all([crypto?.stop(), stego?.stop()]);
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe("identities", () => {
  it("admits an anonymous connection with the client's rights only, and refuses wrong credentials", async () => {
    // The anonymous connection reaches commands...
    expect(await sendCommand(natsBus(mallory, silentLogger), "user.prelogin", { user: "alice" })).toMatchObject({
      passwordKdf: expect.any(Object),
    });
    // ...and nothing of JetStream.
    await expect(mallory.request("$JS.API.INFO", undefined, { timeout: 1_000 })).rejects.toThrow(
      /Permissions Violation/,
    );
    const wrongPassword = connectNats(nats.url, {
      name: "wrong-password",
      authenticator: usernamePasswordAuthenticator("client", "not the password"),
    });
    await expect(wrongPassword).rejects.toBeInstanceOf(AuthenticationError);
    const unknownKey = connectNats(nats.url, {
      name: "unknown-nkey",
      authenticator: nkeyAuthenticator(createUser().getSeed()),
    });
    await expect(unknownKey).rejects.toThrow(/refused/);
  });

  it("keeps operator-only commands from users' machines", async () => {
    await expect(sendCommand(natsBus(mallory, silentLogger), "cluster.nodes")).rejects.toThrow(
      /for the cluster's operators/,
    );
  });
});

describe("forging the log", () => {
  it("lands no event a user's machine publishes, by core NATS or by JetStream", async () => {
    const before = await lastSeq();
    const forged = [
      [userSubject("alice"), veilEvent("SessionEnded", { user: "alice", session: "x", reason: "logout" }, origin())],
      [nodeSubject("fake-leader"), veilEvent("NodeJoined", { node: "fake-leader", role: "server" }, origin())],
      [leaderSubject, veilEvent("LeaderElected", { term: 999, node: "fake-leader" }, origin())],
      [grantSubject("ab".repeat(16)), veilEvent("NodeJoined", { node: "x", role: "server" }, origin())],
    ] as const;
    for (const [subject, event] of forged) mallory.publish(subject, encodeEvent(event));
    const js = jetstream(mallory);
    for (const [subject, event] of forged) {
      await expect(js.publish(subject, encodeEvent(event), { timeout: 1_000 })).rejects.toThrow();
    }
    await settled();
    expect(await lastSeq()).toBe(before);
    expect(server.projectors.get("cluster")!.state).not.toHaveProperty("nodes.fake-leader");
  });

  it("cannot make the servers follow a fake leader or count a fake storage node", async () => {
    for (let beat = 0; beat < 3; beat++) {
      mallory.publish("veil.election.alive", encodeMessage({ from: "zz-fake", term: 999 }));
      mallory.publish(heartbeatSubject("server", "zz-fake"), encodeMessage({ node: "zz-fake", role: "server" }));
      mallory.publish(heartbeatSubject("storage", "fake-store"), encodeMessage({ node: "fake-store" }));
    }
    await settled();
    await waitForHeartbeat(nats.nc, "adv-server", () => true, 5_000);
    const view = await sendCommand(serverBus(), "cluster.nodes") as {
      leader: { node: string };
      nodes: { id: string }[];
    };
    expect(view.leader.node).toBe("adv-server");
    expect(view.nodes.map((node) => node.id)).not.toContain("fake-store");
    expect(view.nodes.map((node) => node.id)).not.toContain("zz-fake");
  });
});

describe("reading what is not hers", () => {
  it("reads nothing of the log, the buckets or the cluster's traffic", async () => {
    await expect(jetstreamManager(mallory).then((jsm) => jsm.streams.info(eventStreamName))).rejects.toThrow();
    await expect(
      mallory.request(`$JS.API.STREAM.MSG.GET.${eventStreamName}`, encodeMessage({ seq: 1 }), { timeout: 1_000 }),
    ).rejects.toThrow(/Permissions Violation/);
    for (const subject of ["veil.cmd.>", "veil.evt.>", "veil.hb.>", "veil.election.>", "$KV.>", ">"]) {
      const seen: string[] = [];
      const subscription = mallory.subscribe(subject, {
        callback: (error, message) => void (error ? undefined : seen.push(message.subject)),
      });
      await settled();
      await call("bob", "vault.list");
      await settled();
      subscription.unsubscribe();
      expect(seen, subject).toEqual([]);
    }
  });

  it("cannot answer in the servers' place (their queue group included)", async () => {
    const refusals: string[] = [];
    const subscription = mallory.subscribe("veil.cmd.user.publicKey", {
      queue: "veil-servers",
      callback: (error, message) => {
        if (error) return void refusals.push(error.message);
        message.respond(encodeMessage({ ok: true, value: { publicKey: new Uint8Array(32) } }));
      },
    });
    await settled();
    for (let attempt = 0; attempt < 5; attempt++) {
      const { publicKey } = await call("bob", "user.publicKey", { of: "alice" }) as { publicKey: Uint8Array };
      expect(Buffer.from(publicKey).equals(Buffer.alloc(32))).toBe(false);
    }
    subscription.unsubscribe();
    expect(refusals.join("\n")).toMatch(/Permissions Violation for Subscription to "veil.cmd.user.publicKey"/);
  });
});

describe("destroying", () => {
  it("cannot delete chunks, list them, or delete or purge the streams and buckets", async () => {
    const chunk = chunksOf(photo)[0]!;
    const malloryBus = natsBus(mallory, silentLogger);
    for (const operation of ["delete", "list", "stat", "has"] as const) {
      await expect(storeRequest(malloryBus, chunk.nodes[0]!, operation, { hash: chunk.hash })).rejects.toThrow();
    }
    for (
      const api of [
        `STREAM.DELETE.${eventStreamName}`,
        `STREAM.PURGE.${eventStreamName}`,
        "STREAM.DELETE.KV_veil_grant_shares",
      ]
    ) {
      await expect(mallory.request(`$JS.API.${api}`, undefined, { timeout: 1_000 })).rejects.toThrow();
      // Not even a server identity may: defence in depth against a compromised server process.
      await expect(nats.nc.request(`$JS.API.${api}`, undefined, { timeout: 1_000 })).rejects.toThrow(
        /Permissions Violation/,
      );
    }
    for (const node of chunk.nodes) {
      expect(await storeRequest(serverBus(), node, "has", { hash: chunk.hash })).toBe(true);
    }
    expect((await nats.jsm.streams.info(eventStreamName)).config).toMatchObject({
      deny_delete: true,
      deny_purge: true,
    });
  });
});

describe("storage without a ticket", () => {
  it("cannot get another user's chunks, nor put or get with no ticket or a forged one", async () => {
    const chunk = chunksOf(photo)[0]!;
    const node = chunk.nodes[0]!;
    const malloryBus = natsBus(mallory, silentLogger);
    // The manifest, and with it the get tickets, are the owner's only.
    await expect(call("mallory", "vault.get", { image: photo.image })).rejects.toThrow(/no object/);
    await expect(storeRequest(malloryBus, node, "get", { hash: chunk.hash })).rejects.toThrow(/needs a ticket/);
    const forged = new Uint8Array(200).fill(3);
    await expect(storeRequest(malloryBus, node, "get", { hash: chunk.hash, ticket: forged })).rejects.toThrow();
    const junk = new Uint8Array(1_000).fill(1);
    const junkHash = bytesToHex(sha256(junk));
    await expect(storeRequest(malloryBus, node, "put", { hash: junkHash, bytes: junk })).rejects.toThrow(
      /needs a ticket/,
    );
    expect(await storeRequest(serverBus(), node, "has", { hash: junkHash })).toBe(false);
  });

  it("cannot have the servers delete another user's chunks, even with a genuine put ticket for them", async () => {
    const chunk = chunksOf(photo)[0]!;
    // Placement hands her a real put ticket for Alice's chunk on the nodes holding it...
    const placed = await call("mallory", "cluster.place", {
      chunks: [{ hash: chunk.hash, bytes: 1 }],
      replicas: 1,
    }) as { tickets: { node: string; ticket: Uint8Array }[] };
    const { node, ticket } = placed.tickets[0]!;
    await call("mallory", "vault.abandon", { chunks: [{ hash: chunk.hash, node, ticket }] });
    // ...but a chunk a manifest references is never taken back, and a forged ticket is refused outright.
    for (const holder of chunk.nodes) {
      expect(await storeRequest(serverBus(), holder, "has", { hash: chunk.hash })).toBe(true);
    }
    await expect(call("mallory", "vault.abandon", {
      chunks: [{ hash: chunk.hash, node: chunk.nodes[0]!, ticket: new Uint8Array(200).fill(7) }],
    })).rejects.toThrow(/ticket/);
  });
});

describe("filling the storage nodes", () => {
  it("gets no put ticket without a session of her own", async () => {
    const chunks = [{ hash: bytesToHex(sha256(new Uint8Array(8))), bytes: 8 }];
    // Anonymous, as any machine that reaches the broker...
    await expect(sendCommand(clientBus(), "cluster.place", { chunks, replicas: 1 })).rejects.toThrow(/user/);
    // ...or naming a user with a token that is not one of its sessions.
    await expect(sendCommand(clientBus(), "cluster.place", {
      user: "alice",
      token: people.mallory!.session.token,
      chunks,
      replicas: 1,
    })).rejects.toThrow(/session/);
    // With her own session she gets tickets: the check is the session, not a closed door.
    const placed = await call("mallory", "cluster.place", { chunks, replicas: 1 }) as { tickets: unknown[] };
    expect(placed.tickets).toHaveLength(1);
  });

  it("cannot take more than her quota with put tickets, stored or not; others still get theirs", async () => {
    // As many chunks as one placement may name, each as large as a chunk may be: junk she may never store.
    const chunks = Array.from({ length: limits.ticketHashesMax }, () => ({
      hash: bytesToHex(cryptoRandom.bytes(32)),
      bytes: limits.chunkBytes,
    }));
    const perPlacement = limits.ticketHashesMax * limits.chunkBytes;
    let placements = 0;
    let refusal: Error | undefined;
    while (!refusal && placements <= userQuotaBytes / perPlacement) {
      await call("mallory", "cluster.place", { chunks, replicas: 1 }).then(() => placements++, (error) => {
        refusal = error as Error;
      });
    }
    expect(refusal?.message).toMatch(/mallory's storage quota is 67108864 bytes/);
    // What she holds already (a few small placements above) leaves room for one placement fewer.
    expect(placements).toBe(userQuotaBytes / perPlacement - 1);
    const theirs = await call("alice", "cluster.place", { chunks: chunks.slice(0, 1), replicas: 2 });
    expect((theirs as { tickets: unknown[] }).tickets).toHaveLength(2);
  });

  it("cannot keep another user's chunk alive, or get tickets for it, by naming it in a manifest of hers", async () => {
    const before = await lastSeq();
    const image = bytesToHex(cryptoRandom.bytes(16));
    // Alice's manifest as she could have pieced it together from overheard chunk replies.
    const { preview: _preview, discoverable: _shown, shownName: _name, storedAt: _at, ...parts } = photo;
    const forged = { ...parts, image, owner: "mallory" };
    await expect(call("mallory", "vault.store", { manifest: forged })).rejects.toThrow(
      /belongs to another user's object/,
    );
    expect(await lastSeq()).toBe(before);
    await expect(call("mallory", "vault.get", { image })).rejects.toThrow(/no object/);
  });
});

describe("impersonating", () => {
  it("cannot appear online as someone else or write into their notifications", async () => {
    const before = (await call("bob", "peer.online") as { users: { user: string }[] }).users.map((one) => one.user);
    await expect(call("mallory", "peer.presence", {
      user: "alice",
      state: "online",
      noteKey: new Uint8Array(32),
      answerKey: new Uint8Array(32),
    })).rejects.toThrow(/not logged in|session/);
    mallory.publish("veil.note.alice", encodeMessage({ kind: "grant", text: "click here", at: 1 }));
    await settled();
    expect((await call("bob", "peer.online") as { users: { user: string }[] }).users.map((one) => one.user)).toEqual(
      before,
    );
  });

  it("cannot slip a forged reply, a refusal included, into another user's inbox", async () => {
    // A refusal comes unsealed when a server could not open the request, so a client trusts
    // a plain refusal only because no other client can publish into its inbox.
    const inboxes: string[] = [];
    const watch = mallory.subscribe("_INBOX.>", { callback: (_, message) => void inboxes.push(message.subject) });
    await settled();
    await call("bob", "vault.list");
    await settled();
    watch.unsubscribe();
    expect(inboxes.length).toBeGreaterThan(0);
    const bobs = natsBus(nats.client, silentLogger);
    const received: unknown[] = [];
    const prefix = inboxes[0]!.split(".").slice(0, 2).join(".");
    const listening = bobs.subscribe(`${prefix}.forged`, (message) => void received.push(message.data));
    await nats.client.flush();
    const forgedRefusal = { ok: false, error: { code: "authentication", message: "wrong password" } };
    for (const subject of [inboxes[0]!, `${prefix}.forged`]) mallory.publish(subject, encodeMessage(forgedRefusal));
    await settled();
    await nats.client.flush();
    listening.unsubscribe();
    expect(received).toEqual([]);
    // And Bob's commands go on being answered by the cluster.
    expect(await call("bob", "vault.list")).toHaveProperty("files");
  });

  it("cannot answer for another user's previews", async () => {
    const notes: string[] = [];
    const peer = hostPeer({
      user: "alice",
      token: people.alice!.session.token,
      bus: clientBus(),
      random: cryptoRandom,
      logger: silentLogger,
      onNote: (note) => notes.push(note.text),
      preview: previewServer(people.alice!),
      heartbeatIntervalMs: 200,
    });
    const fake = new Uint8Array(await encodePng(generateCover(9, 16, 16)));
    let forged = 0;
    const forger = mallory.subscribe("veil.peer.alice.preview", {
      callback: (error, message) => {
        if (error) return;
        forged++;
        message.respond(encodeMessage({ ok: true, value: { png: fake, signature: new Uint8Array(64) } }));
      },
    });
    try {
      await settled();
      for (let attempt = 0; attempt < 20; attempt++) {
        const online = (await call("bob", "peer.online") as { users: { user: string }[] }).users;
        if (online.some((one) => one.user === "alice")) break;
        await waitForHeartbeat(nats.nc, "adv-server", () => true, 5_000);
      }
      // Whoever answers first, Bob gets Alice's own preview: Mallory's forgery is skipped, and
      // does not deny the preview either.
      for (let attempt = 0; attempt < 4; attempt++) {
        const answer = Buffer.from(
          await call("bob", "peer.preview", { of: "alice", image: photo.image }) as Uint8Array,
        );
        expect(answer.equals(Buffer.from(fake))).toBe(false);
        expect(readPngSize(answer).width).toBeGreaterThan(16);
      }
      expect(forged).toBeGreaterThan(0);
      expect(notes).not.toContain("click here");
    } finally {
      forger.unsubscribe();
      peer.actor.send({ type: "STOP" });
      await peer.done;
    }
  });
});

describe("overhearing", () => {
  it("learns no password equivalent, token, share or email from a whole login, share and view", async () => {
    const client = accountClient(clientBus(), crypto);
    const authHash = await client.authHashFor("bob", passwords.bob!);
    const login = await client.login("bob", passwords.bob!);
    const bob = { ...people.bob!, session: { user: "bob", token: login.token } };
    const { request } = await sendCommand(clientBus(), "request.create", {
      ...bob.session,
      owner: "alice",
      image: "photo.png",
    }) as { request: string };
    const { grant } = await approve(people.alice!, request, { views: 1, expiresAt: Date.now() + 3_600_000 }) as {
      grant: string;
    };
    await openGrant(bob, grant);
    await settled();
    const secrets = [
      ["bob's authentication hash", authHash],
      ["bob's new session token", new TextEncoder().encode(login.token)],
      ["alice's session token", new TextEncoder().encode(people.alice!.session.token)],
      ["the grant's copy id", new TextEncoder().encode(grant)],
    ] as const;
    expect(overheard.length).toBeGreaterThan(10);
    const everything = Buffer.concat(overheard);
    for (const [what, secret] of secrets) expect(everything.includes(Buffer.from(secret)), what).toBe(false);
  });
});

describe("replaying", () => {
  it("gets nothing from a captured login request, and no session is started by it", async () => {
    // A misconfigured broker would let someone capture a request: here the server identity plays that part.
    let captured: Uint8Array | undefined;
    const sniffer = nats.nc.subscribe("veil.cmd.user.login", {
      callback: (_, message) => void (captured ??= message.data),
    });
    await nats.nc.flush();
    await accountClient(clientBus(), crypto).login("alice", passwords.alice!);
    sniffer.unsubscribe();
    expect(captured).toBeDefined();
    const sessionsBefore = await countSessions("alice");
    const reply = decodeMessage(
      (await mallory.request("veil.cmd.user.login", captured, { timeout: 5_000 })).data,
    ) as Record<string, unknown>;
    // Refused, and the refusal itself is sealed for the one who sent the request: she reads nothing.
    expect(Object.keys(reply)).toEqual(["sealed"]);
    await settled();
    expect(await countSessions("alice")).toBe(sessionsBefore);
  });

  it("cannot fill the replay window with commands sent nowhere to answer", async () => {
    const { sealingKey } = await sendCommand(clientBus(), "cluster.keys") as { sealingKey: Uint8Array };
    const sealer = new CommandSealer(sealingKey, cryptoRandom);
    const held = replays.size;
    const flood = replays.entriesMax + 100;
    for (let index = 0; index < flood; index++) {
      const sealed = sealer.seal({ name: "user.prelogin", data: { user: "bob" } }, Date.now());
      mallory.publish("veil.cmd.user.prelogin", encodeMessage(sealed.body));
      if (index % 5_000 === 0) await mallory.flush();
    }
    // One request after the flood on the same connection: once it is answered, the flood was handled.
    const answered = sealer.seal({ name: "user.prelogin", data: { user: "bob" } }, Date.now());
    await mallory.request("veil.cmd.user.prelogin", encodeMessage(answered.body), { timeout: 30_000 });
    expect(replays.size - held).toBeLessThan(5);
    // And everyone's commands still go through.
    expect(await call("bob", "vault.list")).toBeDefined();
  }, 120_000);
});

async function countSessions(user: string): Promise<number> {
  let count = 0;
  for await (const record of nats.log.replay({ subject: userSubject(user) })) {
    if (record.ok && record.event.type === "SessionStarted") count++;
  }
  return count;
}
