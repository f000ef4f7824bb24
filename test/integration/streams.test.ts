import { describe, expect, it } from "vitest";
import { UnavailableError } from "../../events/mod.ts";
import { clusterStreamName, ensureStreams, eventStreamName, streamConfigs } from "../../infra/nats/streams.ts";
import { recordingLogger } from "../support/logger.ts";
import { useNatsServer } from "../support/nats.ts";

const nats = useNatsServer();
/** A broker with no streams yet, open (no veil config), so a test can also delete one. */
const empty = useNatsServer({ createStreams: false, open: true });

describe("ensureStreams", () => {
  it("is idempotent: a second node's start changes nothing", async () => {
    const before = (await nats.jsm.streams.info(eventStreamName)).config;
    await ensureStreams(nats.jsm, { replicas: 1 });
    expect((await nats.jsm.streams.info(eventStreamName)).config).toEqual(before);
  });

  it("keeps an operator's setting and says it differs", async () => {
    const { config } = await nats.jsm.streams.info(eventStreamName);
    await nats.jsm.streams.update(eventStreamName, { ...config, max_msg_size: 4096 });
    const { logger, warnings } = recordingLogger();
    await ensureStreams(nats.jsm, { replicas: 1, logger });
    expect((await nats.jsm.streams.info(eventStreamName)).config.max_msg_size).toBe(4096);
    expect(warnings).toContain("stream setting differs from veil's; leaving it as the operator set it");
    await nats.jsm.streams.update(eventStreamName, config);
  });

  it("adds a subject veil needs and the stream lacks", async () => {
    const { config } = await nats.jsm.streams.info(clusterStreamName);
    await nats.jsm.streams.update(clusterStreamName, { ...config, subjects: ["veil.election.>"] });
    await ensureStreams(nats.jsm, { replicas: 1 });
    expect((await nats.jsm.streams.info(clusterStreamName)).config.subjects).toEqual(["veil.election.>", "veil.hb.>"]);
  });

  it("explains why a stream cannot be created, e.g. replicas without a cluster", async () => {
    const attempt = ensureStreams(empty.jsm, { replicas: 3 });
    await expect(attempt).rejects.toBeInstanceOf(UnavailableError);
    await expect(attempt).rejects.toThrow(/VEIL_STREAM_REPLICAS=3 needs a NATS cluster of at least 3 servers/);
    await ensureStreams(empty.jsm, { replicas: 1 });
  });

  it("creates its streams so that nobody may delete or purge them, not even a server", async () => {
    const { config } = await nats.jsm.streams.info(eventStreamName);
    expect(config).toMatchObject({ deny_delete: true, deny_purge: true, discard: "new" });
    expect(config.max_bytes).toBeGreaterThan(0);
    await expect(nats.jsm.streams.purge(eventStreamName)).rejects.toThrow();
    await expect(nats.jsm.streams.delete(eventStreamName)).rejects.toThrow(/Permissions Violation/);
  });

  it("protects a stream made before veil protected its streams", async () => {
    const old = streamConfigs({ replicas: 1 }).find((stream) => stream.name === clusterStreamName)!;
    await empty.jsm.streams.delete(clusterStreamName);
    await empty.jsm.streams.add({ ...old, deny_delete: false, deny_purge: false });
    await ensureStreams(empty.jsm, { replicas: 1 });
    expect((await empty.jsm.streams.info(clusterStreamName)).config).toMatchObject({
      deny_delete: true,
      deny_purge: true,
    });
  });
});
