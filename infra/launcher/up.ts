/**
 * `veil up`: brings a node group up on one machine. Reaches (or starts) the broker, creates
 * the streams, starts the actors that exist, prints where things are, and on a stop signal
 * shuts down in order: actors persist and leave, the connection drains, a private broker stops.
 */
import type { Logger } from "../../actors/ports.ts";
import { limits, TimeoutError } from "../../events/mod.ts";
import { randomIds, systemClock } from "../clock.ts";
import type { Config } from "../config.ts";
import { childLogger } from "../log.ts";
import { openJetStream } from "../nats/connection.ts";
import { NatsEventLog } from "../nats/event-log.ts";
import { openSnapshotStore, snapshotBucketName } from "../nats/snapshots.ts";
import { clusterStreamName, ensureStreams, eventStreamName } from "../nats/streams.ts";
import { hostServer } from "../server-host.ts";
import { type Broker, reachBroker } from "./broker.ts";

export interface UpOptions {
  readonly config: Config;
  readonly serverId: string;
  readonly logger: Logger;
  /** Where the summary goes (stdout). */
  readonly print: (line: string) => void;
  /** Aborted by SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
}

/** Runs until the signal aborts or an actor fails; resolves with the process exit status. */
export async function up(options: UpOptions): Promise<number> {
  const { config, serverId, logger, print, signal } = options;
  const broker = await reachBroker({
    natsUrl: config.natsUrl,
    dataFolder: config.dataFolder,
    name: `veil-up-${serverId}`,
    logger,
  });
  try {
    const { js, jsm } = await openJetStream(broker.nc, broker.url);
    await ensureStreams(jsm, { replicas: config.streamReplicas, logger });
    const log = new NatsEventLog(js, jsm);
    const snapshots = await openSnapshotStore(broker.nc, { replicas: config.streamReplicas });
    const server = hostServer({
      nodeId: serverId,
      log,
      snapshots,
      clock: systemClock,
      ids: randomIds,
      logger: childLogger(logger, { node: serverId }),
    });

    const stopRequested = new Promise<"stop">((resolve) => {
      if (signal.aborted) resolve("stop");
      signal.addEventListener("abort", () => resolve("stop"), { once: true });
    });
    // Say "up" only once it is true: the server joined and its projections caught up.
    if (await Promise.race([server.live, stopRequested.then(() => false)])) {
      printSummary(print, { broker, config, serverId });
    }
    const outcome = await Promise.race([stopRequested, server.done.then(() => "done" as const)]);
    if (outcome === "stop") {
      logger.info("stopping");
      server.actor.send({ type: "STOP" });
    }
    const output = await withinShutdownBound(server.done, "actors did not stop");
    if (output.problem) logger.error("stopped with a problem", { reason: output.problem });
    return output.problem ? 1 : 0;
  } finally {
    await withinShutdownBound(broker.nc.drain(), "NATS connection did not drain").catch((error: Error) =>
      logger.warn(error.message)
    );
    if (broker.privateServer) {
      await broker.privateServer.stop();
      logger.info("private nats-server stopped");
    }
  }
}

function withinShutdownBound<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`${what} within ${limits.shutdownTimeoutMs} ms`)),
      limits.shutdownTimeoutMs,
    );
  });
  return Promise.race([work, bound]).finally(() => clearTimeout(timer));
}

function printSummary(
  print: (line: string) => void,
  { broker, config, serverId }: { broker: Broker; config: Config; serverId: string },
): void {
  const privateNote = broker.privateServer ? ` (private nats-server, store ${broker.privateServer.storeFolder})` : "";
  print(`veil is up`);
  print(`  NATS       ${broker.url}${privateNote}`);
  print(`  data       ${config.dataFolder}`);
  print(`  streams    ${eventStreamName} (events), ${clusterStreamName} (election, heartbeats)`);
  print(`  snapshots  KV bucket ${snapshotBucketName}`);
  print(`  servers    ${serverId}`);
  print(`  inspect    veil events --follow   |   veil state cluster`);
  print(`Press Ctrl-C to stop.`);
}
