/** What client commands share: config, a logger on stderr, and a connection opened and closed around the work. */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { NotFoundError } from "../../events/mod.ts";
import type { Logger, SnapshotStore } from "../../actors/ports.ts";
import { systemClock } from "../clock.ts";
import { type Config, loadConfig } from "../config.ts";
import { connectNats, openJetStream } from "../nats/connection.ts";
import { NatsEventLog } from "../nats/event-log.ts";
import { openSnapshotStore } from "../nats/snapshots.ts";
import { eventStreamName } from "../nats/streams.ts";
import { createLogger, displayUrl } from "../log.ts";

export interface Client {
  readonly config: Config;
  readonly logger: Logger;
  readonly log: NatsEventLog;
  readonly snapshots: SnapshotStore;
}

export function cliLogger(config: Config): Logger {
  // Client commands print results on stdout; only warnings and worse go to stderr by default.
  return createLogger({ level: config.logLevel === "info" ? "warn" : config.logLevel, clock: systemClock });
}

/** A connection to the broker for commands that talk to servers, closed after the work. */
export async function withConnection<T>(
  work: (connection: { nc: NatsConnection; config: Config; logger: Logger }) => Promise<T>,
): Promise<T> {
  const config = loadConfig();
  const nc = await connectNats(config.natsUrl, { name: "veil-cli" });
  try {
    return await work({ nc, config, logger: cliLogger(config) });
  } finally {
    await nc.close();
  }
}

/** The event log and snapshots, for commands that read the log themselves. */
export function withClient<T>(work: (client: Client) => Promise<T>): Promise<T> {
  return withConnection(async ({ nc, config, logger }) => {
    const { js, jsm } = await openJetStream(nc, config.natsUrl);
    await requireEventStream(jsm, displayUrl(config.natsUrl));
    const snapshots = await openSnapshotStore(nc, { replicas: config.streamReplicas });
    return await work({ config, logger, log: new NatsEventLog(js, jsm), snapshots });
  });
}

async function requireEventStream(jsm: JetStreamManager, url: string): Promise<void> {
  try {
    await jsm.streams.info(eventStreamName);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
      throw new NotFoundError(
        `there is no veil event log (stream ${eventStreamName}) at ${url}; start veil with \`veil up\` first`,
      );
    }
    throw error;
  }
}
