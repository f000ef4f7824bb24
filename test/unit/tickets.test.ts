/** Storage tickets: signed by the cluster's ticket key, checked by storage nodes with its public half. */
import { describe, expect, it } from "vitest";
import {
  checkTicketAllows,
  readTicket,
  signTicket,
  ticketIndex,
  ticketIssuer,
  ticketKeys,
  ticketVerifier,
  verifyTicket,
} from "../../actors/storage-node/tickets.ts";
import type { Bus } from "../../actors/ports.ts";
import {
  encodeMessage,
  ForbiddenError,
  limits,
  type StorageTicket,
  ticketSignatureBytes,
  UnavailableError,
} from "../../events/mod.ts";
import { askServersForTicketKey } from "../../actors/storage-node/ticket-key.ts";
import { systemTimers } from "../../infra/clock.ts";
import { commandsOver } from "../../infra/command-client.ts";
import { silentLogger } from "../support/logger.ts";

const clusterKey = new Uint8Array(32).fill(3);
const keys = ticketKeys(clusterKey);
const hashA = "a1".repeat(32);
const hashB = "b2".repeat(32);
const now = 1_700_000_000_000;
const ticket: StorageTicket = {
  op: "put",
  node: "storage-1",
  hashes: [hashA],
  bytesMax: 1_000,
  expiresAt: now + 5_000,
};
const where = { node: "storage-1", now };

const refusal = (check: () => unknown) => {
  try {
    check();
  } catch (error) {
    expect(error).toBeInstanceOf(ForbiddenError);
    return (error as Error).message;
  }
  throw new Error("expected a refusal");
};

describe("storage tickets", () => {
  it("come from the cluster key, one key pair per cluster", () => {
    expect(ticketKeys(clusterKey)).toEqual(keys);
    expect(keys.publicKey).toHaveLength(32);
    expect(ticketKeys(new Uint8Array(32).fill(4)).publicKey).not.toEqual(keys.publicKey);
  });

  it("verify when signed by the cluster, for this node, before they expire", () => {
    const signed = signTicket(keys.secretKey, ticket);
    expect(verifyTicket(keys.publicKey, signed, where)).toEqual(ticket);
    expect(verifyTicket(keys.publicKey, signed, { ...where, now: ticket.expiresAt })).toEqual(ticket);
    expect(readTicket(signed)).toEqual(ticket);
  });

  it("are refused when forged, altered, for another node, expired or not tickets at all", () => {
    const signed = signTicket(keys.secretKey, ticket);
    const forged = signTicket(ticketKeys(new Uint8Array(32).fill(5)).secretKey, ticket);
    expect(refusal(() => verifyTicket(keys.publicKey, forged, where))).toMatch(/signature is not the cluster's/);
    // The fields of another ticket under this one's signature: the signature covers every byte.
    const widened = encodeMessage({ ...ticket, hashes: [hashA, hashB] });
    const spliced = new Uint8Array([...widened, ...signed.subarray(signed.byteLength - ticketSignatureBytes)]);
    expect(refusal(() => verifyTicket(keys.publicKey, spliced, where))).toMatch(/signature is not the cluster's/);
    const flipped = signed.slice();
    flipped[3]! ^= 1;
    expect(refusal(() => verifyTicket(keys.publicKey, flipped, where))).toMatch(/signature is not the cluster's/);
    expect(refusal(() => verifyTicket(keys.publicKey, signed, { ...where, node: "storage-2" }))).toMatch(
      /is for node storage-1, not storage-2/,
    );
    expect(refusal(() => verifyTicket(keys.publicKey, signed, { ...where, now: ticket.expiresAt + 1 }))).toMatch(
      /expired 1 ms ago/,
    );
    expect(refusal(() => verifyTicket(keys.publicKey, new Uint8Array(10), where))).toMatch(/65\.\.\d+ bytes/);
    expect(refusal(() => verifyTicket(keys.publicKey, new Uint8Array(limits.ticketBytesMax + 1), where))).toMatch(
      /bytes/,
    );
  });

  it("allow only their operation, their chunks, and puts up to their size", () => {
    expect(() => checkTicketAllows(ticket, { op: "put", hash: hashA, bytes: 1_000 })).not.toThrow();
    expect(refusal(() => checkTicketAllows(ticket, { op: "get", hash: hashA }))).toMatch(/for a put, not a get/);
    expect(refusal(() => checkTicketAllows(ticket, { op: "put", hash: hashB, bytes: 10 }))).toMatch(
      /does not name chunk b2/,
    );
    expect(refusal(() => checkTicketAllows(ticket, { op: "put", hash: hashA, bytes: 1_001 }))).toMatch(
      /up to 1000 bytes; this one has 1001/,
    );
  });

  it("cannot be signed with fields out of bounds", () => {
    expect(() => signTicket(keys.secretKey, { ...ticket, hashes: [] })).toThrow(/hashes/);
    expect(() => signTicket(keys.secretKey, { ...ticket, hashes: ["../x"] })).toThrow(/hashes\.0/);
    const many = Array.from({ length: limits.ticketHashesMax + 1 }, () => hashA);
    expect(() => signTicket(keys.secretKey, { ...ticket, hashes: many })).toThrow(/hashes/);
  });

  it("fit in their bound with the most hashes a ticket may name", () => {
    const full = Array.from({ length: limits.ticketHashesMax }, (_, index) => index.toString(16).padStart(64, "0"));
    const signed = signTicket(keys.secretKey, {
      ...ticket,
      node: "n".repeat(limits.subjectTokenLengthMax),
      hashes: full,
    });
    expect(signed.byteLength).toBeLessThanOrEqual(limits.ticketBytesMax);
  });

  it("are verified once per signature by a node, and still checked for node and time every use", () => {
    const verifier = ticketVerifier(keys.publicKey, { cacheMax: 2 });
    const signed = signTicket(keys.secretKey, ticket);
    expect(verifier.verify(signed, where)).toEqual(ticket);
    expect(verifier.verify(signed, where)).toEqual(ticket);
    expect(refusal(() => verifier.verify(signed, { ...where, now: ticket.expiresAt + 1 }))).toMatch(/expired/);
    expect(refusal(() => verifier.verify(signed, { ...where, node: "storage-9" }))).toMatch(/not storage-9/);
    // The same signature under other fields is verified afresh, and refused.
    const widened = encodeMessage({ ...ticket, hashes: [hashA, hashB] });
    const spliced = new Uint8Array([...widened, ...signed.subarray(signed.byteLength - ticketSignatureBytes)]);
    expect(refusal(() => verifier.verify(spliced, where))).toMatch(/signature is not the cluster's/);
  });

  it("are issued for every node holding an object's chunks, a bounded number of hashes each", () => {
    const issuer = ticketIssuer(keys.secretKey, { now: () => now });
    const chunks = Array.from({ length: limits.ticketHashesMax + 1 }, (_, index) => ({
      hash: index.toString(16).padStart(64, "0"),
      nodes: index === 0 ? ["storage-1", "storage-2"] : ["storage-1"],
    }));
    const tickets = issuer.get(chunks);
    expect(tickets.map(({ node }) => node)).toEqual(["storage-1", "storage-1", "storage-2"]);
    for (const { node, ticket: signed } of tickets) {
      expect(verifyTicket(keys.publicKey, signed, { node, now })).toMatchObject({
        op: "get",
        expiresAt: now + limits.ticketLifetimeMs,
      });
    }
    const find = ticketIndex(tickets);
    expect(readTicket(find("storage-1", chunks.at(-1)!.hash)!).hashes).toEqual([chunks.at(-1)!.hash]);
    expect(find("storage-2", chunks[0]!.hash)).toBe(tickets[2]!.ticket);
    expect(find("storage-2", chunks[1]!.hash)).toBeUndefined();
    const put = issuer.put("storage-3", [{ hash: hashA, bytes: 10 }, { hash: hashB, bytes: 300 }]);
    expect(verifyTicket(keys.publicKey, put, { node: "storage-3", now })).toEqual({
      op: "put",
      node: "storage-3",
      hashes: [hashA, hashB],
      bytesMax: 300,
      expiresAt: now + limits.ticketLifetimeMs,
    });
  });
});

describe("a storage node without the cluster key", () => {
  /** A bus on which `cluster.keys` finds no server for the first `silentFor` asks, then the given answer. */
  const busAnswering = (silentFor: number, answer: unknown) => {
    const asked: string[] = [];
    const bus: Bus = {
      publish() {},
      subscribe: () => ({ unsubscribe() {} }),
      request(subject) {
        asked.push(subject);
        if (asked.length <= silentFor) return Promise.reject(new UnavailableError("no responders"));
        return Promise.resolve({ ok: true, value: answer });
      },
    };
    return { bus, asked };
  };
  const clock = (start: number, stepMs: number) => {
    let time = start;
    return { now: () => (time += stepMs) };
  };

  it("asks the servers for the ticket key until one answers", async () => {
    const { bus, asked } = busAnswering(2, { ticketKey: keys.publicKey });
    const key = await askServersForTicketKey(
      { send: commandsOver(bus), clock: clock(0, 1), timers: systemTimers, logger: silentLogger },
      new AbortController().signal,
      { retryMs: 1, waitMs: 1_000 },
    );
    expect(key).toEqual(keys.publicKey);
    expect(asked).toEqual(["veil.cmd.cluster.keys", "veil.cmd.cluster.keys", "veil.cmd.cluster.keys"]);
  });

  it("gives up after its bound, saying what to do, and takes no malformed key", async () => {
    const { bus } = busAnswering(Infinity, undefined);
    await expect(askServersForTicketKey(
      { send: commandsOver(bus), clock: clock(0, 400), timers: systemTimers, logger: silentLogger },
      new AbortController().signal,
      { retryMs: 1, waitMs: 1_000 },
    )).rejects.toThrow(
      /no server gave the ticket key \(cluster.keys\) within 1000 ms \(3 tries; last: no responders\): start a server/,
    );
    const wrong = busAnswering(0, { ticketKey: new Uint8Array(5) });
    await expect(askServersForTicketKey(
      { send: commandsOver(wrong.bus), clock: clock(0, 400), timers: systemTimers, logger: silentLogger },
      new AbortController().signal,
      { retryMs: 1, waitMs: 1_000 },
    )).rejects.toThrow(/no server gave the ticket key .*ticketKey: expected 32 bytes/);
  });
});
