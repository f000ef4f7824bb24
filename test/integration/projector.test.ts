import { describe, expect, it, vi } from "vitest";
import { encodeMessage, leaderSubject, nodeSubject, type VeilEvent } from "../../events/mod.ts";
import type { EventLog, LogRecord, SnapshotStore } from "../../actors/ports.ts";
import { clusterProjection, type ClusterState, fold } from "../../projections/mod.ts";
import { openJetStream } from "../../infra/nats/connection.ts";
import { NatsEventLog } from "../../infra/nats/event-log.ts";
import { openSnapshotStore } from "../../infra/nats/snapshots.ts";
import { ensureStreams } from "../../infra/nats/streams.ts";
import { systemClock, systemTimers } from "../../infra/clock.ts";
import { Projector, projectUntil } from "../../actors/server/projector.ts";
import { recordingLogger } from "../support/logger.ts";
import { useNatsServer } from "../support/nats.ts";
import { elected, joined, left } from "../support/events.ts";

const nats = useNatsServer();
const open = useNatsServer({ open: true });

describe("Projector", () => {
  it("keeps live state equal to state rebuilt from sequence 1, bad input included", async () => {
    const snapshots = await openSnapshotStore(nats.nc, { replicas: 1 });
    const { logger, warnings } = recordingLogger();
    const projector = new Projector({
      log: nats.log,
      snapshots,
      projection: clusterProjection,
      logger,
      timers: systemTimers,
      clock: systemClock,
      snapshotEveryEvents: 7,
    });
    await projector.start();

    for (let index = 0; index < 40; index++) {
      const node = `s${index % 5}`;
      await nats.log.append(nodeSubject(node), [index % 3 === 2 ? left(node) : joined(node)]);
      if (index % 10 === 0) await nats.log.append(leaderSubject, [elected(node, index + 1)]);
      if (index % 13 === 0) await nats.js.publish("veil.evt.x.y", encodeMessage({ type: "Junk", v: 1 }));
    }
    await nats.js.publish("veil.evt.x.y", new Uint8Array([0xc1, 0x67, 0x61]) /* 0xc1 is never valid msgpack */);
    const last = await nats.log.lastSeq();
    await projector.waitFor(last, 10_000);

    const rebuilt = await projectUntil({ log: nats.log, projection: clusterProjection, logger });
    expect(rebuilt.seq).toBe(last);
    expect(projector.state).toEqual(rebuilt.state);
    expect(Object.keys(projector.state.nodes)).toHaveLength(5);
    expect(rebuilt.skipped).toBeGreaterThanOrEqual(5);
    expect(warnings.filter((warning) => warning === "skipped undecodable event").length).toBeGreaterThanOrEqual(5);
    await projector.stop();
  });

  it("resumes from its snapshot and reaches the same state as a rebuild", async () => {
    const snapshots = await openSnapshotStore(nats.nc, { replicas: 1 });
    const { logger } = recordingLogger();
    const first = new Projector({
      log: nats.log,
      snapshots,
      projection: clusterProjection,
      logger,
      timers: systemTimers,
      clock: systemClock,
    });
    await first.start();
    await first.stop();
    const saved = await snapshots.load("cluster");
    expect(saved?.seq).toBe(await nats.log.lastSeq());

    await nats.log.append(nodeSubject("late"), [joined("late", "storage")]);
    const replay = vi.spyOn(nats.log, "replay");
    const second = new Projector({
      log: nats.log,
      snapshots,
      projection: clusterProjection,
      logger,
      timers: systemTimers,
      clock: systemClock,
    });
    await second.start();
    // It caught up from just after the snapshot, not from sequence 1.
    expect(replay).toHaveBeenCalledTimes(1);
    expect(replay.mock.calls[0]![0]!.fromSeq).toBe(saved!.seq + 1);
    replay.mockRestore();
    expect(second.state.nodes.late).toMatchObject({ role: "storage", status: "joined" });
    expect(second.state).toEqual((await projectUntil({ log: nats.log, projection: clusterProjection, logger })).state);
    await second.stop();
  });

  it("ignores a snapshot written by another projection version", async () => {
    const logIdentity = await nats.log.identity();
    const lying: SnapshotStore = {
      load: () =>
        Promise.resolve({
          logIdentity,
          seq: 10_000,
          storedAt: 0,
          version: 99,
          state: { nodes: { ghost: {} }, leader: null, term: 0, elected: null },
        }),
      save: () => Promise.resolve(),
    };
    const { logger } = recordingLogger();
    const projector = new Projector({
      log: nats.log,
      snapshots: lying,
      projection: clusterProjection,
      logger,
      timers: systemTimers,
      clock: systemClock,
    });
    await projector.start();
    expect(projector.state.nodes.ghost).toBeUndefined();
    expect(projector.seq).toBe(await nats.log.lastSeq());
    await projector.stop();
  });
});

describe("time travel", () => {
  it("folds up to a sequence or a moment, and equals a fold of the events up to there", async () => {
    const { logger } = recordingLogger();
    const subject = nodeSubject("traveller");
    const [joinedSeq] = await nats.log.append(subject, [joined("traveller")]);
    const [leftSeq] = await nats.log.append(subject, [left("traveller")]);

    const atJoin = await projectUntil({ log: nats.log, projection: clusterProjection, logger, untilSeq: joinedSeq });
    expect(atJoin.seq).toBe(joinedSeq);
    expect(atJoin.state.nodes.traveller?.status).toBe("joined");

    const events = [];
    for await (const record of nats.log.replay({ untilSeq: joinedSeq })) if (record.ok) events.push(record.event);
    expect(atJoin.state).toEqual(fold(clusterProjection, events));

    const records = [];
    for await (const record of nats.log.replay({ fromSeq: joinedSeq, untilSeq: leftSeq })) records.push(record);
    const leftStoredAt = records.at(-1)!.storedAt;
    const atLeave = await projectUntil({
      log: nats.log,
      projection: clusterProjection,
      logger,
      untilTime: leftStoredAt,
    });
    expect(atLeave.state.nodes.traveller?.status).toBe("left");
    const beforeAll = await projectUntil({ log: nats.log, projection: clusterProjection, logger, untilTime: 0 });
    expect(beforeAll).toMatchObject({ seq: 0, state: clusterProjection.initial() });
  });
});

describe("Projector lifecycle", () => {
  it("stops catching up when stopped, and its start says so", async () => {
    const { logger } = recordingLogger();
    await nats.log.append(nodeSubject("slow-1"), [joined("slow-1")]);
    await nats.log.append(nodeSubject("slow-2"), [joined("slow-2")]);
    // A log whose replay holds after its first entry until the test lets it go on.
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let delivered = 0;
    const slow: EventLog = Object.assign(Object.create(nats.log), {
      async *replay(options: Parameters<EventLog["replay"]>[0]) {
        for await (const record of nats.log.replay(options)) {
          if (delivered++ === 1) await held;
          yield record;
        }
      },
    });
    const snapshots: SnapshotStore = { load: () => Promise.resolve(undefined), save: () => Promise.resolve() };
    const projector = new Projector({
      log: slow,
      snapshots,
      projection: clusterProjection,
      logger,
      timers: systemTimers,
      clock: systemClock,
    });
    const outcome = projector.start().then(() => "started", (error: Error) => error.name);
    await vi.waitFor(() => expect(delivered).toBe(2), { timeout: 5_000 });
    await projector.stop();
    release();
    expect(await outcome).toBe("ProjectorStoppedError");
    expect(projector.seq).toBe(1);
  });

  it("reports a failure when the log stops delivering without being asked to", async () => {
    const { logger } = recordingLogger();
    const own = await nats.connectAs("server", "projector-failure");
    const { js, jsm } = await openJetStream(own, nats.url);
    const log = new NatsEventLog(js, jsm);
    const snapshots = await openSnapshotStore(nats.nc, { replicas: 1 });
    const projector = new Projector({
      log,
      snapshots,
      projection: clusterProjection,
      logger,
      timers: systemTimers,
      clock: systemClock,
    });
    await projector.start();
    await own.close();
    const failure = await projector.failed;
    expect(failure.message).toMatch(/projection cluster stopped at sequence \d+/);
    await projector.stop();
  });
});

describe("a follow that stalls", () => {
  it("is noticed while the log moves on, replaced from the next sequence, and applies nothing twice", async () => {
    const { logger, warnings } = recordingLogger();
    // The first follow delivers its first entry and then nothing more, as a consumer on a
    // broker node that died does; it wakes up and delivers everything once it is aborted.
    let follows = 0;
    const stalling: EventLog = Object.assign(Object.create(nats.log), {
      async *follow(options: Parameters<EventLog["follow"]>[0]) {
        if (follows++ > 0) return yield* nats.log.follow(options);
        const held: LogRecord[] = [];
        for await (const record of nats.log.follow(options)) {
          if (held.length === 0) yield record;
          held.push(record);
          if (options.signal.aborted) break;
        }
        yield* held;
      },
    });
    const snapshots: SnapshotStore = { load: () => Promise.resolve(undefined), save: () => Promise.resolve() };
    const applied: string[] = [];
    const projection = {
      ...clusterProjection,
      evolve: (state: ClusterState, event: VeilEvent) => {
        applied.push(event.id);
        return clusterProjection.evolve(state, event);
      },
    };
    const projector = new Projector({
      log: stalling,
      snapshots,
      projection,
      logger,
      timers: systemTimers,
      clock: systemClock,
      followCheckIntervalMs: 200,
    });
    await projector.start();
    const before = projector.seq;
    const seqs: number[] = [];
    for (const node of ["stall-a", "stall-b", "stall-c"]) {
      seqs.push(...(await nats.log.append(nodeSubject(node), [joined(node)])));
    }
    await projector.waitFor(seqs.at(-1)!, 10_000);
    // The stalled follow gives up what it held once replaced; the new one starts right after.
    await vi.waitFor(() => expect(follows).toBe(2), { timeout: 5_000 });
    expect(warnings).toContain("projection stalled behind the log; following again");
    expect(projector.seq).toBe(seqs.at(-1));
    expect(new Set(applied).size).toBe(applied.length); // nothing applied twice
    expect(projector.state).toEqual(
      (await projectUntil({ log: nats.log, projection: clusterProjection, logger })).state,
    );
    expect(projector.behindMs(Date.now())).toBeLessThan(10_000);
    expect(before).toBeLessThan(seqs[0]!);
    await projector.stop();
  });
});

// On a broker of its own without veil's config: only there can the stream be deleted and made anew.
describe("a recreated log", () => {
  it("is not mistaken for the old one: its snapshots are discarded", async () => {
    const { logger } = recordingLogger();
    const snapshots = await openSnapshotStore(open.nc, { replicas: 1 });
    await open.log.append(nodeSubject("old-world"), [joined("old-world")]);
    const before = new Projector({
      log: open.log,
      snapshots,
      projection: clusterProjection,
      logger,
      timers: systemTimers,
      clock: systemClock,
    });
    await before.start();
    await before.stop();
    expect((await snapshots.load("cluster"))?.state).toMatchObject({ nodes: { "old-world": {} } });

    await open.jsm.streams.delete("VEIL_EVENTS");
    await ensureStreams(open.jsm, { replicas: 1 });
    await open.log.append(nodeSubject("new-world"), [joined("new-world")]);

    const after = new Projector({
      log: open.log,
      snapshots,
      projection: clusterProjection,
      logger,
      timers: systemTimers,
      clock: systemClock,
    });
    await after.start();
    expect(Object.keys(after.state.nodes)).toEqual(["new-world"]);
    expect(after.state).toEqual(
      (await projectUntil({ log: open.log, snapshots, projection: clusterProjection, logger })).state,
    );
    await after.stop();
  });
});
