/**
 * Storage nodes on a real nats-server: request-reply on `veil.store.<node>.*` over a real
 * disk store, bad requests answered without harm, heartbeats the leader's placement uses,
 * and a `veil node --role storage` process SIGKILLed in the middle of writes that, once
 * restarted, still holds every chunk it acknowledged, whole.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMessage, limits, type VeilError } from "../../events/mod.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { sendCommand } from "../../infra/server/commands.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import { storeRequest } from "../../infra/storage/client.ts";
import type { HostedStorageNode } from "../../infra/storage/host.ts";
import { startVeil } from "../support/cli.ts";
import { waitForEvent } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";
import { hostTestServer, hostTestStorageNode } from "../support/servers.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";

const nats = useNatsServer();
/** The cluster's own connection: these tests speak to storage nodes as a server does. */
const serverBus = () => natsBus(nats.nc, silentLogger);
let folder: string;
let server: HostedServer;
const nodes: HostedStorageNode[] = [];

const chunkOf = (length: number) => {
  const bytes = cryptoRandom.bytes(length);
  return { hash: bytesToHex(sha256(bytes)), bytes };
};
const refusal = (work: Promise<unknown>) =>
  work.then(() => {
    throw new Error("expected a refusal");
  }, (error: VeilError) => error);

function startNode(nodeId: string, capacityBytes: number) {
  const node = hostTestStorageNode(nats, { nodeId, folder, capacityBytes });
  nodes.push(node);
  return node;
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-test-storage-"));
  server = await hostTestServer(nats, { nodeId: "placer" });
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected", { timeoutMs: 10_000, what: "a leader" });
  expect(await startNode("disk-a", 10 * 1024 * 1024).ready).toBe(true);
  expect(await startNode("disk-small", 300 * 1024).ready).toBe(true);
});

afterAll(async () => {
  for (const node of nodes) if (node.actor.getSnapshot().status === "active") node.actor.send({ type: "STOP" });
  await Promise.all(nodes.map((node) => node.done));
  server?.actor.send({ type: "STOP" });
  await server?.done;
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe("a storage node", () => {
  it("stores, returns, confirms and deletes chunks by their hash, and reports its totals", async () => {
    const { hash, bytes } = chunkOf(limits.chunkBytes);
    expect(await storeRequest(serverBus(), "disk-a", "put", { hash, bytes })).toEqual({ stored: true });
    expect(await storeRequest(serverBus(), "disk-a", "put", { hash, bytes })).toEqual({ stored: false });
    expect(new Uint8Array(await storeRequest(serverBus(), "disk-a", "get", { hash }) as Uint8Array)).toEqual(bytes);
    expect(await storeRequest(serverBus(), "disk-a", "has", { hash })).toBe(true);
    expect(await storeRequest(serverBus(), "disk-a", "stat")).toMatchObject({ chunks: 1, bytesUsed: limits.chunkBytes });
    const beat = await waitForHeartbeat(nats.nc, "disk-a", (heartbeat) => heartbeat.chunks === 1, 5_000);
    expect(beat).toMatchObject({ role: "storage", bytesUsed: limits.chunkBytes, capacityBytes: 10 * 1024 * 1024 });
    expect(await storeRequest(serverBus(), "disk-a", "delete", { hash })).toEqual({ freed: limits.chunkBytes });
    expect((await refusal(storeRequest(serverBus(), "disk-a", "get", { hash }))).code).toBe("not-found");
  });

  it("answers bad requests with typed errors, writes nothing, and keeps serving", async () => {
    const before = await storeRequest(serverBus(), "disk-a", "stat");
    const { hash, bytes } = chunkOf(1_000);
    const bad: [string, unknown, string][] = [
      ["put", { hash: "../../etc/passwd", bytes }, "validation"],
      ["put", { hash, bytes: new Uint8Array(limits.chunkBytes + 1) }, "validation"],
      ["put", { hash, bytes: cryptoRandom.bytes(1_000) }, "integrity"],
      ["put", "not a map", "validation"],
      ["get", { hash: 42 }, "validation"],
      ["has", {}, "validation"],
    ];
    for (const [operation, data, code] of bad) {
      const error = await refusal(storeRequest(serverBus(), "disk-a", operation as "put", data as Record<string, unknown>));
      expect(error.code, `${operation} ${JSON.stringify(data).slice(0, 40)}`).toBe(code);
    }
    // Garbage that is not msgpack at all is dropped by the bus; an unknown operation is refused.
    nats.nc.publish("veil.store.disk-a.put", new Uint8Array([0xc1, 0xc1]));
    const unknown = await nats.nc.request("veil.store.disk-a.format", encodeMessage({}), { timeout: 2_000 });
    expect(new TextDecoder().decode(unknown.data)).toMatch(/unknown store operation/);
    expect(await storeRequest(serverBus(), "disk-a", "stat")).toEqual(before);
  });

  it("refuses a chunk once full, and placement goes to nodes with room", async () => {
    const place = () =>
      sendCommand(serverBus(), "cluster.place", { bytes: limits.chunkBytes, replicas: 1 }) as Promise<{ nodes: string[] }>;
    const first = chunkOf(limits.chunkBytes);
    expect(await storeRequest(serverBus(), "disk-small", "put", first)).toEqual({ stored: true });
    const full = await refusal(storeRequest(serverBus(), "disk-small", "put", chunkOf(limits.chunkBytes)));
    expect(full.message).toMatch(/disk-small is full/);
    await waitForHeartbeat(nats.nc, "disk-small", (beat) => beat.bytesUsed === limits.chunkBytes, 5_000);
    for (let index = 0; index < 5; index++) expect((await place()).nodes).toEqual(["disk-a"]);
    // Nothing has room for two replicas of a chunk too big for the small node: a clear refusal.
    const two = await refusal(
      sendCommand(serverBus(), "cluster.place", { bytes: limits.chunkBytes, replicas: 2 }) as Promise<unknown>,
    );
    expect(two.message).toMatch(/needs 2 healthy storage nodes with room; 1 of/);
  });
});

describe("a storage node process", () => {
  it("killed mid-write keeps every chunk it acknowledged, whole, and nothing half-written", async () => {
    const data = join(folder, "process");
    const env = { ...nats.env, VEIL_DATA: data, VEIL_LOG: "warn" };
    const args = ["node", "--role", "storage", "--id", "disk-proc", "--capacity", "50MB"];
    let node = startVeil(args, { env });
    await node.waitForOutput(/Press Ctrl-C to stop/);
    const acknowledged: { hash: string; bytes: Uint8Array }[] = [];
    let stop = false;
    // Four writers keep puts in flight; the kill lands in the middle of them.
    const writers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const chunk = chunkOf(64 * 1024);
        try {
          await storeRequest(serverBus(), "disk-proc", "put", chunk);
          acknowledged.push(chunk);
        } catch {
          return; // The node is gone: this put was never acknowledged.
        }
      }
    });
    await waitForHeartbeat(nats.nc, "disk-proc", (beat) => (beat.chunks ?? 0) >= 20, 10_000);
    node.child.kill("SIGKILL");
    await node.exited;
    stop = true;
    await Promise.all(writers);
    expect(acknowledged.length).toBeGreaterThanOrEqual(20);

    node = startVeil(args, { env });
    await node.waitForOutput(/Press Ctrl-C to stop/);
    for (const { hash, bytes } of acknowledged) {
      expect(new Uint8Array(await storeRequest(serverBus(), "disk-proc", "get", { hash }) as Uint8Array)).toEqual(bytes);
    }
    const stat = await storeRequest(serverBus(), "disk-proc", "stat") as { chunks: number };
    // Puts in flight at the kill may have landed without their acknowledgement: at least, never less.
    expect(stat.chunks).toBeGreaterThanOrEqual(acknowledged.length);
    expect(await readdir(join(data, "storage", "disk-proc", "tmp"))).toEqual([]);
    node.child.kill("SIGTERM");
    expect(await node.exited).toBe(0);
  }, 60_000);
});
