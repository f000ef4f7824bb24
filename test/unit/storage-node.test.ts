/** The storage-node machine over an in-memory store, and the disk store on a real folder. */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { afterEach, describe, expect, it } from "vitest";
import { createActor, toPromise, waitFor } from "xstate";
import { storageEffects } from "../../actors/storage-node/effects.ts";
import { storageNodeMachine, type StoreResult } from "../../actors/storage-node/machine.ts";
import type { StoreOperation } from "../../events/mod.ts";
import { signTicket, ticketKeys } from "../../actors/storage-node/tickets.ts";
import type { ChunkStore } from "../../actors/ports.ts";
import { memoryChunkStore } from "../sim/memory-store.ts";
import { diskChunkStore } from "../../infra/storage/disk-store.ts";
import { silentLogger } from "../support/logger.ts";

const chunk = (fill: number, length = 1_000) => new Uint8Array(length).fill(fill);
const hashOf = (bytes: Uint8Array) => bytesToHex(sha256(bytes));
const keys = ticketKeys(new Uint8Array(32).fill(9));
const nowMs = 1_700_000_000_000;

/** The ticket the leader would give for this request: this node, this chunk, good for a minute. */
function ticketFor(operation: "put" | "get", data: { hash?: string; bytes?: Uint8Array }, node = "storage-t") {
  return signTicket(keys.secretKey, {
    op: operation,
    node,
    hashes: [data.hash!],
    ...(operation === "put" ? { bytesMax: data.bytes?.byteLength || 1 } : {}),
    expiresAt: nowMs + 60_000,
  });
}

async function start(
  store: ChunkStore,
  options: { capacityBytes?: number; inFlightMax?: number; learnTicketKey?: () => Promise<Uint8Array> } = {},
) {
  const learn = options.learnTicketKey ?? (() => Promise.resolve(keys.publicKey));
  const actor = createActor(storageNodeMachine.provide(storageEffects(store, learn)), {
    input: { nodeId: "storage-t", capacityBytes: options.capacityBytes ?? 1e9, inFlightMax: options.inFlightMax },
  });
  actor.start();
  /** A request as the host sends it; puts and gets carry a valid ticket unless the test gives its own (or null). */
  const request = (
    operation: StoreOperation,
    data: { hash?: string; bytes?: Uint8Array; ticket?: Uint8Array | null; atMs?: number } = {},
  ) =>
    new Promise<StoreResult>((reply) => {
      const needed = operation === "put" || operation === "get";
      const ticket = data.ticket === undefined
        ? (needed ? ticketFor(operation, data) : undefined)
        : data.ticket ?? undefined;
      actor.send({ type: "REQUEST", operation, ...data, ticket, atMs: data.atMs ?? nowMs, reply });
    });
  const state = () => {
    const snapshot = actor.getSnapshot();
    return typeof snapshot.value === "string" ? snapshot.value : snapshot.value.serving;
  };
  // It answers "starting, retry" until its scan is done.
  expect(state()).toBe("starting");
  const early = await request("has", { hash: "ab".repeat(32) });
  expect(!early.ok && early.error.message).toMatch(/is starting/);
  await waitFor(actor, (snapshot) => snapshot.matches("serving"));
  return { actor, request, state };
}

describe("the storage-node machine", () => {
  it("scans its store first, then serves puts, gets, has and deletes, keeping its totals", async () => {
    const existing = chunk(1);
    const node = await start(memoryChunkStore([existing]));
    expect(node.actor.getSnapshot().context).toMatchObject({ chunks: 1, bytesUsed: 1_000 });
    const bytes = chunk(2, 500);
    expect(await node.request("put", { hash: hashOf(bytes), bytes })).toEqual({ ok: true, value: { stored: true } });
    expect(await node.request("put", { hash: hashOf(bytes), bytes })).toEqual({ ok: true, value: { stored: false } });
    expect(await node.request("get", { hash: hashOf(bytes) })).toEqual({ ok: true, value: bytes });
    expect(await node.request("has", { hash: hashOf(existing) })).toEqual({ ok: true, value: true });
    expect((await node.request("stat")).ok && (await node.request("stat"))).toMatchObject({
      value: { chunks: 2, bytesUsed: 1_500 },
    });
    expect(await node.request("delete", { hash: hashOf(existing) })).toEqual({ ok: true, value: { freed: 1_000 } });
    await waitFor(node.actor, (snapshot) => snapshot.context.inFlight === 0);
    expect(node.actor.getSnapshot().context).toMatchObject({ chunks: 1, bytesUsed: 500 });
  });

  it("refuses a chunk that does not match its hash, and stores nothing", async () => {
    const store = memoryChunkStore();
    const node = await start(store);
    const result = await node.request("put", { hash: hashOf(chunk(3)), bytes: chunk(4) });
    expect(!result.ok && result.error.message).toMatch(/does not match that hash; nothing stored/);
    expect(store.chunks.size).toBe(0);
  });

  it("answers a damaged chunk with an integrity error and removes it for repair", async () => {
    const bytes = chunk(5);
    const store = memoryChunkStore([bytes]);
    const node = await start(store);
    store.damage(hashOf(bytes));
    const result = await node.request("get", { hash: hashOf(bytes) });
    expect(!result.ok && result.error.message).toMatch(/damaged on storage-t; removed for repair/);
    expect(store.chunks.has(hashOf(bytes))).toBe(false);
    await waitFor(node.actor, (snapshot) => snapshot.context.chunks === 0 && snapshot.context.bytesUsed === 0);
  });

  it("says not found for a chunk it does not hold", async () => {
    const node = await start(memoryChunkStore());
    const result = await node.request("get", { hash: "ab".repeat(32) });
    expect(!result.ok && result.error.name).toBe("NotFoundError");
  });

  it("refuses a put past its capacity, counting puts still in flight", async () => {
    const store = memoryChunkStore();
    const node = await start(store, { capacityBytes: 1_500 });
    store.hold();
    const first = node.request("put", { hash: hashOf(chunk(6)), bytes: chunk(6) });
    const second = await node.request("put", { hash: hashOf(chunk(7)), bytes: chunk(7) });
    expect(!second.ok && second.error.message).toMatch(/storage-t is full/);
    store.release();
    expect((await first).ok).toBe(true);
  });

  it("is running while it works, waiting at its bound (refusing more as busy), and ready again after", async () => {
    const store = memoryChunkStore();
    const node = await start(store, { inFlightMax: 2 });
    expect(node.state()).toBe("ready");
    store.hold();
    const one = node.request("has", { hash: "aa".repeat(32) });
    expect(node.state()).toBe("running");
    const two = node.request("has", { hash: "bb".repeat(32) });
    expect(node.state()).toBe("waiting");
    const three = await node.request("has", { hash: "cc".repeat(32) });
    expect(!three.ok && three.error.message).toMatch(/busy/);
    store.release();
    await Promise.all([one, two]);
    await waitFor(node.actor, () => node.state() === "ready");
  });

  it("finishes admitted work on STOP, refuses new work, and ends stopped", async () => {
    const store = memoryChunkStore();
    const node = await start(store);
    store.hold();
    const pending = node.request("put", { hash: hashOf(chunk(8)), bytes: chunk(8) });
    node.actor.send({ type: "STOP" });
    expect(node.state()).toBe("draining");
    const refused = await node.request("get", { hash: hashOf(chunk(8)) });
    expect(!refused.ok && refused.error.message).toMatch(/stopping/);
    store.release();
    expect((await pending).ok).toBe(true);
    expect(await toPromise(node.actor)).toEqual({});
    expect(store.chunks.size).toBe(1);
  });
});

describe("the storage-node machine's tickets", () => {
  const bytes = chunk(40, 800);
  const hash = hashOf(bytes);
  const refusal = (result: StoreResult) => (result.ok ? undefined : result.error);

  it("stores and returns a chunk only with a ticket for it, and stores nothing for a bad one", async () => {
    const store = memoryChunkStore();
    const node = await start(store);
    const other = chunk(41, 800);
    const forger = ticketKeys(new Uint8Array(32).fill(10));
    const put = (ticket: Uint8Array | null, atMs?: number) => node.request("put", { hash, bytes, ticket, atMs });
    const cases: [string, Uint8Array | null, RegExp, number?][] = [
      ["no ticket", null, /needs a ticket .*; nothing stored/],
      [
        "a forged one",
        signTicket(forger.secretKey, { ...fields("put"), bytesMax: 800 }),
        /signature is not the cluster's/,
      ],
      ["one for another node", ticketFor("put", { hash, bytes }, "storage-u"), /is for node storage-u, not storage-t/],
      ["one for another chunk", ticketFor("put", { hash: hashOf(other), bytes: other }), /does not name chunk/],
      ["an expired one", ticketFor("put", { hash, bytes }), /expired 1 ms ago/, nowMs + 60_001],
      ["a get ticket", ticketFor("get", { hash }), /is for a get, not a put/],
      ["one for smaller chunks", signTicket(keys.secretKey, { ...fields("put"), bytesMax: 799 }), /up to 799 bytes/],
      ["bytes that are no ticket", new Uint8Array(100).fill(1), /signature is not the cluster's/],
    ];
    for (const [what, ticket, message, atMs] of cases) {
      const error = refusal(await put(ticket, atMs));
      expect(error?.name, what).toBe("ForbiddenError");
      expect(error?.message, what).toMatch(message);
    }
    expect(store.chunks.size).toBe(0);
    await waitFor(node.actor, (snapshot) => snapshot.context.inFlight === 0);
    expect(node.actor.getSnapshot().context).toMatchObject({ chunks: 0, bytesUsed: 0, reservedBytes: 0 });
    // A ticket signed a moment ago still works at its last millisecond.
    expect(await put(ticketFor("put", { hash, bytes }), nowMs + 60_000)).toEqual({ ok: true, value: { stored: true } });
  });

  it("returns a chunk only for a get ticket that names it", async () => {
    const node = await start(memoryChunkStore([bytes]));
    expect(refusal(await node.request("get", { hash, ticket: null }))?.message).toMatch(
      /get on storage node .* needs a ticket/,
    );
    expect(refusal(await node.request("get", { hash, ticket: ticketFor("put", { hash, bytes }) }))?.message).toMatch(
      /is for a put, not a get/,
    );
    expect(await node.request("get", { hash })).toEqual({ ok: true, value: bytes });
    // has, list, delete and stat need none (only servers may send them: the broker's permissions).
    expect(await node.request("has", { hash })).toEqual({ ok: true, value: true });
  });

  it("refuses puts and gets as unavailable until it learns the ticket key, then serves them", async () => {
    let learn = (_key: Uint8Array) => {};
    const learned = new Promise<Uint8Array>((resolve) => (learn = resolve));
    const store = memoryChunkStore();
    const node = await start(store, { learnTicketKey: () => learned });
    const early = refusal(await node.request("put", { hash, bytes }));
    expect(early?.name).toBe("UnavailableError");
    expect(early?.message).toMatch(/cannot check tickets yet: no server has told it the cluster's ticket key/);
    expect(await node.request("has", { hash })).toEqual({ ok: true, value: false });
    learn(keys.publicKey);
    await waitFor(node.actor, (snapshot) => snapshot.context.ticketKey !== undefined);
    expect(await node.request("put", { hash, bytes })).toEqual({ ok: true, value: { stored: true } });
  });

  it("stops with the problem if it cannot learn the ticket key", async () => {
    const unlearnable = () => Promise.reject(new Error("no server answered cluster.keys"));
    const actor = createActor(storageNodeMachine.provide(storageEffects(memoryChunkStore(), unlearnable)), {
      input: { nodeId: "storage-t", capacityBytes: 1e9 },
    }).start();
    expect(await toPromise(actor)).toEqual({ problem: "no ticket key: no server answered cluster.keys" });
  });

  function fields(op: "put" | "get") {
    return { op, node: "storage-t", hashes: [hash], expiresAt: nowMs + 60_000 };
  }
});

describe("the disk chunk store", () => {
  const folders: string[] = [];
  afterEach(async () => {
    for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
  });
  const store = async () => {
    const folder = await mkdtemp(join(tmpdir(), "veil-test-chunks-"));
    folders.push(folder);
    return { folder, store: diskChunkStore(join(folder, "node"), silentLogger) };
  };

  it("keeps chunks by hash, finds them again after a restart, and clears interrupted writes", async () => {
    const { folder, store: disk } = await store();
    expect(await disk.scan()).toEqual({ chunks: 0, bytes: 0 });
    const bytes = chunk(9, 4_096);
    expect(await disk.put(hashOf(bytes), bytes, 1_000)).toEqual({ stored: true });
    expect(await disk.put(hashOf(bytes), bytes, 2_000)).toEqual({ stored: false });
    expect(await disk.get(hashOf(bytes))).toEqual(bytes);
    // What a crash mid-write leaves: a partial file in tmp/, which was never acknowledged.
    await writeFile(join(folder, "node", "tmp", `${"cd".repeat(32)}.x.partial`), chunk(1, 10));
    const again = diskChunkStore(join(folder, "node"), silentLogger);
    expect(await again.scan()).toEqual({ chunks: 1, bytes: 4_096 });
    expect(await readdir(join(folder, "node", "tmp"))).toEqual([]);
    expect(await again.has(hashOf(bytes))).toBe(true);
    expect(await again.delete(hashOf(bytes))).toBe(4_096);
    expect(await again.get(hashOf(bytes))).toBeUndefined();
    expect(await again.delete(hashOf(bytes))).toBe(0);
  });

  it("notices a chunk changed on disk", async () => {
    const { folder, store: disk } = await store();
    await disk.scan();
    const bytes = chunk(10, 100);
    const hash = hashOf(bytes);
    await disk.put(hash, bytes, 1_000);
    await writeFile(join(folder, "node", hash.slice(0, 2), hash), chunk(11, 100));
    await expect(disk.get(hash)).rejects.toThrow(/no longer matches its hash/);
    // A truncated copy is not taken for the chunk: a put writes it whole again.
    await writeFile(join(folder, "node", hash.slice(0, 2), hash), chunk(10, 10));
    await disk.put(hash, bytes, 1_000);
    expect(await disk.get(hash)).toEqual(bytes);
  });

  it("lists chunks in hash order, a page at a time, with their touch times", async () => {
    const { store: disk } = await store();
    await disk.scan();
    const held = Array.from({ length: 7 }, (_, index) => chunk(20 + index, 50 + index));
    for (const [index, bytes] of held.entries()) await disk.put(hashOf(bytes), bytes, 10_000 + index * 1_000);
    const hashes = held.map(hashOf).sort();
    const first = await disk.list(undefined, 3);
    const second = await disk.list(first.at(-1)!.hash, 3);
    const third = await disk.list(second.at(-1)!.hash, 3);
    expect([...first, ...second, ...third].map((entry) => entry.hash)).toEqual(hashes);
    expect(third).toHaveLength(1);
    const entry = [...first, ...second, ...third].find((entry) => entry.hash === hashOf(held[2]!));
    expect(entry).toMatchObject({ touchedAtMs: 12_000, bytes: 52 });
  });

  it("keeps a chunk touched since a conditional delete's time, and a put of a held chunk touches it", async () => {
    const { store: disk } = await store();
    await disk.scan();
    const bytes = chunk(30, 64);
    const hash = hashOf(bytes);
    await disk.put(hash, bytes, 5_000);
    await disk.put(hash, bytes, 9_000);
    expect(await disk.delete(hash, { untouchedSinceMs: 9_000 })).toBe(0);
    expect(await disk.has(hash)).toBe(true);
    expect(await disk.delete(hash, { untouchedSinceMs: 9_001 })).toBe(64);
    expect(await disk.has(hash)).toBe(false);
  });

  it("takes only hex hashes as names, so no path from the network reaches the filesystem", async () => {
    const { store: disk } = await store();
    await disk.scan();
    for (const bad of ["../../etc/passwd", "AB".repeat(32), "ab".repeat(31), `${"ab".repeat(31)}/x`, ""]) {
      await expect(disk.get(bad), bad).rejects.toThrow(/64 lowercase hex digits/);
      await expect(disk.put(bad, chunk(1), 0), bad).rejects.toThrow(/64 lowercase hex digits/);
    }
  });

  it("ignores stray files when it counts", async () => {
    const { folder, store: disk } = await store();
    await mkdir(join(folder, "node", "ab"), { recursive: true });
    await writeFile(join(folder, "node", "ab", "notes.txt"), "hello");
    await writeFile(join(folder, "node", "README"), "hello");
    expect(await disk.scan()).toEqual({ chunks: 0, bytes: 0 });
  });
});
