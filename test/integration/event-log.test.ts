import { describe, expect, it } from "vitest";
import { ConcurrencyError, encodeMessage, eventSubject, nodeSubject, UnavailableError } from "../../events/mod.ts";
import type { LogRecord } from "../../actors/ports.ts";
import { useNatsServer } from "../support/nats.ts";
import { elected, joined, left } from "../support/events.ts";

const nats = useNatsServer();
/** Without veil's config: the only broker where messages can be deleted, to see replays cope with gaps. */
const open = useNatsServer({ open: true });

async function collect(records: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const all: LogRecord[] = [];
  for await (const record of records) all.push(record);
  return all;
}

describe("NatsEventLog", () => {
  it("appends with the event id as Nats-Msg-Id and veil's headers, and reads the aggregate back", async () => {
    const subject = nodeSubject("append-1");
    const events = [joined("append-1"), left("append-1")];
    const seqs = await nats.log.append(subject, events);
    expect(seqs).toHaveLength(2);
    expect(seqs[1]).toBeGreaterThan(seqs[0]!);

    const stored = await nats.jsm.streams.getMessage("VEIL_EVENTS", { seq: seqs[0]! });
    expect(stored!.header.get("Nats-Msg-Id")).toBe(events[0]!.id);
    expect(stored!.header.get("Veil-Type")).toBe("NodeJoined");
    expect(stored!.header.get("Veil-Version")).toBe("1");
    expect(stored!.header.get("Content-Type")).toBe("application/msgpack");

    const { records, lastSubjectSeq } = await nats.log.readAggregate(subject);
    expect(lastSubjectSeq).toBe(seqs[1]);
    expect(records.map((record) => record.ok && record.event)).toEqual(events);
  });

  it("stores a retried append once (same event id)", async () => {
    const subject = nodeSubject("retry-1");
    const event = joined("retry-1");
    const [first] = await nats.log.append(subject, [event]);
    const [again] = await nats.log.append(subject, [event]);
    expect(again).toBe(first);
    expect((await nats.log.readAggregate(subject)).records).toHaveLength(1);
  });

  it("treats a retried decision (same id, same expected sequence) as the same write, not a conflict", async () => {
    const subject = nodeSubject("retry-2");
    const event = joined("retry-2");
    const [first] = await nats.log.append(subject, [event], { expectedSubjectSeq: 0 });
    const [again] = await nats.log.append(subject, [event], { expectedSubjectSeq: 0 });
    expect(again).toBe(first);
  });

  it("rejects an append whose expected subject sequence is stale with a ConcurrencyError", async () => {
    const subject = nodeSubject("occ-1");
    await nats.log.append(subject, [joined("occ-1")], { expectedSubjectSeq: 0 });
    await expect(nats.log.append(subject, [left("occ-1")], { expectedSubjectSeq: 0 })).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
    const { lastSubjectSeq } = await nats.log.readAggregate(subject);
    await expect(nats.log.append(subject, [left("occ-1")], { expectedSubjectSeq: lastSubjectSeq })).resolves
      .toHaveLength(1);
  });

  it("lets exactly one of many concurrent writers win the same expected sequence", async () => {
    const { lastSubjectSeq } = await nats.log.readAggregate("veil.evt.cluster.leader");
    const attempts = await Promise.allSettled(
      ["a", "b", "c", "d", "e"].map((node) =>
        nats.log.append("veil.evt.cluster.leader", [elected(`node-${node}`, 1)], { expectedSubjectSeq: lastSubjectSeq })
      ),
    );
    expect(attempts.filter((attempt) => attempt.status === "fulfilled")).toHaveLength(1);
    for (const attempt of attempts.filter((attempt) => attempt.status === "rejected")) {
      expect((attempt as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
    }
  });

  it("replays ranges by sequence, time and subject, and ends at the end of the log", async () => {
    const subject = nodeSubject("range-1");
    const seqs = await nats.log.append(subject, [joined("range-1"), left("range-1"), joined("range-1")]);
    const all = await collect(nats.log.replay());
    expect(all.at(-1)!.seq).toBe(await nats.log.lastSeq());

    const from = await collect(nats.log.replay({ fromSeq: seqs[1], subject }));
    expect(from.map((record) => record.seq)).toEqual(seqs.slice(1));
    const until = await collect(nats.log.replay({ subject, untilSeq: seqs[1] }));
    expect(until.map((record) => record.seq)).toEqual(seqs.slice(0, 2));

    const secondStoredAt = from[0]!.storedAt;
    const since = await collect(nats.log.replay({ subject, since: secondStoredAt }));
    expect(since.every((record) => record.storedAt >= secondStoredAt)).toBe(true);
    expect(since.map((record) => record.seq)).toEqual(expect.arrayContaining(seqs.slice(1)));
    const all3 = await collect(nats.log.replay({ subject }));
    const firstStoredAt = all3[0]!.storedAt;
    const untilTime = await collect(nats.log.replay({ subject, untilTime: firstStoredAt }));
    expect(untilTime.map((record) => record.seq)).toEqual(
      all3.filter((record) => record.storedAt <= firstStoredAt).map((record) => record.seq),
    );
    expect(untilTime[0]!.seq).toBe(seqs[0]);

    expect(await collect(nats.log.replay({ subject: nodeSubject("never-written") }))).toEqual([]);
    expect(await collect(nats.log.replay({ fromSeq: (await nats.log.lastSeq()) + 1 }))).toEqual([]);
    expect(await collect(nats.log.replay({ since: Date.now() + 60_000 }))).toEqual([]);
  });

  it("ends a replay whose range holds no stored entry (deleted, purged)", async () => {
    // veil's streams deny deleting and purging; on a broker without veil's config, a stream
    // made without that protection does not, and replays must still end cleanly.
    const { config } = await open.jsm.streams.info("VEIL_EVENTS");
    await open.jsm.streams.delete("VEIL_EVENTS");
    await open.jsm.streams.add({ ...config, deny_delete: false, deny_purge: false });
    const subject = nodeSubject("gone-1");
    const [kept, deleted] = await open.log.append(subject, [joined("gone-1"), left("gone-1")]);
    await open.jsm.streams.deleteMessage("VEIL_EVENTS", deleted!);
    expect((await collect(open.log.replay({ subject }))).map((record) => record.seq)).toEqual([kept]);
    expect(await collect(open.log.replay({ subject, fromSeq: deleted }))).toEqual([]);
    await open.jsm.streams.purge("VEIL_EVENTS", { filter: subject });
    expect(await collect(open.log.replay({ subject }))).toEqual([]);
    expect((await open.log.readAggregate(subject)).lastSubjectSeq).toBe(0);
  });

  it("leaves no consumer behind on the server after reading", async () => {
    const consumers = async () => (await nats.jsm.streams.info("VEIL_EVENTS")).state.consumer_count;
    const before = await consumers();
    for (let index = 0; index < 5; index++) await collect(nats.log.replay());
    const abort = new AbortController();
    const following = collect(nats.log.follow({ signal: abort.signal }));
    abort.abort();
    await following;
    expect(await consumers()).toBe(before);
  });

  it("refuses a multi-event append against an expected sequence (it could not be atomic)", async () => {
    await expect(
      nats.log.append(nodeSubject("multi-1"), [joined("multi-1"), left("multi-1")], { expectedSubjectSeq: 0 }),
    ).rejects.toThrow(/takes exactly one event/);
  });

  it("follows live appends until aborted", async () => {
    const subject = nodeSubject("follow-1");
    const abort = new AbortController();
    const seen: LogRecord[] = [];
    const following = (async () => {
      for await (const record of nats.log.follow({ subject, signal: abort.signal })) {
        seen.push(record);
        if (seen.length === 2) abort.abort();
      }
    })();
    await nats.log.append(subject, [joined("follow-1")]);
    await nats.log.append(subject, [left("follow-1")]);
    await following;
    expect(seen.map((record) => record.ok && record.event.type)).toEqual(["NodeJoined", "NodeLeft"]);
  });

  it("hands readers bad input as typed errors and keeps going", async () => {
    const before = await nats.log.lastSeq();
    await nats.js.publish("veil.evt.x.y", new TextEncoder().encode("garbage, not msgpack"));
    const unknownType = { type: "MoonLanded", v: 1, id: "u-1", at: 1, by: "t", data: {} };
    await nats.js.publish("veil.evt.x.y", encodeMessage(unknownType));
    await nats.js.publish("veil.evt.x.y", encodeMessage({ ...joined("bad-1"), v: 9 }));
    await nats.js.publish("veil.evt.x.y", encodeMessage(joined("bad-1")).slice(0, 20));
    await nats.js.publish("veil.evt.x.y", encodeMessage({ ...joined("bad-1"), data: { node: "a.b", role: "x" } }));
    await nats.log.append(eventSubject("node", "bad-1"), [joined("bad-1")]);

    const records = await collect(nats.log.replay({ fromSeq: before + 1 }));
    expect(records.map((record) => (record.ok ? record.event.type : record.error.code))).toEqual([
      "event-malformed",
      "event-unknown-type",
      "event-newer-version",
      "event-malformed",
      "event-invalid-data",
      "NodeJoined",
    ]);
  });

  it("refuses a 900 KB message at the stream, leaving the log as it was", async () => {
    const before = await nats.log.lastSeq();
    await expect(nats.js.publish("veil.evt.x.y", new Uint8Array(900 * 1024))).rejects.toThrow(
      /message size exceeds maximum/i,
    );
    expect(await nats.log.lastSeq()).toBe(before);
  });

  it("encodes and validates before writing: an invalid event never reaches the log", async () => {
    const before = await nats.log.lastSeq();
    const invalid = { ...joined("ok-node"), data: { node: "bad node", role: "server" } };
    await expect(nats.log.append(nodeSubject("ok-node"), [joined("ok-node"), invalid as never])).rejects.toThrow(
      /data\.node/,
    );
    expect(await nats.log.lastSeq()).toBe(before);
  });

  it("reports an unreachable broker as unavailable", async () => {
    const { connectNats } = await import("../../infra/nats/connection.ts");
    await expect(connectNats("nats://127.0.0.1:1", { name: "t", timeoutMs: 500 })).rejects.toBeInstanceOf(
      UnavailableError,
    );
  });
});
