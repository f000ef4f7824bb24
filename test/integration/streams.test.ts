import { describe, expect, it } from "vitest";
import { UnavailableError } from "../../events/mod.ts";
import { clusterStreamName, ensureStreams, eventStreamName } from "../../infra/nats/streams.ts";
import { recordingLogger } from "../support/logger.ts";
import { useNatsServer } from "../support/nats.ts";

const nats = useNatsServer();

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
    await nats.jsm.streams.delete(clusterStreamName);
    const attempt = ensureStreams(nats.jsm, { replicas: 3 });
    await expect(attempt).rejects.toBeInstanceOf(UnavailableError);
    await expect(attempt).rejects.toThrow(/VEIL_STREAM_REPLICAS=3 needs a NATS cluster of at least 3 servers/);
    await ensureStreams(nats.jsm, { replicas: 1 });
  });
});
