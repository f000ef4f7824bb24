/** What client commands share: config, a logger on stderr, and a connection opened and closed around the work. */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { AuthenticationError, NotFoundError, TimeoutError, UnavailableError } from "../../events/mod.ts";
import type { Bus } from "../../actors/ports.ts";
import { natsBus } from "../nats/bus.ts";
import { pinnedClusterKeys } from "./cluster-pin.ts";
import { authenticatorFor, findIdentities } from "../nats/identities.ts";
import type { EventLog, Logger, SnapshotStore } from "../../actors/ports.ts";
import { readLogDump } from "../log-dump.ts";
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

/**
 * A connection to the broker for commands that talk to servers, closed after the work: as a
 * client (a user's machine; anonymous unless it has the client password), or as the
 * operator for the read-only inspection commands.
 */
export async function withConnection<T>(
  work: (connection: { nc: NatsConnection; bus: Bus; config: Config; logger: Logger }) => Promise<T>,
  as: "client" | "operator" = "client",
): Promise<T> {
  const config = loadConfig();
  const identities = await findIdentities(config);
  if (as === "operator" && !identities.operator) {
    // Whether the broker answers at all is the more useful thing to say first.
    await (await connectNats(config.natsUrl, { name: "veil-cli", tlsCaFile: config.tlsCaFile })).close();
    throw new AuthenticationError(
      "this command reads the cluster as its operator and needs the operator identity: run it where `veil up` " +
        "runs (same VEIL_DATA), or point VEIL_CREDS at a copy of <data>/broker/identities.json",
    );
  }
  const nc = await connectNats(config.natsUrl, {
    name: "veil-cli",
    tlsCaFile: config.tlsCaFile,
    authenticator: authenticatorFor(identities, as),
    identity: `veil's ${as} identity`,
  });
  try {
    const logger = cliLogger(config);
    const bus = natsBus(nc, logger);
    // The commands this process sends are sealed to the key this client met first.
    if (as === "client") await pinnedClusterKeysOrExplain(bus, config);
    return await work({ nc, bus, config, logger });
  } finally {
    await nc.close();
  }
}

async function pinnedClusterKeysOrExplain(bus: Bus, config: Config): Promise<void> {
  try {
    await pinnedClusterKeys(bus, { home: config.veilHome, url: displayUrl(config.natsUrl) });
  } catch (error) {
    if (error instanceof UnavailableError || error instanceof TimeoutError) {
      throw new UnavailableError("no veil server answers; start one with `veil up`", { cause: error });
    }
    throw error;
  }
}

/** The event log and snapshots, for commands that read the log themselves. */
export function withClient<T>(work: (client: Client) => Promise<T>): Promise<T> {
  return withConnection(async ({ nc, config, logger }) => {
    const { js, jsm } = await openJetStream(nc, config.natsUrl);
    await requireEventStream(jsm, displayUrl(config.natsUrl));
    const snapshots = await openSnapshotStore(nc, { replicas: 1, readOnly: true });
    return await work({ config, logger, log: new NatsEventLog(js, jsm), snapshots });
  }, "operator");
}

/**
 * The log a reading command folds or lists: a log dump (`--log FILE`, a failing simulation
 * seed's), or the broker's, with its snapshots.
 */
export async function withLog<T>(
  options: { log?: string },
  work: (reader: { log: EventLog; snapshots?: SnapshotStore; logger: Logger }) => Promise<T>,
): Promise<T> {
  if (options.log === undefined) return await withClient(work);
  return await work({ log: await readLogDump(options.log), logger: cliLogger(loadConfig()) });
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
