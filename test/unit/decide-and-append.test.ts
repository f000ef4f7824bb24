import { describe, expect, it } from "vitest";
import { decideAndAppend } from "../../actors/server/decide-and-append.ts";
import { AuthenticationError, BusyError, nodeSubject } from "../../events/mod.ts";
import { MemoryEventLog } from "../sim/memory-log.ts";
import { joined, left } from "../support/events.ts";

const subject = nodeSubject("n1");
const clock = { now: () => 1_700_000_000_000 };
const lastSeqOf = async (log: MemoryEventLog) => (await log.readLast(subject))?.seq ?? 0;

describe("decide and append", () => {
  it("appends at the aggregate's sequence, and answers once the read model has the event", async () => {
    const log = new MemoryEventLog(clock);
    const applied: number[] = [];
    const { seq, loaded } = await decideAndAppend({
      log,
      subject,
      load: async () => ({ seq: await lastSeqOf(log) }),
      decide: () => ({ events: [joined("n1")] }),
      applied: (seq) => Promise.resolve(void applied.push(seq)),
    });
    expect([loaded.seq, seq, applied]).toEqual([0, 1, [1]]);
  });

  it("decides again against what another writer appended first", async () => {
    const log = new MemoryEventLog(clock);
    const seen: number[] = [];
    let raced = false;
    const { seq } = await decideAndAppend({
      log,
      subject,
      load: async () => ({ seq: await lastSeqOf(log) }),
      decide: async (loaded) => {
        seen.push(loaded.seq);
        // Another server gets its event in between this one's read and its append, once.
        if (!raced) (raced = true), await log.append(subject, [joined("n1")]);
        return { events: [left("n1")] };
      },
      applied: async () => {},
    });
    expect(seen).toEqual([0, 1]);
    expect(seq).toBe(2);
    expect(log.records.map((record) => record.ok && record.event.type)).toEqual(["NodeJoined", "NodeLeft"]);
  });

  it("appends a refused decision's events and applies them before it refuses", async () => {
    const log = new MemoryEventLog(clock);
    const applied: number[] = [];
    await expect(decideAndAppend({
      log,
      subject,
      load: async () => ({ seq: await lastSeqOf(log) }),
      decide: () => ({ events: [joined("n1")], rejection: new AuthenticationError("wrong password") }),
      applied: (seq) => Promise.resolve(void applied.push(seq)),
    })).rejects.toThrow(AuthenticationError);
    expect(applied).toEqual([1]);
  });

  it("appends nothing for a decision without events, and gives up as busy after its retries", async () => {
    const log = new MemoryEventLog(clock);
    const quiet = await decideAndAppend({
      log,
      subject,
      load: () => Promise.resolve({ seq: 0 }),
      decide: () => ({ events: [] }),
      applied: () => Promise.reject(new Error("nothing to apply")),
    });
    expect([quiet.seq, log.records.length]).toEqual([0, 0]);
    const pauses: number[] = [];
    await expect(decideAndAppend({
      log,
      subject,
      retries: 3,
      // Always stale: every append conflicts with the event another writer appended.
      load: async () => {
        await log.append(subject, [joined("n1")]);
        return { seq: 0 };
      },
      decide: () => ({ events: [left("n1")] }),
      applied: async () => {},
      pause: (attempt) => Promise.resolve(void pauses.push(attempt)),
    })).rejects.toThrow(BusyError);
    expect(pauses).toEqual([0, 1, 2]);
  });
});
