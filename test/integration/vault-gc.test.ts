/**
 * Garbage collection on a real nats-server: a server whose leader collects often, with a
 * short grace period, over two storage nodes. A removed object's chunks leave every node
 * while the others' stay; a chunk no upload ever recorded (what a crashed upload leaves)
 * goes too, but only after the grace period (which is what keeps an upload in flight,
 * whose manifest is recorded only after all its puts, from losing its chunks).
 */
import { Buffer } from "node:buffer";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsBus } from "../../infra/nats/bus.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { sendCommand } from "../../infra/command-client.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import { storeRequest } from "../../actors/storage-node/client.ts";
import { ticketed } from "../support/tickets.ts";
import type { HostedStorageNode } from "../../infra/storage/host.ts";
import { download, type TransferDeps, upload } from "../../infra/vault/mod.ts";
import { type CryptoActor, startCryptoActor, startStegoActor, type StegoActor } from "../../infra/workers/actors.ts";
import { chunksOf, type ImageManifest } from "../../projections/images.ts";
import { vaultUser } from "../support/accounts.ts";
import { waitForEvent } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";
import { hostTestServer, hostTestStorageNode } from "../support/servers.ts";

const nats = useNatsServer();
/** A user's machine's connection; `serverBus` for what only the cluster may do. */
const bus = () => natsBus(nats.client, silentLogger);
const serverBus = () => natsBus(nats.nc, silentLogger);
const graceMs = 2_000;
const nodeIds = ["gc-store-1", "gc-store-2"];
let folder: string;
let server: HostedServer;
let crypto: CryptoActor;
let stego: StegoActor;
let owner: TransferDeps;
const nodes: HostedStorageNode[] = [];

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-test-gc-"));
  crypto = startCryptoActor({ size: 2 });
  stego = startStegoActor({ size: 2 });
  server = await hostTestServer(nats, {
    nodeId: "gc-server",
    identity: { slowHash: crypto.slowHash },
    gc: { graceMs, intervalMs: 200 },
  });
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected", { timeoutMs: 10_000, what: "a leader" });
  for (const nodeId of nodeIds) {
    nodes.push(hostTestStorageNode(nats, { nodeId, folder: join(folder, "storage"), capacityBytes: 1024 ** 3 }));
  }
  await Promise.all(nodes.map((node) => node.ready));
  for (const node of nodeIds) await waitForHeartbeat(nats.nc, node, (beat) => beat.state === "ready", 5_000);
  owner = await vaultUser(bus(), { crypto, stego }, "gina", "the password of gina, long enough");
}, 60_000);

afterAll(async () => {
  for (const node of nodes) node.actor.send({ type: "STOP" });
  await Promise.all(nodes.map((node) => node.done));
  server?.actor.send({ type: "STOP" });
  await server?.done;
  await Promise.all([crypto?.stop(), stego?.stop()]);
  if (folder) await rm(folder, { recursive: true, force: true });
});

async function put(name: string, bytes: Uint8Array) {
  const path = join(folder, name);
  await writeFile(path, bytes);
  const { image } = await upload(owner, { path, name, type: "application/octet-stream" }, { replicas: 2 });
  return await sendCommand(bus(), "vault.get", { ...owner.session, image }) as ImageManifest;
}

const holds = async (node: string, hash: string) => await storeRequest(serverBus(), node, "has", { hash }) as boolean;
const chunkCount = async (node: string) =>
  (await storeRequest(serverBus(), node, "stat", {}) as { chunks: number }).chunks;

/** Waits, with a bound, until every node's heartbeat reports holding `count(node)` chunks. */
async function waitForChunkCounts(count: (node: string) => number) {
  for (const node of nodeIds) {
    await waitForHeartbeat(nats.nc, node, (beat) => beat.chunks === count(node), 20_000);
  }
}

describe("garbage collection", () => {
  it("removes a removed object's chunks from every node, and keeps every other object's", async () => {
    const kept = await put("kept.bin", cryptoRandom.bytes(300_000));
    const removed = await put("removed.bin", cryptoRandom.bytes(300_000));
    const keptChunks = chunksOf(kept);
    const before = Object.fromEntries(await Promise.all(nodeIds.map(async (node) => [node, await chunkCount(node)])));
    const removedOn = (node: string) => chunksOf(removed).filter((chunk) => chunk.nodes.includes(node)).length;
    expect(nodeIds.reduce((sum, node) => sum + removedOn(node), 0)).toBe(2 * chunksOf(removed).length);

    await sendCommand(bus(), "vault.remove", { ...owner.session, image: removed.image });
    await waitForChunkCounts((node) => before[node]! - removedOn(node));

    for (const chunk of chunksOf(removed)) {
      for (const node of nodeIds) expect(await holds(node, chunk.hash), `${node} ${chunk.hash}`).toBe(false);
    }
    for (const chunk of keptChunks) {
      for (const node of chunk.nodes) expect(await holds(node, chunk.hash), `${node} ${chunk.hash}`).toBe(true);
    }
    const output = join(folder, "kept.out");
    await download(owner, kept.image, { output: () => output });
    expect(Buffer.from(await readFile(output)).equals(Buffer.from(await readFile(join(folder, "kept.bin"))))).toBe(
      true,
    );
  }, 60_000);

  it("collects a chunk no manifest ever recorded (a crashed upload's), but only after the grace period", async () => {
    const orphan = cryptoRandom.bytes(1_000);
    const hash = bytesToHex(sha256(orphan));
    const [node] = nodeIds;
    const before = await chunkCount(node!);
    const putAt = Date.now();
    await storeRequest(bus(), node!, "put", ticketed(node!, { hash, bytes: orphan }));
    await waitForHeartbeat(nats.nc, node!, (beat) => beat.chunks === before + 1, 5_000);
    await waitForHeartbeat(nats.nc, node!, (beat) => beat.chunks === before, 20_000);
    // Collected, and not before its grace: an upload that put it would have had that long to record it.
    expect(Date.now() - putAt).toBeGreaterThanOrEqual(graceMs);
    expect(await holds(node!, hash)).toBe(false);
  }, 30_000);
});
