/**
 * The vault end to end on a real nats-server: a server, three storage nodes over real
 * folders, the crypto and stego actors, and two users. Files go up sealed and hidden in
 * covers, spread over the nodes with replicas, and come back byte for byte; a damaged
 * replica or a stopped node does not lose a file; an upload that cannot reach its replicas
 * records nothing and leaves nothing behind; nobody sees anyone else's files.
 */
import { openCommand, ReplayWindow } from "../../actors/crypto/mod.ts";
import { clusterSecrets } from "../../actors/server/accounts/secrets.ts";
import { testClusterKey } from "../support/identity.ts";
import { Buffer } from "node:buffer";
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { Bus } from "../../actors/ports.ts";
import { encodeMessage, limits, type VeilError } from "../../events/mod.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { commandsOver, sendCommand } from "../../infra/command-client.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import { storeRequest } from "../../actors/storage-node/client.ts";
import type { HostedStorageNode } from "../../infra/storage/host.ts";
import { download, downloadPreview, listVault, type TransferDeps, upload } from "../../infra/vault/mod.ts";
import { ticketsOf } from "../../actors/peer/parts.ts";
import { decodePng, encodePng, generateCover } from "../../actors/stego/mod.ts";
import { type CryptoActor, startCryptoActor, startStegoActor, type StegoActor } from "../../infra/workers/actors.ts";
import type { ImageManifest } from "../../projections/images.ts";
import { vaultUser } from "../support/accounts.ts";
import { runVeil } from "../support/cli.ts";
import { waitForEvent } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";
import { hostTestServer, hostTestStorageNode } from "../support/servers.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";

const nats = useNatsServer();
/** A user's machine's connection; `serverBus` for what only the cluster may do. */
const bus = () => natsBus(nats.client, silentLogger);
const serverBus = () => natsBus(nats.nc, silentLogger);
let folder: string;
let server: HostedServer;
let crypto: CryptoActor;
let stego: StegoActor;
const nodes = new Map<string, HostedStorageNode>();
const users: Record<string, TransferDeps> = {};

const refusal = (work: Promise<unknown>) =>
  work.then(() => {
    throw new Error("expected a refusal");
  }, (error: VeilError) => error);

function startNode(nodeId: string, capacityBytes = 1024 ** 3) {
  const node = hostTestStorageNode(nats, { nodeId, folder: join(folder, "storage"), capacityBytes });
  nodes.set(nodeId, node);
  return node.ready;
}

const signUp = (user: string) => vaultUser(bus(), { crypto, stego }, user, `the password of ${user}, long enough`);

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-test-vault-"));
  crypto = startCryptoActor({ size: 2 });
  stego = startStegoActor({ size: 2 });
  server = await hostTestServer(nats, {
    nodeId: "vault-server",
    identity: { slowHash: crypto.slowHash },
    // Short, so repair is seen within a test; the default is 30 s.
    repairGraceMs: 1_500,
  });
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected", { timeoutMs: 10_000, what: "a leader" });
  await Promise.all(["store-1", "store-2", "store-3"].map((node) => startNode(node)));
  for (const node of nodes.keys()) await waitForHeartbeat(nats.nc, node, (beat) => beat.state === "ready", 5_000);
  users.olga = await signUp("olga");
  users.pete = await signUp("pete");
}, 60_000);

afterAll(async () => {
  for (const node of nodes.values()) {
    if (node.actor.getSnapshot().status === "active") node.actor.send({ type: "STOP" });
  }
  await Promise.all([...nodes.values()].map((node) => node.done));
  server?.actor.send({ type: "STOP" });
  await server?.done;
  await Promise.all([crypto?.stop(), stego?.stop()]);
  if (folder) await rm(folder, { recursive: true, force: true });
});

async function put(user: string, name: string, bytes: Uint8Array, replicas = 2) {
  const path = join(folder, `${user}-${name}`);
  await writeFile(path, bytes);
  return await upload(users[user]!, { path, name, type: "application/octet-stream" }, { replicas });
}

/** Byte-for-byte equality in one native comparison (a deep equality over megabytes takes seconds). */
const identical = (a: Uint8Array, b: Uint8Array) =>
  a.byteLength === b.byteLength && Buffer.from(a).equals(Buffer.from(b));

async function get(user: string, reference: string): Promise<Uint8Array> {
  const output = join(folder, `out-${cryptoRandom.bytes(4).join("")}`);
  await download(users[user]!, reference, { output: () => output });
  return new Uint8Array(await readFile(output));
}

/** The owner's manifest, with the get tickets `vault.get` gives for its chunks. */
const getManifest = async (image: string) =>
  await sendCommand(bus(), "vault.get", { ...users.olga!.session, image }) as ImageManifest & { tickets: unknown };

/** Every chunk of the object is on at least its replicas of live nodes (`except` aside), each copy intact. */
async function expectFullyReplicated(image: string, except?: string) {
  const manifest = await getManifest(image);
  const ticketFor = ticketsOf(manifest);
  for (const chunk of manifest.parts.flatMap((part) => part.chunks)) {
    const holders = chunk.nodes.filter((node) => node !== except);
    expect(holders.length, chunk.hash).toBeGreaterThanOrEqual(manifest.replicas);
    for (const node of holders) {
      const ticket = ticketFor(node, chunk.hash);
      const held = new Uint8Array(await storeRequest(bus(), node, "get", { hash: chunk.hash, ticket }) as Uint8Array);
      expect(bytesToHex(sha256(held)), node).toBe(chunk.hash);
    }
  }
}

describe("the vault", () => {
  it("gives back every file byte for byte, from empty to several parts, each chunk on two nodes", async () => {
    const sizes = [0, 1, 1_000, limits.vaultPartBytes, 2 * limits.vaultPartBytes + 12_345];
    const ids: string[] = [];
    for (const size of sizes) {
      const bytes = cryptoRandom.bytes(size);
      const stored = await put("olga", `file-${size}.bin`, bytes);
      expect(stored).toMatchObject({ name: `file-${size}.bin`, bytes: size, replicas: 2 });
      expect(identical(await get("olga", stored.image), bytes), `${size} bytes`).toBe(true);
      ids.push(stored.image);
    }
    const manifest = await getManifest(ids[2]!);
    for (const chunk of manifest.parts.flatMap((part) => part.chunks)) {
      expect(new Set(chunk.nodes).size).toBe(2);
    }
    // Names are the owner's to read: a name given to a server is not an id, and is refused as such.
    expect((await refusal(getManifest("file-1000.bin"))).code).toBe("validation");
    // ... but the owner's machine resolves it, opening the sealed names.
    expect(identical(await get("olga", "file-1000.bin"), await get("olga", ids[2]!))).toBe(true);
    const listing = await listVault(users.olga!);
    expect(listing.map((item) => item.name)).toEqual(sizes.map((size) => `file-${size}.bin`));
  }, 120_000);

  it("shows nobody anyone else's files: another user's object is not found, like a missing one", async () => {
    const stored = await put("olga", "diary.txt", new TextEncoder().encode("dear diary"));
    expect(await listVault(users.pete!)).toEqual([]);
    for (const reference of [stored.image, "diary.txt", "f".repeat(32)]) {
      const error = await refusal(download(users.pete!, reference, { output: () => join(folder, "stolen") }));
      expect(error.code).toBe("not-found");
      expect(error.message).toBe(`no object ${JSON.stringify(reference)} in your vault`);
    }
    expect((await refusal(sendCommand(bus(), "vault.remove", { ...users.pete!.session, image: stored.image }))).code)
      .toBe("not-found");
  }, 60_000);

  it("reads around a damaged replica, and repair puts a good copy back", async () => {
    const bytes = cryptoRandom.bytes(300_000);
    const stored = await put("olga", "photo.raw", bytes);
    const manifest = await getManifest(stored.image);
    const chunk = manifest.parts[0]!.chunks[0]!;
    const [damagedNode] = chunk.nodes;
    const fromSeq = await nats.log.lastSeq();
    await writeFile(join(folder, "storage", damagedNode!, chunk.hash.slice(0, 2), chunk.hash), "not the chunk");
    expect(identical(await get("olga", stored.image), bytes)).toBe(true);
    expect(await storeRequest(serverBus(), damagedNode!, "has", { hash: chunk.hash })).toBe(false);
    await waitForEvent(nats.log, (event) => event.type === "ChunkLost" && event.data.hash === chunk.hash, {
      fromSeq,
      timeoutMs: 10_000,
      what: "the damaged replica recorded",
    });
    await waitForEvent(nats.log, (event) => event.type === "ChunkReplicated" && event.data.hash === chunk.hash, {
      fromSeq,
      timeoutMs: 15_000,
      what: "the chunk re-replicated",
    });
    await expectFullyReplicated(stored.image);
  }, 60_000);

  it("copies a gone node's chunks elsewhere after the grace period, and loses nothing when it returns", async () => {
    const bytes = cryptoRandom.bytes(600_000);
    const stored = await put("olga", "album.raw", bytes);
    const manifest = await getManifest(stored.image);
    const victim = manifest.parts[0]!.chunks[0]!.nodes[0]!;
    const lost = manifest.parts.flatMap((part) => part.chunks).filter((chunk) => chunk.nodes.includes(victim));
    const fromSeq = await nats.log.lastSeq();
    nodes.get(victim)!.actor.send({ type: "STOP" });
    await nodes.get(victim)!.done;
    for (const chunk of lost) {
      await waitForEvent(nats.log, (event) => event.type === "ChunkReplicated" && event.data.hash === chunk.hash, {
        fromSeq,
        timeoutMs: 20_000,
        what: `chunk ${chunk.hash} re-replicated`,
      });
    }
    await expectFullyReplicated(stored.image, victim);
    expect(identical(await get("olga", stored.image), bytes)).toBe(true);
    expect(await startNode(victim)).toBe(true);
    await waitForHeartbeat(nats.nc, victim, (beat) => beat.state === "ready", 5_000);
    expect(identical(await get("olga", stored.image), bytes)).toBe(true);
  }, 60_000);

  it("still gives a file back with one of its nodes stopped", async () => {
    const bytes = cryptoRandom.bytes(200_000);
    const stored = await put("olga", "kept.bin", bytes);
    const manifest = await sendCommand(bus(), "vault.get", {
      ...users.olga!.session,
      image: stored.image,
    }) as ImageManifest;
    const victim = manifest.parts[0]!.chunks[0]!.nodes[0]!;
    nodes.get(victim)!.actor.send({ type: "STOP" });
    await nodes.get(victim)!.done;
    expect(identical(await get("olga", stored.image), bytes)).toBe(true);
    expect(await startNode(victim)).toBe(true);
    await waitForHeartbeat(nats.nc, victim, (beat) => beat.state === "ready", 5_000);
  }, 60_000);

  it("records nothing and leaves nothing behind when the replicas cannot be reached", async () => {
    const totals = async () =>
      await Promise.all([...nodes.keys()].map((node) => storeRequest(serverBus(), node, "stat", {}))) as {
        chunks: number;
      }[];
    const before = await totals();
    const listed = (await listVault(users.olga!)).length;
    const error = await refusal(put("olga", "too-many.bin", cryptoRandom.bytes(10_000), 4));
    expect(error.message).toMatch(/needs 4 healthy storage nodes|could not store a chunk on 4 nodes/);
    expect((await listVault(users.olga!)).length).toBe(listed);
    expect((await totals()).map((stat) => stat.chunks)).toEqual(before.map((stat) => stat.chunks));
  }, 60_000);

  it("works from the CLI: register, upload, ls, stat, download, rm", async () => {
    const home = join(folder, "home");
    const env = { ...nats.env, VEIL_HOME: home };
    const password = "a photographer's long password";
    const registered = await runVeil(["register", "quinn", "--password-stdin"], {
      env,
      stdin: new TextEncoder().encode(password + "\n"),
    });
    expect(registered.stdout).toMatch(/logged in as quinn/);
    const photo = join(folder, "holiday photo.png");
    const bytes = cryptoRandom.bytes(700_000);
    await writeFile(photo, bytes);
    const badBits = await runVeil(["upload", photo, "--bits", "9"], { env });
    expect(badBits.code).toBe(2);
    expect(badBits.stderr).toMatch(/--bits must be 1, 2, 3 or 4, got 9/);
    const uploaded = await runVeil(["upload", photo, "--json"], { env, timeoutMs: 60_000 });
    expect(uploaded.stderr).toBe("");
    const stored = JSON.parse(uploaded.stdout) as { image: string; type: string; bytes: number };
    expect(stored).toMatchObject({ type: "image/png", bytes: 700_000 });
    const listed = JSON.parse((await runVeil(["ls", "--json"], { env })).stdout) as { name: string }[];
    expect(listed.map((item) => item.name)).toEqual(["holiday photo.png"]);
    const stat = JSON.parse((await runVeil(["stat", "holiday photo.png", "--json"], { env })).stdout);
    expect(stat).toMatchObject({ image: stored.image, replicas: 2, bitsPerChannel: 1 });
    expect(Object.keys(stat.chunksPerNode).length).toBeGreaterThanOrEqual(2);
    const output = join(folder, "back.png");
    const fetched = await runVeil(["download", stored.image, "-o", output], { env, timeoutMs: 60_000 });
    expect(fetched.stdout).toMatch(/wrote holiday photo\.png/);
    expect(identical(new Uint8Array(await readFile(output)), bytes)).toBe(true);
    const again = await runVeil(["download", stored.image, "-o", output], { env });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists; add --force/);
    // By name, into this folder under its own name: both opened on this machine, from the sealed manifest.
    const here = join(folder, "cli-here");
    await mkdir(here);
    const byName = await runVeil(["download", "holiday photo.png"], { env, cwd: here, timeoutMs: 60_000 });
    expect(byName.stderr).toBe("");
    expect(identical(new Uint8Array(await readFile(join(here, "holiday photo.png"))), bytes)).toBe(true);
    const missing = await runVeil(["stat", "no such photo.png"], { env });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/no object "no such photo\.png" in your vault/);
    expect((await runVeil(["rm", "holiday photo.png"], { env })).stdout).toMatch(/removed holiday photo\.png/);
    expect((await runVeil(["ls", "--json"], { env })).stdout.trim()).toBe("[]");
    const gone = await runVeil(["download", stored.image, "-o", join(folder, "gone.png")], { env });
    expect(gone.code).toBe(3);
  }, 120_000);

  it("gives a PNG image a preview, hidden and sealed like the rest, and other files none", async () => {
    const photo = await encodePng(generateCover(42, 640, 480));
    const stored = await put("olga", "sunset.png", photo);
    expect(stored.type).toBe("image/png");
    const preview = decodePng(await downloadPreview(users.olga!, stored.image));
    expect([preview.width, preview.height]).toEqual([128, 96]);
    expect(
      identical(await downloadPreview(users.olga!, "sunset.png"), await downloadPreview(users.olga!, stored.image)),
    )
      .toBe(true);
    const other = await put("olga", "notes.bin", cryptoRandom.bytes(5_000));
    expect((await refusal(downloadPreview(users.olga!, other.image))).message).toMatch(/has no preview/);
    expect((await refusal(downloadPreview(users.pete!, stored.image))).code).toBe("not-found");
    // A file that only starts like a PNG is stored all the same, without a preview.
    const broken = await put("olga", "broken.png", new Uint8Array([...photo.subarray(0, 40), 1, 2, 3]));
    expect((await refusal(downloadPreview(users.olga!, broken.image))).message).toMatch(/has no preview/);
    expect(identical(await get("olga", stored.image), photo)).toBe(true);
  }, 60_000);

  it(
    "hides a small file in the owner's own cover, and refuses a cover too small or a file too large for one",
    async () => {
      const cover = await encodePng(generateCover(7, 1_200, 900));
      const bytes = cryptoRandom.bytes(100_000);
      const path = join(folder, "letter.bin");
      await writeFile(path, bytes);
      const stored = await upload(users.olga!, { path, name: "letter.bin", type: "application/octet-stream" }, {
        replicas: 2,
        cover,
      });
      expect(identical(await get("olga", stored.image), bytes)).toBe(true);
      const small = await encodePng(generateCover(8, 64, 64));
      const tooSmall = await refusal(
        upload(users.olga!, { path, name: "letter.bin", type: "x" }, { replicas: 2, cover: small }),
      );
      expect(tooSmall.code).toBe("validation");
      const large = join(folder, "large.bin");
      await writeFile(large, cryptoRandom.bytes(limits.coverPartBytesMax + 1));
      const tooLarge = await refusal(
        upload(users.olga!, { path: large, name: "large.bin", type: "x" }, { replicas: 2, cover }),
      );
      expect(tooLarge.message).toMatch(/a cover of your own takes files up to/);
    },
    60_000,
  );

  it("hides at more bits per channel on request: smaller covers, the same bytes back", async () => {
    const bytes = cryptoRandom.bytes(2 * limits.vaultPartBytes);
    const path = join(folder, "dense.bin");
    await writeFile(path, bytes);
    const storedBytes = async (bits: number) => {
      const stored = await upload(users.olga!, { path, name: `dense-${bits}.bin`, type: "x" }, { replicas: 2, bits });
      expect(identical(await get("olga", stored.image), bytes), `${bits} bits`).toBe(true);
      const manifest = await getManifest(stored.image);
      expect(manifest.bitsPerChannel).toBe(bits);
      return manifest.parts.flatMap((part) => part.chunks).reduce((sum, chunk) => sum + chunk.bytes, 0);
    };
    const atOne = await storedBytes(1);
    const atFour = await storedBytes(4);
    expect(atFour).toBeLessThan(atOne / 2);
    const refused = await refusal(upload(users.olga!, { path, name: "x", type: "x" }, { replicas: 2, bits: 5 }));
    expect(refused.message).toMatch(/bits per channel must be 1, 2, 3 or 4/);
  }, 60_000);

  it("finishes an upload when a node stops in the middle of it, putting its share on another node", async () => {
    // One part more than an upload works on at once: the node stops as the first part is
    // done, before the last one starts.
    const bytes = cryptoRandom.bytes((limits.partsInFlight + 1) * limits.vaultPartBytes);
    const path = join(folder, "moving.bin");
    await writeFile(path, bytes);
    // Least-loaded placement is sure to use the emptiest node for the first part: that one stops.
    const used = await Promise.all([...nodes.keys()].map(async (node) => ({
      node,
      bytes: (await storeRequest(serverBus(), node, "stat", {}) as { bytesUsed: number }).bytesUsed,
    })));
    const victim = used.reduce((least, next) => (next.bytes < least.bytes ? next : least)).node;
    let stopped = false;
    const uploading = upload(
      {
        ...users.olga!,
        onProgress: () => {
          if (stopped) return;
          stopped = true;
          nodes.get(victim)!.actor.send({ type: "STOP" });
        },
      },
      { path, name: "moving.bin", type: "application/octet-stream" },
      { replicas: 2 },
    );
    const stored = await uploading;
    expect(stopped).toBe(true);
    await nodes.get(victim)!.done;
    const manifest = await getManifest(stored.image);
    const chunks = manifest.parts.flatMap((part) => part.chunks);
    for (const chunk of chunks) expect(new Set(chunk.nodes).size).toBe(2);
    // Some chunks went to the stopped node before it stopped; the rest were put elsewhere.
    expect(chunks.some((chunk) => chunk.nodes.includes(victim))).toBe(true);
    expect(chunks.some((chunk) => !chunk.nodes.includes(victim))).toBe(true);
    expect(identical(await get("olga", stored.image), bytes)).toBe(true);
    expect(await startNode(victim)).toBe(true);
    await waitForHeartbeat(nats.nc, victim, (beat) => beat.state === "ready", 5_000);
  }, 90_000);

  it("gives back a 50 MB file byte for byte", async () => {
    const bytes = cryptoRandom.bytes(50 * 1_000_000);
    const stored = await put("olga", "film.bin", bytes);
    expect(stored.bytes).toBe(50 * 1_000_000);
    expect(identical(await get("olga", stored.image), bytes)).toBe(true);
  }, 180_000);

  it("refuses a manifest whose size, part size and parts do not add up, recording nothing", async () => {
    const stored = await put("olga", "layout.bin", cryptoRandom.bytes(2 * limits.vaultPartBytes));
    const manifest = await getManifest(stored.image);
    const { owner: _owner, storedAt: _storedAt, discoverable: _shown, ...recorded } = manifest;
    const image = "ab".repeat(16);
    const error = await refusal(
      sendCommand(bus(), "vault.store", { ...users.olga!.session, manifest: { ...recorded, image, partBytes: 1 } }),
    );
    expect(error.code).toBe("validation");
    expect(error.message).toMatch(/does not add up/);
    expect((await refusal(getManifest(image))).code).toBe("not-found");
  });

  it("refuses a manifest that names its file in the clear, or carries no sealed name, recording nothing", async () => {
    const stored = await put("olga", "clear.bin", cryptoRandom.bytes(1_000));
    const { owner: _owner, storedAt: _storedAt, discoverable: _shown, meta: _meta, ...bare } = await getManifest(
      stored.image,
    );
    const image = "cd".repeat(16);
    for (const manifest of [{ ...bare, image }, { ...bare, image, legacy: { name: "clear.bin", type: "x" } }]) {
      const error = await refusal(sendCommand(bus(), "vault.store", { ...users.olga!.session, manifest }));
      expect(error.code).toBe("validation");
      expect(error.message).toMatch(/travel sealed/);
    }
    expect((await refusal(getManifest(image))).code).toBe("not-found");
  });

  it("still opens an object stored with a v1 manifest (name and type in the clear, a plain SHA-256)", async () => {
    const bytes = cryptoRandom.bytes(300_000);
    const path = join(folder, "old.bin");
    await writeFile(path, bytes);
    // What a client before sealed names recorded: the manifest as a v1 event, written raw to the log.
    // The test plays the server for that one command: it opens the sealed request with the cluster's key.
    const clusterSealing = clusterSecrets(testClusterKey, cryptoRandom).sealingKeys;
    const oldClient: Bus = {
      ...bus(),
      async request(subject, data, options) {
        if (subject !== "veil.cmd.vault.store") return await bus().request(subject, data, options);
        const opened = openCommand(clusterSealing.privateKey, "vault.store", data, {
          replays: new ReplayWindow(),
          now: Date.now(),
          random: cryptoRandom,
        });
        const { manifest } = opened.data as { manifest: Record<string, unknown> };
        const { meta: _meta, ...rest } = manifest;
        const v1 = {
          ...rest,
          owner: "olga",
          name: "old letter.txt",
          type: "text/plain",
          contentHash: sha256(bytes),
        };
        const event = { type: "ImageStored", v: 1, id: randomUUID(), at: Date.now(), by: "vault-server", data: v1 };
        await nats.js.publish(`veil.evt.image.${String(rest.image)}`, encodeMessage(event), { msgID: event.id });
        return opened.sealReply({
          ok: true,
          value: { image: rest.image, bytes: bytes.byteLength, storedAt: event.at, replicas: 2, chunks: 1 },
        });
      },
    };
    const stored = await upload({ ...users.olga!, bus: oldClient, send: commandsOver(oldClient) }, {
      path,
      name: "new.bin",
      type: "x",
    }, {
      replicas: 2,
    });
    const listed = (await listVault(users.olga!)).find((file) => file.image === stored.image);
    expect(listed).toMatchObject({ name: "old letter.txt", type: "text/plain" });
    // By its clear name, and checked against its plain hash (a keyed check would refuse it).
    expect(identical(await get("olga", "old letter.txt"), bytes)).toBe(true);
    expect((await getManifest(stored.image)).legacy).toEqual({ name: "old letter.txt", type: "text/plain" });
  }, 60_000);

  it("lists a vault a page at a time, each file once, oldest first", async () => {
    const all = await listVault(users.olga!);
    expect(all.length).toBeGreaterThanOrEqual(3);
    const paged: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < all.length; page++) {
      const reply = await sendCommand(bus(), "vault.list", {
        ...users.olga!.session,
        limit: 2,
        ...(after ? { after } : {}),
      }) as { files: { image: string }[]; next?: string };
      expect(reply.files.length).toBeLessThanOrEqual(2);
      paged.push(...reply.files.map((file) => file.image));
      if (!reply.next) break;
      after = reply.next;
    }
    expect(paged).toEqual(all.map((file) => file.image));
    const bad = await refusal(sendCommand(bus(), "vault.list", { ...users.olga!.session, after: "../x" }));
    expect(bad.code).toBe("validation");
  });

  it("says clearly which chunk is gone when no replica has it, and writes nothing", async () => {
    // Several parts, the first one broken: the parts waiting their turn behind it stop too.
    const stored = await put("olga", "fragile.bin", cryptoRandom.bytes(3 * limits.vaultPartBytes));
    const chunk = (await getManifest(stored.image)).parts[0]!.chunks[0]!;
    for (const node of chunk.nodes) await storeRequest(serverBus(), node, "delete", { hash: chunk.hash });
    const output = join(folder, "fragile-back.bin");
    const error = await refusal(download(users.olga!, stored.image, { output: () => output }));
    expect(error.code).toBe("integrity");
    expect(error.message).toContain(`the object is damaged: chunk ${chunk.hash} is on no node intact`);
    expect(await readFile(output).catch(() => "absent")).toBe("absent");
  }, 60_000);

  it("takes back what it stored when an upload fails part-way, and records nothing", async () => {
    // A fourth node with room for only a few chunks: an upload wanting every chunk on four nodes
    // gets part-way, then cannot place the rest.
    expect(await startNode("store-tiny", 3 * limits.chunkBytes)).toBe(true);
    await waitForHeartbeat(nats.nc, "store-tiny", (beat) => beat.state === "ready", 5_000);
    try {
      const all = [...nodes.keys()];
      const chunksOn = async (node: string) =>
        (await storeRequest(serverBus(), node, "stat", {}) as { chunks: number }).chunks;
      const before = await Promise.all(all.map(chunksOn));
      const listed = (await listVault(users.olga!)).length;
      const path = join(folder, "doomed.bin");
      await writeFile(path, cryptoRandom.bytes(limits.vaultPartBytes));
      const error = await refusal(upload(users.olga!, { path, name: "doomed.bin", type: "x" }, { replicas: 4 }));
      expect(error.message).toMatch(/could not store a chunk on 4 nodes/);
      expect((await listVault(users.olga!)).length).toBe(listed);
      const after = await Promise.all(all.map(chunksOn));
      expect(after).toEqual(before);
    } finally {
      nodes.get("store-tiny")!.actor.send({ type: "STOP" });
      await nodes.get("store-tiny")!.done;
      nodes.delete("store-tiny");
    }
  }, 90_000);

  it("refuses a missing file and a folder clearly", async () => {
    const deps = users.olga!;
    const missing = await refusal(
      upload(deps, { path: join(folder, "nope"), name: "nope", type: "x" }, { replicas: 2 }),
    );
    expect(missing.message).toMatch(/cannot read .*nope: no such file/);
    const folderError = await refusal(upload(deps, { path: folder, name: "dir", type: "x" }, { replicas: 2 }));
    expect(folderError.message).toMatch(/is not a file/);
    // Too large for one manifest: refused before anything is read or sent (a sparse file costs no disk).
    const huge = join(folder, "huge.bin");
    await writeFile(huge, "");
    await truncate(huge, limits.partsPerObjectMax * limits.vaultPartBytes + 1);
    const tooLarge = await refusal(upload(deps, { path: huge, name: "huge.bin", type: "x" }, { replicas: 2 }));
    expect(tooLarge.message).toMatch(/veil stores files of up to 192 MiB for now/);
  });
});
